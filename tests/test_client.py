"""mlmon_client against a real exporter over loopback: what is logged arrives exactly once and
both sides count the same; what cannot arrive is counted, never raised; the bounds hold.
"""

from __future__ import annotations

import gc
import os
import subprocess
import sys
import time
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from mlmon_client import Client, Stats
from exporter.http.server import start
from exporter.tooling.localstack import free_port
from tests.conftest import LiveExporter, ROOT, build_config, example_config_data, series
from tests.support.sidecars import HungServer, RecordingServer

COUNTRIES = ["US", "DE", "GB", "FR"]


def fraud_features(i: int) -> dict[str, Any]:
    return {
        "amount": 10.0 + i % 500, "account_age_days": i % 1000, "country": COUNTRIES[i % 4],
        "channel": ["web", "app"][i % 2], "is_international": i % 7 == 0,
    }


def predictions_total(live: LiveExporter, version: str = "v1") -> float:
    return live.value("mlmon_predictions_total", model="fraud", model_version=version) or 0


def settled(stats: Stats) -> int:
    """Records whose fate is known: every logged record ends in exactly one of these."""
    return stats.sent + stats.rejected + stats.invalid + stats.unconfirmed + stats.dropped


@pytest.fixture
def new_client() -> Iterator[Callable[..., Client]]:
    """Factory for clients that flush fast; all are closed afterwards (quickly, whatever state they are in)."""
    clients: list[Client] = []

    def make(url: str, **options: Any) -> Client:
        options.setdefault("flush_interval", 0.05)
        client = Client(url, **options)
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.close(timeout=1)


def test_every_logged_prediction_arrives_exactly_once_and_both_sides_count_it(example_exporter, new_client):
    client = new_client(example_exporter.ingest_url, batch_size=400)
    for i in range(1500):
        client.log(model="fraud", version="v1", features=fraud_features(i), prediction=(i % 100) / 100, id=f"p{i}")
    assert client.flush(timeout=30)
    stats = client.stats()
    assert (stats.sent, stats.queued, settled(stats)) == (1500, 0, 1500)
    assert stats.requests >= 4  # batched, 400 records at most per request
    assert predictions_total(example_exporter) == 1500
    type_errors = series(example_exporter.samples(), "mlmon_feature_type_errors_total", model="fraud")
    assert sum(type_errors.values()) == 0


