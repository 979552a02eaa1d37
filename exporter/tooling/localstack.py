"""Real Prometheus, Alertmanager and a webhook receiver as bounded, cleaned-up local processes.

Used by `mlmon demo --stack` and by the end-to-end tests. Everything listens on 127.0.0.1 on
free ports, keeps its data in a given folder, and is stopped when the context exits, whatever
happens inside it.

    with PrometheusProcess(tmp_path, scrape_targets=["127.0.0.1:8710"]) as prom:
        prom.wait_for(lambda: prom.query("up") != [])
"""

from __future__ import annotations

import json
import shutil
import socket
import subprocess
import threading
import time
import urllib.parse
import urllib.request
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, Callable, Sequence

import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class MissingBinary(RuntimeError):
    """A Prometheus-ecosystem binary is not installed."""


def find_binary(name: str) -> str:
    path = shutil.which(name)
    if path is None:
        raise MissingBinary(
            f"{name} is not installed (on Debian, as root: apt-get install prometheus prometheus-alertmanager)"
        )
    return path


def wait_until(check: Callable[[], Any], timeout: float, interval: float = 0.25, what: str = "condition") -> Any:
    """Poll until check() returns something truthy; raise TimeoutError after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as error:  # the process may not be up yet
            last_error = error
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout}s waiting for {what}" + (f" (last error: {last_error})" if last_error else ""))


def http_json(url: str, data: bytes | None = None, timeout: float = 5.0) -> Any:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())


class ManagedProcess:
    """A subprocess whose output goes to a log file, killed on exit of the context."""

    def __init__(self, args: list[str], log_path: Path) -> None:
        self.args = args
        self.log_path = log_path
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.log = open(self.log_path, "wb")
        self.process = subprocess.Popen(self.args, stdout=self.log, stderr=subprocess.STDOUT)

    def stop(self) -> None:
        if self.process and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)
        self.log.close()

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]


class LocalServer:
    """A Prometheus-ecosystem server on a free loopback port; ready when its /-/ready answers 200."""

    binary_name = ""

    def __init__(self, workdir: Path, port: int | None = None) -> None:
        self.binary = find_binary(self.binary_name)
        self.workdir = workdir / self.binary_name
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.port = port or free_port()  # a fixed port when the user asked for one (`mlmon demo --stack`)
        self.address = f"127.0.0.1:{self.port}"
        self.url = f"http://{self.address}"

    def _process(self, args: list[str]) -> ManagedProcess:
        return ManagedProcess([self.binary, *args], self.workdir / f"{self.binary_name}.log")

    def __enter__(self) -> LocalServer:
        self.process.start()
        wait_until(self.ready, timeout=30, what=f"{self.binary_name} ready\n{self.process.output()}")
        return self

    def __exit__(self, *exc: object) -> None:
        self.process.stop()

    def ready(self) -> bool:
        with urllib.request.urlopen(f"{self.url}/-/ready", timeout=2) as response:
            return response.status == 200


class PrometheusProcess(LocalServer):
    """A real Prometheus scraping `scrape_targets` every second, evaluating `rule_files` every second."""

    binary_name = "prometheus"

    def __init__(
        self,
        workdir: Path,
        scrape_targets: list[str],
        rule_files: Sequence[Path] = (),
        alertmanager: str | None = None,
        interval: str = "1s",
        port: int | None = None,
    ) -> None:
        super().__init__(workdir, port)
        config: dict[str, Any] = {
            "global": {"scrape_interval": interval, "evaluation_interval": interval},
            "rule_files": [str(p) for p in rule_files],
            "scrape_configs": [{"job_name": "mlmon", "static_configs": [{"targets": scrape_targets}]}],
        }
        if alertmanager:
            config["alerting"] = {"alertmanagers": [{"static_configs": [{"targets": [alertmanager]}]}]}
        self.config_path = self.workdir / "prometheus.yml"
        self.config_path.write_text(yaml.safe_dump(config))
        self.process = self._process([
            f"--config.file={self.config_path}",
            f"--storage.tsdb.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--web.enable-lifecycle",
        ])

    def query(self, expr: str) -> list[dict[str, Any]]:
        """Instant query; the result vector (or raises with Prometheus's error)."""
        answer = http_json(f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr}))
        if answer.get("status") != "success":
            raise RuntimeError(f"query {expr!r} failed: {answer}")
        return answer["data"]["result"]

    def wait_for(self, check: Callable[[], Any], timeout: float = 30, what: str = "condition") -> Any:
        return wait_until(check, timeout, what=what)

    def alerts(self) -> list[dict[str, Any]]:
        return http_json(f"{self.url}/api/v1/alerts")["data"]["alerts"]


class AlertmanagerProcess(LocalServer):
    """A real Alertmanager with clustering off, reading `config_path`."""

    binary_name = "prometheus-alertmanager"

    def __init__(self, workdir: Path, config_path: Path, port: int | None = None) -> None:
        super().__init__(workdir, port)
        self.process = self._process([
            f"--config.file={config_path}",
            f"--storage.path={self.workdir / 'data'}",
            f"--web.listen-address={self.address}",
            "--cluster.listen-address=",
        ])


class WebhookReceiver:
    """Collects Alertmanager webhook notifications (the JSON payloads) in memory."""

    def __init__(self, on_payload: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.payloads: list[dict[str, Any]] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                length = int(self.headers.get("Content-Length", 0))
                payload = json.loads(self.rfile.read(length))
                receiver.payloads.append(payload)
                if on_payload is not None:
                    on_payload(payload)
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> WebhookReceiver:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def alerts(self, status: str | None = None) -> list[dict[str, Any]]:
        found = [alert for payload in self.payloads for alert in payload.get("alerts", [])]
        return [a for a in found if status is None or a.get("status") == status]
