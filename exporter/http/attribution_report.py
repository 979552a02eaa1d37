"""Scrape time and the JSON report: attribution counters, rank signals per window, drift impact.

Everything is computed from the counters of exporter/state/attributions.py with the pure functions
of exporter/stats/attribution.py (docs/explainability.md); nothing touches a raw record.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from exporter import catalog as c
from exporter.config.model import format_duration
from exporter.http.exposition import Exposition, lines_for, series_prefix
from exporter.profiles.attributions import AttributionReference, reference_of
from exporter.state.store import VersionState
from exporter.stats import attribution as stats


def reference(state: VersionState) -> AttributionReference:
    """The version's attribution reference; cached per reference layout (a capture replaces the layout)."""
    if state.attributions is not None:
        return state.attributions.reference
    cache: dict[Any, Any] = state.__dict__.setdefault("render_cache", {})
    key = ("attribution_reference", id(state.layout))
    if key not in cache:
        cache[key] = reference_of(state.model, state.profile)
    return cache[key]


def window_signals(state: VersionState, seconds: int, now: float) -> dict[str, Any] | None:
    """The rank signals of one window, or None when the version does not count attributions."""
    attributions = state.attributions
    if attributions is None:
        return None
    with state.lock:
        sums, records = attributions.window_sums(seconds, now)
    ref = attributions.reference
    config = state.model.attributions
    live = np.nan_to_num(stats.importance(sums[:, 1], sums[:, 2], sums[:, 0]))
    out: dict[str, Any] = {"samples": records, "importance": live, "mean": stats.mean(sums[:, 1], sums[:, 2], sums[:, 0]),
                           "ndcg": None, "share_tv": None, "top_driver_changed": None, "drifted": None}
    live_shares = stats.shares(live)
    ref_shares = ref.shares
    out["shares"] = live_shares
    if live_shares is None or ref_shares is None:
        return out
    out["ndcg"] = stats.ndcg(ref.importance, live)
    out["share_tv"] = stats.total_variation(live_shares, ref_shares)
    out["top_driver_changed"] = stats.top_driver(live, ref.importance) != stats.top_driver(ref.importance)
    if records >= config.min_samples:
        out["drifted"] = out["ndcg"] < config.ndcg_threshold or out["share_tv"] >= config.share_tv_threshold
    return out


def _cached_prefixes(state: VersionState, key: str, build: Any) -> list[str]:
    cache: dict[Any, Any] = state.__dict__.setdefault("render_cache", {})
    cache_key = (key, id(state.layout))
    if cache_key not in cache:
        cache[cache_key] = build()
    return cache[cache_key]


def _feature_prefixes(state: VersionState, metric: c.Metric, names: tuple[str, ...], tails: tuple[str, ...] = ()) -> list[str]:
    """Label prefixes per feature (and per value of the metric's last label, e.g. sign), cached per layout."""
    model, version = state.model.name, state.version

    def build() -> list[str]:
        return [series_prefix(metric.name, metric.labels, (model, version, name, *tail))
                for name in names for tail in ([(t,) for t in tails] or [()])]

    return _cached_prefixes(state, metric.name, build)


