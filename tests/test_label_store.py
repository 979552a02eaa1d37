"""The bounded prediction store: capacity and TTL evictions, unknown ids and duplicates, all counted."""

from __future__ import annotations

import tracemalloc

from exporter.state.label_store import LabelStore, id_key


def put(store: LabelStore, ids: list[str], now: float, model: str = "fraud") -> int:
    return store.put(model, "v1", ids, [0.5] * len(ids), [0] * len(ids), [now] * len(ids), now)


def test_evicts_the_oldest_beyond_capacity_and_counts_each_eviction() -> None:
    store = LabelStore(max_entries=3, ttl=3600)
    put(store, ["a", "b", "c", "d", "e"], now=0.0)
    assert len(store) == 3
    assert store.evicted[("fraud", "capacity")] == 2
    assert store.take("a", now=1.0) == "unknown_id"
    assert store.take("e", now=1.0).model == "fraud"


def test_expires_predictions_older_than_the_ttl() -> None:
    store = LabelStore(max_entries=100, ttl=60)
    put(store, ["old"], now=0.0)
    put(store, ["new"], now=30.0)
    assert store.take("old", now=61.0) == "unknown_id"
    assert store.evicted[("fraud", "expired")] == 1
    assert store.take("new", now=61.0).prediction == 0.5


def test_answers_duplicate_for_a_second_label_of_the_same_id() -> None:
    store = LabelStore(max_entries=10, ttl=60)
    put(store, ["a"], now=0.0)
    assert store.take("a", now=1.0).version == "v1"
    assert store.take("a", now=2.0) == "duplicate"
    assert store.take("never-seen", now=2.0) == "unknown_id"


def test_forgets_joined_ids_after_the_ttl_so_the_tombstones_stay_bounded() -> None:
    store = LabelStore(max_entries=10, ttl=60)
    put(store, ["a"], now=0.0)
    store.take("a", now=1.0)
    assert store.take("a", now=100.0) == "unknown_id"
    assert len(store.joined) + len(store.joined_older) == 0


def test_replaces_a_pending_prediction_with_the_same_id_and_counts_it() -> None:
    store = LabelStore(max_entries=10, ttl=60)
    put(store, ["a", "b"], now=0.0)
    assert store.put("fraud", "v2", ["a"], [0.9], [0], [5.0], now=5.0) == 1
    assert store.duplicate_predictions["fraud"] == 1
    assert len(store) == 2 and store.pending_by_model["fraud"] == 2
    taken = store.take("a", now=6.0)
    assert (taken.version, taken.prediction) == ("v2", 0.9)


def test_peek_leaves_the_prediction_in_place() -> None:
    store = LabelStore(max_entries=10, ttl=60)
    put(store, ["a"], now=0.0)
    assert store.peek("a", now=1.0).model == "fraud"
    assert store.take("a", now=1.0).model == "fraud"


def test_integer_and_string_ids_are_the_same_id_and_other_types_are_not_ids() -> None:
    assert id_key(42) == id_key("42") == "42"
    assert id_key(True) is None and id_key(1.5) is None and id_key(None) is None


def test_counts_pending_per_model_through_puts_takes_and_evictions() -> None:
    store = LabelStore(max_entries=4, ttl=60, models=["fraud", "delivery_time"])  # a share of 2 each
    put(store, ["f1", "f2", "f3"], now=0.0, model="fraud")
    put(store, ["d1", "d2"], now=1.0, model="delivery_time")
    store.take("f3", now=2.0)
    pending, evicted, _ = store.counts()
    assert pending == {"fraud": 1, "delivery_time": 2}
    assert evicted == {("fraud", "capacity"): 1}


def test_memory_stays_bounded_under_sustained_traffic() -> None:
    store = LabelStore(max_entries=2_000, ttl=10**9)
    tracemalloc.start()
    for batch in range(10):  # warm up to the bound, then keep pushing 5x more through it
        put(store, [f"id-{batch}-{i}" for i in range(2_000)], now=float(batch))
    settled = tracemalloc.get_traced_memory()[0]
    for batch in range(10, 50):
        put(store, [f"id-{batch}-{i}" for i in range(2_000)], now=float(batch))
    grown = tracemalloc.get_traced_memory()[0] - settled
    tracemalloc.stop()
    assert len(store) == 2_000
    assert store.evicted[("fraud", "capacity")] == 98_000
    assert grown < 200_000  # bytes: no per-prediction growth beyond the bound (2,000 entries are ~1 MB)


def test_one_models_flood_of_ids_never_evicts_another_models_predictions() -> None:
    store = LabelStore(max_entries=10, ttl=60, models=["fraud", "delivery_time"])
    put(store, ["d1", "d2"], now=0.0, model="delivery_time")
    put(store, [f"f{i}" for i in range(1_000)], now=1.0, model="fraud")
    pending, evicted, _ = store.counts()
    assert pending == {"fraud": 5, "delivery_time": 2}
    assert evicted == {("fraud", "capacity"): 995}
    assert store.take("d1", now=2.0).model == "delivery_time"


def test_an_id_put_again_for_another_model_moves_to_that_model() -> None:
    store = LabelStore(max_entries=10, ttl=60, models=["fraud", "delivery_time"])
    put(store, ["a"], now=0.0, model="fraud")
    assert put(store, ["a"], now=1.0, model="delivery_time") == 1
    assert store.counts()[0] == {"fraud": 0, "delivery_time": 1}
