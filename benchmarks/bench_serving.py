"""/metrics latency while 8 clients post as fast as they can: mlmon's server vs the werkzeug one it replaced.

What is measured, and how:

* The server under test is the real one (``exporter.http.server.start``: uvicorn, one event loop
  thread, a worker pool per listener). The baseline is the same two Flask apps on werkzeug's
  threaded development server, which served mlmon before (a thread per connection), in the same
  process layout and the same run.
* 8 posters (``benchmarks.http_client --connections 8``: 8 threads of one separate process, so
  the clients take as little of the 2 cores as possible) re-send a 1,000-row columnar body back
  to back, each over its own keep-alive connection; one scraper (``benchmarks.scrape_client``,
  another process) GETs /metrics every 20 ms over one keep-alive connection and records each
  latency. Only the server runs in this process.
* Reported: p50/p99/max /metrics latency and the ingest rate reached meanwhile, side by side;
  the ratio is werkzeug p99 / mlmon p99. Nothing is asserted.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

from werkzeug.serving import make_server

from benchmarks.common import bodies, workspace
from exporter.config.model import MlmonConfig
from exporter.http import server
from exporter.http.app import create_ingest_app, create_metrics_app
from exporter.http.service import Exporter
from exporter.state.store import StateStore

POSTERS = 8
ROWS = 1_000
SECONDS = 6.0


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))]


def start_werkzeug(config: MlmonConfig) -> tuple[int, int, Callable[[], None]]:
    """The previous server: werkzeug's threaded dev server for both apps; (metrics port, ingest port, stop)."""
    exporter = Exporter(config, StateStore(config, server.load_profiles(config)))
    servers = [make_server("127.0.0.1", 0, create_metrics_app(exporter), threaded=True),
               make_server("127.0.0.1", 0, create_ingest_app(exporter), threaded=True)]
    for s in servers:
        threading.Thread(target=s.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True).start()

    def stop() -> None:
        for s in servers:
            s.shutdown()
            s.server_close()

    return servers[0].server_port, servers[1].server_port, stop


def measure(metrics_port: int, ingest_port: int, body_file: str) -> dict[str, Any]:
    posters = subprocess.Popen([sys.executable, "-m", "benchmarks.http_client", "--port", str(ingest_port), "--body",
                                body_file, "--requests", "100000", "--seconds", str(SECONDS),
                                "--connections", str(POSTERS)], stdout=subprocess.PIPE, text=True)
    scraper = subprocess.run([sys.executable, "-m", "benchmarks.scrape_client", "--port", str(metrics_port),
                              "--seconds", str(SECONDS)], capture_output=True, text=True, timeout=SECONDS + 120,
                             check=True)
    report = json.loads(posters.communicate(timeout=SECONDS + 120)[0])
    latencies = json.loads(scraper.stdout)["latencies"]
    return {
        "scrapes": len(latencies),
        "p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "max": max(latencies),
        "values_per_s": report["requests"] * ROWS * 50 / report["seconds"],
    }


def run() -> dict[str, dict[str, Any]]:
    folder, config = workspace()
    body, _, _ = bodies(ROWS)["columnar"]
    with tempfile.NamedTemporaryFile(prefix="mlmon-bench-body-", delete=False) as handle:
        handle.write(body)
    results = {}
    try:
        running = server.start(config, "127.0.0.1:0", "127.0.0.1:0")
        try:
            results["mlmon (uvicorn)"] = measure(running.metrics_port, running.ingest_port, handle.name)
        finally:
            running.stop(1)
        import logging

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        metrics_port, ingest_port, stop = start_werkzeug(config)
        try:
            results["werkzeug (before)"] = measure(metrics_port, ingest_port, handle.name)
        finally:
            stop()
    finally:
        Path(handle.name).unlink()
        folder.cleanup()
    return results


def main() -> list[tuple[str, str, str]]:
    results = run()
    print(f"/metrics latency under {POSTERS} concurrent posters ({ROWS} rows x 50 features each, columnar), "
          f"{SECONDS:.0f} s per server, clients in separate processes")
    for name, r in results.items():
        print(f"  {name:18s} {r['scrapes']:4d} scrapes  p50 {r['p50'] * 1000:6.1f} ms  p99 {r['p99'] * 1000:6.1f} ms  "
              f"max {r['max'] * 1000:6.1f} ms  ingest meanwhile {r['values_per_s'] / 1e6:.2f}M values/s")
    mine, before = results["mlmon (uvicorn)"], results["werkzeug (before)"]
    return [
        ("/metrics p99, 8 posters, mlmon", f"p99 {mine['p99'] * 1000:.0f} ms, p50 {mine['p50'] * 1000:.0f} ms, "
                                           f"ingest {mine['values_per_s'] / 1e6:.2f}M values/s",
         f"{before['p99'] / mine['p99']:.1f}x lower p99 than werkzeug"),
        ("/metrics p99, 8 posters, werkzeug", f"p99 {before['p99'] * 1000:.0f} ms, p50 {before['p50'] * 1000:.0f} ms, "
                                              f"ingest {before['values_per_s'] / 1e6:.2f}M values/s", "baseline"),
    ]


if __name__ == "__main__":
    main()
