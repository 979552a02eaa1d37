"""How many series one exporter exports for a config, by family group, counted as the collectors write them.

Counted per model version for traffic that reaches every family (every bin, every window with at
least `min_samples`, labels for every outcome and segment value), so it is the ceiling a version
reaches, not the first scrape. Families whose label values come from traffic and not the config
(request codes, rejection reasons seen) count every value they can take. Groups:

* ``bins``: the per-bin counters and reference fractions (features and prediction),
* ``drift``: scores, p-values, window samples, verdicts, reference samples, multivariate, drift per segment value,
* ``quality``: labels, confusion or error sums, windowed quality and estimates, the label store,
* ``bias``: segment counters, segment quality (every task) and bias measures,
* ``explain``: attribution counters, phi bins, rank signals per window, reference importance and drift impact,
* ``core``: everything else (traffic, data quality, exporter health, Python process metrics).

`mlmon config check` prints these with the fleet recording rules' series (alert_rules/series.py) and
warns above `exporter.series_budget`; tests/test_series_budget.py compares the count with a live scrape.
"""

from __future__ import annotations

from collections import Counter
from typing import NamedTuple

import numpy as np

from exporter.config.model import MlmonConfig, ModelConfig
from exporter.http.drift_report import METHODS, applies
from exporter.http.exporter_stats import ENDPOINTS, LIMITS
from exporter.ingest.cloudevents import OUTCOMES as CLOUDEVENT_OUTCOMES
from exporter.ingest.decode import REJECTION_REASONS
from exporter.profiles.pca import ERROR_BINS
from exporter.profiles.class_scores import class_binnings
from exporter.profiles.profile import Profile
from exporter.state.label_store import EVICTION_REASONS, OUTCOMES
from exporter.state.quality import CONFUSION, SEGMENT_REGRESSION_SUMS, QualityLayout
from exporter.state.reference_switch import SWITCH_RESULTS
from exporter.state.shadow import OUTCOMES as SHADOW_OUTCOMES
from exporter.stats.bias import BIAS_METRICS, SEGMENT_METRICS
from exporter.stats.estimation import estimated_metrics, estimated_standard_errors
from exporter.stats.quality_math import binary_intervals, binary_ratios, regression_metrics

GROUPS = ("bins", "drift", "quality", "bias", "explain", "core")
# prometheus_client's process and platform collectors (Linux): 6 process_*, 3x3 python_gc_*, python_info.
PROCESS_SERIES = 16


class Column(NamedTuple):
    numeric: bool
    bins: int


def columns(model: ModelConfig, profile: Profile | None) -> list[Column]:
    """Features then the prediction, with their bin counts (from the profile, or the config's maxima when
    the reference is captured from traffic)."""
    if profile is not None:
        binnings = [profile.features[f.name] for f in model.features] + [profile.prediction]
        return [Column(b.kind == "numeric", int(b.n_bins)) for b in binnings]
    out = []
    for f in model.features:
        if f.type == "numeric":
            out.append(Column(True, f.bins + 2))
        else:
            out.append(Column(False, 2 if f.type == "boolean" else f.max_categories + 1))
    p = model.prediction
    out.append(Column(True, p.bins + 2) if p.type == "numeric" else Column(False, len(p.classes or []) + 1))
    return out


def _drift(model: ModelConfig, cols: list[Column], multivariate: bool) -> int:
    drift = model.drift
    exported = [m for m in METHODS if m in drift.export or m == drift.method]
    per_window = sum(applies(m, c.numeric) for m in exported for c in cols)
    per_window += 3 * len(cols)  # p-value, window samples, verdict
    # drifted share, dataset flag; multivariate score, p, n, verdict, mean error, its band's two bounds
    per_window += 2 + (7 if multivariate else 0)
    # multivariate counters: the error histogram and its reference ratios, the error sum, the reference N
    counters = 2 * (ERROR_BINS + 2) + 2 if multivariate else 0
    return len(drift.windows) * per_window + len(cols) + counters  # + reference samples


def segment_drift_columns(model: ModelConfig, cols: list[Column]) -> list[tuple[int, list[Column]]]:
    """Per attribute with drift: true, its values + 1 (__other__) and the columns of the features it watches."""
    names = [f.name for f in model.features]
    return [(len(segment.values) + 1, [cols[names.index(n)] for n in (segment.features or names)])
            for segment in model.segments if segment.drift]


