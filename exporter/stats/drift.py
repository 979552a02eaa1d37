"""Drift scores from binned counts: pure functions, no state, no raw samples.

Every function works on *segmented* arrays: the bins of many columns side by side on the last
axis, with :class:`Segments` saying where each column starts. One call scores every feature of a
model version at once (a handful of numpy operations whatever the number of features), and the
same call scores thousands of simulated trials when the leading axis holds trials.

    >>> seg = Segments.of_sizes([3])
    >>> p = np.array([0.5, 0.3, 0.2]); q = np.array([0.3, 0.3, 0.4])
    >>> round(float(psi(p, q, seg)[0]), 4)
    0.2408

Conventions (docs/drift.md has the formulas and the reasoning):

* ``p`` is the reference distribution over bins, ``q`` the current window's; both sum to 1 per
  segment (``q`` is all zeros when the window is empty, and every score is then NaN).
* PSI and KL take ``max(x, EPSILON)`` in place of each fraction, so an empty bin (the numeric
  under/overflow bins are always empty in the reference) gives a large but finite score. The
  fleet recording rules use the same clamp (``clamp_min``), so Prometheus and Python agree.
* JS and Hellinger need no epsilon (0·log 0 = 0); chi-square is the two-sample test of the
  reference counts against the window counts, so it needs no epsilon either.
* Natural logarithms throughout (JS distance in [0, sqrt(ln 2)], like ``scipy``'s default).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NamedTuple

import numpy as np
from scipy import special

EPSILON = 1e-4  # stands in for an empty bin's fraction in PSI and KL (0.01 %), as Evidently does
TINY = 1e-300  # keeps 0 * log(0) at 0 in JS without changing any non-zero fraction


@dataclass(frozen=True)
class Segments:
    """Where each column's bins start on the last axis of a flat bin vector."""

    starts: np.ndarray
    sizes: np.ndarray

    @classmethod
    def of_sizes(cls, sizes: list[int] | np.ndarray) -> Segments:
        sizes = np.asarray(sizes, dtype=np.int64)
        if np.any(sizes < 1):
            raise ValueError("every segment needs at least one bin")
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]]).astype(np.int64)
        return cls(starts, sizes)

    @property
    def width(self) -> int:
        return int(self.sizes.sum())

    def sum(self, x: np.ndarray) -> np.ndarray:
        return np.add.reduceat(x, self.starts, axis=-1)

    def max(self, x: np.ndarray) -> np.ndarray:
        return np.maximum.reduceat(x, self.starts, axis=-1)

    def expand(self, per_segment: np.ndarray) -> np.ndarray:
        """Repeat one value per segment over that segment's bins."""
        return np.repeat(per_segment, self.sizes, axis=-1)

    def cumsum(self, x: np.ndarray) -> np.ndarray:
        """Running sum that restarts at every segment (the binned CDF at each bin's right edge)."""
        total = np.cumsum(x, axis=-1)
        before = total[..., self.starts] - x[..., self.starts]
        return total - self.expand(before)


def fractions(counts: np.ndarray, seg: Segments) -> tuple[np.ndarray, np.ndarray]:
    """(fraction per bin, total per segment); an empty segment has all-zero fractions."""
    counts = np.asarray(counts, dtype=np.float64)
    totals = seg.sum(counts)
    safe = np.where(totals > 0, totals, 1.0)
    return counts / seg.expand(safe), totals


def _nan_where_empty(score: np.ndarray, q: np.ndarray, seg: Segments) -> np.ndarray:
    return np.where(seg.sum(q) > 0, score, np.nan)


def psi(p: np.ndarray, q: np.ndarray, seg: Segments, eps: float = EPSILON) -> np.ndarray:
    """Population stability index: sum (q' - p') ln(q'/p') with x' = max(x, eps)."""
    pc, qc = np.maximum(p, eps), np.maximum(q, eps)
    return _nan_where_empty(seg.sum((qc - pc) * np.log(qc / pc)), q, seg)


def kl(p: np.ndarray, q: np.ndarray, seg: Segments, eps: float = EPSILON) -> np.ndarray:
    """KL(current || reference) = sum q ln(q'/p'), x' = max(x, eps); a bin with q = 0 adds 0."""
    pc, qc = np.maximum(p, eps), np.maximum(q, eps)
    return _nan_where_empty(seg.sum(q * np.log(qc / pc)), q, seg)


def js_distance(p: np.ndarray, q: np.ndarray, seg: Segments) -> np.ndarray:
    """Jensen-Shannon distance: sqrt of the JS divergence, natural log (scipy's jensenshannon)."""
    m = np.maximum((p + q) / 2, TINY)
    divergence = seg.sum(p * np.log(np.maximum(p, TINY) / m) + q * np.log(np.maximum(q, TINY) / m)) / 2
    return _nan_where_empty(np.sqrt(np.maximum(divergence, 0.0)), q, seg)


def hellinger(p: np.ndarray, q: np.ndarray, seg: Segments) -> np.ndarray:
    """Hellinger distance in [0, 1]: sqrt(1 - sum sqrt(p q)) = ||sqrt p - sqrt q|| / sqrt 2."""
    bhattacharyya = seg.sum(np.sqrt(p * q))
    return _nan_where_empty(np.sqrt(np.maximum(1.0 - bhattacharyya, 0.0)), q, seg)


class KsResult(NamedTuple):
    statistic: np.ndarray
    p_value: np.ndarray


