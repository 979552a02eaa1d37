"""StateStore and VersionState: binning, quality counters, time windows, capture and version eviction."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from conftest import build_config, toy_model_data, toy_profile, toy_record
from exporter.config.model import MlmonConfig
from exporter.ingest.decode import decode_body
from exporter.profiles.profile import ProfileError
from exporter.profiles.checks import check_profile
from exporter.state.store import QUALITY, StateStore


class Clock:
    """A clock the test moves by hand."""

    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def toy_store(clock: Clock, **exporter: Any) -> StateStore:
    config = build_config({"exporter": {"window_slots": 10, **exporter}, "models": [toy_model_data()]})
    return StateStore(config, {"toy": toy_profile()}, clock=clock)


def ingest(store: StateStore, records: list[dict[str, Any]]) -> None:
    decoded = decode_body(json.dumps(records).encode(), "application/json", store.config, 10_000)
    assert decoded.rejections == []
    for batch in decoded.batches:
        store.ingest(batch)


def quality(store: StateStore, feature: int, version: str = "v1") -> dict[str, int]:
    state = store.versions["toy"][version]
    return dict(zip(QUALITY, state.quality[feature].tolist()))


def test_bins_each_value_into_its_reference_bin() -> None:
    store = toy_store(Clock())
    ingest(store, [toy_record(x=x, color=c, flag=f, prediction=p)
                   for x, c, f, p in [(-1.0, "red", True, 0.0), (0.0, "blue", False, 0.99), (99.0, "mauve", 1, 5.0)]])
    state = store.versions["toy"]["v1"]
    layout = state.layout
    x_bins = state.cumulative[layout.slice(0)].tolist()
    assert x_bins == [1, 1] + [0] * 8 + [1, 0]  # underflow, [0, 9.9), ..., [89.1, 99] closed at max
    assert state.cumulative[layout.slice(1)].tolist() == [1, 0, 1, 1]  # red, green, blue, __other__
    assert state.cumulative[layout.slice(2)].tolist() == [1, 2, 0]      # false, true, __other__
    assert state.cumulative[layout.slice(3)].tolist() == [0, 1, 0, 0, 1, 1]  # score: 0.0, 0.99 (max), 5.0 over
    assert state.predictions == 3


def test_counts_quality_problems_per_feature() -> None:
    store = toy_store(Clock())
    records = [
        toy_record(x=None), toy_record(x="7"), toy_record(x=True), toy_record(x=-5.0), toy_record(x=150.0),
        toy_record(color="purple"), toy_record(color=3.5), toy_record(flag="yes"), toy_record(debug=1),
    ]
    del records[0]["features"]["color"]
    ingest(store, records)
    assert quality(store, 0) == {"missing": 0, "null": 1, "nonfinite": 0, "type_errors": 2, "below": 1, "above": 1, "unseen": 0}
    assert quality(store, 1) == {"missing": 1, "null": 0, "nonfinite": 0, "type_errors": 1, "below": 0, "above": 0, "unseen": 1}
    assert quality(store, 2)["type_errors"] == 1
    assert store.versions["toy"]["v1"].unknown_features == 1


def test_window_sample_counts_follow_the_clock() -> None:
    clock = Clock(0.0)
    store = toy_store(clock)  # windows 5m and 1h, 10 slots each: 30 s and 6 min slots
    ingest(store, [toy_record()] * 3)
    clock.now = 200.0
    ingest(store, [toy_record()] * 4)
    state = store.versions["toy"]["v1"]
    assert state.window_counts(300, now=200.0)[1] == 7
    assert state.window_counts(300, now=300.0)[1] == 4   # the slot of t=0 left the 5m window
    assert state.window_counts(3600, now=300.0)[1] == 7
    assert state.window_counts(300, now=600.0)[1] == 0
    # Both batches share the first 6-minute slot of the 1h window, so they leave it together.
    assert state.window_counts(3600, now=3599.0)[1] == 7
    assert state.window_counts(3600, now=3600.0)[1] == 0
    assert state.predictions == 7  # the cumulative counter never forgets


def test_window_bin_counts_match_the_records_in_the_window() -> None:
    clock = Clock(0.0)
    store = toy_store(clock)
    ingest(store, [toy_record(x=1.0)] * 2)
    clock.now = 400.0
    ingest(store, [toy_record(x=95.0)] * 5)
    state = store.versions["toy"]["v1"]
    counts, samples = state.window_counts(300, now=400.0)
    x_bins = counts[state.layout.slice(0)]
    assert samples == 5 and x_bins[10] == 5 and x_bins.sum() == 5
    counts, _ = state.window_counts(3600, now=400.0)
    assert counts[state.layout.slice(0)].sum() == 7


def test_evicts_the_least_recently_seen_version_beyond_the_cap_once_it_is_idle() -> None:
    clock = Clock()
    store = toy_store(clock, max_versions_per_model=2)
    ingest(store, [toy_record("a")])
    ingest(store, [toy_record("b")])
    clock.now += 600  # versions.evict_idle_after defaults to 10m
    ingest(store, [toy_record("a")])  # a is now more recent than b, and b has been idle for 10 minutes
    ingest(store, [toy_record("c")])
    assert list(store.versions["toy"]) == ["a", "c"]
    assert store.evictions["toy"] == 1
    assert store.versions["toy"]["a"].predictions == 2


def test_captures_the_reference_from_the_first_samples_then_bins() -> None:
    config = build_config({"models": [toy_model_data(reference={"capture": 50})]})
    store = StateStore(config, {}, clock=Clock())
    rng = np.random.default_rng(4)
    first = [toy_record(x=float(v)) for v in rng.uniform(0, 10, size=30)]
    ingest(store, first)
    state = store.versions["toy"]["v1"]
    assert state.capturing and state.layout is None and state.capture.rows == 30
    assert state.window_counts(300, now=store.clock())[0] is None
    ingest(store, [toy_record(x=float(v)) for v in rng.uniform(0, 10, size=30)])
    assert not state.capturing
    assert state.profile.rows == 50 and state.profile.source == "captured from live traffic"
    edges = state.profile.features["x"].edges
    assert 0 <= edges[0] and edges[-1] <= 10
    # The 10 records past the target are binned against the captured reference.
    assert state.cumulative[state.layout.slice(0)].sum() == 10
    assert state.predictions == 60


def test_check_profile_refuses_a_profile_that_does_not_match_the_config() -> None:
    config: MlmonConfig = build_config({"models": [toy_model_data()]})
    model = config.models[0]
    check_profile(toy_profile(), model)
    data = toy_model_data()
    data["features"][0]["type"] = "categorical"
    with pytest.raises(ProfileError, match="feature 'x' is categorical in the config, numeric in the profile"):
        check_profile(toy_profile(), build_config({"models": [data]}).models[0])
    data = toy_model_data()
    data["features"].append({"name": "y", "type": "numeric"})
    with pytest.raises(ProfileError, match="has no feature 'y'; rebuild it"):
        check_profile(toy_profile(), build_config({"models": [data]}).models[0])