def segment_drift(model: ModelConfig, cols: list[Column]) -> int:
    """Per-segment drift series of one version: per attribute with drift: true, (values + 1) x (the bins of its
    features as counters + windows x 3 gauges per feature: score, window samples, verdict)."""
    return sum(values * (sum(c.bins for c in chosen) + len(model.drift.windows) * 3 * len(chosen))
               for values, chosen in segment_drift_columns(model, cols))


def segment_drift_costs(config: MlmonConfig, profiles: dict[str, Profile]) -> list[str]:
    """One line per attribute with drift: true, what it costs per version (for `mlmon config check`)."""
    out = []
    for model in config.models:
        cols = columns(model, profiles.get(model.name))
        names = [f.name for f in model.features]
        for segment in (s for s in model.segments if s.drift):
            chosen = segment.features or names
            bins = sum(cols[names.index(n)].bins for n in chosen)
            per_value = bins + len(model.drift.windows) * 3 * len(chosen)
            out.append(f"drift per segment: {model.name} {segment.attribute}: {len(segment.values) + 1} values x "
                       f"({bins} bins of {len(chosen)} features + {len(model.drift.windows)} windows x 3 x "
                       f"{len(chosen)}) = {(len(segment.values) + 1) * per_value} series per version")
    return out


# Per segment value and quality window (regression, multiclass): labelled samples and the gauges
SEGMENT_WINDOW_GAUGES = {"regression": 1 + 4, "multiclass_classification": 1 + 2}  # mae, rmse, bias, rmsle | accuracy, macro F1


def segment_quality(model: ModelConfig) -> tuple[int, int]:
    """(counters, gauges per quality window) of one segment value of a regression or multiclass model; (0, 0) for
    binary (its segment series are the bias ones)."""
    if model.task == "regression":
        return len(SEGMENT_REGRESSION_SUMS), SEGMENT_WINDOW_GAUGES[model.task]
    if model.task == "multiclass_classification":
        return (len(model.quality_classes) + 1) ** 2, SEGMENT_WINDOW_GAUGES[model.task]
    return 0, 0


def segment_quality_costs(config: MlmonConfig) -> list[str]:
    """One line per attribute with quality: true of a regression or multiclass model (for `mlmon config check`)."""
    out = []
    for model in config.models:
        counters, gauges = segment_quality(model)
        windows = len(model.quality_windows)
        for segment in (s for s in model.segments if s.quality and counters):
            values = len(segment.values) + 1
            out.append(f"quality per segment: {model.name} {segment.attribute}: {values} values x ({counters} counters + "
                       f"{windows} windows x {gauges}) = {values * (counters + windows * gauges)} series per version")
    return out


def _quality(model: ModelConfig, error_model: bool = False) -> tuple[int, int]:
    """(quality, bias) series of one version."""
    layout = QualityLayout.of(model)
    windows = len(model.quality_windows)
    base = 2 + len(model.quality.label_delay_buckets) + 3  # labelled, labelled ratio; delay buckets, +Inf, sum, count
    cost = model.quality.cost is not None
    if model.task == "binary_classification":
        ratios = len(binary_ratios(1, 1, 1, 1)) + 1  # + ROC AUC
        intervals = len(binary_intervals(1, 1, 1, 1))
        estimates = estimated_metrics(1, 1, 1, 1, np.ones(layout.bins), np.ones(layout.bins) / 2)
        errors = estimated_standard_errors(1, 1, 1, 1, 0.1, 0.1, estimates["roc_auc"])
        per_window = 1 + ratios + 2 * intervals + 2 + cost + len(estimates) + len(errors) + cost
        quality = base + 2 * len(CONFUSION) + 2 + windows * per_window
        values = sum(len(v) for v in layout.codec.values)
        attributes = len(layout.codec.attributes)
        bias = values * 6 + windows * (values * (2 + len(SEGMENT_METRICS)) + attributes * 2 * len(BIAS_METRICS))
        return quality, bias
    if model.task == "multiclass_classification":
        k = len(layout.classes)
        # per window: samples; accuracy, macro P/R/F1/specificity/ROC AUC, micro F1; per class P/R/F1/specificity/AUC;
        # label-free (rows sent with per-class scores): accuracy and the 5 macro estimates, 5 per class, each with
        # its standard error
        return base + (k + 1) ** 2 + windows * (1 + 7 + 5 * k + 2 * (6 + 5 * k)), _segment_quality(model)
    sums = {"over": 1.0, "under": 1.0, "squared": 1.0, "ape": 1.0, "nonzero": 1.0, "label_pos": 2.0,
            "label_neg": 0.0, "label_squared": 5.0, "squared_log": 1.0, "log_pairs": 2.0}
    # + the label-free MAE and RMSE with their standard errors (a profile built with --label-column)
    return base + 10 + windows * (1 + len(regression_metrics(sums, 2)) + 4 * error_model), _segment_quality(model)


