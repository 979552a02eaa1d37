"""The demo model server: `POST /predict/<model>` answers predictions and hands the batch to mlmon.

The request is columnar, `{"ids": [...], "features": {"amount": [...], ...}}`, and the answer is
`{"model_version": "v1", "predictions": [...]}`. After answering, the batch (ids, features and
predictions) goes to the sidecar through mlmon_client (clients/python, docs/clients.md): a
bounded buffer and a background sender, so monitoring never slows down or fails a prediction; a
sidecar that is down costs dropped batches, counted by the client.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import joblib
import numpy as np
from flask import Flask, Response, request

from demo_model.features import SCHEMAS, FeatureError, matrix
from mlmon_client import Client


def load_models(directory: Path) -> dict[str, Any]:
    return {model: joblib.load(directory / f"{model}.joblib") for model in SCHEMAS}


def predict(model: str, estimator: Any, features: dict[str, list[Any]]) -> list[float]:
    x = matrix(model, features)
    if model == "fraud":
        return np.round(estimator.predict_proba(x)[:, 1], 6).tolist()
    return np.round(estimator.predict(x), 2).tolist()


def create_app(models: dict[str, Any], mlmon: Client, model_version: str) -> Flask:
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
        ids = body.get("ids") if isinstance(body.get("ids"), list) and len(body["ids"]) == len(predictions) else None
        mlmon.log_batch(model=model, version=model_version, features=body["features"], predictions=predictions, ids=ids)
        return {"model_version": model_version, "predictions": predictions}, 200

    return app
