"""The connection-level limits uvicorn leaves to its user: a cap, a header deadline, a header size.

uvicorn's httptools protocol (llhttp, the parser of Node.js) does the HTTP parsing and the
chunked decoding. Out of the box it keeps a connection that never sends a byte open forever and
lets a client trickle header bytes forever (its keep-alive timer only runs between requests), and
it has no limit on header size. This subclass adds exactly those three things and answers
malformed requests with JSON instead of text. Everything runs on the event loop thread, so no
locks are needed here.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from exporter.http.raw_answers import raw_error
from exporter.http.web_config import san_allowed

if TYPE_CHECKING:
    from exporter.http.listener import Listener


class GuardedProtocol(HttpToolsProtocol):
    """One HTTP/1.1 connection of a mlmon listener."""

    def __init__(self, *args: Any, listener: Listener, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.listener = listener
        self.header_deadline: asyncio.TimerHandle | None = None
        self.awaiting_headers = True
        self.header_bytes = 0
        self.parsed_header_bytes = 0
        self.message_started = False
        self.headers_too_large = False
        self.eof = False
        self.body_bytes = 0
        self.refused = False

    # -- connection ---------------------------------------------------------------------------
    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        cap = self.listener.max_connections
        if len(self.connections) >= cap:
            # Refused at once: an idle or slow connection beyond the cap costs nothing but its fd.
            self.refused = True
            self.transport = transport
            self.listener.hit("connections")
            transport.write(raw_error(503, f"too many connections (max_connections={cap})", "connections"))
            transport.close()
            return
        super().connection_made(transport)
        tls = self.listener.tls_settings()
        if tls is not None and tls.client_allowed_sans is not None:
            if not san_allowed(transport.get_extra_info("peercert"), tls.client_allowed_sans):
                transport.close()  # the toolkit ends the handshake; here the connection, before any request
                return
        self._arm_header_deadline()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_header_deadline()
        if self.refused:
            return
        super().connection_lost(exc)

    def data_received(self, data: bytes) -> None:
        if self.refused:
            return
        super().data_received(data)
        # Bytes of a request whose headers are still incomplete after this chunk are header bytes;
        # a chunk that completes the headers may carry any amount of body after them.
        if self.awaiting_headers and not self.transport.is_closing():
            self.header_bytes += len(data)
            limit = self.listener.limits.max_header_bytes
            if self.header_bytes > limit:
                self.listener.hit("header_bytes")
                self._refuse(431, f"request headers exceed max_header_bytes ({limit})", "header_bytes")

    def eof_received(self) -> bool | None:
        """The client half-closed (e.g. `nc -q1`): answer what can still be answered, then close.

        uvicorn closes at once on EOF, so a client that sends and then shuts its side got no
        answer at all, not even for a request that can never complete.
        """
        if self.refused:
            return None
        cycle = self.cycle
        if cycle is not None and not cycle.response_complete:
            if not cycle.more_body:
                self.eof = True
                return True  # the request is whole and its answer is coming: keep the write side open
            limit = self.listener.max_body_bytes()
            if not cycle.response_started and self.body_bytes > limit:
                self.listener.hit("request_bytes")
                self.transport.write(raw_error(413, f"request body exceeds max_request_bytes ({limit})", "request_bytes"))
            elif not cycle.response_started:
                self.transport.write(raw_error(400, "the request body ended before its declared end (connection "
                                                    "closed mid-body)"))
            cycle.disconnected = True
            cycle.message_event.set()
        elif self.message_started:
            self.transport.write(raw_error(400, "the connection closed before the request headers were complete"))
        return None

    # -- parser callbacks ---------------------------------------------------------------------
    def on_message_begin(self) -> None:
        super().on_message_begin()
        self.awaiting_headers = True
        self.message_started = True
        self.header_bytes = self.parsed_header_bytes = 0
        if self.header_deadline is None:  # a keep-alive request: its clock starts at its first byte
            self._arm_header_deadline()

    def on_url(self, url: bytes) -> None:
        self._count_parsed(len(url))
        super().on_url(url)

    def on_header(self, name: bytes, value: bytes) -> None:
        self._count_parsed(len(name) + len(value) + 4)
        super().on_header(name, value)

    def on_body(self, body: bytes) -> None:
        self.body_bytes += len(body)
        super().on_body(body)

    def on_headers_complete(self) -> None:
        self.awaiting_headers = self.message_started = False
        self.body_bytes = 0
        self._disarm_header_deadline()
        super().on_headers_complete()

    def on_response_complete(self) -> None:
        super().on_response_complete()
        if self.eof and not self.transport.is_closing():
            self.transport.close()

    def send_400_response(self, msg: str) -> None:
        if self.headers_too_large:
            limit = self.listener.limits.max_header_bytes
            self._refuse(431, f"request headers exceed max_header_bytes ({limit})", "header_bytes")
        else:
            self._refuse(400, f"malformed HTTP request: {msg}", None)

    # -- helpers ------------------------------------------------------------------------------
    def _count_parsed(self, size: int) -> None:
        """Headers that arrive in one large chunk are counted here, as the parser hands them over."""
        self.parsed_header_bytes += size
        if self.parsed_header_bytes > self.listener.limits.max_header_bytes and not self.headers_too_large:
            self.headers_too_large = True
            self.listener.hit("header_bytes")
            raise ValueError("header_bytes")  # stops the parser; uvicorn turns it into send_400_response

    def _arm_header_deadline(self) -> None:
        self._disarm_header_deadline()
        seconds = self.listener.limits.header_timeout
        self.header_deadline = self.loop.call_later(seconds, self._header_timeout, seconds)

    def _disarm_header_deadline(self) -> None:
        if self.header_deadline is not None:
            self.header_deadline.cancel()
            self.header_deadline = None

    def _header_timeout(self, seconds: int) -> None:
        self.header_deadline = None
        if self.transport.is_closing():
            return
        self.listener.hit("header_timeout")
        if self.cycle is None or self.cycle.response_complete:
            self._refuse(408, f"request headers not complete within header_timeout ({seconds} s)", "header_timeout")
        else:
            self.transport.close()  # a pipelined request stalled behind one in progress: no answer to interleave

    def _refuse(self, status: int, message: str, limit: str | None) -> None:
        cycle = self.cycle
        # Also mid-body (a malformed chunk size after good headers): the app has not answered yet, so
        # this answer is the request's; the app sees a disconnect and its own answer goes nowhere.
        if cycle is None or cycle.response_complete or not cycle.response_started:
            self.transport.write(raw_error(status, message, limit))
            if cycle is not None and not cycle.response_complete:
                cycle.disconnected = True
                cycle.message_event.set()
        self.transport.close()