def collect_attributions(state: VersionState, out: Exposition, now: float, drift: list[Any] | None) -> None:
    """Every explainability family of one version (exporter/http/collector.py calls this with the
    version's evaluated drift windows, exporter.http.drift_report.evaluate, or None while capturing)."""
    model, version = state.model.name, state.version
    ref = reference(state)
    if ref.known:
        out.add(c.FEATURE_IMPORTANCE_REFERENCE,
                lines_for(_feature_prefixes(state, c.FEATURE_IMPORTANCE_REFERENCE, ref.names), ref.importance))
        shares = ref.shares
        assert shares is not None
        out.add(c.FEATURE_IMPORTANCE_REFERENCE_SHARE,
                lines_for(_feature_prefixes(state, c.FEATURE_IMPORTANCE_REFERENCE_SHARE, ref.names), shares))
        _collect_impact(state, ref.names, shares, out, drift)
    attributions = state.attributions
    if attributions is None:
        return
    with state.lock:
        sums, bins = attributions.sums.copy(), attributions.bins.copy()
        records, dropped = attributions.records, attributions.dropped.copy()
    names = ref.names
    out.add(c.ATTRIBUTION_SAMPLES, lines_for(_feature_prefixes(state, c.ATTRIBUTION_SAMPLES, names),
                                            sums[:, 0].astype(np.int64)))
    out.add(c.ATTRIBUTION_VALUE_SUM, lines_for(
        _feature_prefixes(state, c.ATTRIBUTION_VALUE_SUM, names, ("positive", "negative")), sums[:, 1:3].reshape(-1)))
    out.add(c.ATTRIBUTION_SQUARED_SUM, lines_for(_feature_prefixes(state, c.ATTRIBUTION_SQUARED_SUM, names), sums[:, 3]))
    binned = [(n, b) for n, b in zip(names, ref.binnings) if b is not None]
    if binned:
        def bin_prefixes(metric: c.Metric) -> list[str]:
            return _cached_prefixes(state, metric.name, lambda: [
                series_prefix(metric.name, metric.labels, (model, version, n, label)) for n, b in binned for label in b.labels])
        out.add(c.ATTRIBUTION_BIN, lines_for(bin_prefixes(c.ATTRIBUTION_BIN), bins))
        out.add(c.ATTRIBUTION_REFERENCE, lines_for(bin_prefixes(c.ATTRIBUTION_REFERENCE),
                                                   np.concatenate([b.reference_ratio for _, b in binned])))
    out.add_one(c.ATTRIBUTION_RECORDS, (model, version), records)
    for reason, value in zip(("unknown_feature", "invalid_value"), dropped.tolist()):
        out.add_one(c.ATTRIBUTIONS_DROPPED, (model, version, reason), value)
    for seconds in state.window_seconds:
        window = format_duration(seconds)
        signals = window_signals(state, seconds, now)
        assert signals is not None
        labels = (model, version, window)
        out.add_one(c.ATTRIBUTION_WINDOW_SAMPLES, labels, signals["samples"])
        if signals["ndcg"] is None:
            continue
        out.add_one(c.ATTRIBUTION_NDCG, labels, signals["ndcg"])
        out.add_one(c.ATTRIBUTION_SHARE_TV, labels, signals["share_tv"])
        out.add_one(c.ATTRIBUTION_TOP_DRIVER_CHANGED, labels, int(signals["top_driver_changed"]))
        if signals["drifted"] is not None:
            out.add_one(c.ATTRIBUTION_DRIFT_DETECTED, labels, int(signals["drifted"]))


def _collect_impact(state: VersionState, names: tuple[str, ...], shares: np.ndarray, out: Exposition,
                    results: list[Any] | None) -> None:
    """Reference importance share x the window's drift score (the model's method), per feature."""
    if not results:
        return
    metric = c.FEATURE_DRIFT_IMPACT
    model, version = state.model.name, state.version
    for result in results:
        impact = shares * result.decision_score[: len(shares)]
        window = result.label
        lines = [
            series_prefix(metric.name, metric.labels, (model, version, name, window)) + repr(float(value))
            for name, value in zip(names, impact.tolist())
            if math.isfinite(value)
        ]
        out.add(metric, lines)


def _number(value: Any) -> float | None:
    return float(value) if value is not None and math.isfinite(float(value)) else None


def attribution_report(state: VersionState, seconds: int, now: float,
                       decision_score: np.ndarray | None = None) -> dict[str, Any] | None:
    """The attribution part of the JSON drift report of one version and window (None: nothing to say);
    `decision_score` is the window's drift score per column (features first), for drift impact."""
    ref = reference(state)
    signals = window_signals(state, seconds, now)
    if signals is None and not ref.known:
        return None
    ref_shares = ref.shares
    impact: dict[str, float | None] = {}
    if decision_score is not None and ref_shares is not None:
        impact = {n: _number(s * d) for n, s, d in zip(ref.names, ref_shares, decision_score)}
    features = []
    for i, name in enumerate(ref.names):
        row: dict[str, Any] = {
            "feature": name,
            "reference_importance": _number(ref.importance[i]),
            "reference_share": _number(ref_shares[i]) if ref_shares is not None else None,
            "drift_impact": impact.get(name),
        }
        if signals is not None:
            row["importance"] = _number(signals["importance"][i])
            row["share"] = _number(signals["shares"][i]) if signals["shares"] is not None else None
            row["mean"] = _number(signals["mean"][i])
        features.append(row)
    features.sort(key=lambda f: -(f["drift_impact"] or 0.0))
    config = state.model.attributions
    report: dict[str, Any] = {"reference_source": ref.source, "features": features}
    if signals is not None:
        report.update({
            "samples": signals["samples"], "ndcg": _number(signals["ndcg"]), "share_tv": _number(signals["share_tv"]),
            "top_driver_changed": signals["top_driver_changed"], "drifted": signals["drifted"],
            "thresholds": {"ndcg": config.ndcg_threshold, "share_tv": config.share_tv_threshold,
                           "min_samples": config.min_samples},
        })
    return report
