"""The two HTTP faces of the sidecar: the ingest API and /metrics.

They are separate Flask apps on separate listeners so the ingest port can stay on loopback
(only the model server talks to it) while Prometheus scrapes the metrics port.
"""

from __future__ import annotations

import time

from flask import Flask, Response, request
from werkzeug.exceptions import HTTPException, RequestEntityTooLarge

from exporter.http.body import read_body
from exporter.http.collector import collect
from exporter.http.drift_report import register_drift_routes
from exporter.http.exposition import OPENMETRICS_CONTENT_TYPE, PROMETHEUS_CONTENT_TYPE
from exporter.http.labels_http import register_label_routes
from exporter.http.pages import register_page_routes
from exporter.http.reference_http import register_reference_routes
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


def create_ingest_app(exporter: Exporter) -> Flask:
    app = Flask("mlmon.ingest")
    app.config["MAX_CONTENT_LENGTH"] = exporter.config.exporter.max_request_bytes
    _health_routes(app, exporter)

    @app.errorhandler(RequestEntityTooLarge)
    def too_large(error: RequestEntityTooLarge) -> Response:
        exporter.stats.limit_hit("request_bytes")
        exporter.stats.request("labels" if request.path == "/v1/labels" else "predictions", 413, 0)
        limit = exporter.config.exporter.max_request_bytes
        return json_response(
            {"error": f"request body exceeds exporter.max_request_bytes ({limit})", "limit": "request_bytes"}, 413
        )

    @app.post("/v1/predictions")
    def predictions() -> Response:
        body = read_body(exporter.config.exporter.max_request_bytes)
        answer, status = exporter.ingest_predictions(
            body, request.content_type or "application/json", request.headers.get("Idempotency-Key")
        )
        exporter.stats.request("predictions", status, len(body))
        return json_response(answer, status)

    def serving(model: str, version: str | None = None) -> Response:
        body = read_body(exporter.config.exporter.max_request_bytes)
        answer, status = exporter.ingest_serving(body, model, version)
        exporter.stats.request("predictions", status, len(body))
        return json_response(answer, status)

    # Serving platforms' bodies (docs/ingest.md#serving-platforms): request and response in one body.
    app.post("/v2/models/<model>/infer", endpoint="oip_infer")(serving)
    app.post("/v2/models/<model>/versions/<version>/infer", endpoint="oip_version_infer")(serving)
    app.post("/v1/models/<model>:predict", endpoint="kserve_v1_predict")(serving)

    @app.post("/v1/cloudevents")
    def cloudevents() -> Response:  # KServe's inference logger: logger.url points here
        body = read_body(exporter.config.exporter.max_request_bytes)
        headers = {k.lower(): v for k, v in request.headers.items() if k.lower().startswith("ce-")}
        answer, status = exporter.ingest_cloudevent(body, headers)
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

    register_page_routes(app, exporter)  # GET / and /models/<model>: the pages (docs/pages.md)
    register_reference_routes(app, exporter)  # /v1/models/<model>/reference[:promote|:capture] (docs/reference.md)

    return app


def process_metrics(openmetrics: bool) -> str:
    """The process_* and python_* metrics of prometheus_client's default registry (a handful of series)."""
    from prometheus_client import REGISTRY, generate_latest
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics

    if openmetrics:
        return generate_openmetrics(REGISTRY).decode().removesuffix("# EOF\n")
    return generate_latest(REGISTRY).decode()
