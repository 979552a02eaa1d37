"""Flask: one client per app, configured from ``app.config``, reachable from any view.

    from flask import Flask
    from mlmon_client.flask import init_app, mlmon

    app = Flask(__name__)
    init_app(app)   # reads MLMON_URL, MLMON_TOKEN_FILE, MLMON_ENABLED from app.config (else the environment)

    @app.post("/predict")
    def predict():
        ...
        mlmon().log(model="fraud", version="v1", features=features, prediction=score, id=request_id)

The client is closed by its exit hook when the process ends (a WSGI server has no shutdown
signal a Flask app can hook into portably). Import this module only where Flask is installed.
"""

from __future__ import annotations

from typing import Optional

from flask import Flask, current_app

from mlmon_client.client import Client

EXTENSION = "mlmon"


def init_app(app: Flask, client: Optional[Client] = None) -> Client:
    """Attach `client` (or one built from app.config) to `app`; returns it."""
    if client is None:
        client = Client(
            app.config.get("MLMON_URL"),
            token_file=app.config.get("MLMON_TOKEN_FILE"),
            enabled=bool(app.config.get("MLMON_ENABLED", True)),
        )
    app.extensions[EXTENSION] = client
    return client


def mlmon() -> Client:
    """The current app's client, inside a request or an app context."""
    return current_app.extensions[EXTENSION]