def _segment_quality(model: ModelConfig) -> int:
    counters, gauges = segment_quality(model)
    values = sum(len(s.values) + 1 for s in model.segments if s.quality)
    return values * (counters + len(model.quality_windows) * gauges)


def _core_version(model: ModelConfig, cols: list[Column]) -> int:
    features = cols[:-1]
    numeric = sum(c.numeric for c in features)
    categorical = len(features) - numeric
    per_feature = 3 * len(features) + numeric * (1 + 2) + categorical  # missing, null, type; nonfinite, out of range x2; unseen
    prediction = 4 if model.prediction.type == "numeric" else 1  # predictions (+ value sums by sign, values, unsummed)
    return per_feature + prediction + 6 + len(model.drift.windows)  # info, variant, unknown features, reference n, capturing...


def explained(model: ModelConfig, profile: Profile | None) -> tuple[bool, int]:
    """(reference importance known, phi bins over all features) of a model."""
    data = profile.extras.get("attributions") if profile is not None else None
    known = any(f.importance is not None for f in model.features) or bool(isinstance(data, dict) and data.get("importance"))
    specs = data.get("features", {}) if isinstance(data, dict) else {}
    return known, sum(len(specs[f.name]["counts"]) for f in model.features if isinstance(specs.get(f.name), dict))


def _explain(model: ModelConfig, profile: Profile | None) -> int:
    """Explainability series of one version (docs/explainability.md)."""
    features, windows = len(model.features), len(model.drift.windows)
    known, phi_bins = explained(model, profile)
    out = (2 + windows) * features if known else 0  # reference importance and share; drift impact per window
    if model.attributions.enabled:
        # N, sums by sign, squares; phi bins and their reference; records, 2 drop reasons;
        # per window: N, and nDCG, share TV, top driver, verdict (with a reference importance)
        out += 4 * features + 2 * phi_bins + 3 + windows * (1 + 4 * known)
    return out


def per_exporter(config: MlmonConfig, profiles: dict[str, Profile], versions: int = 1) -> Counter[str]:
    """Series one exporter exports with `versions` live versions per model, by group."""
    out: Counter[str] = Counter()
    for model in config.models:
        profile = profiles.get(model.name)
        cols = columns(model, profile)
        multivariate = profile is not None and "pca" in profile.extras
        quality, bias = _quality(model, profile is not None and "error_model" in profile.extras)
        out["bins"] += versions * 2 * sum(c.bins for c in cols)
        out["drift"] += versions * (_drift(model, cols, multivariate) + segment_drift(model, cols))
        if profile is not None and "class_scores" in profile.extras:  # per-class probability drift
            # per window: rows with scores; per class the method's score, the KS p-value and the verdict
            out["drift"] += versions * len(model.drift.windows) * (1 + 3 * len(model.quality_classes))
            # the fleet's inputs: per class its bin counters and reference ratios, and its reference N
            class_bins = sum(b.n_bins for b in class_binnings(profile, model) or ())
            out["drift"] += versions * (2 * class_bins + len(model.quality_classes))
        out["quality"] += versions * quality + len(EVICTION_REASONS) + 2 + len(OUTCOMES)
        out["quality"] += sum(v is not None for b in model.quality.thresholds.values() for v in (b.min, b.max))
        out["bias"] += versions * bias
        out["explain"] += versions * _explain(model, profile)
        out["core"] += versions * _core_version(model, cols) + len(REJECTION_REASONS) + 1  # + versions evicted
        out["core"] += len(SWITCH_RESULTS)  # mlmon_reference_switches_total by result
        shadows = sum(v == "shadow" for v in model.versions.variants.values())
        if shadows:  # pairs, agreements, |difference| per shadow version; pending and outcomes per model
            out["core"] += 3 * shadows + 1 + len(SHADOW_OUTCOMES)
    out["quality"] += len(OUTCOMES)  # label outcomes of unknown models
    out["core"] += len(REJECTION_REASONS)  # records of unknown models
    # requests by endpoint and code (counted once each: 200; every error code seen adds one), bytes by
    # endpoint, limit hits, idempotency outcomes, KServe logger outcomes and pending halves, scrape
    # duration, the process collectors
    out["core"] += 2 * len(ENDPOINTS) + len(LIMITS) + 4 + len(CLOUDEVENT_OUTCOMES) + 1 + 1 + PROCESS_SERIES
    return out
