"""Stand-ins for a sidecar in trouble, on loopback: a TCP proxy that can be slowed, stopped and
restarted on the same port; a listener that accepts and never answers; a server that records
request headers. Every thread here is a daemon and every socket has a timeout: a test that goes
wrong ends, it does not hang.
"""

from __future__ import annotations

import socket
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class DelayProxy:
    """Forwards TCP connections on `port` to `upstream_port`, each after `delay` seconds.

    stop() closes the listener (new connections are refused, as with a stopped sidecar) and lets
    connections already accepted finish, so nothing is cut halfway; start() listens again.
    """

    def __init__(self, upstream_port: int, port: int = 0) -> None:
        self.upstream_port = upstream_port
        self.port = port
        self.delay = 0.0
        self.connections = 0
        self._listener: socket.socket | None = None
        self._workers: list[threading.Thread] = []

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> DelayProxy:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(64)
        self.port = listener.getsockname()[1]
        self._listener = listener
        threading.Thread(target=self._accept, args=(listener,), daemon=True).start()
        return self

    def stop(self) -> None:
        listener, self._listener = self._listener, None
        if listener is not None:
            listener.close()
        for worker in self._workers:
            worker.join(timeout=30)
        self._workers = [w for w in self._workers if w.is_alive()]

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return  # closed by stop()
            self.connections += 1
            worker = threading.Thread(target=self._serve, args=(client,), daemon=True)
            self._workers.append(worker)
            worker.start()

    def _serve(self, client: socket.socket) -> None:
        with client:
            time.sleep(self.delay)
            try:
                upstream = socket.create_connection(("127.0.0.1", self.upstream_port), timeout=30)
            except OSError:
                return
            with upstream:
                client.settimeout(30)
                back = threading.Thread(target=_pipe, args=(upstream, client), daemon=True)
                back.start()
                _pipe(client, upstream)
                back.join(timeout=30)


def _pipe(source: socket.socket, target: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            target.sendall(data)
        target.shutdown(socket.SHUT_WR)
    except OSError:
        pass


class HungServer:
    """Accepts connections and reads what comes, but never answers: a sidecar stuck in a deadlock."""

    def __init__(self) -> None:
        self._listener = socket.socket()
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(64)
        self.port = self._listener.getsockname()[1]
        self._held: list[socket.socket] = []
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _accept(self) -> None:
        while True:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return
            self._held.append(connection)  # kept open, never answered

    def close(self) -> None:
        self._listener.close()
        for connection in self._held:
            connection.close()


class RecordingServer:
    """Answers every POST with `answer` and keeps the requests' paths, headers and bodies."""

    def __init__(self, status: int = 200, answer: bytes = b'{"accepted": 0, "rejected": 0}') -> None:
        self.requests: list[dict[str, Any]] = []
        self.status = status
        recording = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - the stdlib's name
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                recording.requests.append({"path": self.path, "headers": dict(self.headers), "body": body})
                self.send_response(recording.status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(answer)))
                self.end_headers()
                self.wfile.write(answer)

            def log_message(self, *args: Any) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.port = self._server.server_address[1]
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
