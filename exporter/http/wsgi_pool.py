"""Flask (WSGI) behind the event loop: each request runs to completion in a bounded thread pool.

The body is already in memory (listener.py read it) and mlmon's answers are never streamed, so
a request crosses between the loop thread and a worker exactly twice: in with the environ, out
with the whole answer. A general WSGI bridge (a2wsgi's) crosses once per message (body, start,
each chunk, end); under a busy GIL every crossing can wait a 5 ms switch interval, which is what
a scrape's p99 is made of. The environ itself is built by a2wsgi, which keeps it standard.
"""

from __future__ import annotations

import asyncio
import io
from concurrent.futures import ThreadPoolExecutor
from typing import Any, Callable

from a2wsgi.wsgi import build_environ

from exporter.http.raw_answers import Send

WSGIApp = Callable[[dict[str, Any], Callable[..., Any]], Any]


class WsgiPool:
    def __init__(self, app: WSGIApp, threads: int, name: str) -> None:
        self.app = app
        self.executor = ThreadPoolExecutor(max_workers=threads, thread_name_prefix=f"mlmon-{name}")

    async def respond(self, scope: dict[str, Any], body: bytes, send: Send,
                      extra_headers: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        environ = build_environ(scope, io.BytesIO(body))  # type: ignore[arg-type]
        environ["wsgi.input_terminated"] = True
        # Whether the listener admitted credentials (reference_http.py's admin routes read it).
        environ["mlmon.authenticated"] = bool(scope.get("mlmon.authenticated"))
        loop = asyncio.get_running_loop()
        status, headers, payload = await loop.run_in_executor(self.executor, self._call, environ)
        out = [(k, v) for k, v in headers if k != b"content-length"]
        out += [(b"content-length", str(len(payload)).encode()), *extra_headers]
        await send({"type": "http.response.start", "status": status, "headers": out})
        await send({"type": "http.response.body", "body": payload, "more_body": False})

    def _call(self, environ: dict[str, Any]) -> tuple[int, list[tuple[bytes, bytes]], bytes]:
        answer: dict[str, Any] = {}
        written: list[bytes] = []

        def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Callable[[bytes], None]:
            answer["status"] = int(status.split(" ", 1)[0])
            answer["headers"] = [(k.strip().lower().encode("latin-1"), v.strip().encode("latin-1")) for k, v in headers]
            return written.append

        iterable = self.app(environ, start_response)
        try:
            written.extend(iterable)
        finally:
            close = getattr(iterable, "close", None)
            if close is not None:
                close()
        return answer["status"], answer["headers"], b"".join(written)
