"""The Redis label store against a real redis-server: bounds, expiry counting, replicas, outages, restarts."""

from __future__ import annotations

import threading
import time
from typing import Any

import numpy as np
import pytest

from exporter.state.label_store import StoreUnavailable
from exporter.state.redis_store import RedisLabelStore
from exporter.state import snapshot
from exporter.tooling import synthetic
from tests.conftest import build_config, example_config_data
from tests.support.redis_server import RedisServer


@pytest.fixture
def redis_server():
    server = RedisServer.start()
    yield server
    server.stop()


def store(server: RedisServer, max_entries: int = 100, ttl: float = 60, models=("a", "b"), **kwargs: Any) -> RedisLabelStore:
    return RedisLabelStore(server.url, max_entries, ttl, models, retry_interval=0.2, **kwargs)


def put(s: RedisLabelStore, model: str, ids: list[str], now: float, version: str = "v1") -> int:
    n = len(ids)
    return s.put(model, version, ids, [0.5] * n, [0] * n, [now] * n, now)


# ----------------------------------------------------------------------------------- unit: bounds
def test_a_taken_prediction_comes_back_once_and_a_second_label_is_a_duplicate(redis_server) -> None:
    s = store(redis_server, clock=lambda: 14.0)
    s.put("a", "v1", ["x", "y"], [0.25, "cat"], [3, 4], [10.0, 11.0], now=12.0)
    assert s.peek_many(["x", "y", "z"], 13.0) == [("a", "v1", 0.25, 3, 10.0, 12.0), ("a", "v1", "cat", 4, 11.0, 12.0), None]
    assert s.take_many(["x", "x", "z"], 13.0) == [("a", "v1", 0.25, 3, 10.0, 12.0), "a", None]
    assert s.peek_many(["x"], 14.0) == ["a"]  # joined: a duplicate, attributed to its model
    assert s.counts()[0] == {"a": 1, "b": 0}


def test_capacity_evicts_a_models_own_oldest_and_counts_them(redis_server) -> None:
    s = store(redis_server, max_entries=4, clock=lambda: 3.0)  # a share of 2 per model
    put(s, "b", ["b1"], 1.0)
    put(s, "a", ["a1", "a2"], 1.0)
    put(s, "a", ["a3"], 2.0)
    pending, evicted, _ = s.counts()
    assert pending == {"a": 2, "b": 1}
    assert evicted[("a", "capacity")] == 1
    assert s.peek_many(["a1", "a2", "a3", "b1"], 3.0)[0] is None


def test_expired_predictions_are_counted_once_across_replicas(redis_server) -> None:
    first, second = (store(redis_server, ttl=60, clock=lambda: 1062.0) for _ in range(2))
    put(first, "a", [f"id{i}" for i in range(5)], now=1000.0)
    put(first, "a", ["late"], now=1050.0)
    assert second.peek_many(["id0", "late"], 1059.0)[0] is not None  # still within the TTL
    second.sweep(now=1061.0)  # a replica's sweep removes and counts them
    first.sweep(now=1062.0)   # the other finds nothing left to count
    total = first.counts()[1].get(("a", "expired"), 0) + second.counts()[1].get(("a", "expired"), 0)
    assert total == 5
    assert second.take_many(["id0", "late"], 1062.0) == [None, ("a", "v1", 0.5, 0, 1050.0, 1050.0)]


def test_a_put_sweeps_its_models_expired_ids_and_counts_them(redis_server) -> None:
    s = store(redis_server, ttl=60, clock=lambda: 1100.0)
    put(s, "a", ["old1", "old2"], now=1_700_000_000.0)
    put(s, "a", ["new"], now=1_700_000_061.0)  # the same script call removes and counts the expired two
    assert s.evicted[("a", "expired")] == 2
    assert s.peek_many(["old1", "new"], 1_700_000_061.0)[0] is None


def test_a_prediction_is_joined_by_exactly_one_of_many_concurrent_replicas(redis_server) -> None:
    ids = [f"c{i}" for i in range(2000)]
    put(store(redis_server, max_entries=10_000), "a", ids, now=1.0)
    replicas = [store(redis_server) for _ in range(4)]
    taken: list[int] = []

    def take(replica: RedisLabelStore) -> None:
        taken.append(sum(isinstance(e, tuple) for e in replica.take_many(ids, 2.0)))

    threads = [threading.Thread(target=take, args=(r,)) for r in replicas]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(taken) == len(ids)


def test_an_outage_is_counted_never_raised_into_ingest_and_the_store_reconnects(redis_server) -> None:
    s = store(redis_server, timeout=0.2)
    put(s, "a", ["before"], 1.0)
    redis_server.kill()
    started = time.monotonic()
    for _ in range(20):
        put(s, "a", ["lost"], 2.0)  # dropped and counted; only the first waits for a timeout
    assert time.monotonic() - started < 2.0
    assert s.counts()[1][("a", "unavailable")] == 20
    with pytest.raises(StoreUnavailable):
        s.peek_many(["before"], 3.0)
    redis_server.restart()  # empty: nothing persisted (--save "")
    time.sleep(0.3)  # the retry interval
    put(s, "a", ["after"], 4.0)
    assert isinstance(s.take_many(["after"], 5.0)[0], tuple)


