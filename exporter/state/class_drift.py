"""Windowed bin counts of each class's probability (multiclass rows sent with per-class scores).

The binnings come from the profile (exporter/profiles/class_scores.py); the scores and verdicts are
computed at scrape time from these counts, with the prediction's drift rule
(exporter/http/class_drift_report.py). State is O(classes x bins x window slots) per version.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np

from exporter.config.model import ModelConfig
from exporter.profiles.class_scores import class_binnings
from exporter.profiles.profile import Binning, Profile
from exporter.state.windows import WindowRing


class ClassDriftState:
    """One flat vector of every class's score bins per window slot."""

    snapshot_skip = ("binnings", "offsets", "window_seconds")  # from the profile and config (state/snapshot.py)

    def __init__(self, binnings: tuple[Binning, ...], window_seconds: Sequence[int], slots: int) -> None:
        self.binnings = binnings
        self.offsets = np.concatenate([[0], np.cumsum([b.n_bins for b in binnings])]).astype(np.int64)
        self.window_seconds = tuple(window_seconds)
        self.windows = [WindowRing(s, slots, int(self.offsets[-1])) for s in window_seconds]
        # Since start, exported as mlmon_class_probability_bin_total for the fleet rules to sum over pods.
        self.cumulative = np.zeros(int(self.offsets[-1]), dtype=np.int64)

    @classmethod
    def of(cls, profile: Profile, model: ModelConfig, window_seconds: Sequence[int],
           slots: int) -> ClassDriftState | None:
        binnings = class_binnings(profile, model)
        return cls(binnings, window_seconds, slots) if binnings else None

    def counts(self, class_scores: list[Any]) -> np.ndarray | None:
        """Bin counts of a batch's per-class score rows (None rows: sent as a class; left out)."""
        rows = [r for r in class_scores if r is not None] if class_scores else []
        if not rows:
            return None
        matrix = np.asarray(rows, dtype=np.float64)
        indices = [b.assign(matrix[:, c]) + self.offsets[c] for c, b in enumerate(self.binnings)]
        return np.bincount(np.concatenate(indices), minlength=int(self.offsets[-1]))

    def add_counts(self, counts: np.ndarray, now: float) -> None:
        rows = int(counts[: self.offsets[1]].sum())
        self.cumulative += counts
        for ring in self.windows:
            ring.add(counts, rows, now)

    def window_counts(self, window: int, now: float) -> np.ndarray:
        return self.windows[self.window_seconds.index(window)].totals(now)[0]
