"""A real KServe Python model server (the `kserve` package) serving a small scikit-learn classifier.

Run as a process: ``python tests/support/kserve_model.py HTTP_PORT GRPC_PORT``. It answers KServe v1
(``/v1/models/toy:predict``, instances as [x, color, flag] rows) and Open Inference Protocol v2
(``/v2/models/toy/infer``, one input per feature) with predict_proba rows, as sklearn servers do.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
from kserve import InferRequest, InferResponse, Model, ModelServer
from kserve.utils.utils import get_predict_response
from sklearn.compose import ColumnTransformer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

COLORS = ["red", "green", "blue", "black", "white"]


def train() -> Any:
    import pandas as pd

    rng = np.random.default_rng(7)
    n = 400
    frame = pd.DataFrame({"x": rng.uniform(0, 99, n), "color": rng.choice(COLORS, n), "flag": rng.integers(0, 2, n)})
    target = ((frame["x"] > 50) ^ (frame["color"] == "red")).astype(int)
    columns = ColumnTransformer([("color", OneHotEncoder(handle_unknown="ignore"), ["color"])], remainder="passthrough")
    return make_pipeline(columns, LogisticRegression()).fit(frame, target)


class Toy(Model):
    def __init__(self) -> None:
        super().__init__("toy")
        self.model = train()
        self.ready = True

    def predict(self, payload: Any, headers: dict[str, str] | None = None) -> Any:
        import pandas as pd

        if isinstance(payload, InferRequest):
            columns = {i.name: i.as_numpy().reshape(-1) for i in payload.inputs}
            frame = pd.DataFrame({"x": columns["x"].astype(float), "color": columns["color"].astype(str),
                                  "flag": columns["flag"].astype(int)})
            scores = self.model.predict_proba(frame)
            return get_predict_response(payload, scores, self.name)
        rows = payload["instances"]
        frame = pd.DataFrame(rows, columns=["x", "color", "flag"]).astype({"x": float, "flag": int})
        return {"predictions": self.model.predict_proba(frame).tolist()}


if __name__ == "__main__":
    http_port, grpc_port = int(sys.argv[1]), int(sys.argv[2])
    ModelServer(http_port=http_port, grpc_port=grpc_port, workers=1, enable_grpc=False).start([Toy()])
