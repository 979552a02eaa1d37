"""Windowed state of multivariate drift: the reconstruction error of each complete record, binned.

The basis and the reference error histogram live in the profile (:mod:`exporter.profiles.pca`); the
score is computed from these counts at scrape time (:mod:`exporter.stats.multivariate`).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from exporter.ingest.columns import NUMBER_TYPES, float_values
from exporter.profiles.pca import PcaBasis, basis_of
from exporter.profiles.profile import Profile
from exporter.state.windows import WindowRing


def numeric_matrix(raw_columns: Sequence[Sequence[Any]]) -> np.ndarray:
    """Rows x features of floats from raw JSON values; anything not a finite number becomes NaN."""
    out = []
    for raw in raw_columns:
        if set(map(type, raw)) <= NUMBER_TYPES:
            out.append(float_values(raw) if len(raw) else np.zeros(0))  # an int past float range is inf
        else:  # the rare column with nulls, strings or missing keys: value by value
            numbers = [v if type(v) in NUMBER_TYPES else np.nan for v in raw]
            out.append(float_values(numbers))
    matrix = np.column_stack(out) if out else np.zeros((0, 0))
    return np.where(np.isfinite(matrix), matrix, np.nan)


class MultivariateState:
    """Window histograms of the reconstruction error of complete records; O(window slots x bins)."""

    def __init__(self, basis: PcaBasis, window_seconds: Sequence[int], slots: int) -> None:
        self.basis = basis
        self.window_seconds = tuple(window_seconds)
        self.windows = [WindowRing(s, slots, basis.error_binning.n_bins) for s in window_seconds]

    @classmethod
    def of(cls, profile: Profile, window_seconds: Sequence[int], slots: int) -> MultivariateState | None:
        basis = basis_of(profile)
        return cls(basis, window_seconds, slots) if basis is not None else None

    def counts(self, raw_features: dict[str, list[Any]]) -> np.ndarray | None:
        """Binned errors of every record whose numeric features are all present and finite; None if none is."""
        matrix = numeric_matrix([raw_features[name] for name in self.basis.features])
        matrix = matrix[~np.isnan(matrix).any(axis=1)]
        if not len(matrix):
            return None
        binning = self.basis.error_binning
        with np.errstate(over="ignore", invalid="ignore"):  # 1e308 is finite, its square is not
            errors = self.basis.errors(matrix)
        errors = errors[np.isfinite(errors)]
        return np.bincount(binning.assign(errors), minlength=binning.n_bins)

    def add_counts(self, counts: np.ndarray, now: float) -> None:
        for ring in self.windows:
            ring.add(counts, 0, now)

    def add(self, raw_features: dict[str, list[Any]], now: float) -> None:
        """Bin the error of every record whose numeric features are all present and finite."""
        counts = self.counts(raw_features)
        if counts is not None:
            self.add_counts(counts, now)

    def window_counts(self, window: int, now: float) -> np.ndarray:
        return self.windows[self.window_seconds.index(window)].totals(now)[0]
