"""Which model versions the exporter holds: allow-list and pattern, the new-version budget, the eviction rule.

Unit tests drive a StateStore with a hand-moved clock; the HTTP tests show a refused version as
per-record rejections with a reason, counted, next to the accepted records of the same request.
"""

from __future__ import annotations

import json
from typing import Any, Callable

import pytest

from conftest import LiveExporter, build_config, toy_model_data, toy_profile, toy_record
from exporter.config.errors import ConfigError
from exporter.config.model import MlmonConfig
from exporter.ingest.decode import decode_body
from exporter.state.store import StateStore
from exporter.state.versions import NewVersionBudget, VersionRefused


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store_with(clock: Clock, versions: dict[str, Any] | None = None, cap: int = 3) -> StateStore:
    model = toy_model_data()
    if versions is not None:
        model["versions"] = versions
    config = build_config({"exporter": {"window_slots": 10, "max_versions_per_model": cap}, "models": [model]})
    return StateStore(config, {"toy": toy_profile()}, clock=clock)


def send(store: StateStore, version: str, records: int = 1) -> str | None:
    """Ingest `records` records of `version`; the refusal reason, or None when they were taken."""
    body = json.dumps([toy_record(version)] * records).encode()
    (batch,) = decode_body(body, "application/json", store.config, 10_000).batches
    try:
        store.ingest(batch)
    except VersionRefused as refusal:
        return refusal.reason
    return None


def held(store: StateStore) -> list[str]:
    return list(store.versions["toy"])


# ----------------------------------------------------------------------------- allow and pattern


def allowing(**versions: Any):
    return build_config({"models": [dict(toy_model_data(), versions=versions)]}).models[0].versions


def test_without_allow_or_pattern_every_label_safe_version_is_admitted() -> None:
    assert allowing().admits("v1") and allowing().admits("anything-else")


def test_a_version_is_admitted_when_it_is_in_allow_or_matches_the_pattern() -> None:
    rules = allowing(allow=["stable", "canary"], pattern=r"v\d+(\.\d+)*")
    assert [rules.admits(v) for v in ("stable", "canary", "v2", "v2.1.3")] == [True] * 4
    assert [rules.admits(v) for v in ("shadow", "v2-rc1", "xv2", "v")] == [False] * 4


def test_the_pattern_is_anchored_at_both_ends_like_a_relabel_regex() -> None:
    assert not allowing(pattern="v1").admits("v10")
    assert not allowing(pattern="v1").admits("av1")


def test_a_pattern_that_is_not_a_regular_expression_is_a_config_error_naming_the_place() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\]\.versions\.pattern: .*not a regular expression"):
        allowing(pattern="v(")


def test_an_allowed_version_outside_the_label_alphabet_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"models\[0\]\.versions\.allow\[0\]"):
        allowing(allow=["v 1"])


def test_a_version_outside_the_allow_list_is_refused_and_nothing_is_held() -> None:
    store = store_with(Clock(), {"allow": ["v1"]})
    assert send(store, "v2") == "version_not_allowed"
    assert send(store, "v1") is None
    assert held(store) == ["v1"]


# ----------------------------------------------------------------------------- the new-version budget


def test_the_budget_allows_a_burst_of_n_then_one_more_every_60_over_n_seconds() -> None:
    budget = NewVersionBudget(per_minute=3, now=0.0)
    assert [budget.take(0.0) for _ in range(4)] == [True, True, True, False]
    assert budget.take(19.0) is False  # 19 s refill 0.95 of a token
    assert budget.take(20.0) is True
    assert budget.take(1000.0) and budget.take(1000.0) and budget.take(1000.0) and not budget.take(1000.0)


def test_new_versions_beyond_max_new_per_minute_are_refused_until_the_budget_refills() -> None:
    clock = Clock()
    store = store_with(clock, {"max_new_per_minute": 2}, cap=10)
    assert [send(store, v) for v in ("a", "b", "c")] == [None, None, "version_rate_limited"]
    clock.now += 30
    assert send(store, "c") is None
    assert held(store) == ["a", "b", "c"]


def test_records_of_versions_already_held_never_draw_from_the_budget() -> None:
    store = store_with(Clock(), {"max_new_per_minute": 1}, cap=10)
    assert send(store, "v1") is None
    assert [send(store, "v1") for _ in range(100)] == [None] * 100
    assert send(store, "v2") == "version_rate_limited"


