"""mlmon_client: send predictions and labels to the mlmon sidecar from model code.

    from mlmon_client import Client

    mlmon = Client("http://127.0.0.1:8711")
    mlmon.log(model="fraud", version="v1", features={"amount": 42.5}, prediction=0.03, id="tx-1")

Standard library only. Adapters: ``mlmon_client.flask`` and ``mlmon_client.starlette`` (FastAPI).
"""

from mlmon_client.client import Client
from mlmon_client.stats import Stats

__all__ = ["Client", "Stats"]
__version__ = "0.1.0"
