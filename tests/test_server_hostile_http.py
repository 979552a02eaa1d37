"""Malformed, oversized and slow requests against a real `mlmon serve`: JSON answers, and the process lives."""

from __future__ import annotations

import json
import socket
import time
from collections.abc import Iterator

import pytest
import requests

from tests.conftest import parse_metrics, toy_model_data, toy_profile, toy_record
from tests.support.served import HOST, ServedExporter, exchange, recv_all, status_of, write_config

CHUNKED_CRASH = (  # issue 16, item 1: segfaulted the werkzeug-served process 20 times out of 20
    b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffff\r\n[]"
)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServedExporter]:
    folder = tmp_path_factory.mktemp("hostile")
    toy_profile().write(folder / "toy.json")
    config = write_config(folder, [toy_model_data()], max_request_bytes=4096, header_timeout=1, body_timeout=1,
                          max_header_bytes=2048)
    exporter = ServedExporter(config)
    exporter.wait_ready()
    yield exporter
    exporter.stop()


def limit_hits(served: ServedExporter) -> dict[str, float]:
    samples = parse_metrics(requests.get(f"{served.metrics_url}/metrics", timeout=5).text)
    return {dict(labels)["limit"]: v for (name, labels), v in samples.items() if name == "mlmon_limit_hits_total"}


def json_error(answer: bytes) -> dict:
    return json.loads(answer.split(b"\r\n\r\n", 1)[1])


def test_the_chunked_crash_repro_is_answered_400_and_the_process_lives(served: ServedExporter) -> None:
    for _ in range(20):
        answer = exchange(served.ingest_port, CHUNKED_CRASH)
        assert status_of(answer) == 400, answer
        assert "ended before" in json_error(answer)["error"]
    assert served.alive()
    assert requests.post(f"{served.ingest_url}/v1/predictions", json=[toy_record()], timeout=5).status_code == 200


def test_a_huge_chunk_that_is_really_sent_is_a_413_naming_the_limit(served: ServedExporter) -> None:
    answer = exchange(served.ingest_port, CHUNKED_CRASH.replace(b"[]", b"[" + b" " * 5000))
    assert status_of(answer) == 413
    assert json_error(answer)["limit"] == "request_bytes"


def test_a_chunk_extension_is_valid_http(served: ServedExporter) -> None:
    body = json.dumps([toy_record()]).encode()
    request = (b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               b"Transfer-Encoding: chunked\r\n\r\n%x;ext=1\r\n%s\r\n0\r\n\r\n" % (len(body), body))
    answer = exchange(served.ingest_port, request)
    assert status_of(answer) == 200 and json_error(answer)["accepted"] == 1


def test_garbage_is_a_json_400_on_both_ports(served: ServedExporter) -> None:
    for port in (served.metrics_port, served.ingest_port):
        answer = exchange(port, b"GARBAGE\x00\x01 / HTTP/1.1\r\n\r\n")
        assert status_of(answer) == 400
        assert "malformed" in json_error(answer)["error"]


def test_headers_over_max_header_bytes_are_a_431_whether_sent_at_once_or_in_pieces(served: ServedExporter) -> None:
    big = b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Big: " + b"a" * 4000 + b"\r\n\r\n"
    assert status_of(exchange(served.metrics_port, big)) == 431
    with socket.create_connection((HOST, served.metrics_port), timeout=5) as sock:
        sock.sendall(big[:1500])
        sock.sendall(big[1500:3000])
        assert status_of(sock.recv(4096)) == 431
    assert limit_hits(served)["header_bytes"] >= 2


def test_a_client_trickling_its_headers_is_cut_off_at_the_header_deadline(served: ServedExporter) -> None:
    with socket.create_connection((HOST, served.metrics_port), timeout=10) as sock:
        answer = b""
        for byte in b"GET /metrics HTTP/1.1\r\nHost: x\r\nX-Slow: 1234567890":
            try:
                sock.sendall(bytes([byte]))
            except OSError:
                break
            time.sleep(0.2)  # pacing of the slow client, not a measurement
            sock.setblocking(False)
            try:
                answer += sock.recv(4096)
            except BlockingIOError:
                pass
            finally:
                sock.setblocking(True)
            if answer:
                break
        answer += recv_all(sock)
    assert status_of(answer) == 408
    assert json_error(answer)["limit"] == "header_timeout"


def test_a_connection_that_never_sends_a_byte_is_closed_at_the_header_deadline(served: ServedExporter) -> None:
    with socket.create_connection((HOST, served.ingest_port), timeout=10) as sock:
        assert status_of(sock.recv(4096)) == 408


def test_a_body_that_never_arrives_is_a_408_at_the_body_deadline(served: ServedExporter) -> None:
    with socket.create_connection((HOST, served.ingest_port), timeout=10) as sock:
        sock.sendall(b"POST /v1/predictions HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n[")
        answer = recv_all(sock)
    assert status_of(answer) == 408
    assert json_error(answer)["limit"] == "body_timeout"
    assert limit_hits(served)["body_timeout"] >= 1


def test_no_answer_names_the_server_software(served: ServedExporter) -> None:
    for url in (f"{served.metrics_url}/metrics", f"{served.ingest_url}/healthz", f"{served.metrics_url}/nope"):
        response = requests.get(url, timeout=5)
        assert "server" not in {k.lower() for k in response.headers}, response.headers
    answer = exchange(served.ingest_port, b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"\r\nserver:" not in answer.lower()



def test_a_malformed_chunk_size_after_good_headers_gets_a_json_400(served: ServedExporter) -> None:
    """llhttp stops at `zz` once the app is already waiting for the body; the client still gets an answer."""
    for path in (b"/v1/predictions", b"/v1/labels"):
        answer = exchange(served.ingest_port, b"POST " + path + b" HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n"
                          b"Content-Type: application/json\r\n\r\nzz\r\n[]")
        assert status_of(answer) == 400, answer
        assert "malformed" in json_error(answer)["error"]
    assert served.alive()
