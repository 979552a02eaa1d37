"""The demo model server: `POST /predict/<model>` answers predictions and hands the batch to mlmon.

The request is columnar, `{"ids": [...], "features": {"amount": [...], ...}}`, and the answer is
`{"model_version": "v1", "predictions": [...]}`. After answering, the batch (ids, features and
predictions) goes to the sidecar's ingest API in the columnar shape (docs/ingest.md) from a
background thread: monitoring must never slow down or fail a prediction, so a full queue or a
sidecar that is down drops the batch and counts it instead.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from flask import Flask, Response, request

from demo_model.features import SCHEMAS, FeatureError, matrix

log = logging.getLogger("demo_model")


class Forwarder:
    """Posts batches to the sidecar from one thread, through a bounded queue."""

    def __init__(self, url: str, max_batches: int = 100, timeout: float = 2.0) -> None:
        self.url = url
        self.timeout = timeout
        self.batches: queue.Queue[dict[str, Any] | None] = queue.Queue(maxsize=max_batches)
        self.sent = 0
        self.dropped = 0
        self.failed = 0
        self._thread = threading.Thread(target=self._run, name="mlmon-forwarder", daemon=True)
        self._thread.start()

    def submit(self, batch: dict[str, Any]) -> None:
        try:
            self.batches.put_nowait(batch)
        except queue.Full:
            self.dropped += 1

    def _run(self) -> None:
        while (batch := self.batches.get()) is not None:
            body = json.dumps(batch).encode()
            post = urllib.request.Request(self.url, data=body, headers={"Content-Type": "application/json"})
            try:
                with urllib.request.urlopen(post, timeout=self.timeout) as response:
                    response.read()
                self.sent += 1
            except (urllib.error.URLError, OSError) as error:
                self.failed += 1
                if self.failed in (1, 10, 100) or self.failed % 1000 == 0:
                    log.warning("mlmon sidecar at %s unreachable (%s); %d batches lost so far", self.url, error, self.failed)
            finally:
                self.batches.task_done()

    def flush(self) -> None:
        """Wait until every queued batch has been posted or given up on."""
        self.batches.join()

    def close(self) -> None:
        self.batches.put(None)
        self._thread.join(timeout=5)


def load_models(directory: Path) -> dict[str, Any]:
    return {model: joblib.load(directory / f"{model}.joblib") for model in SCHEMAS}


def predict(model: str, estimator: Any, features: dict[str, list[Any]]) -> list[float]:
    x = matrix(model, features)
    if model == "fraud":
        return np.round(estimator.predict_proba(x)[:, 1], 6).tolist()
    return np.round(estimator.predict(x), 2).tolist()


def create_app(models: dict[str, Any], forwarder: Forwarder, model_version: str) -> Flask:
    app = Flask("demo_model")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")

    @app.post("/predict/<model>")
    def predict_batch(model: str) -> tuple[dict[str, Any], int]:
        if model not in models:
            return {"error": f"unknown model {model!r}; models: {', '.join(models)}"}, 404
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("features"), dict):
            return {"error": 'expected {"ids": [...], "features": {"column": [...]}}'}, 400
        try:
            predictions = predict(model, models[model], body["features"])
        except FeatureError as error:
            return {"error": str(error)}, 400
        batch = {"model": model, "model_version": model_version, "features": body["features"], "predictions": predictions}
        if isinstance(body.get("ids"), list) and len(body["ids"]) == len(predictions):
            batch["ids"] = body["ids"]
        forwarder.submit(batch)
        return {"model_version": model_version, "predictions": predictions}, 200

    return app
