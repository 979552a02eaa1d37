"""GET / (status) and GET /models/<model> (drift) on the metrics listener."""

from __future__ import annotations

import time
from typing import Any

from flask import Flask, Response, request

from exporter.config.model import format_duration, parse_duration
from exporter.http.pages.html import esc, page
from exporter.http.pages.model_data import model_document
from exporter.http.pages.model_page import render_model_page
from exporter.http.pages.status_page import render_status_page

NAV = [("/", "status"), ("/metrics", "/metrics")]


def _html(text: str, status: int = 200) -> Response:
    return Response(text, status=status, mimetype="text/html")


def _problem(message: str, status: int) -> Response:
    return _html(page("mlmon: " + message, f"<h1>{esc(message)}</h1><p><a href=\"/\">back to the status page</a></p>", NAV),
                 status)


def register_page_routes(app: Flask, exporter: Any) -> None:
    @app.get("/")
    def status() -> Response:
        return _html(render_status_page(exporter.config, exporter.store, time.time()))

    @app.get("/models/<model>")
    def model_page(model: str) -> Response:
        config = exporter.config.model(model)
        if config is None:
            return _problem(f"no model named {model!r}", 404)
        windows = config.drift.windows
        text = request.args.get("window", format_duration(windows[0]))
        try:
            seconds = parse_duration(text)
        except ValueError as error:
            return _problem(str(error), 400)
        if seconds not in windows:
            known = ", ".join(format_duration(w) for w in windows)
            return _problem(f"window {text!r} is not configured for {model!r}; windows: {known}", 400)
        wanted = request.args.get("version")
        states = [s for s in exporter.store.snapshot() if s.model.name == model and wanted in (None, s.version)]
        if wanted is not None and not states:
            return _problem(f"no version {wanted!r} of {model!r} has been seen", 404)
        doc = model_document(exporter.config, config, states, seconds, time.time())
        return _html(render_model_page(doc, NAV, version=wanted))