# ------------------------------------------------------------------------------- live exporters
def redis_config(server: RedisServer) -> Any:
    data = example_config_data()
    data["exporter"]["label_store"] = {"backend": "redis", "url": server.url, "timeout": 0.2, "retry_interval": 0.5}
    return build_config(data)


def fraud(n: int, prefix: str) -> tuple[list[dict[str, Any]], list[int]]:
    rng = np.random.default_rng(len(prefix) + n)
    records = synthetic.records("fraud", "v1", n, rng, id_prefix=prefix)
    labels = [int(v) for v in rng.random(n) < 0.3]
    return records, labels


def post_labels(live, ids: list[str], labels: list[Any]) -> dict[str, int]:
    response = live.http.post(f"{live.ingest_url}/v1/labels", json={"ids": ids, "labels": labels}, timeout=10)
    assert response.status_code == 200, response.text
    return response.json()


def confusion(live) -> dict[str, float]:
    return {o: live.value("mlmon_confusion_total", model="fraud", model_version="v1", outcome=o) or 0.0
            for o in ("tp", "fp", "tn", "fn")}


def expected_confusion(records: list[dict[str, Any]], labels: list[int], threshold: float) -> dict[str, float]:
    out = dict.fromkeys(("tp", "fp", "tn", "fn"), 0.0)
    for record, label in zip(records, labels):
        positive = record["prediction"] >= threshold
        out[("t" if positive == bool(label) else "f") + ("p" if positive else "n")] += 1
    return out


def test_a_prediction_ingested_on_one_replica_joins_through_another(redis_server, start_exporter) -> None:
    config = redis_config(redis_server)
    a, b = start_exporter(config), start_exporter(config)
    records, labels = fraud(400, "fleet-")
    a.post_ok(records[:200])
    b.post_ok(records[200:])
    ids = [r["id"] for r in records]
    # Labels through the "wrong" replica for every prediction, in two requests that each cross over.
    assert post_labels(b, ids[:200], labels[:200])["joined"] == 200
    assert post_labels(a, ids[200:], labels[200:])["joined"] == 200
    assert post_labels(a, ids[:10], labels[:10]) == {"joined": 0, "unknown_id": 0, "duplicate": 10, "invalid": 0}
    fleet = {o: confusion(a)[o] + confusion(b)[o] for o in ("tp", "fp", "tn", "fn")}
    threshold = config.models[0].quality.decision_threshold
    assert fleet == expected_confusion(records, labels, threshold)
    assert a.value("mlmon_label_store_pending", model="fraud") == 0


def test_a_redis_outage_keeps_ingest_answering_and_counts_labels_unjoined_until_it_returns(
        redis_server, start_exporter) -> None:
    config = redis_config(redis_server)
    a, b = start_exporter(config), start_exporter(config)  # b never sees a prediction: its labels create v1 there
    records, labels = fraud(100, "outage-")
    a.post_ok(records[:50])
    redis_server.kill()
    started = time.monotonic()
    assert a.post(records[50:]).status_code == 200  # ingest never blocks on the label store
    assert time.monotonic() - started < 2.0
    answer = post_labels(b, [r["id"] for r in records[:50]], labels[:50])
    assert answer["joined"] == 0 and answer["unavailable"] == 50
    assert b.value("mlmon_label_outcomes_total", model="__unknown__", outcome="unavailable") == 50
    assert a.value("mlmon_label_store_evictions_total", model="fraud", reason="unavailable") == 50
    redis_server.restart()  # an empty Redis: what was pending is gone, new predictions join again
    time.sleep(0.6)
    a.post_ok(records[50:])
    assert post_labels(b, [r["id"] for r in records[50:]], labels[50:])["joined"] == 50
    assert b.value("mlmon_labelled_predictions_total", model="fraud", model_version="v1") == 50


def test_pending_predictions_in_redis_survive_an_exporter_restart(redis_server, start_exporter, tmp_path) -> None:
    data = example_config_data()
    data["exporter"]["label_store"] = {"backend": "redis", "url": redis_server.url}
    data["exporter"]["state_dir"] = str(tmp_path)
    config = build_config(data)
    first = start_exporter(config)
    records, labels = fraud(50, "restart-")
    first.post_ok(records)
    first.stop()  # writes its final snapshot: without the Redis store, which lives on in Redis
    tree, _ = snapshot.read_snapshot(tmp_path / snapshot.FILE_NAME)
    assert tree["labels"] is None  # the Redis store is never snapshotted: it lives in Redis
    second = start_exporter(config)
    assert post_labels(second, [r["id"] for r in records], labels)["joined"] == 50
    assert second.value("mlmon_labelled_predictions_total", model="fraud", model_version="v1") == 50
