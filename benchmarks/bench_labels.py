"""Label ingest: columnar labels joined per second, in memory and through Redis, beside the prediction path.

Per round, one columnar body of 50,000 fraud predictions with fresh ids goes through what
`POST /v1/predictions` runs after reading the body (decode, prepare, admit, apply: the prediction
path, including putting the ids into the label store); then one columnar body of their 50,000 labels
goes through what `POST /v1/labels` runs (decode_label_columns + join_columns: peek, clean, take,
score). Labels/s per core is labels divided by this process's CPU time (`time.process_time()`);
wall-clock rates are printed too. Through Redis, the store is a real `redis-server` on a free
loopback port (skipped when it is not installed); its own CPU is another process, so the per-core
figure is the exporter's side and the wall-clock figure includes waiting for Redis.

Targets (issue 11): >= 1M labels/s/core in memory, >= 200k labels/s/core through Redis.

    python -m benchmarks labels
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import numpy as np

from exporter.config.model import load_config, parse_config
from exporter.http.labels_http import decode_label_columns
from exporter.http.server import load_profiles
from exporter.ingest.decode import decode_body
from exporter.state.labels import join_columns
from exporter.state.store import StateStore
from exporter.tooling import synthetic

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mlmon.yaml"
ROWS = 50_000
ROUNDS = 5


def bodies(round_: int, rng: np.random.Generator) -> tuple[bytes, bytes, int]:
    data = synthetic.columns("fraud", ROWS, rng)
    ids = [f"r{round_}-{i}" for i in range(ROWS)]
    predictions = {"model": "fraud", "model_version": "v1", "ids": ids, "features": data["features"],
                   "predictions": data["predictions"]}
    labels = {"model": "fraud", "ids": ids, "labels": (rng.random(ROWS) < 0.1).astype(int).tolist()}
    features = len(data["features"])
    return json.dumps(predictions).encode(), json.dumps(labels).encode(), features


def run(store: StateStore, rounds: int) -> dict[str, float]:
    """CPU and wall seconds of the prediction and label paths over `rounds` rounds (the first is a warm-up)."""
    rng = np.random.default_rng(7)
    totals = {"pred_cpu": 0.0, "pred_wall": 0.0, "label_cpu": 0.0, "label_wall": 0.0, "joined": 0}
    models = frozenset(m.name for m in store.config.models)
    for round_ in range(rounds + 1):
        predictions, labels, _ = bodies(round_, rng)
        cpu, wall = time.process_time(), time.perf_counter()
        decoded = decode_body(predictions, "application/json", store.config, 1_000_000)
        admitted, _ = store.admit(store.prepare(decoded.batches))
        store.apply(admitted)
        pred_cpu, pred_wall = time.process_time() - cpu, time.perf_counter() - wall
        cpu, wall = time.process_time(), time.perf_counter()
        ids, values, named = decode_label_columns(labels, "application/json", models, 1_000_000)
        result = join_columns(store.labels, store.quality_for_label, ids, values, named, store.clock())
        label_cpu, label_wall = time.process_time() - cpu, time.perf_counter() - wall
        if round_ == 0:
            continue
        totals["pred_cpu"] += pred_cpu
        totals["pred_wall"] += pred_wall
        totals["label_cpu"] += label_cpu
        totals["label_wall"] += label_wall
        totals["joined"] += result.outcomes["joined"]
    return totals


def config(label_store: dict[str, Any] | None) -> Any:
    base = load_config(EXAMPLE)
    if label_store is None:
        return base
    data = base.model_dump(mode="json", exclude_none=True)
    data["exporter"]["label_store"] = label_store
    return parse_config(data, base_dir=EXAMPLE.parent, source="bench config")


def redis_server() -> tuple[subprocess.Popen[bytes], str] | None:
    if shutil.which("redis-server") is None:
        return None
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    process = subprocess.Popen(["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    for _ in range(100):
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return process, f"redis://127.0.0.1:{port}/0"
        except OSError:
            time.sleep(0.05)
    process.kill()
    return None


def report(name: str, totals: dict[str, float], rounds: int) -> list[tuple[str, str, str]]:
    n = ROWS * rounds
    pred_core, label_core = n / totals["pred_cpu"], n / totals["label_cpu"]
    pred_wall, label_wall = n / totals["pred_wall"], n / totals["label_wall"]
    print(f"{name}: labels {label_core / 1e3:,.0f}k/s/core ({label_wall / 1e3:,.0f}k/s wall), predictions "
          f"{pred_core / 1e3:,.0f}k/s/core ({pred_wall / 1e3:,.0f}k/s wall); joined {totals['joined']:,} of {n:,}")
    return [
        (f"labels joined, columnar, {name}", f"{label_core / 1e6:.2f}M/s/core, {label_wall / 1e6:.2f}M/s wall",
         f"{label_core / pred_core:.1f}x the prediction path"),
        (f"predictions (with ids), columnar, {name}", f"{pred_core / 1e6:.2f}M/s/core, {pred_wall / 1e6:.2f}M/s wall",
         "baseline"),
    ]


def main() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    memory = StateStore(config(None), load_profiles(config(None)))
    rows += report("in memory", run(memory, ROUNDS), ROUNDS)
    server = redis_server()
    if server is None:
        print("through Redis: skipped (redis-server is not installed)")
        return rows
    process, url = server
    try:
        shared = config({"backend": "redis", "url": url, "timeout": 5.0})
        rows += report("through Redis", run(StateStore(shared, load_profiles(shared)), ROUNDS), ROUNDS)
    finally:
        process.kill()
        process.wait()
    return rows


if __name__ == "__main__":
    main()