def test_numpy_columns_and_pandas_frames_are_taken_as_they_are(example_exporter, new_client):
    pd = pytest.importorskip("pandas")
    client = new_client(example_exporter.ingest_url)
    n = 300
    columns = {
        "amount": np.linspace(1, 900, n), "account_age_days": np.arange(n, dtype=np.int64),
        "country": np.array(COUNTRIES * (n // 4)), "channel": np.array(["web", "app", "pos"] * (n // 3)),
        "is_international": np.arange(n) % 5 == 0,
    }
    client.log_batch(model="fraud", version="v1", features=columns, predictions=np.linspace(0, 1, n), ids=np.arange(n))
    frame = pd.DataFrame(columns)
    client.log_batch(model="fraud", version="v2", features=frame, predictions=pd.Series(np.linspace(0, 1, n)))
    matrix = np.column_stack([columns["amount"], columns["account_age_days"]])
    client.log_batch(model="fraud", version="v3", features=matrix, feature_names=["amount", "account_age_days"],
                     predictions=np.zeros(n, dtype=np.float32))
    client.log(model="fraud", version="v4", features=frame.iloc[0].to_dict(), prediction=np.float64(0.5), id=np.int64(7))
    assert client.flush(timeout=30)
    assert client.stats().sent == 3 * n + 1
    assert [predictions_total(example_exporter, v) for v in ("v1", "v2", "v3", "v4")] == [n, n, n, 1]
    type_errors = series(example_exporter.samples(), "mlmon_feature_type_errors_total", model="fraud")
    assert sum(type_errors.values()) == 0


def test_labels_join_the_predictions_they_belong_to(example_exporter, new_client):
    client = new_client(example_exporter.ingest_url)
    for i in range(200):
        client.log(model="fraud", version="v1", features=fraud_features(i), prediction=0.9 if i % 2 else 0.01, id=f"tx-{i}")
    for i in range(150):
        client.label(f"tx-{i}", i % 2)  # right after the prediction: the client sends predictions first
    client.label("never-predicted", 1)
    assert client.flush(timeout=30)
    stats = client.stats()
    assert (stats.labels_joined, stats.labels_unmatched, stats.labels_rejected) == (150, 1, 0)
    assert example_exporter.value("mlmon_label_outcomes_total", model="fraud", outcome="joined") == 150
    assert example_exporter.value("mlmon_labelled_predictions_total", model="fraud", model_version="v1") == 150


def test_segments_reach_the_bias_counters(example_exporter, new_client):
    client = new_client(example_exporter.ingest_url)
    for i in range(120):
        client.log(model="fraud", version="v1", features=fraud_features(i), prediction=0.5,
                   segments={"country": "DE" if i < 80 else "FR", "channel": "web"})
    client.log_batch(model="fraud", version="v1", features=[fraud_features(i) for i in range(30)],
                     predictions=[0.5] * 30, segments={"country": ["JP"] * 30, "channel": ["app"] * 30})
    assert client.flush(timeout=30)
    samples = example_exporter.samples()

    def segment(attribute: str, value: str) -> float:
        found = series(samples, "mlmon_segment_predictions_total", model="fraud", attribute=attribute, segment=value)
        return sum(found.values())

    assert [segment("country", c) for c in ("DE", "FR", "JP")] == [80, 40, 30]
    assert [segment("channel", c) for c in ("web", "app")] == [120, 30]


def test_bad_data_is_counted_as_rejected_and_never_retried(example_exporter, new_client):
    client = new_client(example_exporter.ingest_url)
    for i in range(10):
        client.log(model="no-such-model", version="v1", features={"x": i}, prediction=0.5)
    client.log(model="fraud", version="not a valid version!", features=fraud_features(0), prediction=0.5)
    assert client.flush(timeout=30)
    stats = client.stats()
    assert (stats.rejected, stats.sent, stats.retried, stats.requests) == (11, 0, 0, 2)


def test_a_batch_larger_than_the_exporter_takes_is_split_and_arrives_once(start_exporter, new_client):
    data = example_config_data()
    data["exporter"]["max_records_per_request"] = 100
    live = start_exporter(build_config(data))
    client = new_client(live.ingest_url, batch_size=1000)
    client.log_batch(model="fraud", version="v1", features=[fraud_features(i) for i in range(750)], predictions=[0.1] * 750)
    assert client.flush(timeout=30)
    stats = client.stats()
    assert (stats.sent, stats.rejected, stats.retried) == (750, 0, 0)
    assert predictions_total(live) == 750
    assert live.value("mlmon_limit_hits_total", limit="records_per_request") >= 1


def test_a_bearer_token_is_read_from_its_file_at_every_request(tmp_path: Path, new_client):
    sidecar = RecordingServer()
    token = tmp_path / "token"
    token.write_text("first-token\n")
    try:
        client = new_client(f"{sidecar.url}/v1/predictions", token_file=str(token))  # a pasted route is fine
        client.log(model="fraud", version="v1", features={"amount": 1.0}, prediction=0.5)
        assert client.flush(timeout=10)
        token.write_text("rotated-token")
        client.label("a", 1)
        assert client.flush(timeout=10)
    finally:
        sidecar.close()
    seen = [(r["path"], r["headers"].get("Authorization")) for r in sidecar.requests]
    assert seen == [("/v1/predictions", "Bearer first-token"), ("/v1/labels", "Bearer rotated-token")]


def test_no_token_file_sends_no_authorization_header(new_client, monkeypatch):
    monkeypatch.delenv("MLMON_TOKEN_FILE", raising=False)
    sidecar = RecordingServer()
    try:
        client = new_client(sidecar.url)
        client.log(model="fraud", version="v1", features={"amount": 1.0}, prediction=0.5)
        assert client.flush(timeout=10)
    finally:
        sidecar.close()
    assert "Authorization" not in sidecar.requests[0]["headers"]


def test_close_returns_within_its_deadline_when_the_sidecar_hangs(new_client):
    sidecar = HungServer()
    try:
        client = new_client(sidecar.url, timeout=30)  # a request alone would wait 30 s for its answer
        for i in range(100):
            client.log(model="fraud", version="v1", features=fraud_features(i), prediction=0.5)
        client.flush(timeout=0.3)  # the batch is now in a request that will never be answered
        started = time.monotonic()
        client.close(timeout=0.5)
        took = time.monotonic() - started
        client.log(model="fraud", version="v1", features=fraud_features(0), prediction=0.5)
    finally:
        sidecar.close()
    assert took < 0.5 + 1.0, f"close() took {took:.2f} s with a 0.5 s deadline"
    assert client.stats().dropped_closed >= 1  # the log() after close()


def test_the_queue_bound_holds_and_memory_stays_flat_while_the_sidecar_is_gone(new_client):
    client = new_client(f"http://127.0.0.1:{free_port()}", max_queue=1000, retry_for=60, max_backoff=0.2)
    features = fraud_features(3)

    def log(count: int) -> None:
        for _ in range(count):
            client.log(model="fraud", version="v1", features=features, prediction=0.5)

    tracemalloc.start()
    try:
        log(5_000)
        after_5k = tracemalloc.get_traced_memory()[0]
        log(50_000)
        after_55k = tracemalloc.get_traced_memory()[0]
    finally:
        tracemalloc.stop()
    stats = client.stats()
    assert stats.queued <= 1000
    assert stats.dropped_queue_full >= 54_000
    assert stats.queued + settled(stats) == 55_000
    assert after_55k - after_5k < 256 * 1024, f"grew by {(after_55k - after_5k) / 1024:.0f} KiB"


def test_a_stopped_and_restarted_sidecar_loses_only_what_was_logged_while_it_was_down(new_client):
    config = build_config(example_config_data())
    metrics, ingest = f"127.0.0.1:{free_port()}", f"127.0.0.1:{free_port()}"
    first = LiveExporter(start(config, metrics, ingest))
    client = new_client(first.ingest_url, retry_for=0.5, max_backoff=0.1)

    def log(start_at: int, count: int) -> None:
        for i in range(start_at, start_at + count):
            client.log(model="fraud", version="v1", features=fraud_features(i), prediction=0.5, id=f"r{i}")

    log(0, 100)
    assert client.flush(timeout=30)
    assert predictions_total(first) == 100
    first.stop()
    log(100, 50)
    client.flush(timeout=10)
    assert client.stats().dropped_unreachable == 50
    second = LiveExporter(start(config, metrics, ingest))
    try:
        log(150, 70)
        assert client.flush(timeout=30)
        assert predictions_total(second) == 70
    finally:
        second.stop()
    stats = client.stats()
    assert (stats.sent, stats.dropped, stats.unconfirmed, settled(stats)) == (170, 50, 0, 220)


def test_nothing_the_caller_passes_raises_into_its_code(example_exporter, new_client):
    client = new_client(example_exporter.ingest_url)
    client.log(model="fraud", version="v1", features=None, prediction=0.5)          # not a mapping
    client.log(model="fraud", version=["a list"], features={"amount": 1}, prediction=0.5)  # unhashable version
    client.log_batch(model="fraud", version="v1", features={"amount": [1, 2]}, predictions=[0.5])  # lengths differ
    client.log_batch(model="fraud", version="v1", features=object(), predictions=[0.5])
    client.log_batch(model="fraud", version="v1", features={"amount": [1]}, predictions=42)  # no len()
    client.log(model="fraud", version="v1", features={"amount": object()}, prediction=0.5)  # sent as text
    client.label(object(), object())
    client.log(model="fraud", version="v1", features=fraud_features(1), prediction=0.5)
    assert client.flush(timeout=30)
    stats = client.stats()
    assert stats.invalid == 5
    assert stats.sent == 2  # the odd feature value is a data-quality event on the exporter, not a loss
    assert stats.labels_rejected + stats.labels_unmatched == 1


def test_a_disabled_client_starts_no_thread_and_counts_nothing(example_exporter):
    client = Client(example_exporter.ingest_url, enabled=False)
    client.log(model="fraud", version="v1", features=fraud_features(0), prediction=0.5)
    client.label("x", 1)
    assert client.flush() is True
    client.close()
    assert client.stats() == Stats()
    assert predictions_total(example_exporter) == 0


def test_the_client_imports_and_sends_without_numpy_or_any_site_packages(example_exporter):
    script = f"""
import sys
sys.path.insert(0, {str(ROOT / 'clients' / 'python')!r})
try:
    import numpy
    raise SystemExit("numpy is importable: the isolation failed")
except ImportError:
    pass
from mlmon_client import Client
client = Client({example_exporter.ingest_url!r}, flush_interval=0.05)
for i in range(25):
    client.log(model="fraud", version="v1", features={{"amount": 1.0 + i, "country": "DE"}}, prediction=0.5, id=i)
client.label(3, 1)
assert client.flush(timeout=20), client.stats()
client.close()
print(client.stats().sent, client.stats().labels_joined, sorted(m for m in sys.modules if m.split('.')[0] in ('numpy', 'pandas', 'flask', 'orjson')))
"""
    # -S: no site-packages at all (so no numpy, whatever the venv holds); -E: no PYTHON* variables.
    result = subprocess.run([sys.executable, "-S", "-E", "-c", script], capture_output=True, text=True, timeout=60,
                            env={k: v for k, v in os.environ.items() if not k.startswith("PYTHON")})
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["25", "1", "[]"]
    assert predictions_total(example_exporter) == 25


def test_a_forked_worker_sends_its_own_records_and_never_its_parents(example_exporter):
    script = f"""
import os, sys
from mlmon_client import Client
client = Client({example_exporter.ingest_url!r}, flush_interval=0.05)
log = lambda n: [client.log(model="fraud", version="v1", features={{"amount": 1.0}}, prediction=0.5) for _ in range(n)]
log(4)  # queued in the parent before the fork: the parent's to send
pid = os.fork()
if pid == 0:
    log(5)
    client.flush(timeout=20)
    client.close()
    os._exit(0 if client.stats().sent == 5 else 1)
log(3)
_, status = os.waitpid(pid, 0)
client.flush(timeout=20)
print(os.waitstatus_to_exitcode(status), client.stats().sent)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["0", "7"]
    assert predictions_total(example_exporter) == 12


def test_what_is_queued_at_exit_is_sent_by_the_exit_hook(example_exporter):
    script = f"""
from mlmon_client import Client
client = Client({example_exporter.ingest_url!r}, flush_interval=3600)  # nothing goes before the exit
for i in range(10):
    client.log(model="fraud", version="v1", features={{"amount": 1.0}}, prediction=0.5)
"""
    result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert predictions_total(example_exporter) == 10


def test_the_exit_hook_gives_up_at_its_deadline_when_the_sidecar_hangs():
    sidecar = HungServer()
    script = f"""
from mlmon_client import Client
client = Client({sidecar.url!r}, timeout=60, close_timeout=0.5, flush_interval=3600)
client.log(model="fraud", version="v1", features={{"amount": 1.0}}, prediction=0.5)
"""
    try:
        # A request alone would wait 60 s for its answer; the exit must not.
        result = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=15)
    finally:
        sidecar.close()
    assert result.returncode == 0, result.stderr


def test_a_client_dropped_without_close_stops_its_thread_without_blocking_the_collector():
    client = Client(f"http://127.0.0.1:{free_port()}", close_timeout=0.3, flush_interval=0.05)
    client.log(model="fraud", version="v1", features={"amount": 1.0}, prediction=0.5)
    thread = client._sender.thread
    del client
    gc.collect()
    thread.join(timeout=10)
    assert not thread.is_alive()
