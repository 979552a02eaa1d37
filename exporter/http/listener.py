"""One listener's front door, between uvicorn and a Flask app: authentication, then the body, then Flask.

Order matters: credentials are checked from the headers before a single body byte is read (a
refused client cannot make the sidecar buffer anything), and the whole body is read here, on
the event loop, with the size limit enforced while reading and a deadline for the whole body.
Only then does a worker thread (a bounded pool per listener, wsgi_pool.py) run Flask, with a body
already in memory: a slow client never holds a worker thread, and metrics and ingest never wait
for each other's threads.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable

import orjson

from exporter.http.priority import ScrapePriority
from exporter.http.raw_answers import Send, send_error, send_json
from exporter.http.reference_http import is_admin_path
from exporter.http.web_config import TLSSettings, TokenFile, WebConfig, WebConfigError, WebConfigSource
from exporter.http.wsgi_pool import WsgiPool

if TYPE_CHECKING:
    from exporter.config.model import ExporterConfig
    from exporter.http.service import Exporter

log = logging.getLogger("mlmon")

# The metrics listener serves GETs; a body there is at most a few bytes, and the listener may face
# the whole cluster, so it buffers little.
METRICS_MAX_BODY_BYTES = 64 * 1024
# Probes answer only "ok"/"ready"; kubelet cannot send credentials, so they stay open.
OPEN_PATHS = frozenset({"/healthz", "/readyz"})
INGEST_ENDPOINTS = {"/v1/predictions": "predictions", "/v1/labels": "labels"}
RELOAD_PATH = "/-/reload"


def _is_admin(path: str) -> bool:
    """Paths the admin bearer token admits: reload and the reference switches (reference_http.py)."""
    return path == RELOAD_PATH or is_admin_path(path)


@dataclass
class Listener:
    """An ASGI app: the limits and credentials of one port in front of its Flask app."""

    name: str  # "metrics" or "ingest"
    exporter: Exporter
    app: Any  # a WSGI app (Flask)
    threads: int
    web: WebConfigSource | None = None
    token: TokenFile | None = None
    reload: Callable[[], tuple[bool, str]] | None = None  # POST /-/reload, metrics listener only
    admin_token: TokenFile | None = None  # exporter.admin_bearer_token_file: admits admin paths only (metrics)
    priority: ScrapePriority | None = None  # shared by both listeners: scrapes go first (priority.py)
    fd_cap: int | None = None  # what the open-files limit leaves for this listener's connections
    inflight_bytes: int = 0
    wsgi: WsgiPool = field(init=False)

    def __post_init__(self) -> None:
        self.wsgi = WsgiPool(self.app, self.threads, self.name)

    @property
    def limits(self) -> ExporterConfig:
        return self.exporter.config.exporter  # read per use, so a reload's new limits apply at once

    @property
    def max_connections(self) -> int:
        """The configured cap, lowered to fit the open-files limit: refusing beats running out of fds."""
        configured = self.limits.max_connections
        return configured if self.fd_cap is None else min(configured, self.fd_cap)

    def hit(self, limit: str) -> None:
        self.exporter.stats.limit_hit(limit)

    def tls_settings(self) -> TLSSettings | None:
        if self.web is None:
            return None
        try:
            return self.web.current().tls
        except WebConfigError:
            return None

    def max_body_bytes(self) -> int:
        return self.limits.max_request_bytes if self.name == "ingest" else METRICS_MAX_BODY_BYTES

    # -- ASGI ---------------------------------------------------------------------------------
    async def __call__(self, scope: dict[str, Any], receive: Callable[[], Any], send: Send) -> None:
        if scope["type"] != "http":
            return
        try:
            web = self.web.current() if self.web is not None else None
        except WebConfigError as error:
            await send_error(send, 500, str(error))
            return
        extra = web.headers if web is not None else ()
        path = scope["path"]
        authorization = next((v for k, v in scope["headers"] if k == b"authorization"), None)
        authenticated = False
        if self.admin_token is not None and _is_admin(path) and (authorization or b"")[:7].lower() == b"bearer ":
            if not self.admin_token.check(authorization):
                await self._answer(send, path, 401, "wrong admin bearer token", extra=extra + ((b"www-authenticate", b"Bearer"),))
                return
            authenticated = True
        elif path not in OPEN_PATHS:
            verdict = await self._authenticate(web, authorization)
            if verdict is not None and not verdict[0]:
                await self._answer(send, path, 401, verdict[1], extra=extra + ((b"www-authenticate", verdict[2]),))
                return
            authenticated = verdict is not None or (web is not None and web.requires_client_cert)
        if path == RELOAD_PATH and self.reload is not None:
            await self._reload(scope, send, extra, authenticated)
            return
        read = await self._read_body(scope, receive, send, extra)
        if read is None:
            return
        body, held = read
        scope = {**scope, "mlmon.authenticated": authenticated}
        try:
            if self.priority is None:
                await self._run_app(scope, receive, send, body, extra)
            elif self.name == "metrics" and path == "/metrics":
                async with self.priority.scrape():
                    await self._run_app(scope, receive, send, body, extra)
            else:
                if self.name == "ingest":
                    await self.priority.before_ingest()
                await self._run_app(scope, receive, send, body, extra)
        finally:
            self.inflight_bytes -= held

    async def _authenticate(self, web: WebConfig | None, authorization: bytes | None) -> tuple[bool, str, bytes] | None:
        """None when no credentials are configured; else (ok, reason, WWW-Authenticate challenge)."""
        users = web.users if web is not None else {}
        if not users and self.token is None:
            return None
        scheme = (authorization or b"").split(b" ", 1)[0].lower()
        if self.token is not None and (scheme == b"bearer" or not users):
            return self.token.check(authorization), "missing or wrong bearer token", b"Bearer"
        assert self.web is not None and web is not None
        ok = await asyncio.to_thread(self.web.check_basic_auth, web, authorization)  # bcrypt is slow on purpose
        return ok, "missing or wrong basic auth credentials", b'Basic realm="mlmon"'

    async def _reload(self, scope: dict[str, Any], send: Send, extra: tuple[tuple[bytes, bytes], ...],
                      authenticated: bool) -> None:
        if scope["method"] not in ("POST", "PUT"):
            await send_error(send, 405, "use POST /-/reload", headers=extra)
            return
        if not authenticated:
            await send_error(send, 403, "POST /-/reload needs authentication: basic_auth_users or "
                                        "client_auth_type RequireAndVerifyClientCert in --web.config.file, or "
                                        "exporter.admin_bearer_token_file", headers=extra)
            return
        assert self.reload is not None
        loop = asyncio.get_running_loop()
        ok, message = await loop.run_in_executor(self.wsgi.executor, self.reload)
        if ok:
            await send_json(send, 200, orjson.dumps({"status": "reloaded", "detail": message}), extra)
        else:
            await send_error(send, 500, message, headers=extra)

    async def _read_body(self, scope: dict[str, Any], receive: Callable[[], Any], send: Send,
                         extra: tuple[tuple[bytes, bytes], ...]) -> tuple[bytes, int] | None:
        """(body, bytes held against max_inflight_request_bytes), or None when already answered."""
        path, limit, limits = scope["path"], self.max_body_bytes(), self.limits
        declared = next((v for k, v in scope["headers"] if k == b"content-length"), None)
        if declared is not None and declared.isdigit() and int(declared) > limit:
            self.hit("request_bytes")
            await self._answer(send, path, 413, f"request body exceeds max_request_bytes ({limit})", "request_bytes", extra)
            return None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + limits.body_timeout
        parts: list[bytes] = []
        size = held = 0
        try:
            while True:
                message = await asyncio.wait_for(receive(), max(deadline - loop.time(), 0.001))
                if message["type"] == "http.disconnect":
                    self.inflight_bytes -= held
                    return None
                chunk = message.get("body", b"")
                size += len(chunk)
                if size > limit:
                    self.hit("request_bytes")
                    raise _Refused(413, f"request body exceeds max_request_bytes ({limit})", "request_bytes")
                if self.inflight_bytes + len(chunk) > limits.max_inflight_request_bytes:
                    self.hit("inflight_request_bytes")
                    raise _Refused(503, "too many request bytes in flight (max_inflight_request_bytes="
                                        f"{limits.max_inflight_request_bytes}); retry shortly", "inflight_request_bytes")
                self.inflight_bytes += len(chunk)
                held += len(chunk)
                parts.append(chunk)
                if not message.get("more_body", False):
                    return b"".join(parts), held
        except asyncio.TimeoutError:
            self.hit("body_timeout")
            refusal = _Refused(408, f"request body not received within body_timeout ({limits.body_timeout} s)",
                               "body_timeout")
        except _Refused as error:
            refusal = error
        except BaseException:  # cancelled (shutdown deadline): give the bytes back before leaving
            self.inflight_bytes -= held
            raise
        self.inflight_bytes -= held
        retry = ((b"retry-after", b"1"),) if refusal.status == 503 else ()
        await self._answer(send, path, refusal.status, refusal.message, refusal.limit, extra + retry)
        return None

    async def _run_app(self, scope: dict[str, Any], receive: Callable[[], Any], send: Send, body: bytes,
                       extra: tuple[tuple[bytes, bytes], ...]) -> None:
        # Flask sees a plain body with its length, whatever the framing on the wire was.
        headers = [(k, v) for k, v in scope["headers"] if k not in (b"content-length", b"transfer-encoding")]
        headers.append((b"content-length", str(len(body)).encode()))
        try:
            await self.wsgi.respond({**scope, "headers": headers}, body, send, extra)
        except Exception:  # Flask answers its own errors; this is the bridge failing, never a text 500
            log.exception("%s listener: request failed outside the app", self.name)
            await send_error(send, 500, "internal error", headers=extra)

    async def _answer(self, send: Send, path: str, status: int, message: str, limit: str | None = None,
                      extra: tuple[tuple[bytes, bytes], ...] = ()) -> None:
        if self.name == "ingest" and path in INGEST_ENDPOINTS:
            self.exporter.stats.request(INGEST_ENDPOINTS[path], status, 0)
        await send_error(send, status, message, limit, headers=extra)


class _Refused(Exception):
    def __init__(self, status: int, message: str, limit: str) -> None:
        super().__init__(message)
        self.status, self.message, self.limit = status, message, limit
