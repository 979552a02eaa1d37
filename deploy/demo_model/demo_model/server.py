"""The demo model server: `POST /predict/<model>` answers predictions and hands the batch to mlmon.

The request is columnar, `{"ids": [...], "features": {"amount": [...], ...}}`, and the answer is
`{"model_version": "v1", "predictions": [...]}`. After answering, the batch (ids, features,
predictions and, for the fraud model, its exact attributions: demo_model/explain.py) goes to the sidecar through mlmon_client (clients/python, docs/clients.md): a
bounded buffer and a background sender, so monitoring never slows down or fails a prediction; a
sidecar that is down costs dropped batches, counted by the client.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from flask import Flask, Response, request

from demo_model.explain import attributions
from demo_model.features import SCHEMAS, FeatureError, matrix
from mlmon_client import Client


SWAPPED = "fraud_swapped"


def load_models(directory: Path) -> dict[str, Any]:
    models = {model: joblib.load(directory / f"{model}.joblib") for model in SCHEMAS}
    if (directory / f"{SWAPPED}.joblib").exists():  # the model the demo swaps in (demo_model/train.py)
        models[SWAPPED] = joblib.load(directory / f"{SWAPPED}.joblib")
    return models


def predict(model: str, estimator: Any, features: dict[str, list[Any]]) -> list[float]:
    x = matrix(model, features)
    if model == "fraud":
        return np.round(estimator.predict_proba(x)[:, 1], 6).tolist()
    return np.round(estimator.predict(x), 2).tolist()


def create_app(models: dict[str, Any], mlmon: Client, model_version: str,
               swapped: Callable[[], bool] = lambda: False) -> Flask:
    """`swapped()` true: the fraud model is silently replaced by one that weighs another feature
    (same version label): its attributions shift while its inputs do not, for MLMonAttributionDrift."""
    app = Flask("demo_model")

    @app.get("/healthz")
    def healthz() -> Response:
        return Response('{"status": "ok"}', mimetype="application/json")

    @app.post("/predict/<model>")
    def predict_batch(model: str) -> tuple[dict[str, Any], int]:
        if model not in SCHEMAS or model not in models:
            return {"error": f"unknown model {model!r}; models: {', '.join(SCHEMAS)}"}, 404
        estimator = models[SWAPPED] if model == "fraud" and SWAPPED in models and swapped() else models[model]
        body = request.get_json(silent=True)
        if not isinstance(body, dict) or not isinstance(body.get("features"), dict):
            return {"error": 'expected {"ids": [...], "features": {"column": [...]}}'}, 400
        try:
            predictions = predict(model, estimator, body["features"])
            phi = attributions(model, estimator, body["features"])
        except FeatureError as error:
            return {"error": str(error)}, 400
        ids = body.get("ids") if isinstance(body.get("ids"), list) and len(body["ids"]) == len(predictions) else None
        mlmon.log_batch(model=model, version=model_version, features=body["features"], predictions=predictions, ids=ids,
                        attributions=phi)
        return {"model_version": model_version, "predictions": predictions}, 200

    return app
