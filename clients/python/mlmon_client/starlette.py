"""FastAPI and Starlette: a lifespan that owns the client, and a dependency that hands it to endpoints.

    from fastapi import Depends, FastAPI
    from mlmon_client import Client
    from mlmon_client.starlette import lifespan, mlmon

    app = FastAPI(lifespan=lifespan(Client()))

    @app.post("/predict")
    async def predict(body: Features, client: Client = Depends(mlmon)):
        ...
        client.log(model="fraud", version="v1", features=body.features, prediction=score)

``log()`` never blocks, so it is safe to call from ``async def`` endpoints without awaiting
anything. At shutdown the client's close() (bounded by close_timeout) runs in a worker thread,
off the event loop. An app with a lifespan of its own calls ``install(app, client)`` in it instead.
Import this module only where Starlette (or FastAPI) is installed.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any, Callable

from starlette.requests import Request

from mlmon_client.client import Client


def install(app: Any, client: Client) -> Client:
    """Make `client` the app's client (``app.state.mlmon``)."""
    app.state.mlmon = client
    return client


def lifespan(client: Client) -> Callable[[Any], contextlib.AbstractAsyncContextManager[None]]:
    """A lifespan for ``FastAPI(lifespan=...)`` / ``Starlette(lifespan=...)``: install, then close at shutdown."""

    @contextlib.asynccontextmanager
    async def run(app: Any) -> AsyncIterator[None]:
        install(app, client)
        try:
            yield
        finally:
            await asyncio.to_thread(client.close)

    return run


def mlmon(request: Request) -> Client:
    """FastAPI dependency (``Depends(mlmon)``): the app's client."""
    return request.app.state.mlmon
