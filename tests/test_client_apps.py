"""A Flask and a FastAPI model server log every prediction through mlmon_client while the sidecar
is stopped, restarted and slowed: the servers answer as fast as the same server with the client
disabled, nothing fails, what was lost is counted, and what was sent arrives exactly once.

Each server runs as its own process twice, with the client enabled and disabled; one load
generator alternates requests between the two, so both see the same machine at the same moment
and their p99 latencies can be compared in one run. The sidecar is a real exporter behind a TCP
proxy (tests/support/sidecars.py) that can refuse connections (stopped) or delay them (slowed)
while the exporter itself keeps its counts across the whole run.
"""

from __future__ import annotations

import http.client
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import requests

from exporter.tooling.localstack import free_port
from tests.conftest import ROOT, LiveExporter
from tests.support.sidecars import DelayProxy
from tests.test_client import fraud_features

THREADS = 3


@dataclass
class App:
    process: subprocess.Popen[str]
    url: str

    def post(self, path: str) -> dict[str, Any]:
        response = requests.post(f"{self.url}{path}", timeout=30)
        assert response.status_code == 200, response.text
        return response.json()


def start_app(framework: str, sidecar: str, disabled: bool) -> App:
    port = free_port()
    command = [sys.executable, "-m", "tests.support.client_apps", framework, "--port", str(port), "--sidecar", sidecar]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "clients" / "python")])}
    process = subprocess.Popen(command + (["--disabled"] if disabled else []), cwd=ROOT, env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    app = App(process, f"http://127.0.0.1:{port}")
    for _ in range(300):
        if process.poll() is not None:
            pytest.fail(f"{framework} app exited: {process.stderr.read() if process.stderr else ''}")
        try:
            requests.get(f"{app.url}/healthz", timeout=1)
            return app
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail(f"{framework} app never answered")


@pytest.fixture
def apps() -> Iterator[list[App]]:
    started: list[App] = []
    yield started
    for app in started:
        app.process.terminate()
        try:
            app.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            app.process.kill()
            app.process.wait()


@dataclass
class Load:
    """Threads that alternate POST /predict between the apps and keep every latency per app."""

    urls: list[str]
    latencies: dict[str, list[float]] = field(default_factory=dict)
    failures: list[str] = field(default_factory=list)
    answered: dict[str, int] = field(default_factory=dict)
    stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self.latencies = {url: [] for url in self.urls}
        self.answered = dict.fromkeys(self.urls, 0)
        self.threads = [threading.Thread(target=self._run, args=(n,), daemon=True) for n in range(THREADS)]

    def __enter__(self) -> Load:
        for thread in self.threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        for thread in self.threads:
            thread.join(timeout=30)

    def _run(self, worker: int) -> None:
        connections = {url: http.client.HTTPConnection(url.removeprefix("http://"), timeout=10) for url in self.urls}
        i = 0
        while not self.stop.is_set():
            for url, connection in connections.items():  # the same record to each app, one after the other
                body = json.dumps({"id": f"w{worker}-{i}", "features": fraud_features(i)})
                started = time.perf_counter()
                try:
                    connection.request("POST", "/predict", body, {"Content-Type": "application/json"})
                    response = connection.getresponse()
                    response.read()
                except (OSError, http.client.HTTPException) as error:
                    self.failures.append(f"{url}: {error!r}")
                    connection.close()
                    continue
                self.latencies[url].append(time.perf_counter() - started)
                if response.status == 200:
                    self.answered[url] += 1
                else:
                    self.failures.append(f"{url}: HTTP {response.status}")
            i += 1


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


@pytest.mark.parametrize("framework", ["flask", "fastapi"])
def test_a_model_server_keeps_its_latency_and_loses_nothing_silently_while_the_sidecar_is_stopped_slowed_and_restarted(
    framework: str, example_exporter: LiveExporter, apps: list[App]
) -> None:
    if framework == "fastapi":
        pytest.importorskip("fastapi")
        pytest.importorskip("uvicorn")
    proxy = DelayProxy(example_exporter.running.ingest_port).start()
    try:
        monitored = start_app(framework, proxy.url, disabled=False)
        baseline = start_app(framework, proxy.url, disabled=True)
        apps.extend([monitored, baseline])
        with Load([monitored.url, baseline.url]) as load:
            time.sleep(2)
            proxy.stop()        # the sidecar is gone: connections refused
            time.sleep(2.5)
            proxy.start()       # back on the same port
            time.sleep(1.5)
            proxy.delay = 0.3   # slowed: every request waits 0.3 s before it reaches the exporter
            time.sleep(2)
            proxy.delay = 0.0
            time.sleep(1)
        stats = monitored.post("/flush")
    finally:
        proxy.stop()
    arrived = example_exporter.value("mlmon_predictions_total", model="fraud", model_version="v1") or 0
    p99_on, p99_off = percentile(load.latencies[monitored.url], 0.99), percentile(load.latencies[baseline.url], 0.99)
    p50_on, p50_off = percentile(load.latencies[monitored.url], 0.5), percentile(load.latencies[baseline.url], 0.5)
    print(f"\n{framework}: {load.answered[monitored.url]} requests per app; p50 {p50_on * 1e3:.2f} ms with the client, "
          f"{p50_off * 1e3:.2f} ms without; p99 {p99_on * 1e3:.2f} ms with, {p99_off * 1e3:.2f} ms without "
          f"(ratio {p99_on / p99_off:.2f}); client {stats}; exporter counted {arrived:.0f}")

    assert load.failures == []                                  # nothing raised into the request path
    assert stats["logged"] == load.answered[monitored.url]      # one log() per answered request
    settled = stats["sent"] + stats["rejected"] + stats["invalid"] + stats["unconfirmed"] + \
        stats["dropped_queue_full"] + stats["dropped_unreachable"] + stats["dropped_closed"]
    assert (stats["queued"], settled) == (0, stats["logged"])   # every record's fate is known
    assert stats["dropped_unreachable"] + stats["dropped_queue_full"] > 0  # the stop cost something, and it shows
    assert stats["retried"] > 0
    assert (stats["rejected"], stats["invalid"]) == (0, 0)
    assert arrived == stats["sent"]                             # exactly once: no loss, no duplicate
    assert p99_on <= 3 * p99_off + 0.005, "the client slowed the app down"
