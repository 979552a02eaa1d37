"""Windowed state of multivariate drift: the reconstruction error of each record, binned and summed.

The encoding, basis and reference error histogram live in the profile (:mod:`exporter.profiles.pca`);
the score and verdict are computed from these counts at scrape time (:mod:`exporter.stats.multivariate`).
A record counts when at least one of its encoded features is present; missing ones are imputed
with the reference mean.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from exporter.profiles.pca import PcaBasis, basis_of
from exporter.profiles.profile import Profile
from exporter.state.quality import FloatRing
from exporter.state.windows import WindowRing


class MultivariateState:
    """Window histograms (and sums) of the reconstruction error; O(window slots x bins)."""

    def __init__(self, basis: PcaBasis, window_seconds: Sequence[int], slots: int) -> None:
        self.basis = basis
        self.window_seconds = tuple(window_seconds)
        self.windows = [WindowRing(s, slots, basis.error_binning.n_bins) for s in window_seconds]
        self.sums = [FloatRing(s, slots, 1) for s in window_seconds]  # sum of the errors, for the window mean
        # Since start, never reset: exported as counters so the fleet histogram and mean are sums over pods.
        self.cumulative = np.zeros(basis.error_binning.n_bins, dtype=np.int64)
        self.cumulative_sum = np.zeros(1, dtype=np.float64)

    @classmethod
    def of(cls, profile: Profile, window_seconds: Sequence[int], slots: int) -> MultivariateState | None:
        basis = basis_of(profile)
        return cls(basis, window_seconds, slots) if basis is not None else None

    def counts(self, raw_features: dict[str, list[Any]]) -> tuple[np.ndarray, float] | None:
        """Binned errors and their sum over the records with any encoded feature present; None if none is."""
        n = max((len(v) for v in raw_features.values()), default=0)
        matrix = self.basis.encode_raw([raw_features.get(name, [None] * n) for name in self.basis.features])
        matrix = matrix[~np.isnan(matrix).all(axis=1)] if matrix.size else matrix[:0]
        if not len(matrix):
            return None
        binning = self.basis.error_binning
        errors = self.basis.errors(matrix)
        errors = errors[np.isfinite(errors)]
        if not len(errors):
            return None
        return np.bincount(binning.assign(errors), minlength=binning.n_bins), float(np.minimum(errors, 1e12).sum())

    def add_counts(self, counts: tuple[np.ndarray, float], now: float) -> None:
        histogram, total = counts
        self.cumulative += histogram
        self.cumulative_sum += total
        for ring, sums in zip(self.windows, self.sums):
            ring.add(histogram, 0, now)
            sums.add(np.array([total]), 0, now)

    def add(self, raw_features: dict[str, list[Any]], now: float) -> None:
        counts = self.counts(raw_features)
        if counts is not None:
            self.add_counts(counts, now)

    def window_counts(self, window: int, now: float) -> np.ndarray:
        return self.windows[self.window_seconds.index(window)].totals(now)[0]

    def window_sum(self, window: int, now: float) -> float:
        return float(self.sums[self.window_seconds.index(window)].totals(now)[0][0])
