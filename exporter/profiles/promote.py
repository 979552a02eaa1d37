"""A vetted window of live traffic as the new reference: window bin counts -> Profile (docs/reference.md).

The exporter keeps no raw samples, only bin counts, so a promoted profile is made of what those
counts can say. What is kept from the old reference and what is re-derived:

- **bins stay the reference's**: numeric edges, top-K categories and the prediction's bins are
  the old profile's, so the exported bin series (`mlmon_feature_bin_total`) continue without a
  reset and fleet-wide recording rules keep summing the same bins;
- **counts come from the window**: every feature's and the prediction's reference counts are the
  window's bin counts; `rows` is the predictions binned in the window (not those a capture took);
- **summary stats are re-estimated from the binned window** (`stats.binned = 1` says so): count,
  mean and std from bin midpoints (underflow and overflow mass sits at min and max), quartiles by
  linear interpolation in the binned CDF; min/max stay the edges. `std` is the Wasserstein
  spread: when the window's estimate is 0 (all mass in one bin) the old std is kept;
- **the multivariate PCA basis is kept** (encoding, standardisation, components: re-fitting needs
  raw rows), and its reference reconstruction-error histogram, mean and std are re-derived from the
  window's error histogram and error sum, so the multivariate score is judged against the window too;
- **the calibration map and reference quality** (profiles built with labels) are kept: they
  describe the model's scores, not the traffic;
- features in the old profile but not in the config are dropped (nothing watches them);
- `extras.promotion` records where the profile came from: the previous hash, model, version,
  window, samples, actor, reason and time.

A window whose mass sits largely outside the old bins (under/overflow, `__other__`) is promoted
but answered with a warning: the old bins cannot resolve that distribution, rebuild the profile
from data with `mlmon profile build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from exporter.profiles.pca import EXTRAS_KEY as PCA_KEY
from exporter.profiles.profile import Binning, Profile

PROMOTION_KEY = "promotion"
OUTSIDE_WARNING_SHARE = 0.10  # more of a column's window mass than this outside the old bins: warn


class PromoteRefused(Exception):
    """A promote that must not happen; `status` is the HTTP status that says why (4xx)."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class Provenance:
    """Who promoted which window of which version, and why (kept in the profile and the switch log)."""

    version: str
    window: str
    actor: str
    reason: str
    at: float

    def to_json(self, previous_hash: str, samples: int) -> dict[str, Any]:
        return {"previous_hash": previous_hash, "version": self.version, "window": self.window,
                "samples": samples, "actor": self.actor, "reason": self.reason, "at": round(self.at, 3)}


def binned_stats(binning: Binning, counts: np.ndarray, old: dict[str, Any]) -> dict[str, float]:
    """Summary stats of a numeric column estimated from its window bin counts (see the module doc)."""
    assert binning.edges is not None
    edges = binning.edges
    total = float(counts.sum())
    stats: dict[str, float] = {k: v for k, v in old.items() if k in ("discrete", "distinct")}
    stats.update({"count": int(total), "binned": 1, "min": float(edges[0]), "max": float(edges[-1])})
    if total <= 0:
        return stats
    # Under/overflow mass sits at the first/last edge; inner bins at their midpoints.
    points = np.concatenate([[edges[0]], (edges[:-1] + edges[1:]) / 2.0, [edges[-1]]])
    weights = counts / total
    mean = float((weights * points).sum())
    var = float((weights * (points - mean) ** 2).sum()) * (total / (total - 1) if total > 1 else 1.0)
    std = float(np.sqrt(max(var, 0.0)))
    stats["mean"] = mean
    stats["std"] = std if std > 0 else float(old.get("std") or 0.0)
    # Quartiles: the binned CDF at the edges (underflow is all at edges[0]), linear inside bins.
    cdf_at_edges = np.cumsum(counts[:-1]) / total  # mass up to each edge
    for name, q in (("p25", 0.25), ("p50", 0.5), ("p75", 0.75)):
        stats[name] = float(np.interp(q, cdf_at_edges, edges)) if cdf_at_edges[-1] > 0 else float(edges[-1])
    return stats


def _outside_share(binning: Binning, counts: np.ndarray) -> float:
    total = counts.sum()
    if not total:
        return 0.0
    outside = counts[0] + counts[-1] if binning.kind == "numeric" else counts[-1]
    return float(outside / total)


def promoted_binning(binning: Binning, counts: np.ndarray) -> Binning:
    """The same bins with the window's counts and re-estimated stats."""
    counts = np.asarray(counts, dtype=np.int64)
    if binning.kind == "numeric":
        stats = binned_stats(binning, counts, binning.stats)
        return Binning(binning.name, binning.kind, counts, edges=binning.edges, stats=stats)
    stats = {"count": int(counts.sum()), "binned": 1}
    if "distinct" in binning.stats:
        stats["distinct"] = binning.stats["distinct"]
    return Binning(binning.name, binning.kind, counts, categories=binning.categories, stats=stats)


def promoted_pca(extras: dict[str, Any], error_counts: np.ndarray | None, error_sum: float) -> dict[str, Any] | None:
    """extras.pca with the window's reconstruction-error histogram; None when nothing changes."""
    block = extras.get(PCA_KEY)
    if not block or error_counts is None or not error_counts.sum():
        return None
    error = Binning.from_json("extras.pca.error", block["error"])
    new = promoted_binning(error, error_counts)
    n = float(error_counts.sum())
    new.stats["mean"] = error_sum / n  # exact: the window keeps the float sum of the errors
    return {**block, "error": new.to_json()}


def promote_profile(
    old: Profile, binnings: Sequence[Binning], counts: Sequence[np.ndarray], samples: int,
    provenance: Provenance, error_counts: np.ndarray | None = None, error_sum: float = 0.0,
) -> tuple[Profile, list[str]]:
    """The promoted profile of a window and its warnings.

    `binnings` are the old reference's binnings in the version's layout order (features, then the
    prediction) and `counts` the window's bin counts of each, `samples` the window's predictions.
    """
    promoted = [promoted_binning(b, c) for b, c in zip(binnings, counts)]
    warnings = []
    for binning, column in zip(binnings, counts):
        share = _outside_share(binning, np.asarray(column))
        if share > OUTSIDE_WARNING_SHARE:
            where = "outside the reference range" if binning.kind == "numeric" else "outside the top-K categories"
            warnings.append(f"{binning.name}: {share:.0%} of the window is {where}; the old bins cannot resolve it, "
                            f"rebuild the profile from data (mlmon profile build)")
    extras = dict(old.extras)
    pca = promoted_pca(extras, error_counts, error_sum)
    if pca is not None:
        extras[PCA_KEY] = pca
    elif extras.get(PCA_KEY):
        warnings.append("multivariate: no reconstruction errors in the window; the old error histogram is kept")
    extras[PROMOTION_KEY] = provenance.to_json(old.content_hash, samples)
    source = f"promoted from version {provenance.version}, window {provenance.window}"
    profile = Profile(old.model, samples, {b.name: b for b in promoted[:-1]}, promoted[-1], extras=extras, source=source)
    return profile, warnings
