"""Scrape-time drift: every score of every feature, window and version, from the window bin counts.

One evaluation scores all columns of a version (features and the prediction side by side in the
flat bin vector of ``VersionState``) with the segmented functions of :mod:`exporter.stats.drift`, so
its cost is a few dozen numpy calls whatever the number of features or samples. Results are
cached on the version until its data or its window slots change, so one scrape (and the
``/drift`` endpoint in between) never computes the same window twice.

Verdict per column (docs/drift.md, "Deciding drift"): no verdict below ``min_samples``; otherwise
drifted when the test rejects (KS for numeric, chi-square for categorical; p < ``alpha``) and
the ``method`` score reaches ``min_effect``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from flask import Flask, Response, request

from exporter import catalog as c
from exporter.stats import drift
from exporter.config.model import DriftConfig, format_duration, parse_duration
from exporter.http.attribution_report import attribution_report
from exporter.http.exposition import Exposition, lines_for, series_prefix
from exporter.http.responses import json_response
from exporter.profiles.bin_labels import display_labels
from exporter.stats.multivariate import Multivariate, multivariate_drift
from exporter.state.store import Layout, VersionState

METHODS = ("psi", "js", "kl", "hellinger", "chisquare", "ks", "wasserstein")
NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
CATEGORICAL_ONLY = frozenset({"chisquare"})
TOP_BINS = 3


def applies(method: str, numeric: bool) -> bool:
    """KS and Wasserstein need ordered bins; the chi-square test is the categorical one."""
    return not (method in NUMERIC_ONLY and not numeric) and not (method in CATEGORICAL_ONLY and numeric)


@dataclass(frozen=True)
class Reference:
    """The reference side of a layout, flattened once: what every evaluation compares against."""

    names: tuple[str, ...]
    labels: tuple[tuple[str, ...], ...]
    seg: drift.Segments
    counts: np.ndarray
    p: np.ndarray
    n: np.ndarray
    widths: np.ndarray
    spread: np.ndarray
    numeric: np.ndarray
    display: tuple[tuple[str, ...], ...]  # bin labels in feature units, for people (bin_labels.py)
    edges: tuple[list[float] | None, ...]

    @classmethod
    def of(cls, layout: Layout) -> Reference:
        binnings = layout.binnings
        seg = drift.Segments.of_sizes([b.n_bins for b in binnings])
        counts = np.concatenate([b.reference_counts for b in binnings]).astype(np.float64)
        p, n = drift.fractions(counts, seg)
        widths = []
        for b in binnings:
            if b.kind == "numeric":
                # Open under/overflow bins have width 0: their mass counts as sitting at min/max.
                widths.append(np.concatenate([[0.0], np.diff(b.edges), [0.0]]))
            else:
                widths.append(np.zeros(b.n_bins))
        spread = np.array([float(b.stats.get("std") or 0.0) for b in binnings])
        numeric = np.array([b.kind == "numeric" for b in binnings])
        display = tuple(display_labels(b) for b in binnings)
        edges = tuple(b.edges.tolist() if b.edges is not None else None for b in binnings)
        return cls(tuple(b.name for b in binnings), tuple(b.labels for b in binnings), seg, counts, p, n,
                   np.concatenate(widths), spread, numeric, display, edges)


class WindowDrift(NamedTuple):
    """Everything about one window of one version; arrays have one entry per column (prediction last)."""

    seconds: int
    counts: np.ndarray
    q: np.ndarray
    n: np.ndarray
    scores: dict[str, np.ndarray]
    p_value: np.ndarray
    decision_score: np.ndarray
    verdict: np.ndarray  # 1.0 drifted, 0.0 not, NaN no verdict (N < min_samples)
    drifted_ratio: float | None
    dataset_drift: bool | None
    multivariate: Multivariate | None

    @property
    def label(self) -> str:
        return format_duration(self.seconds)


def score_window(ref: Reference, counts: np.ndarray, config: DriftConfig) -> dict[str, Any]:
    """All scores, p-values and verdicts of one window's flat bin counts (pure; no state).

    ``counts`` may carry leading axes (one row per trial); scores then carry them too.
    """
    seg = ref.seg
    q, n = drift.fractions(counts, seg)
    chi_stat, chi_p, _ = drift.chisquare(ref.counts, counts, seg)
    ks = drift.ks(ref.p, q, seg, ref.n, n)
    scores = {
        "psi": drift.psi(ref.p, q, seg),
        "js": drift.js_distance(ref.p, q, seg),
        "kl": drift.kl(ref.p, q, seg),
        "hellinger": drift.hellinger(ref.p, q, seg),
        "chisquare": chi_stat,
        "ks": ks.statistic,
        "wasserstein": drift.wasserstein(ref.p, q, seg, ref.widths, ref.spread).estimate,
    }
    p_value = np.where(ref.numeric, ks.p_value, chi_p)
    method = config.method
    decision = scores[method] if method not in NUMERIC_ONLY | CATEGORICAL_ONLY else np.where(
        [applies(method, bool(k)) for k in ref.numeric], scores[method], scores["psi"]
    )
    with np.errstate(invalid="ignore"):
        drifted = (p_value < config.alpha) & (decision >= config.effect_floor)
    verdict = np.where(n >= config.min_samples, drifted.astype(np.float64), np.nan)
    ratio = None
    if verdict.ndim == 1:  # leading axes (many trials at once, in the power tests) get no dataset verdict
        judged = verdict[:-1][~np.isnan(verdict[:-1])]
        ratio = float(judged.mean()) if len(judged) else None
    dataset = (ratio >= config.drifted_share) if ratio is not None else None
    return {"q": q, "n": n, "scores": scores, "p_value": p_value, "decision_score": decision, "verdict": verdict,
            "drifted_ratio": ratio, "dataset_drift": dataset}


MULTIVARIATE_PSI_FLOOR = 0.01  # the default min_effect of PSI (warning 0.1 / 10)


def multivariate_floor(config: DriftConfig) -> float:
    """The multivariate score is a PSI: the model's min_effect when its method is PSI, else PSI's default."""
    return config.effect_floor if config.method == "psi" else MULTIVARIATE_PSI_FLOOR


def _reference(state: VersionState) -> Reference:
    assert state.layout is not None
    cache: dict[int, Reference] = state.__dict__.setdefault("drift_reference", {})
    key = id(state.layout)
    if key not in cache:
        cache.clear()
        cache[key] = Reference.of(state.layout)
    return cache[key]


def evaluate(state: VersionState, now: float) -> list[WindowDrift] | None:
    """Drift of every window of a version (None while its reference is being captured); cached."""
    if state.layout is None:
        return None
    epochs = tuple(int(now // (s / state.slots)) for s in state.window_seconds)
    key = (id(state.layout), state.predictions, epochs)
    cached = state.__dict__.get("drift_cache")
    if cached is not None and cached[0] == key:
        return cached[1]
    ref = _reference(state)
    config = state.model.drift
    results = []
    for seconds in state.window_seconds:
        counts = state.window_counts(seconds, now)[0]
        with state.lock:
            mv = state.multivariate
            mv_counts = mv.window_counts(seconds, now) if mv is not None else None
            mv_sum = mv.window_sum(seconds, now) if mv is not None else 0.0
        scored = score_window(ref, counts, config)
        multivariate = None
        if mv is not None and mv_counts is not None:
            errors = mv.basis.error_binning
            multivariate = multivariate_drift(
                errors.reference_ratio, errors.reference_total, mv_counts, mv_sum, float(errors.stats.get("mean") or 0.0),
                float(errors.stats.get("std") or 0.0), config.alpha, multivariate_floor(config), config.min_samples)
        results.append(WindowDrift(seconds, counts, multivariate=multivariate, **scored))
    state.__dict__["drift_cache"] = (key, results)
    return results


class _Series(NamedTuple):
    """Label prefixes of one family for one window, and which columns they take values from."""

    metric: c.Metric
    method: str  # the key in WindowDrift.scores, or "" for p-value/samples/verdict families
    columns: np.ndarray
    prefixes: list[str]


def _series_plan(state: VersionState, ref: Reference) -> dict[int, list[_Series]]:
    """Every drift series of a version, built once per reference layout (label escaping is not free)."""
    cache: dict[int, dict[int, list[_Series]]] = state.__dict__.setdefault("drift_series", {})
    key = id(state.layout)
    if key in cache:
        return cache[key]
    config = state.model.drift
    exported = [m for m in METHODS if m in config.export or m == config.method]
    model, version = state.model.name, state.version
    features = np.arange(len(ref.names) - 1)
    pred = len(ref.names) - 1
    plan: dict[int, list[_Series]] = {}
    for seconds in state.window_seconds:
        window = format_duration(seconds)
        series: list[_Series] = []

        def feature_family(metric: c.Metric, method: str, cols: np.ndarray, label_method: str | None) -> None:
            labels = [(model, version, ref.names[i], window) + ((label_method,) if label_method else ()) for i in cols]
            series.append(_Series(metric, method, cols, [series_prefix(metric.name, metric.labels, v) for v in labels]))

        def prediction_family(metric: c.Metric, method: str, label_method: str | None) -> None:
            labels = (model, version, window) + ((label_method,) if label_method else ())
            series.append(_Series(metric, method, np.array([pred]), [series_prefix(metric.name, metric.labels, labels)]))

        for method in exported:
            cols = np.array([i for i in features if applies(method, bool(ref.numeric[i]))], dtype=np.int64)
            feature_family(c.FEATURE_DRIFT_SCORE, method, cols, method)
            if applies(method, bool(ref.numeric[pred])):
                prediction_family(c.PREDICTION_DRIFT_SCORE, method, method)
        numeric = np.array([i for i in features if ref.numeric[i]], dtype=np.int64)
        categorical = np.array([i for i in features if not ref.numeric[i]], dtype=np.int64)
        feature_family(c.FEATURE_DRIFT_P_VALUE, "p_value", numeric, "ks")
        feature_family(c.FEATURE_DRIFT_P_VALUE, "p_value", categorical, "chisquare")
        prediction_family(c.PREDICTION_DRIFT_P_VALUE, "p_value", "ks" if ref.numeric[pred] else "chisquare")
        feature_family(c.FEATURE_WINDOW_SAMPLES, "n", features, None)
        prediction_family(c.PREDICTION_WINDOW_SAMPLES, "n", None)
        feature_family(c.FEATURE_DRIFT_DETECTED, "verdict", features, None)
        prediction_family(c.PREDICTION_DRIFT_DETECTED, "verdict", None)
        plan[seconds] = series
    cache.clear()
    cache[key] = plan
    return plan


def collect_drift(state: VersionState, out: Exposition, now: float) -> None:
    """Write the drift families of one version (nothing while its reference is being captured)."""
    results = evaluate(state, now)
    if results is None:
        return
    ref = _reference(state)
    model, version = state.model.name, state.version
    for i, name in enumerate(ref.names[:-1]):
        out.add_one(c.FEATURE_REFERENCE_SAMPLES, (model, version, name), int(ref.n[i]))
    out.add_one(c.PREDICTION_REFERENCE_SAMPLES, (model, version), int(ref.n[-1]))
    plan = _series_plan(state, ref)
    for result in results:
        for series in plan[result.seconds]:
            if series.method == "n":
                out.add(series.metric, lines_for(series.prefixes, result.n[series.columns].astype(np.int64)))
                continue
            values = result.scores[series.method] if series.method in result.scores else getattr(result, series.method)
            values = values[series.columns]
            if series.method == "verdict":  # no verdict below min_samples: no series
                keep = ~np.isnan(values)
                out.add(series.metric, lines_for([p for p, k in zip(series.prefixes, keep) if k], values[keep].astype(np.int64)))
            else:
                out.add(series.metric, lines_for(series.prefixes, values.astype(np.float64)))
        labels = (model, version, result.label)
        if result.drifted_ratio is not None:
            out.add_one(c.DRIFTED_FEATURES, labels, result.drifted_ratio)
            out.add_one(c.DATASET_DRIFT, labels, int(bool(result.dataset_drift)))
        if result.multivariate is not None:
            mv = result.multivariate
            out.add_one(c.MULTIVARIATE_DRIFT_SCORE, labels, mv.score)
            out.add_one(c.MULTIVARIATE_DRIFT_P_VALUE, labels, mv.p_value)
            out.add_one(c.MULTIVARIATE_WINDOW_SAMPLES, labels, mv.n)
            if mv.verdict == mv.verdict:  # no verdict below min_samples: no series
                out.add_one(c.MULTIVARIATE_DRIFT_DETECTED, labels, int(mv.verdict))
            if mv.n:
                out.add_one(c.MULTIVARIATE_ERROR_MEAN, labels, mv.error_mean)
                out.add_one(c.MULTIVARIATE_ERROR_BAND_LOWER, labels, mv.band[0])
                out.add_one(c.MULTIVARIATE_ERROR_BAND_UPPER, labels, mv.band[1])


# ---- GET /v1/models/<model>/drift?window=1h: what a person opens when an alert fires ----

def _number(value: float) -> float | None:
    return None if value != value else float(value)  # JSON has no NaN


def _severity(verdict: float, score: float, config: DriftConfig) -> str:
    if verdict != verdict:
        return "no_verdict"
    if not verdict:
        return "none"
    return "critical" if score >= config.critical else "warning" if score >= config.warning else "drifted"


def _column_report(ref: Reference, result: WindowDrift, i: int, config: DriftConfig) -> dict[str, Any]:
    span = slice(int(ref.seg.starts[i]), int(ref.seg.starts[i] + ref.seg.sizes[i]))
    p, q = ref.p[span], result.q[span]
    pc, qc = np.maximum(p, drift.EPSILON), np.maximum(q, drift.EPSILON)
    contribution = (qc - pc) * np.log(qc / pc) if result.n[i] > 0 else np.zeros(len(p))
    top = np.argsort(-np.abs(contribution), kind="stable")[:TOP_BINS]
    numeric = bool(ref.numeric[i])
    return {
        "name": ref.names[i],
        "kind": "numeric" if numeric else "categorical",
        "samples": int(result.n[i]),
        "severity": _severity(result.verdict[i], result.decision_score[i], config),
        "drifted": None if result.verdict[i] != result.verdict[i] else bool(result.verdict[i]),
        "decision_score": _number(result.decision_score[i]),
        "scores": {m: _number(v[i]) for m, v in result.scores.items() if applies(m, numeric)},
        "p_value": _number(result.p_value[i]),
        "test": "ks" if numeric else "chisquare",
        "bins": list(ref.labels[i]),
        "bin_labels": list(ref.display[i]),
        "edges": ref.edges[i],  # numeric: reference min, quantiles, max (bins: < min, [e0, e1), ..., > max)
        "reference_fractions": p.tolist(),
        "current_fractions": q.tolist(),
        "top_bins": [
            {"bin": ref.labels[i][j], "label": ref.display[i][j], "reference": float(p[j]), "current": float(q[j]), "psi_contribution": float(contribution[j])}
            for j in top
        ],
    }


SEVERITY_ORDER = {"critical": 0, "warning": 1, "drifted": 2, "none": 3, "no_verdict": 4}


def version_report(state: VersionState, seconds: int, now: float) -> dict[str, Any]:
    """Per feature: fractions, every score, N, top bins; sorted by severity, then decision score."""
    results = evaluate(state, now)
    base = {"model_version": state.version, "window": format_duration(seconds)}
    if results is None:
        return {**base, "capturing_reference": True, "features": []}
    result = next(r for r in results if r.seconds == seconds)
    ref = _reference(state)
    config = state.model.drift
    columns = [_column_report(ref, result, i, config) for i in range(len(ref.names))]
    features = sorted(columns[:-1], key=lambda f: (SEVERITY_ORDER[f["severity"]], -(f["decision_score"] or 0.0)))
    mv = result.multivariate
    return {
        **base,
        "capturing_reference": False,
        "method": config.method,
        "thresholds": {"warning": config.warning, "critical": config.critical, "min_samples": config.min_samples,
                       "alpha": config.alpha, "min_effect": config.effect_floor, "drifted_share": config.drifted_share},
        "drifted_features_ratio": result.drifted_ratio,
        "dataset_drift": result.dataset_drift,
        "multivariate": None if mv is None else {
            "psi": _number(mv.score), "p_value": _number(mv.p_value), "samples": mv.n,
            "drifted": None if mv.verdict != mv.verdict else bool(mv.verdict), "error_mean": _number(mv.error_mean),
            "reference_band": [_number(mv.band[0]), _number(mv.band[1])]},
        "prediction": columns[-1],
        "features": features,
        "attributions": attribution_report(state, seconds, now, result.decision_score),  # docs/explainability.md
    }


def register_drift_routes(app: Flask, exporter: Any) -> None:
    """GET /v1/models/<model>/drift?window=1h[&version=v]: the drift report of every version."""

    @app.get("/v1/models/<model>/drift")
    def drift_endpoint(model: str) -> Response:

        config = exporter.config.model(model)
        if config is None:
            return json_response({"error": f"no model named {model!r}"}, 404)
        windows = config.drift.windows
        text = request.args.get("window", format_duration(windows[0]))
        try:
            seconds = parse_duration(text)
        except ValueError as error:
            return json_response({"error": str(error)}, 400)
        if seconds not in windows:
            known = ", ".join(format_duration(w) for w in windows)
            return json_response({"error": f"window {text!r} is not configured for {model!r}; windows: {known}"}, 400)
        wanted = request.args.get("version")
        now = time.time()
        versions = [s for s in exporter.store.snapshot() if s.model.name == model and wanted in (None, s.version)]
        if wanted is not None and not versions:
            return json_response({"error": f"no version {wanted!r} of {model!r} has been seen"}, 404)
        return json_response({"model": model, "versions": [version_report(s, seconds, now) for s in versions]})
