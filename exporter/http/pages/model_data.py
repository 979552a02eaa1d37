"""Everything the model page shows, as one JSON-able document (also what `mlmon report` writes as JSON).

Nothing here computes a statistic of its own: drift comes from ``drift_report.version_report``
(the same evaluation /metrics and the JSON report use), and quality and bias are read back from
the very exposition lines the collector writes for the version, so the page can never disagree
with /metrics.
"""

from __future__ import annotations

import math
from typing import Any

from prometheus_client.parser import text_string_to_metric_families

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig, format_duration
from exporter.http.drift_report import version_report
from exporter.http.exposition import Exposition
from exporter.http.quality_report import collect_version_quality
from exporter.state.store import QUALITY, VersionState

# Windowed quality families shown on the page: (family, kind shown).
QUALITY_FAMILIES = {c.QUALITY_RATIO.name: "measured", c.QUALITY_SCORE.name: "measured",
                    c.ESTIMATED_QUALITY.name: "estimated"}


def _finite(value: float) -> float | None:
    return None if math.isnan(value) or math.isinf(value) else float(value)


def _quality_samples(state: VersionState, now: float) -> dict[str, list[tuple[dict[str, str], float]]]:
    """The version's quality exposition, parsed back: {sample name: [(labels, value)]}."""
    out = Exposition()
    collect_version_quality(state, out, now)
    samples: dict[str, list[tuple[dict[str, str], float]]] = {}
    for family in text_string_to_metric_families(out.render(openmetrics=False)):
        for sample in family.samples:
            samples.setdefault(sample.name, []).append((sample.labels, sample.value))
    return samples


def _bound(model: ModelConfig, metric: str) -> tuple[float | None, float | None]:
    bound = model.quality.thresholds.get(metric)
    return (bound.min, bound.max) if bound is not None else (None, None)


def quality_section(state: VersionState, now: float, min_samples: int) -> dict[str, Any]:
    """Per quality window: labelled N, every measured and estimated metric with its threshold, and bias.

    ``crossed`` follows the alert's rule: a measured metric outside its configured bound, judged
    only with at least ``min_samples`` labelled predictions in the window (alerting.quality.min_samples).
    """
    samples = _quality_samples(state, now)
    lower = {(s["window"], s["metric"]): v for s, v in samples.get(c.QUALITY_LOWER.name, [])}
    upper = {(s["window"], s["metric"]): v for s, v in samples.get(c.QUALITY_UPPER.name, [])}
    n_by_window = {s["window"]: int(v) for s, v in samples.get(c.QUALITY_SAMPLES.name, [])}
    windows = []
    for seconds in state.model_quality.windows:
        window = format_duration(seconds)
        n = n_by_window.get(window, 0)
        metrics = []
        for family, kind in QUALITY_FAMILIES.items():
            for labels, value in samples.get(family, []):
                if labels["window"] != window:
                    continue
                name = labels["metric"]
                low, high = _bound(state.model, name) if kind == "measured" else (None, None)
                crossed = None
                if (low is not None or high is not None) and n >= min_samples:
                    crossed = bool((low is not None and value < low) or (high is not None and value > high))
                metrics.append({
                    "metric": name, "kind": kind, "value": _finite(value),
                    # Wilson intervals belong to the measured ratios only (estimates carry standard errors).
                    "lower": _finite(lower.get((window, name), math.nan)) if kind == "measured" else None,
                    "upper": _finite(upper.get((window, name), math.nan)) if kind == "measured" else None,
                    "min": low, "max": high, "crossed": crossed,
                })
        bias = [
            {"attribute": labels["attribute"], "metric": labels["metric"], "value": _finite(value)}
            for labels, value in samples.get(c.BIAS_RATIO.name, []) if labels["window"] == window
        ]
        windows.append({"window": window, "labelled": n, "metrics": metrics, "bias": bias})
    labelled = samples.get(c.LABELLED_PREDICTIONS.name + "_total") or samples.get(c.LABELLED_PREDICTIONS.name) or []
    return {"labelled": int(labelled[0][1]) if labelled else 0, "windows": windows}


def data_quality(state: VersionState) -> dict[str, Any]:
    """The cumulative data-quality counters of the version (what the mlmon_feature_* counters hold)."""
    with state.lock:
        features = {f.name: dict(zip(QUALITY, map(int, row))) for f, row in zip(state.model.features, state.quality)}
        prediction = dict(zip(QUALITY, map(int, state.prediction_quality)))
        unknown = int(state.unknown_features)
    return {"features": features, "prediction": prediction, "unknown_features": unknown}


def reference_of(state: VersionState) -> dict[str, Any]:
    if state.profile is None:
        capture = state.capture
        return {"capturing": True, "captured_rows": capture.rows if capture else 0, "target": capture.target if capture else 0}
    return {"capturing": False, "hash": state.profile.content_hash, "short_hash": state.profile.short_hash,
            "rows": state.profile.rows, "source": state.profile.source}


def version_document(state: VersionState, seconds: int, now: float, config: MlmonConfig) -> dict[str, Any]:
    return {
        **version_report(state, seconds, now),
        "predictions": int(state.predictions),
        "window_predictions": state.window_sample_count(seconds, now),
        "reference": reference_of(state),
        "data_quality": data_quality(state),
        "quality": quality_section(state, now, config.alerting.quality.min_samples),
    }


def model_document(config: MlmonConfig, model: ModelConfig, states: list[VersionState], seconds: int,
                   now: float) -> dict[str, Any]:
    """The model page's content for one drift window and the given versions (newest last)."""
    return {
        "model": model.name,
        "task": model.task,
        "window": format_duration(seconds),
        "windows": [format_duration(w) for w in model.drift.windows],
        "generated_at": now,
        "versions": [version_document(s, seconds, now, config) for s in states],
    }
