"""Bias: how a binary classifier treats the segments of a sensitive attribute.

Segments come from a record's ``segments`` object ({"country": "NG", "channel": "app"}). Only
values listed in the config are tracked one by one; any other value, a missing attribute or
a non-string value folds into ``__other__``, so label cardinality is fixed by the config.

Per segment: selection rate (share predicted positive, from every prediction, labelled or
not), TPR, FPR and precision (from labelled predictions). Per attribute, across its segments
with data (``__other__`` included: it is people too):

* demographic parity difference = max - min selection rate (0 is parity),
* disparate impact ratio = min / max selection rate (the four-fifths rule flags < 0.8),
* equal opportunity difference = max - min TPR,
* equalised odds difference = the larger of the TPR and the FPR ranges (fairlearn's definition).

    >>> codec = SegmentCodec([("country", ("US", "NG")), ("channel", ("web",))])
    >>> codec.encode([{"country": "NG", "channel": "web"}, {"country": "FR"}, None]).tolist()
    [1, 5, 5]
    >>> codec.decode(np.array([1, 5])).tolist()
    [[1, 0], [2, 1]]
"""

from __future__ import annotations

from itertools import repeat
from typing import Any, Sequence

import numpy as np

from exporter.stats.quality_math import NAN, ratio

OTHER = "__other__"
SEGMENT_METRICS = ("selection_rate", "tpr", "fpr", "precision")
BIAS_METRICS = (
    "demographic_parity_difference", "disparate_impact_ratio", "equal_opportunity_difference",
    "equalized_odds_difference",
)
FOUR_FIFTHS = 0.8


class SegmentCodec:
    """Packs a record's segment values (one index per attribute) into one integer, and back."""

    def __init__(self, attributes: Sequence[tuple[str, Sequence[str]]]) -> None:
        self.attributes = [name for name, _ in attributes]
        self.values = [(*values, OTHER) for _, values in attributes]
        self.lookups = [{v: i for i, v in enumerate(values)} for _, values in attributes]
        sizes = [len(v) for v in self.values]
        self.strides = np.cumprod([1, *sizes[:-1]]).astype(np.int64) if sizes else np.zeros(0, dtype=np.int64)
        self.sizes = np.asarray(sizes, dtype=np.int64)

    @property
    def width(self) -> int:
        """Segments over all attributes (each attribute's values plus __other__)."""
        return int(self.sizes.sum())

    @property
    def offsets(self) -> list[int]:
        return [int(x) for x in np.concatenate([[0], np.cumsum(self.sizes)])[:-1]]

    def encode(self, segments: Sequence[Any]) -> np.ndarray:
        """One packed code per record; records without usable segments are __other__ everywhere."""
        n = len(segments)
        codes = np.zeros(n, dtype=np.int64)
        for a, (lookup, stride, size) in enumerate(zip(self.lookups, self.strides.tolist(), self.sizes.tolist())):
            attribute, other = self.attributes[a], size - 1
            values = [s.get(attribute) if type(s) is dict else None for s in segments]
            try:  # strings not listed, None and numbers all miss the lookup and become __other__
                index = list(map(lookup.get, values, repeat(other)))
            except TypeError:  # an unhashable value (a list or an object): the slow, careful way
                index = [lookup.get(v, other) if isinstance(v, str) else other for v in values]
            codes += np.asarray(index, dtype=np.int64) * stride
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(records x attributes) value indices of packed codes."""
        codes = np.asarray(codes, dtype=np.int64)
        return (codes[:, None] // self.strides[None, :]) % self.sizes[None, :]

    def columns(self, codes: np.ndarray) -> np.ndarray:
        """(records x attributes) positions in the flat segment vector (offset of the attribute + value index)."""
        return self.decode(codes) + np.asarray(self.offsets, dtype=np.int64)[None, :]


def segment_rates(
    predictions: np.ndarray, predicted_positive: np.ndarray, confusion: np.ndarray
) -> dict[str, np.ndarray]:
    """Per segment rates. ``confusion`` is (segments x 4) counts of tp, fp, tn, fn."""
    tp, fp, tn, fn = (confusion[:, i].astype(np.float64) for i in range(4))
    with np.errstate(divide="ignore", invalid="ignore"):
        return {
            "selection_rate": np.where(predictions > 0, predicted_positive / predictions, np.nan),
            "tpr": np.where(tp + fn > 0, tp / (tp + fn), np.nan),
            "fpr": np.where(fp + tn > 0, fp / (fp + tn), np.nan),
            "precision": np.where(tp + fp > 0, tp / (tp + fp), np.nan),
        }


def _spread(values: np.ndarray, counts: np.ndarray) -> tuple[float, float, float]:
    """(max - min, min / max, smallest count) over the segments where the value is defined."""
    defined = ~np.isnan(values)
    if defined.sum() < 2:
        return NAN, NAN, float(counts[defined].min()) if defined.any() else 0.0
    v = values[defined]
    return float(v.max() - v.min()), ratio(float(v.min()), float(v.max())), float(counts[defined].min())


def attribute_bias(
    predictions: np.ndarray, predicted_positive: np.ndarray, confusion: np.ndarray
) -> dict[str, tuple[float, float]]:
    """{measure: (value, smallest segment sample count behind it)} for one attribute's segments."""
    rates = segment_rates(predictions, predicted_positive, confusion)
    positives = (confusion[:, 0] + confusion[:, 3]).astype(np.float64)
    negatives = (confusion[:, 1] + confusion[:, 2]).astype(np.float64)
    dp, di, n_dp = _spread(rates["selection_rate"], predictions.astype(np.float64))
    eo, _, n_eo = _spread(rates["tpr"], positives)
    fpr_range, _, n_fpr = _spread(rates["fpr"], negatives)
    eodds = NAN if np.isnan(eo) or np.isnan(fpr_range) else max(eo, fpr_range)
    return {
        "demographic_parity_difference": (dp, n_dp),
        "disparate_impact_ratio": (di, n_dp),
        "equal_opportunity_difference": (eo, n_eo),
        "equalized_odds_difference": (eodds, min(n_eo, n_fpr)),
    }
