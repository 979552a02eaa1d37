"""Train the two demo models on synthetic reference-world data and save them with joblib.

Runs at image build (`python -m demo_model train --out /opt/demo_model`), so the image carries a
fitted model and serving never trains.
"""

from __future__ import annotations

from pathlib import Path

import joblib
import numpy as np
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from demo_model.features import matrix
from exporter.tooling import synthetic


def train(model: str, rows: int, seed: int, swap: bool = False):
    """Fit one model on `rows` clean synthetic records: fraud is a classifier, delivery_time a regressor;
    `swap` fits the fraud model to the swapped world (it weighs the channel, not the amount)."""
    data = synthetic.columns(model, rows, np.random.default_rng(seed), drift=0.0, swap=swap)
    x = matrix(model, data["features"])
    y = np.asarray(data["labels"])
    if model == "fraud":
        estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    else:
        estimator = HistGradientBoostingRegressor(max_iter=100, random_state=seed)
    return estimator.fit(x, y)


def train_all(out: Path, rows: int = 20_000, seed: int = 11) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for offset, model in enumerate(synthetic.MODELS):
        path = out / f"{model}.joblib"
        joblib.dump(train(model, rows, seed + offset), path)
        written.append(path)
    # The model the demo swaps in to shift the attributions while the inputs stay the same.
    path = out / f"{SWAPPED}.joblib"
    joblib.dump(train("fraud", rows, seed, swap=True), path)
    written.append(path)
    return written


SWAPPED = "fraud_swapped"
