"""State snapshots: what the exporter knew before a restart is what it knows after it.

In-process tests compare the whole /metrics rendering of a restored store with the original's at
the same clock, so a counter the snapshot forgot fails them whatever its name. Process tests
SIGTERM and SIGKILL a real `mlmon serve` with a state_dir and restart it on the same folder.
"""

from __future__ import annotations

import copy
import json
import os
import random
import signal
import subprocess
import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from conftest import EXAMPLES, build_config, example_config_data, parse_metrics, series
from exporter import catalog
from exporter.config.model import MlmonConfig
from exporter.http.collector import collect
from exporter.http.exporter_stats import ExporterStats
from exporter.http.server import load_profiles
from exporter.ingest.decode import decode_body
from exporter.state import snapshot
from exporter.state.labels import LabelRecord, join_labels
from exporter.state.store import StateStore
from exporter.tooling import synthetic
from tests.test_cli import MLMON, ROOT, free_port, wait_for_health


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def example_store(clock: Clock, data: dict[str, Any] | None = None) -> tuple[StateStore, ExporterStats]:
    config = build_config(data or example_config_data())
    store = StateStore(config, load_profiles(config), clock=clock)
    return store, ExporterStats([m.name for m in config.models])


def feed(store: StateStore, stats: ExporterStats, records: list[dict[str, Any]]) -> None:
    decoded = decode_body(json.dumps(records).encode(), "application/json", store.config, 100_000)
    for batch in decoded.batches:
        store.ingest(batch)
    for rejection in decoded.rejections:
        stats.reject(rejection.model, rejection.reason)


def label(store: StateStore, ids: list[str], labels: list[Any]) -> dict[str, int]:
    records = [LabelRecord(i, y, None) for i, y in zip(ids, labels)]
    return join_labels(store.labels, store.quality_of, records, store.clock()).to_json()


def rendered(store: StateStore, stats: ExporterStats) -> str:
    return collect(store, stats, store.clock()).render(False)


def traffic(store: StateStore, stats: ExporterStats, clock: Clock, seed: int = 1) -> None:
    """Both example models, two versions, drift, faults, inline and pending labels, over 20 minutes."""
    rng = np.random.default_rng(seed)
    for minute in range(20):
        clock.now += 60
        drift = 0.0 if minute < 10 else 1.0
        feed(store, stats, synthetic.records("fraud", "v1", 200, rng, drift, faults=0.05, id_prefix=f"m{minute}-"))
        feed(store, stats, synthetic.records("fraud", "v2", 50, rng, id_prefix=f"n{minute}-"))
        feed(store, stats, synthetic.records("delivery_time", "v1", 100, rng, drift, with_labels=minute % 2 == 0,
                                             id_prefix=f"d{minute}-"))
        if minute % 3 == 0:
            label(store, [f"m{minute}-fraud-{i}" for i in range(100)], [i % 2 for i in range(100)])


@pytest.fixture
def fed(tmp_path: Path) -> tuple[Clock, StateStore, ExporterStats, Path]:
    clock = Clock()
    store, stats = example_store(clock)
    traffic(store, stats, clock)
    path = tmp_path / snapshot.FILE_NAME
    snapshot.save(path, store, {"stats": stats})
    return clock, store, stats, path


def test_a_restored_store_renders_exactly_what_the_original_rendered(fed) -> None:
    clock, store, stats, path = fed
    restored, restored_stats = example_store(clock)
    report = snapshot.restore(path, restored, {"stats": restored_stats})
    assert report.result == "restored" and set(report.models.values()) == {"restored"}
    assert rendered(restored, restored_stats) == rendered(store, stats)


def test_downtime_expires_window_slots_exactly_as_if_the_process_had_run(fed) -> None:
    clock, store, stats, path = fed
    clock.now += 35 * 60  # 35 minutes down: the 5m window is empty, the 1h window lost its first slots
    restored, restored_stats = example_store(clock)
    snapshot.restore(path, restored, {"stats": restored_stats})
    assert rendered(restored, restored_stats) == rendered(store, stats)
    rng = np.random.default_rng(9)
    more = synthetic.records("fraud", "v1", 300, rng, drift=1.0, id_prefix="after-")
    feed(store, stats, copy.deepcopy(more))
    feed(restored, restored_stats, more)
    assert rendered(restored, restored_stats) == rendered(store, stats)


