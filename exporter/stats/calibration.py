"""Score calibration for label-free estimation: isotonic regression of the label on the score.

Confidence-based estimation (estimation.py) reads a score p as "p of a positive". Real models are
over- or under-confident, and then every estimate is biased, also on data that has not drifted.
The fix NannyML's CBPE uses is to learn, on reference data with labels, the map from score to the
observed positive rate: the isotonic (monotone non-decreasing) least-squares fit of the label on
the score, found by the pool-adjacent-violators algorithm. It keeps the score's ranking, so ROC
AUC and the decision threshold's split are untouched; only the probabilities are corrected.

The fitted map is piecewise linear between knots, exactly as scikit-learn's IsotonicRegression
predicts (linear interpolation between the thresholds it keeps, clipped outside them). A profile
stores at most MAX_KNOTS knots: beyond that the map is resampled at evenly spaced ranks of the
reference scores, and the largest difference this makes to the full map on the reference scores
is stored as the profile's compression tolerance.

    >>> cal = fit_isotonic(np.array([0.1, 0.2, 0.3, 0.4]), np.array([0, 1, 0, 1]))
    >>> cal.x.tolist(), cal.y.tolist()
    ([0.1, 0.2, 0.3, 0.4], [0.0, 0.5, 0.5, 1.0])
    >>> float(cal(np.array([0.25]))[0])
    0.5
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.stats.error_model import EXTRAS_KEY as ERROR_MODEL_KEY, ErrorModel
from exporter.stats.quality_math import binary_ratios

MAX_KNOTS = 200
EXTRAS_KEY = "calibration"
REFERENCE_QUALITY_KEY = "reference_quality"


@dataclass(frozen=True)
class Calibration:
    """A monotone map from raw score to calibrated probability, linear between knots."""

    x: np.ndarray
    y: np.ndarray
    tolerance: float = 0.0  # largest |compressed - full| map difference on the reference scores
    rows: int = 0           # reference rows the map was fitted on

    def __call__(self, scores: np.ndarray) -> np.ndarray:
        return np.interp(scores, self.x, self.y)  # clips outside [x0, x_last] like IsotonicRegression

    def to_json(self) -> dict[str, Any]:
        return {"x": self.x.tolist(), "y": self.y.tolist(), "tolerance": self.tolerance, "rows": self.rows}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Calibration:
        x = np.asarray(data["x"], dtype=np.float64)
        y = np.asarray(data["y"], dtype=np.float64)
        if x.ndim != 1 or x.shape != y.shape or len(x) < 1 or not (np.isfinite(x).all() and np.isfinite(y).all()):
            raise ValueError("calibration knots must be two finite lists of the same length")
        if (np.diff(x) < 0).any() or (np.diff(y) < 0).any() or y.min() < 0 or y.max() > 1:
            raise ValueError("calibration knots must be non-decreasing, with values in [0, 1]")
        return cls(x, y, float(data.get("tolerance", 0.0)), int(data.get("rows", 0)))


def _pool_adjacent_violators(y: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Weighted isotonic fit of y (already in x order): blocks merge while a later mean is below an earlier one."""
    means: list[float] = []
    weights: list[float] = []
    sizes: list[int] = []
    for value, weight in zip(y.tolist(), w.tolist()):
        means.append(value)
        weights.append(weight)
        sizes.append(1)
        while len(means) > 1 and means[-2] > means[-1]:
            total = weights[-2] + weights[-1]
            merged = (means[-2] * weights[-2] + means[-1] * weights[-1]) / total
            size = sizes[-2] + sizes[-1]
            del means[-1], weights[-1], sizes[-1]
            means[-1], weights[-1], sizes[-1] = merged, total, size
    return np.repeat(np.asarray(means), sizes)


