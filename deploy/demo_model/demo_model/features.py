"""Columnar features -> a float matrix, the same way at training and at serving time.

Categorical values are one-hot encoded against the fixed vocabularies of exporter.tooling.synthetic;
an unseen category encodes as all zeros, the way a production encoder with
handle_unknown="ignore" would.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from exporter.tooling import synthetic

# model -> (numeric columns, {categorical column: vocabulary}, boolean columns)
SCHEMAS: dict[str, tuple[tuple[str, ...], dict[str, tuple[str, ...]], tuple[str, ...]]] = {
    "fraud": (("amount", "account_age_days"), {"country": synthetic.COUNTRIES, "channel": synthetic.CHANNELS}, ("is_international",)),
    "delivery_time": (("distance_km", "items", "hour"), {"weather": synthetic.WEATHER}, ()),
}


class FeatureError(ValueError):
    """A request whose columns the model cannot read; the server answers 400 with this text."""


def matrix(model: str, features: Mapping[str, Sequence[Any]]) -> np.ndarray:
    numeric, categorical, boolean = SCHEMAS[model]
    missing = [name for name in (*numeric, *categorical, *boolean) if name not in features]
    if missing:
        raise FeatureError(f"missing feature columns: {', '.join(missing)}")
    lengths = {len(features[name]) for name in (*numeric, *categorical, *boolean)}
    if len(lengths) != 1:
        raise FeatureError("feature columns have different lengths")
    blocks = []
    for name in numeric:
        try:
            values = np.asarray(features[name], dtype=float)
        except (TypeError, ValueError):
            raise FeatureError(f"{name}: numeric column holds a non-number") from None
        # Heavy-tailed inputs (amounts, distances) on a log scale; NaN becomes 0 so one bad
        # value does not fail the batch (the sidecar counts it as a data-quality event).
        blocks.append(np.nan_to_num(np.log1p(np.clip(values, 0, None)))[:, None])
    for name, vocabulary in categorical.items():
        column = np.asarray([str(value) for value in features[name]])
        blocks.append((column[:, None] == np.asarray(vocabulary)[None, :]).astype(float))
    for name in boolean:
        blocks.append(np.asarray([1.0 if value is True or value == 1 else 0.0 for value in features[name]])[:, None])
    return np.hstack(blocks)
