"""One HTTP POST to the sidecar, and what became of it.

The outcome says whether the body can have been applied. Only a request that provably never
reached the exporter's handler is safe to send again: no connection, the body not fully written,
or an answer meaning "not now" (429, 502, 503, 504). After the whole body was written, a timeout
or a reset may hide a request the exporter did count, so it is ``unconfirmed`` and never re-sent:
re-sending could count the same predictions twice.

A new connection per request: batches go out at most a few times a second, and a kept-alive
connection that the server closed while idle fails in a way that cannot be told apart from a
request that was received (the classic stale keep-alive race).
"""

from __future__ import annotations

import http.client
import json
import ssl
import urllib.parse
from typing import Any, NamedTuple, Optional

RETRY_STATUSES = frozenset({429, 502, 503, 504})
USER_AGENT = "mlmon-client/0.1"


class Outcome(NamedTuple):
    kind: str      # ok | retry | too_large | rejected | unconfirmed
    status: int    # the HTTP status, 0 when no answer came
    answer: dict   # the JSON answer, {} when there was none
    detail: str    # for the log


def classify(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if status in RETRY_STATUSES:
        return "retry"
    if status == 413:
        return "too_large"
    if 400 <= status < 500:
        return "rejected"  # bad data, unknown model, wrong token: sending it again cannot help
    return "unconfirmed"  # a 5xx: the exporter may have applied part of it


class Endpoint:
    """The sidecar's ingest listener: base URL, timeout, optional bearer token file and TLS context."""

    def __init__(
        self, url: str, timeout: float, token_file: Optional[str] = None, ssl_context: Optional[ssl.SSLContext] = None
    ) -> None:
        parts = urllib.parse.urlsplit(url if "://" in url else f"http://{url}")
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"mlmon client: expected an http(s) URL of the ingest listener, got {url!r}")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        # The base may be given with or without the route (".../v1/predictions" is a common paste).
        base = parts.path.rstrip("/")
        for route in ("/v1/predictions", "/v1/labels"):
            base = base.removesuffix(route)
        self.prefix = base
        self.timeout = timeout
        self.token_file = token_file
        self.ssl_context = ssl_context

    def _connection(self, timeout: float) -> http.client.HTTPConnection:
        if self.https:
            return http.client.HTTPSConnection(self.host, self.port, timeout=timeout, context=self.ssl_context)
        return http.client.HTTPConnection(self.host, self.port, timeout=timeout)

    def _token(self) -> Optional[str]:
        # Read at every request: mounted tokens (Kubernetes secrets, projected tokens) rotate in place.
        if self.token_file is None:
            return None
        with open(self.token_file, encoding="utf-8") as handle:
            return handle.read().strip()

    def post(self, route: str, body: bytes, timeout: Optional[float] = None) -> Outcome:
        """POST a JSON body to `route` (e.g. "/v1/predictions"); never raises."""
        try:
            token = self._token()
        except OSError as error:  # a token being rotated or not mounted yet: nothing was sent
            return Outcome("retry", 0, {}, f"cannot read token file: {error}")
        connection = self._connection(self.timeout if timeout is None else max(timeout, 0.001))
        try:
            try:
                connection.connect()
                connection.putrequest("POST", self.prefix + route, skip_accept_encoding=True)
                connection.putheader("Content-Type", "application/json")
                connection.putheader("Content-Length", str(len(body)))
                connection.putheader("User-Agent", USER_AGENT)
                if token:
                    connection.putheader("Authorization", f"Bearer {token}")
                connection.endheaders(body)
            except (OSError, http.client.HTTPException) as error:
                return Outcome("retry", 0, {}, f"not delivered: {error!r}")
            try:
                response = connection.getresponse()
                data = response.read()
            except (OSError, http.client.HTTPException) as error:
                return Outcome("unconfirmed", 0, {}, f"no answer: {error!r}")
        finally:
            connection.close()
        return Outcome(classify(response.status), response.status, _json(data), data[:200].decode("utf-8", "replace"))


def _json(data: bytes) -> dict:
    try:
        answer: Any = json.loads(data)
    except ValueError:
        return {}
    return answer if isinstance(answer, dict) else {}