def test_a_refusal_for_lack_of_room_spends_no_budget() -> None:
    clock = Clock()
    store = store_with(clock, {"max_new_per_minute": 2, "evict_idle_after": "1m"}, cap=1)
    assert send(store, "a") is None
    assert [send(store, "b") for _ in range(5)] == ["too_many_versions"] * 5
    clock.now += 60  # a is idle long enough now, and one token is left from the burst of 2
    assert send(store, "b") is None


# ----------------------------------------------------------------------------- eviction


def test_a_newcomer_is_refused_rather_than_evict_a_version_still_receiving_traffic() -> None:
    clock = Clock()
    store = store_with(clock, {"evict_idle_after": "10m"}, cap=2)
    send(store, "v1", records=500)
    send(store, "v2")
    for _ in range(30):  # v1 keeps receiving traffic; v2 goes quiet
        clock.now += 60
        assert send(store, "v1") is None
    assert send(store, "one-record-version") is None  # v2, idle for 30 minutes, makes room
    assert held(store) == ["v1", "one-record-version"]
    clock.now += 60
    assert send(store, "v1") is None
    assert send(store, "another") == "too_many_versions"  # both held versions were seen within 10m
    assert sorted(held(store)) == ["one-record-version", "v1"]
    assert store.versions["toy"]["v1"].predictions == 531
    assert store.evictions["toy"] == 1


def test_only_a_version_idle_for_at_least_evict_idle_after_is_evicted() -> None:
    clock = Clock()
    store = store_with(clock, {"evict_idle_after": "5m"}, cap=1)
    send(store, "old")
    clock.now += 299
    assert send(store, "new") == "too_many_versions"
    clock.now += 1
    assert send(store, "new") is None
    assert held(store) == ["new"] and store.evictions["toy"] == 1


# ----------------------------------------------------------------------------- over HTTP


@pytest.fixture
def guarded(start_exporter: Callable[[MlmonConfig], LiveExporter], toy_dir) -> LiveExporter:
    model = dict(toy_model_data(), versions={"pattern": r"v\d+", "max_new_per_minute": 2})
    return start_exporter(build_config({"exporter": {"max_versions_per_model": 2}, "models": [model]}, base_dir=toy_dir))


def test_records_of_a_refused_version_are_rejected_one_by_one_with_their_reason(guarded: LiveExporter) -> None:
    answer = guarded.post_ok([toy_record("v1"), toy_record("nightly"), toy_record("v1"), toy_record("nightly")])
    assert answer["accepted"] == 2 and answer["rejected"] == 2
    assert [(r["index"], r["reason"]) for r in answer["rejections"]] == [(1, "version_not_allowed"), (3, "version_not_allowed")]
    assert guarded.value("mlmon_records_rejected_total", model="toy", reason="version_not_allowed") == 2
    assert guarded.value("mlmon_predictions_total", model="toy", model_version="nightly") is None


@pytest.mark.parametrize(
    ("cap", "per_minute", "reason", "limit"),
    [(2, 3, "too_many_versions", "versions_per_model"), (3, 2, "version_rate_limited", "new_versions_per_minute")],
)
def test_a_version_refused_for_room_or_rate_is_counted_as_a_limit_hit(
    start_exporter: Callable[[MlmonConfig], LiveExporter], toy_dir, cap: int, per_minute: int, reason: str, limit: str
) -> None:
    model = dict(toy_model_data(), versions={"max_new_per_minute": per_minute})
    live = start_exporter(build_config({"exporter": {"max_versions_per_model": cap}, "models": [model]}, base_dir=toy_dir))
    live.post_ok([toy_record("v1"), toy_record("v2")])
    answer = live.post([toy_record("v3")] * 3)
    assert answer.status_code == 422  # every record of the body was rejected
    assert {r["reason"] for r in answer.json()["rejections"]} == {reason}
    samples = live.samples()
    assert samples[("mlmon_records_rejected_total", frozenset({"model": "toy", "reason": reason}.items()))] == 3
    hits = {dict(k)["limit"]: v for (name, k), v in samples.items() if name == "mlmon_limit_hits_total"}
    assert hits[limit] == 1 and sum(hits.values()) == 1
    assert samples[("mlmon_model_versions_evicted_total", frozenset({"model": "toy"}.items()))] == 0
