"""Multivariate drift score: the window's histogram of PCA reconstruction errors against the reference's.

Why a PCA reconstruction error, and why a histogram: see :mod:`exporter.profiles.pca`.
"""

from __future__ import annotations

import numpy as np

from exporter.profiles.pca import PcaBasis
from exporter.stats import drift


def multivariate_scores(basis: PcaBasis, counts: np.ndarray) -> tuple[float, float, int]:
    """(PSI, KS p-value, N) of a window's error histogram against the reference's."""
    binning = basis.error_binning
    seg = drift.Segments.of_sizes([binning.n_bins])
    q, n = drift.fractions(counts, seg)
    p = binning.reference_ratio
    score = drift.psi(p, q, seg)[0]
    ks = drift.ks(p, q, seg, np.array([float(binning.reference_total)]), n)
    return float(score), float(ks.p_value[0]), int(n[0])
