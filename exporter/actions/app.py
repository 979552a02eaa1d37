"""The HTTP face of `mlmon act` (a Flask app behind the project's uvicorn glue, serve.py).

    POST /v1/alerts/<action>   Alertmanager's webhook for one action (what the generated config uses)
    POST /v1/alerts            a webhook evaluated against every action (a hand-written route)
    GET  /actions              the last runs, newest first (?action=NAME, ?limit=N): who triggered what;
                               with alerting.act.redis, every replica's
    GET  /metrics              mlmon_action_* (docs/metrics.md)
    GET  /healthz, /readyz     probes
"""

from __future__ import annotations

from flask import Flask, Response, request
from prometheus_client import CONTENT_TYPE_LATEST

from exporter.actions.receiver import ActReceiver
from exporter.http.responses import json_response

MAX_LIMIT = 1000


def create_act_app(receiver: ActReceiver) -> Flask:
    app = Flask("mlmon-act")

    def webhook(action: str | None) -> Response:
        status, answer = receiver.receive(request.get_data(cache=False), action, request.remote_addr or "")
        return json_response(answer, status)

    @app.post("/v1/alerts")
    def all_actions() -> Response:
        return webhook(None)

    @app.post("/v1/alerts/<action>")
    def one_action(action: str) -> Response:
        return webhook(action)

    @app.get("/actions")
    def recent() -> Response:
        limit = request.args.get("limit", "100")
        if not limit.isdigit() or not 1 <= int(limit) <= MAX_LIMIT:
            return json_response({"error": f"limit must be an integer from 1 to {MAX_LIMIT}"}, 400)
        action = request.args.get("action")
        return json_response({"dry_run": receiver.dry_run, **receiver.runs.listing(action, int(limit))})

    @app.get("/metrics")
    def metrics() -> Response:
        return Response(receiver.metrics.render(), mimetype=None, content_type=CONTENT_TYPE_LATEST)

    @app.get("/healthz")
    def healthz() -> Response:
        return Response("ok\n", mimetype="text/plain")

    @app.get("/readyz")
    def readyz() -> Response:
        return Response("ready\n", mimetype="text/plain")

    @app.get("/")
    def index() -> Response:
        names = ", ".join(receiver.actions) or "none"
        return Response(f"mlmon act: actions {names}; see /actions and /metrics\n", mimetype="text/plain")

    @app.errorhandler(404)
    def not_found(_error: Exception) -> Response:
        return json_response({"error": "not found: POST /v1/alerts/<action>, GET /actions, GET /metrics"}, 404)

    @app.errorhandler(405)
    def not_allowed(_error: Exception) -> Response:
        return json_response({"error": "method not allowed"}, 405)

    return app
