"""Attribution statistics as pure functions of summed counters (docs/explainability.md).

Per feature the exporter keeps N, the sums of phi by sign, and the sum of phi^2, so everything
here is a function of sums that add across replicas and time slots:

    mean phi          = (positive - negative) / N
    importance (|phi|) = (positive + negative) / N          (SageMaker's `mean_abs` global SHAP)
    share_i           = importance_i / sum_j importance_j
    TV(live, ref)     = 1/2 sum_i |share_i - ref_share_i|

nDCG follows SageMaker Clarify's feature-attribution-drift definition: F' is the features sorted
by live importance, a(f) the reference importance of f, and

    nDCG = DCG / iDCG,  DCG = sum_i a(F'_i) / log2(i + 1),  iDCG = sum_i a(F_i) / log2(i + 1)

with F the features sorted by reference importance (i from 1). Ties in the live ranking are
broken by the reference order, then the config order, so equal importances never count as a swap.

    >>> round(ndcg(np.array([0.7, 0.5, 0.05]), np.array([0.1, 0.2, 0.7])), 4)  # SageMaker's example
    0.6876
"""

from __future__ import annotations

import numpy as np


def importance(positive: np.ndarray, negative: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean |phi| per feature; NaN where N is 0."""
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(n > 0, (positive + negative) / np.maximum(n, 1), np.nan)


def mean(positive: np.ndarray, negative: np.ndarray, n: np.ndarray) -> np.ndarray:
    """Mean signed phi per feature; NaN where N is 0."""
    return np.where(n > 0, (positive - negative) / np.maximum(n, 1), np.nan)


def shares(values: np.ndarray) -> np.ndarray | None:
    """Importances as shares summing to 1; None when there is no importance at all (or any is unknown)."""
    values = np.asarray(values, dtype=np.float64)
    if not len(values) or not np.isfinite(values).all():
        return None
    total = values.sum()
    return values / total if total > 0 else None


def total_variation(live: np.ndarray, reference: np.ndarray) -> float:
    """1/2 sum |live - reference| of two share vectors: 0 same, 1 disjoint."""
    return float(0.5 * np.abs(np.asarray(live) - np.asarray(reference)).sum())


def _ranking(values: np.ndarray, tiebreak: np.ndarray) -> np.ndarray:
    """Indices sorted by value descending; ties by `tiebreak` descending, then by index."""
    index = np.arange(len(values))
    return np.array(sorted(index, key=lambda i: (-values[i], -tiebreak[i], i)), dtype=np.int64)


def ndcg(reference: np.ndarray, live: np.ndarray) -> float:
    """SageMaker Clarify's nDCG of the live ranking, gains = reference importances (see the module doc)."""
    reference = np.asarray(reference, dtype=np.float64)
    live = np.asarray(live, dtype=np.float64)
    discount = 1.0 / np.log2(np.arange(2, len(reference) + 2))
    ideal = float((reference[_ranking(reference, reference)] * discount).sum())
    if ideal <= 0:
        return float("nan")
    return float((reference[_ranking(live, reference)] * discount).sum()) / ideal


def top_driver(values: np.ndarray, tiebreak: np.ndarray | None = None) -> int:
    """Index of the most important feature (ties: the reference's order, then config order)."""
    values = np.asarray(values, dtype=np.float64)
    return int(_ranking(values, values if tiebreak is None else np.asarray(tiebreak))[0])
