"""The two HTTP faces of the sidecar: the ingest API and /metrics.

They are separate Flask apps on separate listeners so the ingest port can stay on loopback
(only the model server talks to it) while Prometheus scrapes the metrics port.
"""

from __future__ import annotations

import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from exporter.http.collector import collect
from exporter.http.drift_report import register_drift_routes
from exporter.http.exposition import OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE
from exporter.http.labels_http import register_label_routes
from exporter.http.responses import json_response
from exporter.http.service import Exporter


def _health_routes(app: Flask, exporter: Exporter) -> None:
    @app.get("/healthz")
    def healthz() -> Response:
        return json_response({"status": "ok"})

    @app.get("/readyz")
    def readyz() -> Response:
        return json_response({"status": "ready" if exporter.ready else "not ready"}, 200 if exporter.ready else 503)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        return json_response({"error": error.description}, error.code or 500)

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:  # never a bare 500 page; the process keeps serving
        app.logger.exception("unexpected error")
        return json_response({"error": f"internal error: {type(error).__name__}"}, 500)


def read_body(limit: int) -> bytes:
    """The request body; more than `limit` bytes is a 413 also when the body is sent chunked.

    werkzeug checks MAX_CONTENT_LENGTH up front only against a declared Content-Length: a chunked
    body is silently cut at the limit, and a cut batch would be half ingested. Reading one byte
    past the limit tells "exactly at the limit" from "cut".
    """
    if request.content_length is not None or not request.environ.get("wsgi.input_terminated"):
        return request.get_data(cache=False)
    body = request.input_stream.read(limit + 1)
    if len(body) > limit:
        raise RequestEntityTooLarge()
    return body


def create_ingest_app(exporter: Exporter) -> Flask:
    app = Flask("mlmon.ingest")
    app.config["MAX_CONTENT_LENGTH"] = exporter.config.exporter.max_request_bytes
    _health_routes(app, exporter)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> Response:
        exporter.stats.limit_hit("request_bytes")
        exporter.stats.request("predictions", 413, 0)
        limit = exporter.config.exporter.max_request_bytes
        return json_response({"error": f"request body exceeds max_request_bytes ({limit})"}, 413)

    @app.post("/v1/predictions")
    def predictions() -> Response:
        body = read_body(exporter.config.exporter.max_request_bytes)
        answer, status = exporter.ingest_predictions(body, request.content_type or "application/json")
        exporter.stats.request("predictions", status, len(body))
        return json_response(answer, status)

    register_label_routes(app, exporter)  # POST /v1/labels (model quality, docs/quality.md)
    register_drift_routes(app, exporter)  # GET /v1/models/<model>/drift (docs/drift.md)
    return app


def wants_openmetrics(accept: str) -> bool:
    return "application/openmetrics-text" in accept


def create_metrics_app(exporter: Exporter) -> Flask:
    app = Flask("mlmon.metrics")
    _health_routes(app, exporter)

    @app.get("/metrics")
    def metrics() -> Response:
        started = time.perf_counter()
        openmetrics = wants_openmetrics(request.headers.get("Accept", ""))
        text = collect(exporter.store, exporter.stats, time.time(), exporter.snapshotter).render(openmetrics)
        text += process_metrics(openmetrics)
        if openmetrics:
            text += "# EOF\n"
        exporter.stats.scrape_seconds = time.perf_counter() - started
        content_type = OPENMETRICS_CONTENT_TYPE if openmetrics else PROMETHEUS_CONTENT_TYPE
        return Response(text, content_type=content_type)

    @app.get("/")
    def index() -> Response:
        models = "".join(f"<li>{m.name} ({m.task})</li>" for m in exporter.config.models)
        html = f"<html><head><title>mlmon exporter</title></head><body><h1>mlmon exporter</h1>" \
               f"<p><a href='/metrics'>/metrics</a></p><ul>{models}</ul></body></html>"
        return Response(html, mimetype="text/html")

    return app


def process_metrics(openmetrics: bool) -> str:
    """The process_* and python_* metrics of prometheus_client's default registry (a handful of series)."""
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    if openmetrics:
        return generate_openmetrics(REGISTRY).decode().removesuffix("# EOF\n")
    return generate_latest(REGISTRY).decode()
