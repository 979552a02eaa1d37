"""`mlmon act` as a real child process, and fake GitHub / Argo / Kubeflow endpoints for it to call.

The fakes are small stdlib HTTP servers that keep every request (path, headers, JSON body and
the time it arrived) and can be told to fail: `fail_first=N` answers 503 to the first N requests,
`status=500` answers that to all of them.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import requests
import yaml

from exporter.tooling.localstack import free_port

ROOT = Path(__file__).resolve().parents[2]
HOST = "127.0.0.1"


@dataclass
class Call:
    path: str
    headers: dict[str, str]
    body: Any
    at: float  # time.monotonic() when it arrived


class FakeEndpoint:
    """One fake API; `url` is its base (no trailing slash)."""

    def __init__(self, status: int = 200, fail_first: int = 0) -> None:
        self.status = status
        self.fail_first = fail_first
        self.calls: list[Call] = []
        self.answered = 0
        self.lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802
                length = int(self.headers.get("Content-Length", 0))
                raw = self.rfile.read(length)
                with endpoint.lock:
                    endpoint.calls.append(Call(self.path, {k.lower(): v for k, v in self.headers.items()},
                                               json.loads(raw) if raw else None, time.monotonic()))
                    endpoint.answered += 1
                    status = 503 if endpoint.answered <= endpoint.fail_first else endpoint.status
                self.send_response(status)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"{}")

            do_PUT = do_POST  # noqa: N815

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer((HOST, 0), Handler)
        self.url = f"http://{HOST}:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def write_act_config(folder: Path, actions: list[dict[str, Any]], **act: Any) -> Path:
    """A minimal mlmon.yaml whose `alerting.act` listens on a free loopback port."""
    port = free_port()
    data = {
        "models": [{"name": "fraud", "task": "binary_classification", "reference": {"capture": 100},
                    "features": [{"name": "amount", "type": "numeric"}]}],
        "alerting": {"act": {"listen": f"{HOST}:{port}", "url": f"http://{HOST}:{port}", **act}, "actions": actions},
    }
    path = folder / "mlmon.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class ActProcess:
    """`mlmon act --config PATH [args]`, stopped by its own PID."""

    def __init__(self, config: Path, *args: str, log_name: str = "act.log") -> None:
        listen = yaml.safe_load(config.read_text())["alerting"]["act"]["listen"]
        self.url = f"http://{listen}"
        self.log_path = config.parent / log_name
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen([sys.executable, "-m", "exporter.cli", "act", "--config", str(config), *args],
                                     stdout=self.log, stderr=subprocess.STDOUT, cwd=ROOT)

    def wait_ready(self, timeout: float = 30.0) -> ActProcess:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlmon act exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if requests.get(f"{self.url}/readyz", timeout=1).status_code == 200:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"mlmon act not ready within {timeout} s:\n{self.log_text()}")

    def post(self, payload: dict[str, Any], action: str | None = None, **kwargs: Any) -> requests.Response:
        path = "/v1/alerts" + (f"/{action}" if action else "")
        return requests.post(self.url + path, json=payload, timeout=10, **kwargs)

    def runs(self, action: str | None = None) -> list[dict[str, Any]]:
        params = {"action": action} if action else {}
        return requests.get(f"{self.url}/actions", params=params, timeout=5).json()["runs"]

    def metric(self, name: str, **labels: str) -> float:
        """A sample of the act's /metrics (0 when absent)."""
        from prometheus_client.parser import text_string_to_metric_families

        text = requests.get(f"{self.url}/metrics", timeout=5).text
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                    return sample.value
        return 0.0

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


def webhook(group_key: str = "{}:{alertname=\"MLMonFeatureDrift\"}", status: str = "firing",
            starts_at: str = "2026-01-01T00:00:00Z", receiver: str = "mlmon-act-retrain", **labels: str) -> dict[str, Any]:
    """An Alertmanager webhook payload (version 4) with one drift alert."""
    alert_labels = {"alertname": "MLMonFeatureDrift", "severity": "critical", "model": "fraud", "model_version": "v1",
                    "feature": "amount", "team": "risk", **labels}
    alert = {"status": status, "labels": alert_labels,
             "annotations": {"summary": "A feature's distribution drifted from its reference.",
                             "description": "psi of amount is 0.41"},
             "startsAt": starts_at, "endsAt": "0001-01-01T00:00:00Z" if status == "firing" else "2026-01-01T01:00:00Z",
             "generatorURL": "http://prometheus/graph", "fingerprint": "0123456789abcdef"}
    return {"version": "4", "groupKey": group_key, "truncatedAlerts": 0, "status": status, "receiver": receiver,
            "groupLabels": {"alertname": "MLMonFeatureDrift"}, "commonLabels": alert_labels,
            "commonAnnotations": alert["annotations"], "externalURL": "http://alertmanager:9093", "alerts": [alert]}
