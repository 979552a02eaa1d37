"""Scrape time: read the state store and write every family of the catalog.

Work here is O(series): counters and reference ratios are formatted from numpy arrays with
label prefixes computed once per version (``_prefixes``); no raw sample is touched.
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from exporter import catalog as c
from exporter.config.model import format_duration
from exporter.http.exposition import Exposition, lines_for, series_prefix
from exporter.http.class_drift_report import collect_class_drift
from exporter.http.drift_report import collect_drift, evaluate
from exporter.http.attribution_report import collect_attributions
from exporter.http.quality_report import collect_quality
from exporter.http.shadow_report import collect_shadows
from exporter.http.segment_drift import collect_segment_drift
from exporter.state.snapshot import Snapshotter
from exporter.state.store import QUALITY, StateStore, VersionState
from exporter.http.exporter_stats import ExporterStats
from exporter.profiles.bin_labels import display_labels

# Which quality column feeds which counter family.
QUALITY_METRICS = {
    "missing": c.FEATURE_MISSING,
    "null": c.FEATURE_NULL,
    "nonfinite": c.FEATURE_NONFINITE,
    "type_errors": c.FEATURE_TYPE_ERRORS,
    "unseen": c.FEATURE_UNSEEN_CATEGORY,
}


def _prefixes(state: VersionState, key: str, build: Callable[[], list[str]]) -> list[str]:
    """Label prefixes of a version's series, built once per version and reference layout."""
    cache: dict[tuple[str, int], list[str]] = state.__dict__.setdefault("render_cache", {})
    cache_key = (key, id(state.layout))
    if cache_key not in cache:
        cache[cache_key] = build()
    return cache[cache_key]


def _bin_prefixes(state: VersionState, metric: c.Metric, prediction: bool) -> list[str]:
    """Per-bin label prefixes; a family with a `bin_label` label (the reference ratios) also gets
    each bin's display label, e.g. `[120, 250)` (profiles/bin_labels.py)."""
    assert state.layout is not None
    model, version = state.model.name, state.version
    binnings = state.layout.binnings[-1:] if prediction else state.layout.binnings[:-1]
    displayed = "bin_label" in metric.labels
    out = []
    for binning in binnings:
        shown = display_labels(binning) if displayed else binning.labels
        for label, text in zip(binning.labels, shown):
            values = (model, version, label) if prediction else (model, version, binning.name, label)
            out.append(series_prefix(metric.name, metric.labels, (*values, text) if displayed else values))
    return out


def collect_version(state: VersionState, out: Exposition, now: float) -> None:
    model, version = state.model, state.version
    profile_hash = state.profile.short_hash if state.profile else ""
    found = state.model_quality.calibration
    calibration = "none" if found is None else getattr(found, "kind", "isotonic")  # regression: binned_error
    out.add_one(c.MODEL_INFO, (model.name, version, model.task, profile_hash, calibration), 1)
    out.add_one(c.MODEL_VERSION_VARIANT, (model.name, version, state.arm), 1)
    out.add_one(c.PREDICTIONS, (model.name, version), state.predictions)
    out.add_one(c.UNKNOWN_FEATURES, (model.name, version), state.unknown_features)
    rows = state.capture.rows if state.capture else (state.profile.rows if state.profile else 0)
    out.add_one(c.REFERENCE_SAMPLES, (model.name, version), rows)
    out.add_one(c.REFERENCE_CAPTURING, (model.name, version), int(state.capturing))
    for seconds in state.window_seconds:
        samples = state.window_sample_count(seconds, now)
        out.add_one(c.WINDOW_SAMPLES, (model.name, version, format_duration(seconds)), samples)
    with state.lock:
        quality = state.quality.copy()
        cumulative = state.cumulative.copy() if state.layout is not None else None
        sums, values, unsummed = state.prediction_sums.copy(), state.prediction_values, state.unsummed_predictions
    if model.prediction.type == "numeric":  # a class has no mean
        prefixes = _prefixes(state, c.PREDICTION_VALUE_SUM.name, lambda: [
            series_prefix(c.PREDICTION_VALUE_SUM.name, c.PREDICTION_VALUE_SUM.labels, (model.name, version, sign))
            for sign in ("positive", "negative")
        ])
        out.add(c.PREDICTION_VALUE_SUM, lines_for(prefixes, sums))
        out.add_one(c.PREDICTION_VALUES, (model.name, version), values)
        out.add_one(c.PREDICTION_VALUES_UNSUMMED, (model.name, version), unsummed)
    # Quality series: label prefixes cached per version, values formatted straight from the matrix.
    feature_names = [f.name for f in model.features]
    for column, metric in QUALITY_METRICS.items():
        q = QUALITY.index(column)
        kinds = ("categorical", "boolean") if column == "unseen" else ("numeric",) if column == "nonfinite" else None
        rows = [i for i, feature in enumerate(model.features) if kinds is None or feature.type in kinds]
        prefixes = _prefixes(state, metric.name, lambda: [
            series_prefix(metric.name, metric.labels, (model.name, version, feature_names[i])) for i in rows
        ])
        out.add(metric, lines_for(prefixes, quality[rows, q]))
    numeric = [i for i, feature in enumerate(model.features) if feature.type == "numeric"]
    metric = c.FEATURE_OUT_OF_RANGE
    prefixes = _prefixes(state, metric.name, lambda: [
        series_prefix(metric.name, metric.labels, (model.name, version, feature_names[i], side))
        for i in numeric for side in ("below", "above")
    ])
    sides = [QUALITY.index("below"), QUALITY.index("above")]
    out.add(metric, lines_for(prefixes, quality[numeric][:, sides].reshape(-1)))
    if cumulative is None or state.layout is None:
        collect_attributions(state, out, now, None)  # counters count while a reference is captured
        return
    split = int(state.layout.offsets[-2])
    for metric, ratio_metric, prediction, counts in (
        (c.FEATURE_BIN, c.FEATURE_REFERENCE, False, cumulative[:split]),
        (c.PREDICTION_BIN_COUNT, c.PREDICTION_REFERENCE, True, cumulative[split:]),
    ):
        out.add(metric, lines_for(_prefixes(state, metric.name, lambda: _bin_prefixes(state, metric, prediction)), counts))
        out.add(ratio_metric, _prefixes(state, ratio_metric.name, lambda: _ratio_lines(state, ratio_metric, prediction)))
    collect_multivariate_counters(state, out)
    collect_drift(state, out, now)  # scores from the window bin counts (docs/drift.md)
    collect_class_drift(state, out, now)  # each class's probability, multiclass with per-class scores
    collect_segment_drift(state, out, now)  # the same per segment value (models[].segments with drift: true)
    collect_attributions(state, out, now, evaluate(state, now))  # attributions, drift impact (docs/explainability.md)


