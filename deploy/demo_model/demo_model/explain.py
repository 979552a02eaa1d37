"""Exact attributions of the demo fraud model, sent to mlmon with every prediction (docs/explainability.md).

The fraud model is a StandardScaler + LogisticRegression pipeline, linear in the scaled inputs, so its
SHAP values (in log-odds, with the training data as background) are exact and cheap:
phi_j = w_j (z_j - E[z_j]) = w_j (x_j - mean_j) / scale_j, because the scaler's mean is the training mean.
A feature's attribution is the sum over its matrix columns (a categorical feature's one-hot block).
The delivery_time model (gradient-boosted trees) sends none: TreeSHAP needs a library the image does not carry.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from demo_model.features import SCHEMAS, matrix


def column_blocks(model: str) -> dict[str, slice]:
    """Each feature's columns in the model's matrix, in the order features.matrix writes them."""
    numeric, categorical, boolean = SCHEMAS[model]
    widths = [(name, 1) for name in numeric] + [(name, len(v)) for name, v in categorical.items()]
    widths += [(name, 1) for name in boolean]
    blocks, start = {}, 0
    for name, width in widths:
        blocks[name] = slice(start, start + width)
        start += width
    return blocks


def attributions(model: str, estimator: Any, features: Mapping[str, Sequence[Any]]) -> dict[str, list[float]] | None:
    """{feature: phi per row} for a linear pipeline (scaler + logistic regression); None for other models."""
    steps = getattr(estimator, "steps", None)
    if model != "fraud" or not steps:
        return None
    scaler, linear = steps[0][1], steps[-1][1]
    x = matrix(model, features)
    phi = (x - scaler.mean_) / scaler.scale_ * linear.coef_[0]
    return {name: np.round(phi[:, block].sum(axis=1), 6).tolist() for name, block in column_blocks(model).items()}