def _full_fit(scores: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Knots of the isotonic fit as IsotonicRegression keeps them: unique scores (ties averaged), then only
    the first and last score of each run of equal fitted values."""
    order = np.argsort(scores, kind="mergesort")
    xs, ys = scores[order], labels[order]
    unique, start, counts = np.unique(xs, return_index=True, return_counts=True)
    means = np.add.reduceat(ys, start) / counts
    fitted = _pool_adjacent_violators(means, counts.astype(np.float64))
    keep = np.ones(len(fitted), dtype=bool)
    if len(fitted) > 2:
        same_as_prev = np.r_[False, fitted[1:] == fitted[:-1]]
        same_as_next = np.r_[fitted[:-1] == fitted[1:], False]
        keep = ~(same_as_prev & same_as_next)
    return unique[keep], fitted[keep]


def fit_isotonic(scores: np.ndarray, labels: np.ndarray, max_knots: int = MAX_KNOTS) -> Calibration:
    """Fit the calibration map on reference (score, label) pairs; non-finite scores and labels are left out."""
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    usable = np.isfinite(scores) & np.isfinite(labels)
    scores, labels = np.clip(scores[usable], 0.0, 1.0), labels[usable]
    if len(scores) == 0:
        raise ValueError("no reference rows with both a finite score and a label to calibrate on")
    x, y = _full_fit(scores, labels)
    if len(x) <= max_knots:
        return Calibration(x, y, 0.0, len(scores))
    # Resample at evenly spaced ranks of the reference scores: knots sit where the scores are.
    positions = np.quantile(scores, np.linspace(0.0, 1.0, max_knots))
    compressed = Calibration(np.unique(positions), np.interp(np.unique(positions), x, y), 0.0, len(scores))
    tolerance = float(np.max(np.abs(compressed(scores) - np.interp(scores, x, y))))
    return Calibration(compressed.x, compressed.y, tolerance, len(scores))


def exact_auc(scores: np.ndarray, labels: np.ndarray) -> float:
    """ROC AUC by ranks (Mann-Whitney U, ties counted half); NaN without both classes."""
    from scipy.stats import rankdata

    positives = labels == 1
    n1, n0 = int(positives.sum()), int((~positives).sum())
    if not n1 or not n0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[positives].sum() - n1 * (n1 + 1) / 2) / (n1 * n0))


def reference_quality(scores: np.ndarray, labels: np.ndarray, threshold: float) -> dict[str, float]:
    """Realised quality of the reference at the decision threshold: what estimates on reference data should equal."""
    usable = np.isfinite(scores) & np.isfinite(labels)
    scores, labels = scores[usable], labels[usable]
    predicted, actual = scores >= threshold, labels == 1
    tp, fp = float((predicted & actual).sum()), float((predicted & ~actual).sum())
    tn, fn = float((~predicted & ~actual).sum()), float((~predicted & actual).sum())
    ratios = binary_ratios(tp, fp, tn, fn)
    out = {name: float(ratios[name]) for name in ("accuracy", "precision", "recall", "f1") if name in ratios}
    out["roc_auc"] = exact_auc(scores, labels)
    return out


# ---- multiclass: one map per class, one-vs-rest ------------------------------------------------------
CLASS_EXTRAS_KEY = "class_calibration"


def fit_one_vs_rest(scores: list[np.ndarray], labels: np.ndarray, classes: tuple[str, ...],
                    max_knots: int = MAX_KNOTS) -> tuple[Calibration, ...]:
    """One isotonic map per class: class c's score against "the label is c" (NannyML's multiclass CBPE).

    The exporter applies each map to its class's score and renormalises each row to sum to 1.
    Rows without a label (None) or without a finite score of that class are left out of its fit.
    """
    labelled = np.asarray([v is not None for v in labels], dtype=bool)
    text = np.asarray([str(v) if v is not None else "" for v in labels], dtype=object)
    maps = []
    for c, cls in enumerate(classes):
        column = np.asarray(scores[c], dtype=np.float64)
        usable = labelled & np.isfinite(column)
        maps.append(fit_isotonic(column[usable], (text[usable] == cls).astype(np.float64), max_knots))
    return tuple(maps)


def one_vs_rest_json(classes: tuple[str, ...], maps: tuple[Calibration, ...]) -> dict[str, Any]:
    return {"classes": list(classes), "maps": [m.to_json() for m in maps]}


def calibration_from_extras(extras: dict[str, Any], classes: tuple[str, ...]) -> Calibration | tuple[
        Calibration, ...] | ErrorModel | None:
    """What a labelled profile carries for label-free estimates: the binary map, the multiclass maps (when
    built for exactly these classes), the regression error model, or None."""
    binary = extras.get(EXTRAS_KEY)
    if binary:
        return Calibration.from_json(binary)
    errors = extras.get(ERROR_MODEL_KEY)
    if errors:  # regression: the reference's error per prediction bin (exporter/stats/error_model.py)
        return ErrorModel.from_json(errors)
    data = extras.get(CLASS_EXTRAS_KEY)
    if isinstance(data, dict) and classes and data.get("classes") == list(classes):
        maps = data.get("maps")
        if not isinstance(maps, list) or len(maps) != len(classes):
            raise ValueError("class_calibration: one map per class expected")
        return tuple(Calibration.from_json(m) for m in maps)
    return None


def multiclass_reference_quality(predicted: np.ndarray, labels: np.ndarray, classes: tuple[str, ...]) -> dict[str, float]:
    """Realised accuracy and macro precision/recall/F1 of the reference (what estimates on it should equal)."""
    from exporter.stats.quality_math import multiclass_metrics

    index = {c: i for i, c in enumerate(classes)}
    k = len(classes) + 1
    keep = [i for i, v in enumerate(labels) if v is not None and predicted[i] is not None]
    actual = np.asarray([index.get(str(labels[i]), k - 1) for i in keep], dtype=np.int64)
    guess = np.asarray([index.get(str(predicted[i]), k - 1) for i in keep], dtype=np.int64)
    confusion = np.bincount(actual * k + guess, minlength=k * k).reshape(k, k)
    _, averages = multiclass_metrics(confusion, len(classes))
    return {name: float(value) for name, value in averages.items()}
