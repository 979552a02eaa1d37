"""The reference admin API on the metrics listener (docs/reference.md).

    POST /v1/models/<model>/reference:promote   {"version", "window", "actor", "reason"}
    POST /v1/models/<model>/reference:capture   {"version", "reset": true, "actor", "reason"}
    GET  /v1/models/<model>/reference[?version=V][&profile=1]

On the metrics listener, beside `POST /-/reload`, because that is the port a retrain job in the
cluster can reach (the ingest port is loopback by default). The two POSTs change what every alert
is judged against, so they need authentication, always: a verified client certificate or basic auth
of `--web.config.file`, or the bearer token of `exporter.admin_bearer_token_file`. There is no
unauthenticated loopback exception: in a pod, loopback is shared by every container (the model
server too), so it says nothing about who is asking. Unauthenticated: 403 naming the ways to
authenticate. The GET reads what the listener already serves (its pages and /metrics) and needs
what they need.

The listener (listener.py) checks credentials before the body is read and sets
``environ["mlmon.authenticated"]``; these routes only read that flag.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask, Response, request

from exporter.http.body import read_body
from exporter.http.reload import switch_lock
from exporter.http.responses import json_response
from exporter.profiles.promote import PromoteRefused
from exporter.state.reference_switch import describe, promote, reset_capture

if TYPE_CHECKING:
    from exporter.http.service import Exporter

AUTHENTICATED = "mlmon.authenticated"
MAX_BODY_BYTES = 16 * 1024  # a few short fields
NEEDS_AUTH = ("needs authentication: exporter.admin_bearer_token_file (Authorization: Bearer), or basic_auth_users "
              "or client_auth_type RequireAndVerifyClientCert in --web.config.file (docs/reference.md)")


def is_admin_path(path: str) -> bool:
    """Paths that change the reference (the listener admits the admin bearer token on them)."""
    return path.startswith("/v1/models/") and path.endswith(("/reference:promote", "/reference:capture"))


def _body() -> dict[str, Any]:
    raw = read_body(MAX_BODY_BYTES)
    try:
        data = orjson.loads(raw) if raw.strip() else {}
    except orjson.JSONDecodeError as error:
        raise PromoteRefused(400, f"the body is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise PromoteRefused(400, "the body must be a JSON object")
    return data


def register_reference_routes(app: Flask, exporter: Exporter) -> None:
    def admin(action: str, model: str) -> Response:
        if not request.environ.get(AUTHENTICATED):
            return json_response({"error": f"POST {request.path} {NEEDS_AUTH}"}, 403)
        switches = exporter.stats.references
        try:
            body = _body()
            with switch_lock:
                if action == "promote":
                    answer = promote(exporter.store, switches, exporter.config.state_dir(), model, body)
                else:
                    answer = reset_capture(exporter.store, switches, model, body)
        except PromoteRefused as refusal:
            return json_response({"error": refusal.message}, refusal.status)
        if exporter.snapshotter is not None:  # the switch is on disk before the answer says it happened
            exporter.snapshotter.save()
        return json_response(answer)

    @app.post("/v1/models/<model>/reference:promote")
    def reference_promote(model: str) -> Response:
        return admin("promote", model)

    @app.post("/v1/models/<model>/reference:capture")
    def reference_capture(model: str) -> Response:
        return admin("capture", model)

    @app.get("/v1/models/<model>/reference")
    def reference(model: str) -> Response:
        version = request.args.get("version")
        try:
            answer = describe(exporter.store, exporter.stats.references, model, version,
                              request.args.get("profile") in ("1", "true"))
        except PromoteRefused as refusal:
            return json_response({"error": refusal.message}, refusal.status)
        return json_response(answer)
