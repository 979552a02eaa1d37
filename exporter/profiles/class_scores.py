"""Per-class probability drift of a multiclass model: each class's score binned against reference edges.

A multiclass model is usually watched through its predicted class alone, and the argmax hides a lot:
the probability of one class can slide from 0.3 to 0.45 while it rarely becomes the largest, so the
predicted-class distribution barely moves. When the reference has the per-class scores (columns
``<prediction name>_<class>`` in a CSV/Parquet file, or a JSON-lines record whose `prediction` is a
``{class: score}`` object or a ``predict_proba`` row), the profile keeps one numeric binning per
configured class in ``extras.class_scores``; the exporter bins each live row's class scores against
them and scores each class with the same drift rule as the prediction (exporter/http/class_drift_report.py).

    {"class_scores": {"classes": ["cat", "dog"], "binnings": [<numeric Binning JSON>, ...]}}
"""

from __future__ import annotations

from typing import Any

import numpy as np

from exporter.config.model import ModelConfig
from exporter.profiles.profile import Binning, Profile, ProfileError, numeric_binning

EXTRAS_KEY = "class_scores"


def score_column(model: ModelConfig, cls: str) -> str:
    """The reference file's column holding the score of class `cls`: ``<prediction name>_<class>``."""
    return f"{model.prediction.name}_{cls}"


def class_score_extras(model: ModelConfig, columns: list[np.ndarray]) -> dict[str, Any]:
    """Profile extras of per-class score binnings (one column per configured class, NaN where absent)."""
    bins = model.prediction.bins or 10
    binnings = []
    for cls, column in zip(model.quality_classes, columns):
        values = column[np.isfinite(column)]
        if not len(values):
            return {}
        binnings.append(numeric_binning(score_column(model, cls), values, bins).to_json())
    return {EXTRAS_KEY: {"classes": list(model.quality_classes), "binnings": binnings}}


def class_binnings(profile: Profile | None, model: ModelConfig) -> tuple[Binning, ...] | None:
    """The per-class score binnings of a profile, when it has them for exactly the model's classes."""
    data = profile.extras.get(EXTRAS_KEY) if profile is not None else None
    if not isinstance(data, dict) or model.task != "multiclass_classification":
        return None
    classes = data.get("classes")
    if classes != list(model.quality_classes) or not isinstance(data.get("binnings"), list):
        return None  # built for other classes: per-class drift is off rather than misattributed
    binnings = tuple(Binning.from_json(score_column(model, c), b) for c, b in zip(classes, data["binnings"]))
    if len(binnings) != len(classes) or any(b.kind != "numeric" for b in binnings):
        raise ProfileError(f"{EXTRAS_KEY}: one numeric binning per class expected")
    return binnings
