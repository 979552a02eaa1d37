"""The listener's body reading, driven directly over ASGI messages (no sockets): limits while reading."""

from __future__ import annotations

import asyncio
from typing import Any

from exporter.http.listener import Listener
from exporter.http.server import load_profiles
from exporter.http.service import Exporter
from exporter.state.store import StateStore
from tests.conftest import build_config


def listener_for(toy_data: dict[str, Any], toy_dir, **limits: Any) -> Listener:
    toy_data["exporter"].update(limits)
    config = build_config(toy_data, base_dir=toy_dir)
    exporter = Exporter(config, StateStore(config, load_profiles(config)))
    return Listener("ingest", exporter, app=lambda environ, start_response: [], threads=1)


def scope(length: int) -> dict[str, Any]:
    return {"type": "http", "path": "/v1/predictions", "method": "POST",
            "headers": [(b"content-length", str(length).encode())]}


def test_a_body_beyond_max_inflight_request_bytes_is_a_503_and_the_bytes_are_given_back(toy_data, toy_dir) -> None:
    listener = listener_for(toy_data, toy_dir, max_request_bytes=4096, max_inflight_request_bytes=5000)

    async def scenario() -> tuple[list[dict], Any]:
        stalled = asyncio.Event()

        async def slow_receive() -> dict[str, Any]:  # 3,000 bytes, then nothing until released
            if not stalled.is_set():
                stalled.set()
                return {"type": "http.request", "body": b"x" * 3000, "more_body": True}
            await asyncio.sleep(3600)
            raise AssertionError("unreachable")

        async def second_receive() -> dict[str, Any]:
            return {"type": "http.request", "body": b"y" * 3000, "more_body": False}

        answers: list[dict] = []

        async def send(message: dict) -> None:
            answers.append(message)

        first = asyncio.create_task(listener._read_body(scope(4000), slow_receive, send, ()))
        await stalled.wait()
        await asyncio.sleep(0)  # the first body's 3,000 bytes are now held
        second = await listener._read_body(scope(3000), second_receive, send, ())
        held_meanwhile = listener.inflight_bytes
        first.cancel()
        try:
            await first
        except asyncio.CancelledError:
            pass
        return answers, (second, held_meanwhile)

    answers, (second, held_meanwhile) = asyncio.run(scenario())
    assert second is None and answers[0]["status"] == 503
    assert (b"retry-after", b"1") in answers[0]["headers"]
    assert b'"limit":"inflight_request_bytes"' in answers[1]["body"]
    assert held_meanwhile == 3000 and listener.inflight_bytes == 0
    assert listener.exporter.stats.limits["inflight_request_bytes"] == 1


def test_failed_accepts_at_the_fd_limit_log_one_line_a_minute_not_a_traceback_each() -> None:
    import logging

    from exporter.http.server import AcceptErrorFilter

    accept_filter = AcceptErrorFilter()
    passed = []
    for _ in range(1000):
        try:
            raise OSError(24, "Too many open files")
        except OSError as error:
            record = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "socket.accept() out of system resource",
                                       (), (type(error), error, error.__traceback__))
        if accept_filter.filter(record):
            passed.append(record)
    assert len(passed) == 1 and passed[0].exc_info is None
    other = logging.LogRecord("asyncio", logging.ERROR, __file__, 1, "something else", (), None)
    assert accept_filter.filter(other)
