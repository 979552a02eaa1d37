"""`mlmon serve` as a real child process on free loopback ports, for the server tests.

The process is started with the toy model and whatever `exporter:` overrides a test needs, and
is always stopped by its own PID. Helpers read its threads and open files from /proc.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import requests
import yaml

from exporter.tooling.localstack import free_port

HOST = "127.0.0.1"


def write_config(folder: Path, models: list[dict[str, Any]], **exporter: Any) -> Path:
    """mlmon.yaml in `folder` with loopback listeners on fresh free ports (overridable)."""
    data = {
        "exporter": {"metrics_listen": f"{HOST}:{free_port()}", "ingest_listen": f"{HOST}:{free_port()}", **exporter},
        "models": models,
    }
    path = folder / "mlmon.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


class ServedExporter:
    """One `mlmon serve` process."""

    def __init__(self, config: Path, *extra_args: str, log_name: str = "serve.log") -> None:
        data = yaml.safe_load(config.read_text())["exporter"]
        self.metrics_port = int(data["metrics_listen"].rsplit(":", 1)[1])
        self.ingest_port = int(data["ingest_listen"].rsplit(":", 1)[1])
        self.log_path = config.parent / log_name
        self.log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "--log-level", "INFO", "serve", "--config", str(config), *extra_args],
            stdout=self.log, stderr=subprocess.STDOUT, cwd=Path(__file__).resolve().parents[2],
        )
        self.pid = self.proc.pid

    @property
    def metrics_url(self) -> str:
        return f"http://{HOST}:{self.metrics_port}"

    @property
    def ingest_url(self) -> str:
        return f"http://{HOST}:{self.ingest_port}"

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"mlmon serve exited with {self.proc.returncode}:\n{self.log_text()}")
            try:
                if all(requests.get(f"{url}/readyz", timeout=1).status_code == 200
                       for url in (self.metrics_url, self.ingest_url)):
                    return
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"mlmon serve not ready within {timeout} s:\n{self.log_text()}")

    def log_text(self) -> str:
        self.log.flush()
        return self.log_path.read_text(errors="replace")

    def alive(self) -> bool:
        return self.proc.poll() is None

    def send(self, sig: int) -> None:
        if self.alive():
            os.kill(self.pid, sig)

    def threads(self) -> int:
        with open(f"/proc/{self.pid}/status") as status:
            return next(int(line.split()[1]) for line in status if line.startswith("Threads:"))

    def fds(self) -> int:
        return len(os.listdir(f"/proc/{self.pid}/fd"))

    def stop(self, timeout: float = 20.0) -> int:
        if self.alive():
            os.kill(self.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.pid, signal.SIGKILL)
                self.proc.wait(5)
        self.log.close()
        return self.proc.returncode


def exchange(port: int, payload: bytes, timeout: float = 10.0, half_close: bool = True) -> bytes:
    """Send raw bytes on a fresh connection (then half-close, as `nc -q1` does); the whole answer."""
    with socket.create_connection((HOST, port), timeout=timeout) as sock:
        sock.sendall(payload)
        if half_close:
            sock.shutdown(socket.SHUT_WR)
        return recv_all(sock)


def recv_all(sock: socket.socket) -> bytes:
    """Everything until the server closes (error answers always close)."""
    answer = b""
    try:
        while chunk := sock.recv(65536):
            answer += chunk
    except ConnectionResetError:
        pass
    return answer


def status_of(answer: bytes) -> int:
    """The status code of a raw HTTP/1.1 answer (0 when there is none)."""
    parts = answer.split(b" ", 2)
    return int(parts[1]) if len(parts) > 1 and answer.startswith(b"HTTP/1.") and parts[1].isdigit() else 0