def test_pending_predictions_still_join_their_labels_after_a_restore(fed) -> None:
    clock, store, stats, path = fed
    restored, restored_stats = example_store(clock)
    snapshot.restore(path, restored, {"stats": restored_stats})
    ids = [f"m19-fraud-{i}" for i in range(200)]
    assert label(restored, ids, [1] * 200) == label(store, ids, [1] * 200)
    again = label(restored, ids, [1] * 200)
    assert again == label(store, ids, [1] * 200) and again["duplicate"] == 200  # joined ids are remembered too
    assert rendered(restored, restored_stats) == rendered(store, stats)


def test_a_model_whose_config_changed_starts_fresh_and_the_others_are_restored(fed) -> None:
    clock, _, _, path = fed
    data = example_config_data()
    data["models"][1]["drift"] = {**data["models"][1].get("drift", {}), "windows": ["10m"]}
    restored, restored_stats = example_store(clock, data)
    report = snapshot.restore(path, restored, {"stats": restored_stats})
    assert report.models == {"fraud": "restored", "delivery_time": "config_mismatch"}
    assert list(restored.versions["fraud"]) == ["v1", "v2"]
    assert not restored.versions["delivery_time"]
    pending = restored.labels.counts()[0]
    assert pending.get("delivery_time", 0) == 0 and pending["fraud"] > 0


