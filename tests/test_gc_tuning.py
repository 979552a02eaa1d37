"""The exporter's collector thresholds: young collections sized for an ingest request, memory still flat.

server.start raises CPython's young-generation threshold (exporter/http/gc_tuning.py) so that a
records body is decoded without a collection every 700 dicts. The collector must keep running:
reference cycles are still freed without anyone calling gc.collect(), and ingesting many record
bodies leaves the exporter's traced memory where it was.
"""

from __future__ import annotations

import gc
import tracemalloc
import weakref
from collections.abc import Callable, Iterator

import pytest

from exporter.config.model import MlmonConfig
from exporter.http.gc_tuning import YOUNG_THRESHOLD, tune_gc
from tests.conftest import LiveExporter, toy_record


@pytest.fixture
def saved_thresholds() -> Iterator[tuple[int, int, int]]:
    before = gc.get_threshold()
    yield before
    gc.set_threshold(*before)


def test_the_young_threshold_is_raised_and_the_older_generations_keep_theirs(saved_thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(700, 10, 10)
    tune_gc()
    assert gc.get_threshold() == (YOUNG_THRESHOLD, 10, 10)


def test_a_higher_threshold_or_a_disabled_one_is_left_as_it_is(saved_thresholds: tuple[int, int, int]) -> None:
    gc.set_threshold(YOUNG_THRESHOLD * 2, 5, 7)
    tune_gc()
    assert gc.get_threshold() == (YOUNG_THRESHOLD * 2, 5, 7)
    gc.set_threshold(0, 10, 10)  # 0 turns automatic collection off: an embedding process chose that
    tune_gc()
    assert gc.get_threshold() == (0, 10, 10)


class Node:
    def __init__(self) -> None:
        self.me = self  # a reference cycle: only the collector frees it


def test_reference_cycles_are_still_freed_by_automatic_collections(
    start_exporter: Callable[[MlmonConfig], LiveExporter], toy_config: MlmonConfig,
) -> None:
    start_exporter(toy_config)  # server.start tunes the collector of this process
    assert gc.get_threshold()[0] >= YOUNG_THRESHOLD and gc.isenabled()
    first = Node()
    alive = weakref.ref(first)
    del first
    for _ in range(3 * YOUNG_THRESHOLD):  # more containers than the threshold: a young collection must run
        Node()
        if alive() is None:
            break
    assert alive() is None


def test_ingesting_many_record_bodies_leaves_memory_flat(
    start_exporter: Callable[[MlmonConfig], LiveExporter], toy_config: MlmonConfig,
) -> None:
    live = start_exporter(toy_config)
    records = [toy_record(x=float(i % 100), color=("red", "blue")[i % 2]) for i in range(2_000)]

    def send(times: int) -> None:
        for _ in range(times):
            answer = live.http.post(live.predictions_url, json=records)
            assert answer.status_code == 200 and answer.json()["accepted"] == len(records)

    send(5)  # first-request setup: caches, the version's state, connection pools
    tracemalloc.start()
    try:
        send(3)
        before = tracemalloc.get_traced_memory()[0]
        send(40)  # 80,000 records: ~30 MB of parsed JSON passes through
        after = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    assert after - before < 2 * 1024 * 1024, f"traced memory grew by {(after - before) / 1024:.0f} KiB over 40 requests"