def collect_multivariate_counters(state: VersionState, out: Exposition) -> None:
    """The reconstruction-error histogram and sum since start: what the fleet multivariate rules sum over pods."""
    mv = state.multivariate
    if mv is None:
        return
    with state.lock:
        counts, total = mv.cumulative.copy(), float(mv.cumulative_sum[0])
    model, version = state.model.name, state.version
    binning = mv.basis.error_binning

    def prefixes(metric: c.Metric) -> list[str]:
        return _prefixes(state, metric.name, lambda: [
            series_prefix(metric.name, metric.labels, (model, version, label)) for label in binning.labels])

    out.add(c.MULTIVARIATE_ERROR_BIN, lines_for(prefixes(c.MULTIVARIATE_ERROR_BIN), counts))
    out.add(c.MULTIVARIATE_ERROR_REFERENCE, lines_for(prefixes(c.MULTIVARIATE_ERROR_REFERENCE), binning.reference_ratio))
    out.add_one(c.MULTIVARIATE_ERROR_SUM, (model, version), total)
    out.add_one(c.MULTIVARIATE_REFERENCE_SAMPLES, (model, version), int(binning.reference_total))


def _ratio_lines(state: VersionState, metric: c.Metric, prediction: bool) -> list[str]:
    """Reference ratios never change for a layout, so their whole lines are cached."""
    assert state.layout is not None
    binnings = state.layout.binnings[-1:] if prediction else state.layout.binnings[:-1]
    ratios = np.concatenate([b.reference_ratio for b in binnings])
    return lines_for(_bin_prefixes(state, metric, prediction), ratios)


def collect_snapshots(snapshotter: Snapshotter, out: Exposition) -> None:
    for result, n in snapshotter.results.items():
        out.add_one(c.STATE_SNAPSHOTS, (result,), n)
    for result, n in snapshotter.restores.items():
        out.add_one(c.STATE_RESTORES, (result,), n)
    last = snapshotter.last
    out.add_one(c.STATE_SNAPSHOT_DURATION, (), last.seconds if last else 0.0)
    out.add_one(c.STATE_SNAPSHOT_BYTES, (), last.bytes if last else 0)
    out.add_one(c.STATE_SNAPSHOT_TIMESTAMP, (), snapshotter.last_success)


def collect(store: StateStore, stats: ExporterStats, now: float, snapshotter: Snapshotter | None = None) -> Exposition:
    out = Exposition()
    for state in store.snapshot():
        collect_version(state, out, now)
    for metric in (c.MODEL_INFO, c.PREDICTIONS):
        out.samples.setdefault(metric, [])
    collect_quality(store, out, now)
    collect_shadows(store, out, store.clock())  # the store's clock: pairs are stamped with it
    stats.collect(out, store)
    if snapshotter is not None:  # exporter.state_dir is set
        collect_snapshots(snapshotter, out)
    return out
