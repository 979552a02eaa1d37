"""Label-free regression error estimate: the reference's error, learned per prediction bin (a light DLE).

NannyML's DLE trains a model of the absolute error from the features and the prediction. mlmon learns
something lighter and mergeable: on the labelled reference (``mlmon profile build --label-column``) the
predictions are cut into ERROR_BINS equal-mass bins, and per bin the mean and variance of the absolute
error and of the squared error are kept. Live, a window's predictions are counted per bin (a counter
vector like any histogram), and

    estimated MAE = sum_b n_b * mean|e|_b / N        estimated MSE = sum_b n_b * mean(e^2)_b / N

with RMSE = sqrt(MSE). Its standard error has two parts: the window's own sampling (the realised MAE of
N errors drawn from the bins' distributions varies by sum_b n_b var|e|_b / N^2) and the reference's
(each bin's mean is itself estimated from rows_b reference errors: sum_b n_b^2 var|e|_b / rows_b / N^2).

What it sees: a covariate shift that moves predictions toward bins where the model errs more (or less).
What it cannot see: concept drift — the error changing at the same prediction value (a new regime of the
target, a broken feature the model still answers confidently from). Outside the reference's range the
outer bins' error is assumed, so an extrapolating model's error is under-estimated.

    >>> m = fit_error_model(np.array([1.0, 2.0, 3.0, 4.0]), np.array([1.5, 2.0, 2.0, 4.0]), bins=2)
    >>> round(m.estimate(np.array([1.0, 1.0]))[0], 6)  # one prediction per bin: MAE (0.25 + 0.5) / 2
    0.375
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

ERROR_BINS = 20
EXTRAS_KEY = "error_model"


@dataclass(frozen=True)
class ErrorModel:
    """Per prediction bin: rows, mean and variance of |error| and of error^2 on the reference."""

    edges: np.ndarray        # inner edges: bin b holds edges[b-1] <= prediction < edges[b]
    rows: np.ndarray
    abs_mean: np.ndarray
    abs_var: np.ndarray
    sq_mean: np.ndarray
    sq_var: np.ndarray
    kind = "binned_error"    # mlmon_model_info{calibration}

    @property
    def bins(self) -> int:
        return len(self.edges) + 1

    def assign(self, predictions: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, predictions, side="right")

    def estimate(self, counts: np.ndarray) -> tuple[float, float, float, float]:
        """(MAE, its standard error, RMSE, its standard error) of a window with `counts` predictions per bin."""
        counts = np.asarray(counts, dtype=np.float64)
        n = counts.sum()
        if n <= 0:
            return (float("nan"),) * 4
        rows = np.maximum(self.rows, 1.0)
        mae = float(counts @ self.abs_mean / n)
        mae_var = float((counts @ self.abs_var + (counts**2 / rows) @ self.abs_var) / n**2)
        mse = float(counts @ self.sq_mean / n)
        mse_var = float((counts @ self.sq_var + (counts**2 / rows) @ self.sq_var) / n**2)
        rmse = float(np.sqrt(mse))
        rmse_se = float(np.sqrt(mse_var) / (2 * rmse)) if rmse > 0 else float("nan")
        return mae, float(np.sqrt(mae_var)), rmse, rmse_se

    def to_json(self) -> dict[str, Any]:
        return {name: getattr(self, name).tolist() for name in ("edges", "rows", "abs_mean", "abs_var", "sq_mean",
                                                               "sq_var")}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ErrorModel:
        arrays = {name: np.asarray(data[name], dtype=np.float64) for name in ("edges", "rows", "abs_mean", "abs_var",
                                                                             "sq_mean", "sq_var")}
        bins = len(arrays["edges"]) + 1
        if bins != ERROR_BINS or any(len(v) != bins for k, v in arrays.items() if k != "edges"):
            raise ValueError(f"error_model: {ERROR_BINS} bins expected ({ERROR_BINS - 1} edges and per-bin lists)")
        if not all(np.isfinite(v).all() and (k == "edges" or (v >= 0).all()) for k, v in arrays.items()):
            raise ValueError("error_model: finite values expected, non-negative except the edges")
        if (np.diff(arrays["edges"]) < 0).any():
            raise ValueError("error_model: edges must be non-decreasing")
        return cls(**arrays)


def fit_error_model(predictions: np.ndarray, labels: np.ndarray, bins: int = ERROR_BINS) -> ErrorModel:
    """Learn the per-bin error on reference (prediction, label) pairs; non-finite pairs are left out.

    Edges are the reference predictions' quantiles, so each bin holds about the same number of rows; a bin
    left empty by repeated predictions takes the overall error (it is never reached by a reference value).
    """
    predictions = np.asarray(predictions, dtype=np.float64)
    labels = np.asarray(labels, dtype=np.float64)
    usable = np.isfinite(predictions) & np.isfinite(labels)
    predictions, labels = predictions[usable], labels[usable]
    if len(predictions) < 2:
        raise ValueError("fewer than 2 reference rows with a finite prediction and label")
    edges = np.quantile(predictions, np.linspace(0, 1, bins + 1)[1:-1])
    index = np.searchsorted(edges, predictions, side="right")
    error = predictions - labels
    absolute, squared = np.abs(error), error * error
    rows = np.bincount(index, minlength=bins).astype(np.float64)

    def mean_var(values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        total = np.bincount(index, weights=values, minlength=bins)
        squares = np.bincount(index, weights=values * values, minlength=bins)
        with np.errstate(invalid="ignore", divide="ignore"):
            mean = np.where(rows > 0, total / rows, values.mean())
            var = np.where(rows > 1, (squares - rows * mean * mean) / (rows - 1), values.var(ddof=1))
        return mean, np.clip(var, 0.0, None)

    abs_mean, abs_var = mean_var(absolute)
    sq_mean, sq_var = mean_var(squared)
    return ErrorModel(edges, rows, abs_mean, abs_var, sq_mean, sq_var)
