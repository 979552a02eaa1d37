"""Multivariate drift score: the window's histogram of PCA reconstruction errors against the reference's.

Why a PCA reconstruction error, and why a histogram: see :mod:`exporter.profiles.pca`.
"""

from __future__ import annotations

import numpy as np

from exporter.stats import drift


def multivariate_scores(reference_ratio: np.ndarray, reference_total: float, counts: np.ndarray) -> tuple[float, float, int]:
    """(PSI, KS p-value, N) of a window's error histogram against the reference's fractions and size."""
    seg = drift.Segments.of_sizes([len(reference_ratio)])
    q, n = drift.fractions(counts, seg)
    score = drift.psi(reference_ratio, q, seg)[0]
    ks = drift.ks(reference_ratio, q, seg, np.array([float(reference_total)]), n)
    return float(score), float(ks.p_value[0]), int(n[0])
