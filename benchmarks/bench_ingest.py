"""Ingest throughput end to end over HTTP: mlmon's real server vs the naive prometheus_client path.

What is measured, and how:

* The server under test is the real one: ``exporter.http.server.start`` (uvicorn + the Flask
  ingest app in its worker pool + decode + numpy binning into the state) on a free loopback port
  of this process. The baseline is what a user would write by hand: a small Flask app on
  werkzeug's threaded server (loopback), parsing with stdlib ``json`` and calling
  ``Histogram.labels(model, version, feature).observe(v)`` per numeric value (and
  ``Counter.labels(model, version, feature, value).inc()`` per categorical value, since a
  histogram cannot observe a string).
* The client is a separate process (``benchmarks.http_client``) that re-sends one pre-encoded
  body over a keep-alive connection. It runs on the other core, so it does not eat into the
  server's CPU time, and the server process does no client work.
* Two rates are reported per shape. ``wall``: feature values per second of wall time, one client
  connection, requests back to back. ``per core``: feature values per CPU-second consumed by the
  server process (``time.process_time`` of this process, all threads, measured around the run;
  the main thread only waits on the client meanwhile). With the GIL, one exporter process does
  its ingest work on about one core, so the two numbers are close; per-core is the one the
  design target (>= 4M feature values/s/core) is stated in.
* Feature values are counted as rows x 50 features (the prediction is not counted).

Every run is bounded by a request count and a time budget. Nothing is asserted; ratios are printed.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from flask import Flask, Response, request
from prometheus_client import CollectorRegistry, Counter, Histogram
from werkzeug.serving import make_server

from benchmarks.common import bodies, workspace
from exporter.http import server

ROWS_PER_REQUEST = 5_000
MLMON_REQUESTS, MLMON_SECONDS = 60, 4.0
NAIVE_REQUESTS, NAIVE_SECONDS = 6, 4.0


@dataclass
class IngestResult:
    name: str
    values: int
    wall_seconds: float
    cpu_seconds: float
    requests: int
    statuses: dict[str, int]

    @property
    def wall_rate(self) -> float:
        return self.values / self.wall_seconds

    @property
    def core_rate(self) -> float:
        return self.values / self.cpu_seconds


def naive_app() -> Flask:
    """The path a user writes without mlmon: stdlib json, one prometheus_client call per value."""
    registry = CollectorRegistry()
    values = Histogram("naive_feature_value", "Feature values.", ["model", "version", "feature"], registry=registry)
    categories = Counter("naive_feature_category", "Categorical feature values.",
                         ["model", "version", "feature", "value"], registry=registry)
    app = Flask("naive")

    @app.post("/v1/predictions")
    def predictions() -> Response:
        records = json.loads(request.get_data())
        for record in records:
            model, version = record["model"], record["model_version"]
            for name, value in record["features"].items():
                if isinstance(value, str):
                    categories.labels(model, version, name, value).inc()
                else:
                    values.labels(model, version, name).observe(value)
        return Response(json.dumps({"accepted": len(records)}), mimetype="application/json")

    return app


def drive(port: int, body: bytes, content_type: str, requests: int, seconds: float) -> tuple[dict[str, Any], float]:
    """Run the client process; returns its report and the CPU seconds this (server) process used meanwhile."""
    with tempfile.NamedTemporaryFile(prefix="mlmon-bench-body-", delete=False) as handle:
        handle.write(body)
    try:
        command = [sys.executable, "-m", "benchmarks.http_client", "--port", str(port), "--body", handle.name,
                   "--content-type", content_type, "--requests", str(requests), "--seconds", str(seconds)]
        cpu_before = time.process_time()
        done = subprocess.run(command, capture_output=True, text=True, timeout=seconds + 120, check=True)
        cpu = time.process_time() - cpu_before
    finally:
        Path(handle.name).unlink()
    return json.loads(done.stdout), cpu


def measure(name: str, port: int, body: bytes, content_type: str, values: int, requests: int, seconds: float) -> IngestResult:
    drive(port, body, content_type, 1, seconds)  # warm-up: first-request setup is not throughput
    report, cpu = drive(port, body, content_type, requests, seconds)
    return IngestResult(name, values * report["requests"], report["seconds"], cpu, report["requests"],
                        {str(k): v for k, v in report["statuses"].items()})


def run(rows: int = ROWS_PER_REQUEST) -> list[IngestResult]:
    folder, config = workspace()
    shapes = bodies(rows)
    results: list[IngestResult] = []
    running = server.start(config, "127.0.0.1:0", "127.0.0.1:0")
    try:
        for shape, (body, content_type, values) in shapes.items():
            results.append(measure(f"mlmon {shape}", running.ingest_port, body, content_type, values,
                                   MLMON_REQUESTS, MLMON_SECONDS))
        ingested = sum(s.predictions for s in running.exporter.store.snapshot())
        if ingested == 0:
            raise RuntimeError("the exporter accepted nothing; the benchmark bodies are wrong")
    finally:
        running.stop()
    naive = make_server("127.0.0.1", 0, naive_app(), threaded=True)
    thread = threading.Thread(target=naive.serve_forever, daemon=True)
    thread.start()
    try:
        body, _, values = shapes["records"]
        results.append(measure("naive records", naive.server_port, body, "application/json", values,
                               NAIVE_REQUESTS, NAIVE_SECONDS))
    finally:
        naive.shutdown()
        naive.server_close()
    folder.cleanup()
    return results


def summary(results: list[IngestResult]) -> list[tuple[str, str, str]]:
    """(benchmark, measured, ratio vs baseline) rows for the summary table."""
    naive = next(r for r in results if r.name.startswith("naive"))
    columnar = next((r for r in results if r.name == "mlmon columnar"), None)
    rows = []
    for r in results:
        measured = f"{r.wall_rate / 1e6:.2f}M values/s wall, {r.core_rate / 1e6:.2f}M/s/core"
        ratio = "baseline" if r is naive else f"{r.core_rate / naive.core_rate:.1f}x per core, " \
                                              f"{r.wall_rate / naive.wall_rate:.1f}x wall"
        if columnar is not None and r.name in ("mlmon records", "mlmon ndjson"):
            ratio += f"; {r.core_rate / columnar.core_rate:.2f}x columnar per core"
        rows.append((f"ingest {r.name}", measured, ratio))
    return rows


def main() -> list[tuple[str, str, str]]:
    results = run()
    print(f"ingest over HTTP, {ROWS_PER_REQUEST} rows x 50 features per request, client in a separate process")
    for r in results:
        bad = {k: v for k, v in r.statuses.items() if k != "200"}
        print(f"  {r.name:16s} {r.requests:3d} requests  {r.wall_rate / 1e6:6.2f}M values/s wall  "
              f"{r.core_rate / 1e6:6.2f}M values/s per server core ({r.cpu_seconds:.2f} CPU-s in {r.wall_seconds:.2f} s)"
              + (f"  NON-200: {bad}" if bad else ""))
    rows = summary(results)
    for name, _, ratio in rows:
        print(f"  {name:24s} {ratio}")
    return rows


if __name__ == "__main__":
    main()
