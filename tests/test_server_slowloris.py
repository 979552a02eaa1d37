"""Slow and many clients: 1,000 idle and 1,000 trickling connections on each port of a real `mlmon serve`.

Scrapes and ingest still answer within a second, connections beyond the cap are refused, the
idle and trickling ones are closed at the header deadline, and threads and open files stay bounded.
"""

from __future__ import annotations

import resource
import selectors
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import toy_model_data, toy_profile, toy_record
from tests.support.served import HOST, ServedExporter, status_of, write_config

PER_KIND = 1000  # idle and trickling, on each port
CAP = 2100  # per listener: room for the 2,000 slow ones and the probes
HEADER_TIMEOUT = 5
PARTIAL_REQUEST = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Trickle: "


@pytest.fixture
def served(tmp_path) -> Iterator[ServedExporter]:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard != resource.RLIM_INFINITY and hard < 4 * PER_KIND + 1000:
        pytest.skip(f"the open-files hard limit {hard} is too low for {4 * PER_KIND} client sockets")
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard if hard != resource.RLIM_INFINITY else 65536, hard))
    toy_profile().write(tmp_path / "toy.json")
    config = write_config(tmp_path, [toy_model_data()], max_connections=CAP, header_timeout=HEADER_TIMEOUT)
    exporter = ServedExporter(config)
    exporter.wait_ready()
    yield exporter
    exporter.stop()
    resource.setrlimit(resource.RLIMIT_NOFILE, (soft, hard))


def connect(port: int, count: int, first_bytes: bytes = b"") -> list[socket.socket]:
    sockets = []
    for _ in range(count):
        sock = socket.create_connection((HOST, port), timeout=5)
        if first_bytes:
            sock.sendall(first_bytes)
        sockets.append(sock)
    return sockets


def answers_within_a_second(served: ServedExporter) -> bool:
    scrape = requests.get(f"{served.metrics_url}/metrics", timeout=1)
    post = requests.post(f"{served.ingest_url}/v1/predictions", json=[toy_record()], timeout=1)
    return scrape.status_code == 200 and post.status_code == 200


def closed_by_server(sockets: list[socket.socket], within: float) -> int:
    """How many of the sockets the server closed (answer then EOF, or reset) within `within` seconds."""
    selector = selectors.DefaultSelector()
    for sock in sockets:
        sock.setblocking(False)
        selector.register(sock, selectors.EVENT_READ)
    closed = 0
    deadline = time.monotonic() + within
    while closed < len(sockets) and time.monotonic() < deadline:
        for key, _ in selector.select(timeout=0.5):
            try:
                data = key.fileobj.recv(65536)  # type: ignore[union-attr]
            except (BlockingIOError, InterruptedError):
                continue
            except OSError:
                data = b""
            if not data:
                selector.unregister(key.fileobj)
                closed += 1
    selector.close()
    return closed


def test_slow_clients_neither_starve_the_listeners_nor_pile_up(served: ServedExporter) -> None:
    threads_before, fds_before = served.threads(), served.fds()
    slow: list[socket.socket] = []
    try:
        for port in (served.metrics_port, served.ingest_port):
            slow += connect(port, PER_KIND)  # idle: connect and say nothing
            slow += connect(port, PER_KIND, PARTIAL_REQUEST)  # trickling: headers that never end
        for sock in slow[PER_KIND: 2 * PER_KIND] + slow[3 * PER_KIND:]:
            sock.sendall(b"a")  # one more header byte each

        assert answers_within_a_second(served)
        # One event loop holds every slow client; only the fixed worker pools are threads.
        assert served.threads() <= threads_before + 4
        assert served.fds() <= fds_before + 4 * PER_KIND + 16

        beyond = connect(served.metrics_port, CAP - 2 * PER_KIND + 100)
        refusals = [sock.recv(4096) for sock in beyond[-50:]]
        assert all(status_of(answer) == 503 and b'"limit":"connections"' in answer for answer in refusals)
        for sock in beyond:
            sock.close()

        assert closed_by_server(slow, within=HEADER_TIMEOUT + 10) == len(slow)
        assert answers_within_a_second(served)
        assert served.fds() <= fds_before + 16
    finally:
        for sock in slow:
            sock.close()
