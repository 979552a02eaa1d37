"""Multivariate drift score: the window's histogram of PCA reconstruction errors against the reference's.

Why a PCA reconstruction error, and why a histogram: see :mod:`exporter.profiles.pca`.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from exporter.stats import drift

BAND_SIGMAS = 3.0  # the reference band of the window mean error: mean +- 3 standard errors


class Multivariate(NamedTuple):
    score: float  # PSI of the error histogram
    p_value: float  # binned KS
    n: int
    verdict: float  # 1.0 drifted, 0.0 not, NaN below min_samples
    error_mean: float  # the window's mean reconstruction error (NaN when empty)
    band: tuple[float, float]  # reference mean -+ BAND_SIGMAS * reference std / sqrt(n)


def multivariate_scores(reference_ratio: np.ndarray, reference_total: float, counts: np.ndarray) -> tuple[float, float, int]:
    """(PSI, KS p-value, N) of a window's error histogram against the reference's fractions and size."""
    seg = drift.Segments.of_sizes([len(reference_ratio)])
    q, n = drift.fractions(counts, seg)
    score = drift.psi(reference_ratio, q, seg)[0]
    ks = drift.ks(reference_ratio, q, seg, np.array([float(reference_total)]), n)
    return float(score), float(ks.p_value[0]), int(n[0])


def multivariate_drift(reference_ratio: np.ndarray, reference_total: float, counts: np.ndarray, error_sum: float,
                       reference_mean: float, reference_std: float, alpha: float, min_effect: float,
                       min_samples: int) -> Multivariate:
    """Score, p-value and verdict with the univariate rule (N >= min_samples, p < alpha, PSI >= min_effect),
    plus the window's mean error and the band the reference mean would fall in at this N."""
    score, p_value, n = multivariate_scores(reference_ratio, reference_total, counts)
    verdict = float(p_value < alpha and score >= min_effect) if n >= min_samples else math.nan
    mean = error_sum / n if n else math.nan
    half = BAND_SIGMAS * reference_std / math.sqrt(n) if n else math.nan
    return Multivariate(score, p_value, n, verdict, mean, (reference_mean - half, reference_mean + half))