def chisquare(reference_counts: np.ndarray, counts: np.ndarray, seg: Segments) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Two-sample (homogeneity) chi-square of reference vs window counts: (statistic, p-value, dof).

    Equals ``scipy.stats.chi2_contingency([reference, current], correction=False)`` after
    dropping bins empty in both; dof = (bins non-empty in either) - 1. The reference is a sample
    too, so unlike a goodness-of-fit test this stays calibrated when the window is as large as
    the reference (e.g. a reference captured from the first 1,000 live samples).
    """
    r = np.asarray(reference_counts, dtype=np.float64)
    c = np.asarray(counts, dtype=np.float64)
    n_ref, n_cur = seg.sum(r), seg.sum(c)
    big_r, big_n = seg.expand(n_ref), seg.expand(n_cur)
    both = r + c
    cells = (r * big_n - c * big_r) ** 2 / np.where(both > 0, both, 1.0)
    scale = n_ref * n_cur
    statistic = seg.sum(cells) / np.where(scale > 0, scale, 1.0)
    dof = seg.sum((both > 0).astype(np.float64)) - 1
    p_value = np.where(dof > 0, special.chdtrc(np.maximum(dof, 1), statistic), 1.0)
    empty = n_cur == 0
    return np.where(empty, np.nan, statistic), np.where(empty, np.nan, p_value), dof


def effective_n(n_ref: np.ndarray, n_cur: np.ndarray) -> np.ndarray:
    """n m / (n + m): the sample size of the two-sample KS limit distribution."""
    total = n_ref + n_cur
    return np.where(total > 0, n_ref * n_cur / np.where(total > 0, total, 1.0), 0.0)


def ks(p: np.ndarray, q: np.ndarray, seg: Segments, n_ref: np.ndarray, n_cur: np.ndarray) -> KsResult:
    """Kolmogorov-Smirnov D between the binned CDFs, with the asymptotic two-sample p-value.

    D is the largest CDF gap at the bin edges, a lower bound of the raw-data D (see
    :func:`ks_upper_bound`). The p-value is Kolmogorov's limit law at the effective sample size
    with Stephens' small-sample correction: Q((sqrt(n_e) + 0.12 + 0.11/sqrt(n_e)) D).
    """
    d = seg.max(np.abs(seg.cumsum(q) - seg.cumsum(p)))
    root = np.sqrt(effective_n(n_ref, n_cur))
    argument = (root + 0.12 + 0.11 / np.where(root > 0, root, 1.0)) * d
    p_value = np.where(root > 0, special.kolmogorov(argument), np.nan)
    d = _nan_where_empty(d, q, seg)
    return KsResult(d, np.where(np.isnan(d), np.nan, p_value))


def _edge_cdfs(p: np.ndarray, q: np.ndarray, seg: Segments) -> tuple[np.ndarray, ...]:
    """Reference and current CDFs at the left and right edge of every bin."""
    fp_right, fq_right = seg.cumsum(p), seg.cumsum(q)
    return fp_right - p, fp_right, fq_right - q, fq_right


def ks_upper_bound(p: np.ndarray, q: np.ndarray, seg: Segments) -> np.ndarray:
    """The largest raw-data KS D these bin counts allow.

    Inside a bin both CDFs are non-decreasing, so F_ref - F_cur lies between
    F_ref(left) - F_cur(right) and F_ref(right) - F_cur(left): raw D is within
    [binned D, this bound], whatever the samples inside the bins were.
    """
    fp_left, fp_right, fq_left, fq_right = _edge_cdfs(p, q, seg)
    return seg.max(np.maximum(fp_right - fq_left, fq_right - fp_left))


class Wasserstein(NamedTuple):
    """W1 estimate and the bounds the binning implies, all divided by the reference spread."""

    estimate: np.ndarray
    lower: np.ndarray
    upper: np.ndarray


def wasserstein(p: np.ndarray, q: np.ndarray, seg: Segments, widths: np.ndarray, spread: np.ndarray) -> Wasserstein:
    """Wasserstein-1 distance integral |F_ref - F_cur| dx from binned CDFs, over the reference spread.

    ``widths`` are the bin widths (0 for the open under/overflow bins and for categorical bins),
    ``spread`` the reference standard deviation per segment. Inside a bin both CDFs are taken as
    linear (values spread evenly), which gives the estimate; the monotone-CDF argument of
    :func:`ks_upper_bound` gives per-bin bounds. Mass in the open bins is counted as if it sat at
    the reference min/max (width 0): the estimate and upper bound then leave out how far beyond
    the reference range current values went; the lower bound holds regardless.
    """
    fp_left, fp_right, fq_left, fq_right = _edge_cdfs(p, q, seg)
    d0, d1 = fp_left - fq_left, fp_right - fq_right
    a0, a1 = np.abs(d0), np.abs(d1)
    same_sign = d0 * d1 >= 0
    crossing = (d0 * d0 + d1 * d1) / (2 * np.where(a0 + a1 > 0, a0 + a1, 1.0))
    per_bin = np.where(same_sign, (a0 + a1) / 2, crossing)
    low = np.maximum(0.0, np.maximum(fp_left - fq_right, fq_left - fp_right))
    high = np.maximum(fp_right - fq_left, fq_right - fp_left)
    scale = np.where(spread > 0, spread, 1.0)
    out = [_nan_where_empty(seg.sum(widths * x) / scale, q, seg) for x in (per_bin, low, high)]
    return Wasserstein(*out)
