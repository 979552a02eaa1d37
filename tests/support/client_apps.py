"""Model servers that log every prediction through mlmon_client, run as processes by the tests:

    python -m tests.support.client_apps flask|fastapi --port 8080 --sidecar http://127.0.0.1:8711 [--disabled]

`POST /predict` with `{"id": ..., "features": {...}}` answers a score and logs it; `GET /stats`
answers how many predictions were logged and the client's counters; `POST /flush` flushes
first. With --disabled the same app runs with `Client(enabled=False)`: the baseline of the
latency comparison. Both go through the adapters (mlmon_client.flask, mlmon_client.starlette).
"""

from __future__ import annotations

import argparse
import itertools
import logging
from typing import Any

from mlmon_client import Client

MODEL, VERSION = "fraud", "v1"


def score(features: dict[str, Any]) -> float:
    """Stands in for a model: cheap, deterministic, in [0, 1]."""
    return (float(features.get("amount", 0)) % 97) / 97


def stats_of(client: Client, logged: Any) -> dict[str, Any]:
    # itertools.count's repr is the only way to read it without advancing it: "count(N)".
    return {"logged": int(repr(logged)[6:-1]), **client.stats()._asdict()}


def client_for(sidecar: str, disabled: bool) -> Client:
    # Short intervals so a test of a few seconds sees every phase: retries, give-ups, recovery. A
    # timeout far above the proxy's 0.3 s delay: a slow answer must not turn into an unconfirmed batch.
    return Client(sidecar, enabled=not disabled, flush_interval=0.05, retry_for=1.0, max_backoff=0.2, max_queue=5000,
                  timeout=10)


def flask_app(client: Client) -> Any:
    from flask import Flask, jsonify, request

    from mlmon_client.flask import init_app, mlmon

    app = Flask("client_app")
    init_app(app, client)
    logged = itertools.count()

    @app.post("/predict")
    def predict() -> Any:
        body = request.get_json()
        prediction = score(body["features"])
        mlmon().log(model=MODEL, version=VERSION, features=body["features"], prediction=prediction, id=body["id"])
        next(logged)  # atomic in CPython: no lock on the request path
        return jsonify(prediction=prediction)

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.get("/stats")
    def stats() -> Any:
        return jsonify(stats_of(mlmon(), logged))

    @app.post("/flush")
    def flush() -> Any:
        mlmon().flush(timeout=20)
        return jsonify(stats_of(mlmon(), logged))

    return app


def fastapi_app(client: Client) -> Any:
    from fastapi import Depends, FastAPI

    from mlmon_client.starlette import lifespan, mlmon

    app = FastAPI(lifespan=lifespan(client))
    logged = itertools.count()

    @app.post("/predict")
    async def predict(body: dict[str, Any], mlmon_client: Client = Depends(mlmon)) -> dict[str, float]:
        prediction = score(body["features"])
        mlmon_client.log(model=MODEL, version=VERSION, features=body["features"], prediction=prediction, id=body["id"])
        next(logged)
        return {"prediction": prediction}

    @app.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stats")
    async def stats(mlmon_client: Client = Depends(mlmon)) -> dict[str, Any]:
        return stats_of(mlmon_client, logged)

    @app.post("/flush")
    def flush(mlmon_client: Client = Depends(mlmon)) -> dict[str, Any]:  # sync: flush waits, off the event loop
        mlmon_client.flush(timeout=20)
        return stats_of(mlmon_client, logged)

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("framework", choices=["flask", "fastapi"])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--sidecar", required=True)
    parser.add_argument("--disabled", action="store_true")
    args = parser.parse_args()
    client = client_for(args.sidecar, args.disabled)
    if args.framework == "flask":
        from werkzeug.serving import make_server

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        make_server("127.0.0.1", args.port, flask_app(client), threaded=True).serve_forever()
    else:
        import uvicorn

        uvicorn.run(fastapi_app(client), host="127.0.0.1", port=args.port, log_level="warning", access_log=False)


if __name__ == "__main__":
    main()
