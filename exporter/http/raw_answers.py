"""JSON error answers written by the server layer itself, below Flask (limits, auth, bad HTTP).

They look like the apps' own errors (`{"error": ..., "limit": ...}`) so a client handles one shape.
"""

from __future__ import annotations

import http
from typing import Any, Awaitable, Callable

import orjson

Send = Callable[[dict[str, Any]], Awaitable[None]]


def error_body(message: str, limit: str | None = None) -> bytes:
    payload: dict[str, Any] = {"error": message}
    if limit is not None:
        payload["limit"] = limit
    return orjson.dumps(payload)


def raw_error(status: int, message: str, limit: str | None = None) -> bytes:
    """A whole HTTP/1.1 response that closes the connection, for writing straight to a transport."""
    body = error_body(message, limit)
    phrase = http.HTTPStatus(status).phrase
    head = (
        f"HTTP/1.1 {status} {phrase}\r\ncontent-type: application/json\r\n"
        f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
    )
    return head.encode("ascii") + body


async def send_error(
    send: Send, status: int, message: str, limit: str | None = None,
    headers: tuple[tuple[bytes, bytes], ...] = (), close: bool = True,
) -> None:
    """An ASGI error answer; `close` asks the server to close the connection after it (unread body)."""
    await send_json(send, status, error_body(message, limit), headers, close)


async def send_json(
    send: Send, status: int, body: bytes, headers: tuple[tuple[bytes, bytes], ...] = (), close: bool = False,
) -> None:
    out = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()), *headers]
    if close:
        out.append((b"connection", b"close"))
    await send({"type": "http.response.start", "status": status, "headers": out})
    await send({"type": "http.response.body", "body": body, "more_body": False})
