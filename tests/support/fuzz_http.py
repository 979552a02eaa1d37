"""Raw-socket HTTP for the fuzz suite: requests built byte by byte, answers read until the server closes.

Nothing here knows which HTTP server the exporter runs (werkzeug today, another tomorrow): a
request is bytes on a fresh loopback connection with ``Connection: close``, an answer is what
comes back before the server closes it, or a timeout. ``ExporterProcess`` runs ``mlmon serve``
as a child (stopped by its own PID) so a crash is seen as an exit and peak memory as VmHWM.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any, NamedTuple

HOST = "127.0.0.1"  # loopback only


class Answer(NamedTuple):
    status: int              # 0 when the server closed without an HTTP answer
    headers: dict[str, str]  # lower-case names
    body: bytes
    timed_out: bool = False

    @property
    def json_error(self) -> bool:
        """A JSON object that says why: {"error": ...} or the rejections of /v1/predictions."""
        if "json" not in self.headers.get("content-type", ""):
            return False
        try:
            document = json.loads(self.body)
        except ValueError:
            return False
        return isinstance(document, dict) and bool(document.get("error") or document.get("rejections"))


def request_bytes(method: str, path: str, headers: dict[str, str] | None = None, body: bytes | None = None) -> bytes:
    """One HTTP/1.1 request with Content-Length (when there is a body) and Connection: close."""
    lines = [f"{method} ".encode() + path.encode("utf-8", "surrogatepass") + b" HTTP/1.1",
             f"Host: {HOST}".encode(), b"Connection: close"]
    for name, value in (headers or {}).items():
        lines.append(name.encode() + b": " + value.encode("utf-8", "surrogatepass"))
    if body is not None:
        lines.append(b"Content-Length: %d" % len(body))
    return b"\r\n".join(lines) + b"\r\n\r\n" + (body or b"")


def chunked_request(path: str, chunks: bytes, headers: dict[str, str] | None = None) -> bytes:
    """A request whose body is sent with Transfer-Encoding: chunked; `chunks` is the raw chunk stream."""
    head = {"Content-Type": "application/json", "Transfer-Encoding": "chunked", **(headers or {})}
    return request_bytes("POST", path, head) + chunks


def chunk_stream(body: bytes, size: int = 100, extension: bytes = b"") -> bytes:
    """`body` as well-formed chunks of `size` bytes (with an optional chunk extension), then the last chunk."""
    parts = [b"%x%s\r\n%s\r\n" % (len(body[i:i + size]), extension, body[i:i + size])
             for i in range(0, len(body), size)]
    return b"".join(parts) + b"0\r\n\r\n"


def exchange(port: int, payload: bytes, timeout: float) -> Answer:
    """Send `payload` on a new connection, half-close, and read the answer until the server closes."""
    received = b""
    try:
        with socket.create_connection((HOST, port), timeout=timeout) as connection:
            try:
                connection.sendall(payload)
                connection.shutdown(socket.SHUT_WR)
            except OSError:  # the server may answer and close before reading everything (a 413)
                pass
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    chunk = connection.recv(65536)
                except ConnectionResetError:
                    break
                if not chunk:
                    break
                received += chunk
            else:
                return Answer(0, {}, received, timed_out=True)
    except socket.timeout:
        return Answer(0, {}, received, timed_out=True)
    except OSError:  # reset or refused: whatever arrived (often nothing) is the answer
        pass
    return parse_answer(received)


def parse_answer(data: bytes) -> Answer:
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    try:
        status = int(lines[0].split()[1])
    except (IndexError, ValueError):
        return Answer(0, {}, data)
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(b":")
        headers[name.decode("latin-1").strip().lower()] = value.decode("latin-1").strip()
    return Answer(status, headers, body)


def proc_status(pid: int) -> dict[str, int]:
    """The kB fields of /proc/PID/status (VmRSS, VmHWM, Threads...)."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        name, _, value = line.partition(":")
        parts = value.split()
        if parts and parts[0].isdigit():
            fields[name] = int(parts[0])
    return fields


class ExporterProcess:
    """`mlmon serve` as a child process on given loopback ports; stopped by its own PID."""

    def __init__(self, config: Path, metrics_port: int, ingest_port: int, log: Path) -> None:
        self.ports = {"metrics": metrics_port, "ingest": ingest_port}
        self.log = open(log, "ab")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exporter.cli", "--log-level", "WARNING", "serve", "--config", str(config)],
            stdout=self.log, stderr=subprocess.STDOUT,
        )

    def wait_ready(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive:
                raise RuntimeError(f"mlmon serve exited with {self.process.returncode}")
            answers = [exchange(port, request_bytes("GET", "/readyz"), 1.0) for port in self.ports.values()]
            if all(a.status == 200 for a in answers):
                return
            time.sleep(0.1)
        raise TimeoutError("mlmon serve not ready")

    @property
    def alive(self) -> bool:
        return self.process.poll() is None

    def status(self) -> dict[str, Any]:
        return proc_status(self.process.pid)

    def stop(self, timeout: float = 15.0) -> int | None:
        if self.alive:
            os.kill(self.process.pid, signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                os.kill(self.process.pid, signal.SIGKILL)
                self.process.wait(5)
        self.log.close()
        return self.process.returncode
