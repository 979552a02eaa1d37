"""The reference side of attributions, kept in a profile's extras under ``attributions``.

Per feature: the phi bin edges live attributions are counted in, the reference counts of those
bins, and the reference N, sums by sign and sum of squares (so reference mean |phi| and its share
are known). Built by `mlmon profile build` from reference columns ``<prefix><feature>``
(``attr_amount``; models[].attributions.prefix). A feature's `importance` in the config, when
given, replaces the reference importance used for ranking and drift impact (docs/explainability.md).

    >>> ref = attribution_extras({"a": np.array([1.0, -1.0, 2.0, -2.0]), "b": np.array([0.5, 0.5, -0.5, 0.5])}, 2)
    >>> ref["importance"]
    {'a': 1.5, 'b': 0.5}
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.config.model import ModelConfig
from exporter.profiles.profile import Binning, Profile, ProfileError, numeric_binning

EXTRAS_KEY = "attributions"


def attribution_extras(columns: dict[str, np.ndarray], bins: int) -> dict[str, Any]:
    """The profile extras of reference attributions: {features: {name: binning + sums}, importance: {...}}."""
    features: dict[str, Any] = {}
    importance: dict[str, float] = {}
    for name, values in columns.items():
        values = np.asarray(values, dtype=np.float64)
        values = values[np.isfinite(values)]
        if not len(values):
            continue
        binning = numeric_binning(name, values, bins)
        positive, negative = float(np.maximum(values, 0).sum()), float(-np.minimum(values, 0).sum())
        features[name] = {**binning.to_json(), "n": int(len(values)), "positive": positive, "negative": negative,
                          "squares": float((values * values).sum())}
        importance[name] = (positive + negative) / len(values)
    return {"features": features, "importance": importance}


@dataclass(frozen=True)
class AttributionReference:
    """What live attributions of one model are compared to; feature order is the config's."""

    names: tuple[str, ...]
    importance: np.ndarray  # reference global importance per feature (NaN: unknown)
    binnings: tuple[Binning | None, ...]  # phi bins per feature (None: no reference attributions for it)
    source: str  # "attributions", "config" or "none"

    @property
    def known(self) -> bool:
        return bool(np.isfinite(self.importance).all() and self.importance.sum() > 0)

    @property
    def shares(self) -> np.ndarray | None:
        return self.importance / self.importance.sum() if self.known else None


def reference_of(model: ModelConfig, profile: Profile | None) -> AttributionReference:
    """The model's attribution reference from its profile extras, with the config's importances on top."""
    names = tuple(f.name for f in model.features)
    data = profile.extras.get(EXTRAS_KEY) if profile is not None else None
    features = data.get("features", {}) if isinstance(data, dict) else {}
    from_profile = data.get("importance", {}) if isinstance(data, dict) else {}
    binnings: list[Binning | None] = []
    for name in names:
        spec = features.get(name)
        if not isinstance(spec, dict):
            binnings.append(None)
            continue
        try:
            binnings.append(Binning.from_json(f"attributions.{name}", {k: spec[k] for k in ("type", "edges", "counts", "stats") if k in spec}))
        except ProfileError:
            binnings.append(None)
    configured = [f.importance for f in model.features]
    if any(v is not None for v in configured):
        values, source = [float(v) if v is not None else 0.0 for v in configured], "config"
    elif from_profile:
        values = [float(from_profile.get(n, np.nan)) if _number(from_profile.get(n)) else np.nan for n in names]
        source = "attributions"
    else:
        values, source = [np.nan] * len(names), "none"
    return AttributionReference(names, np.asarray(values, dtype=np.float64), tuple(binnings), source)


def _number(value: Any) -> bool:
    return type(value) in (int, float) and np.isfinite(value) and value >= 0