def test_a_new_label_store_size_in_the_config_wins_over_the_snapshot(fed) -> None:
    clock, _, _, path = fed
    data = example_config_data()
    data["exporter"]["max_pending_predictions"] = 1234
    restored, restored_stats = example_store(clock, data)
    snapshot.restore(path, restored, {"stats": restored_stats})
    assert restored.labels.max_entries == 1234


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "not a snapshot"])
def test_a_damaged_snapshot_is_set_aside_and_the_exporter_starts_fresh(fed, damage: str) -> None:
    clock, _, _, path = fed
    data = path.read_bytes()
    if damage == "truncated":
        path.write_bytes(data[: len(data) // 2])
    elif damage == "garbage":
        path.write_bytes(os.urandom(4096))
    elif damage == "empty":
        path.write_bytes(b"")
    else:
        np.savez(open(path, "wb"), tree=np.frombuffer(json.dumps({"format": "other", "version": 9}).encode(), np.uint8))
    restored, restored_stats = example_store(clock)
    report = snapshot.restore(path, restored, {"stats": restored_stats})
    assert report.result in ("unreadable", "format_mismatch")
    assert not path.exists() and list(path.parent.glob(f"{path.name}.rejected-*"))
    assert all(not versions for versions in restored.versions.values())


def test_a_capture_in_progress_and_a_captured_reference_survive(tmp_path: Path) -> None:
    clock = Clock()
    data = example_config_data()
    data["models"][0]["reference"] = {"capture": 500}
    store, stats = example_store(clock, data)
    rng = np.random.default_rng(3)
    feed(store, stats, synthetic.records("fraud", "v1", 800, rng, id_prefix="a-"))  # v1 completes its capture
    feed(store, stats, synthetic.records("fraud", "v2", 300, rng, id_prefix="b-"))  # v2 is still capturing
    path = tmp_path / snapshot.FILE_NAME
    snapshot.save(path, store, {"stats": stats})
    restored, restored_stats = example_store(clock, data)
    snapshot.restore(path, restored, {"stats": restored_stats})
    v1, v2 = restored.versions["fraud"]["v1"], restored.versions["fraud"]["v2"]
    assert v1.profile.content_hash == store.versions["fraud"]["v1"].profile.content_hash and not v1.capturing
    assert v2.capturing and v2.capture.rows == 300
    more = synthetic.records("fraud", "v2", 400, rng, id_prefix="c-")
    feed(store, stats, copy.deepcopy(more))
    feed(restored, restored_stats, more)
    assert restored.versions["fraud"]["v2"].profile.content_hash == store.versions["fraud"]["v2"].profile.content_hash
    assert rendered(restored, restored_stats) == rendered(store, stats)


def test_the_write_is_atomic_and_leaves_no_temporary_file(fed) -> None:
    _, store, stats, path = fed
    info = snapshot.save(path, store, {"stats": stats})
    assert info.bytes == len(path.read_bytes())  # what was written is all there (the save time may change its length)
    assert snapshot.read_snapshot(path)[0]["format"] == snapshot.FORMAT
    assert [p.name for p in path.parent.iterdir()] == [path.name]


# ------------------------------------------------------------------ a real process, restarted


def serve_config(tmp_path: Path, state_dir: Path | None, interval: str = "30s") -> tuple[Path, int, int]:
    data = example_config_data()
    metrics_port, ingest_port = free_port(), free_port()
    data["exporter"].update(metrics_listen=f"127.0.0.1:{metrics_port}", ingest_listen=f"127.0.0.1:{ingest_port}",
                            snapshot_interval=interval)
    if state_dir is not None:
        data["exporter"]["state_dir"] = str(state_dir)
    for model in data["models"]:
        model["reference"] = str(EXAMPLES / model["reference"])
    path = tmp_path / f"mlmon-{metrics_port}.yaml"
    path.write_text(yaml.safe_dump(data))
    return path, metrics_port, ingest_port


class Served:
    def __init__(self, config: Path, metrics_port: int, ingest_port: int) -> None:
        self.config, self.metrics_port, self.ingest_port = config, metrics_port, ingest_port
        self.process: subprocess.Popen[str] | None = None

    def start(self) -> Served:
        self.process = subprocess.Popen([*MLMON, "serve", "-c", str(self.config)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
        wait_for_health(f"http://127.0.0.1:{self.metrics_port}/healthz", self.process)
        return self

    def stop(self, sig: int = signal.SIGTERM) -> str:
        assert self.process is not None
        self.process.send_signal(sig)
        self.process.wait(timeout=30)
        return self.process.stderr.read() if self.process.stderr else ""

    def post(self, path: str, body: Any) -> dict[str, Any]:
        answer = requests.post(f"http://127.0.0.1:{self.ingest_port}{path}", json=body, timeout=30)
        assert answer.status_code == 200, answer.text
        return answer.json()

    def samples(self) -> dict:
        return parse_metrics(requests.get(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=30).text)


FAMILIES = ("mlmon_predictions_total", "mlmon_feature_bin_total", "mlmon_prediction_bin_total",
            "mlmon_feature_drift_score", "mlmon_window_samples", "mlmon_label_outcomes_total")


def comparable(samples: dict) -> dict:
    return {key: value for key, value in samples.items() if key[0] in FAMILIES}


def test_sigterm_and_restart_continue_where_the_exporter_left_off(tmp_path: Path) -> None:
    restarted = Served(*serve_config(tmp_path, tmp_path / "state")).start()
    uninterrupted = Served(*serve_config(tmp_path, None)).start()
    try:
        rng = np.random.default_rng(11)
        batches = [synthetic.records("fraud", "v1", 300, rng, drift=0.5 * (i > 2), id_prefix=f"b{i}-") for i in range(6)]
        for batch in batches[:3]:
            restarted.post("/v1/predictions", batch)
            uninterrupted.post("/v1/predictions", batch)
        log = restarted.stop(signal.SIGTERM)
        assert "Traceback" not in log
        restarted.start()
        for batch in batches[3:]:
            restarted.post("/v1/predictions", batch)
            uninterrupted.post("/v1/predictions", batch)
        labels = [{"id": r["id"], "label": 1} for batch in batches for r in batch[:50]]
        assert restarted.post("/v1/labels", labels)["joined"] == len(labels)  # predictions from before the restart too
        uninterrupted.post("/v1/labels", labels)
        for attempt in range(3):  # both scraped in the same window slot (a slot boundary may fall between them)
            if comparable(restarted.samples()) == comparable(uninterrupted.samples()):
                break
        assert comparable(restarted.samples()) == comparable(uninterrupted.samples())
        assert series(restarted.samples(), "mlmon_state_restores_total", result="restored") == {
            frozenset({("result", "restored")}): 1.0
        }
    finally:
        for served in (restarted, uninterrupted):
            if served.process is not None and served.process.poll() is None:
                served.stop(signal.SIGKILL)


def test_sigkill_mid_ingest_restores_the_last_completed_snapshot_without_double_counting(tmp_path: Path) -> None:
    state_dir = tmp_path / "state"
    served = Served(*serve_config(tmp_path, state_dir, interval="1s")).start()
    sent = 0
    stop = threading.Event()

    def post_forever() -> None:
        nonlocal sent
        rng = np.random.default_rng(5)
        while not stop.is_set():
            batch = synthetic.records("fraud", "v1", 200, rng, id_prefix=f"k{sent}-")
            try:
                served.post("/v1/predictions", batch)
            except (requests.RequestException, AssertionError):
                return
            sent += len(batch)

    poster = threading.Thread(target=post_forever)
    poster.start()
    try:
        time.sleep(2.5 + random.Random(7).random() * 2)  # at least one periodic snapshot, then a kill at some moment
        served.stop(signal.SIGKILL)
    finally:
        stop.set()
        poster.join(timeout=30)
    saved, _ = snapshot.read_snapshot(state_dir / snapshot.FILE_NAME)
    in_file = sum(node["fields"]["predictions"] for _, node in saved["models"]["fraud"]["versions"])
    assert 0 < in_file <= sent
    served.start()
    try:
        after = series(served.samples(), "mlmon_predictions_total", model="fraud", model_version="v1")
        assert list(after.values()) == [float(in_file)]
    finally:
        served.stop()


def test_the_snapshot_metrics_say_when_state_was_last_saved(tmp_path: Path) -> None:
    served = Served(*serve_config(tmp_path, tmp_path / "state", interval="1s")).start()
    try:
        served.post("/v1/predictions", synthetic.records("fraud", "v1", 10, np.random.default_rng(1)))
        for _ in range(50):
            samples = served.samples()
            if list(series(samples, "mlmon_state_snapshots_total", result="ok").values()) not in ([], [0.0]):
                break
            time.sleep(0.1)
        assert list(series(samples, "mlmon_state_snapshots_total", result="ok").values())[0] >= 1
        assert list(series(samples, "mlmon_state_last_snapshot_timestamp_seconds").values())[0] > time.time() - 60
        assert list(series(samples, "mlmon_state_restores_total", result="absent").values()) == [1.0]
        text = requests.get(f"http://127.0.0.1:{served.metrics_port}/metrics", timeout=30).text
        for metric in (m for m in catalog.CATALOG if m.issue == "state"):  # every state family, with its HELP
            assert f"# HELP {metric.name} {metric.help}\n" in text
    finally:
        served.stop()


def test_without_a_state_dir_nothing_is_written(tmp_path: Path) -> None:
    config: MlmonConfig = build_config(example_config_data())
    assert config.state_dir() is None


def test_serve_state_dir_flag_overrides_the_config(tmp_path: Path) -> None:
    config, metrics_port, _ = serve_config(tmp_path, None)
    state_dir = tmp_path / "from-flag"
    process = subprocess.Popen([*MLMON, "serve", "-c", str(config), "--state-dir", str(state_dir)], cwd=ROOT,
                               stderr=subprocess.PIPE, text=True)
    try:
        wait_for_health(f"http://127.0.0.1:{metrics_port}/healthz", process)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    finally:
        if process.poll() is None:
            process.kill()
    assert (state_dir / snapshot.FILE_NAME).exists()  # the final snapshot at SIGTERM
