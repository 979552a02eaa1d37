"""Scrape time for model quality: cumulative counters, windowed gauges, estimates, bias.

Work is O(series) per version: a few vector sums over the window rings and formulas from
quality_math, estimation and bias. Undefined values (a zero denominator) are left out, so a
missing series means "no data yet", never a made-up 0.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

import numpy as np

from exporter import catalog as c
from exporter.stats.bias import BIAS_METRICS, SEGMENT_METRICS, attribute_bias, segment_rates
from exporter.config.model import ModelConfig, format_duration
from exporter.ingest.decode import UNKNOWN_MODEL_LABEL
from exporter.stats.error_model import ErrorModel
from exporter.stats.estimation import estimated_metrics, estimated_standard_errors, multiclass_estimates
from exporter.http.exposition import Exposition, format_value, series_prefix
from exporter.http.segment_quality import add_confusion, collect_segment_totals, collect_segment_window, count_value
from exporter.state.label_store import EVICTION_REASONS, OUTCOMES
from exporter.state.quality import CLASS_ESTIMATES, CONFUSION, REGRESSION_SUMS, ModelQuality
from exporter.stats.quality_math import auc_from_histograms, binary_intervals, binary_ratios, expected_cost
from exporter.stats.quality_math import multiclass_metrics, ovr_auc, regression_metrics

if TYPE_CHECKING:
    from exporter.state.store import StateStore, VersionState


def _add(out: Exposition, metric: c.Metric, labels: tuple[str, ...], value: float) -> None:
    """Add one sample unless it is undefined (NaN)."""
    if not (isinstance(value, float) and math.isnan(value)):
        out.add_one(metric, labels, value)


def collect_label_store(store: StateStore, out: Exposition) -> None:
    pending, evicted, duplicates = store.labels.counts()
    with store.labels.lock:
        outcomes = dict(store.labels.outcomes)
    for model in [m.name for m in store.config.models]:
        out.add_one(c.LABEL_STORE_PENDING, (model,), pending.get(model, 0))
        out.add_one(c.LABEL_STORE_DUPLICATE_IDS, (model,), duplicates.get(model, 0))
        for reason in EVICTION_REASONS:
            out.add_one(c.LABEL_STORE_EVICTIONS, (model, reason), evicted.get((model, reason), 0))
    # Every model/outcome pair from zero so that rate() sees the first event.
    for model in [*[m.name for m in store.config.models], UNKNOWN_MODEL_LABEL]:
        for outcome in OUTCOMES:
            out.add_one(c.LABEL_OUTCOMES, (model, outcome), outcomes.get((model, outcome), 0))


def collect_thresholds(model: ModelConfig, out: Exposition) -> None:
    for metric, bound in sorted(model.quality.thresholds.items()):
        for side in ("min", "max"):
            value = getattr(bound, side)
            if value is not None:
                out.add_one(c.QUALITY_THRESHOLD, (model.name, metric, side), value)


def _delay_histogram(out: Exposition, labels: tuple[str, str], bounds: np.ndarray, buckets: np.ndarray,
                     total: float) -> None:
    metric = c.LABEL_DELAY
    cumulative = np.cumsum(buckets).tolist()
    lines = []
    for bound, count in zip([*bounds.tolist(), math.inf], cumulative):
        le = "+Inf" if bound == math.inf else format_value(bound)
        lines.append(series_prefix(f"{metric.name}_bucket", (*metric.labels, "le"), (*labels, le)) + str(count))
    lines.append(series_prefix(f"{metric.name}_sum", metric.labels, labels) + format_value(total))
    lines.append(series_prefix(f"{metric.name}_count", metric.labels, labels) + str(cumulative[-1]))
    out.add(metric, lines)


def collect_version_quality(state: VersionState, out: Exposition, now: float) -> None:
    quality: ModelQuality = state.model_quality
    model, version = state.model, state.version
    ids = (model.name, version)
    labelled, n, predicted, delays, delay_sum = quality.cumulative()
    out.add_one(c.LABELLED_PREDICTIONS, ids, n)
    _add(out, c.LABELLED_RATIO, ids, min(1.0, n / state.predictions) if state.predictions else math.nan)
    _delay_histogram(out, ids, quality.delay_bounds, delays, delay_sum)
    layout = quality.layout
    if model.task == "binary_classification":
        for i, outcome in enumerate(CONFUSION):
            out.add_one(c.CONFUSION, (*ids, outcome), count_value(labelled[i]))
            out.add_one(c.ESTIMATED_CONFUSION, (*ids, outcome), float(predicted[i]))
        out.add_one(c.BRIER_LOSS, ids, float(labelled[4]))
        out.add_one(c.LOG_LOSS, ids, float(labelled[5]))
        codec = layout.codec
        selection = predicted[layout.segment_selection()].reshape(-1, 2)
        confusion = labelled[layout.segment_confusion()].reshape(-1, 4)
        for a, attribute in enumerate(codec.attributes):
            for v, value in enumerate(codec.values[a]):
                row = codec.offsets[a] + v
                seg = (*ids, attribute, value)
                out.add_one(c.SEGMENT_PREDICTIONS, (*seg, "positive"), count_value(selection[row, 1]))
                out.add_one(c.SEGMENT_PREDICTIONS, (*seg, "negative"), count_value(selection[row, 0] - selection[row, 1]))
                for j, outcome in enumerate(CONFUSION):
                    out.add_one(c.SEGMENT_CONFUSION, (*seg, outcome), count_value(confusion[row, j]))
    elif model.task == "multiclass_classification":
        names = (*layout.classes, "__other__")
        add_confusion(out, c.CLASS_CONFUSION, ids, names, labelled[:layout.k * layout.k].reshape(layout.k, layout.k))
        collect_segment_totals(layout, ids, labelled, out)
    else:
        sums = dict(zip(REGRESSION_SUMS, labelled.tolist()))
        out.add_one(c.REGRESSION_ERROR, (*ids, "over"), sums["over"])
        out.add_one(c.REGRESSION_ERROR, (*ids, "under"), sums["under"])
        out.add_one(c.REGRESSION_SQUARED_ERROR, ids, sums["squared"])
        out.add_one(c.REGRESSION_PERCENTAGE_ERROR, ids, sums["ape"])
        out.add_one(c.REGRESSION_NONZERO_LABELS, ids, count_value(sums["nonzero"]))
        out.add_one(c.REGRESSION_LABEL, (*ids, "positive"), sums["label_pos"])
        out.add_one(c.REGRESSION_LABEL, (*ids, "negative"), sums["label_neg"])
        out.add_one(c.REGRESSION_LABEL_SQUARED, ids, sums["label_squared"])
        out.add_one(c.REGRESSION_SQUARED_LOG_ERROR, ids, sums["squared_log"])
        out.add_one(c.REGRESSION_LOG_PAIRS, ids, count_value(sums["log_pairs"]))
        collect_segment_totals(layout, ids, labelled, out)
    for seconds in quality.windows:
        _collect_window(quality, (*ids, format_duration(seconds)), seconds, out, now)


def _collect_window(quality: ModelQuality, ids: tuple[str, str, str], seconds: int, out: Exposition, now: float) -> None:
    labelled, n, predicted, n_predicted = quality.window(seconds, now)
    model = quality.model
    layout = quality.layout
    out.add_one(c.QUALITY_SAMPLES, ids, n)
    if model.task == "binary_classification":
        tp, fp, tn, fn = labelled[:4].tolist()
        ratios = binary_ratios(tp, fp, tn, fn)
        ratios["roc_auc"] = auc_from_histograms(labelled[layout.positive_hist()], labelled[layout.negative_hist()])
        for name, value in ratios.items():
            _add(out, c.QUALITY_RATIO, (*ids, name), value)
        for name, (low, high) in binary_intervals(tp, fp, tn, fn).items():
            _add(out, c.QUALITY_LOWER, (*ids, name), low)
            _add(out, c.QUALITY_UPPER, (*ids, name), high)
        if n:
            _add(out, c.QUALITY_SCORE, (*ids, "brier"), float(labelled[4]) / n)
            _add(out, c.QUALITY_SCORE, (*ids, "log_loss"), float(labelled[5]) / n)
        cost = model.quality.cost
        if cost is not None:
            _add(out, c.QUALITY_SCORE, (*ids, "expected_cost"), expected_cost(fn, fp, n, cost.false_negative,
                                                                              cost.false_positive))
        etp, efp, etn, efn = predicted[:4].tolist()
        estimates = estimated_metrics(etp, efp, etn, efn, predicted[layout.count_hist()],
                                      predicted[layout.score_sum_hist()])
        for name, value in estimates.items():
            _add(out, c.ESTIMATED_QUALITY, (*ids, name), value)
        spread = predicted[layout.bernoulli_variance()]
        errors = estimated_standard_errors(etp, efp, etn, efn, float(spread[0]), float(spread[1]), estimates["roc_auc"])
        for name, value in errors.items():
            _add(out, c.ESTIMATED_QUALITY_SE, (*ids, name), value)
        if cost is not None:
            _add(out, c.ESTIMATED_COST, ids, expected_cost(efn, efp, n_predicted, cost.false_negative,
                                                           cost.false_positive))
        _collect_bias(quality, ids, labelled, predicted, out)
    elif model.task == "multiclass_classification":
        classes = len(layout.classes)
        per_class, averages = multiclass_metrics(labelled[:layout.k * layout.k].reshape(layout.k, layout.k), classes)
        positives = labelled[layout.class_positive_hist()].reshape(classes, layout.bins)
        negatives = labelled[layout.class_negative_hist()].reshape(classes, layout.bins)
        per_class["roc_auc"], averages["macro_roc_auc"] = ovr_auc(positives, negatives)  # rows with class scores
        for name, value in averages.items():
            _add(out, c.QUALITY_RATIO, (*ids, name), value)
        for metric, values in per_class.items():
            for cls, value in zip(layout.classes, values.tolist()):
                _add(out, c.CLASS_QUALITY, (*ids, cls, metric), value)
        if n_predicted:  # label-free estimates of the rows sent with per-class scores (CBPE, one-vs-rest)
            estimates, errors, macro, macro_se = multiclass_estimates(
                predicted[layout.class_estimates()].reshape(len(CLASS_ESTIMATES), classes),
                predicted[layout.class_count_hist()].reshape(classes, layout.bins),
                predicted[layout.class_score_sum_hist()].reshape(classes, layout.bins))
            for name, value in macro.items():
                _add(out, c.ESTIMATED_QUALITY, (*ids, name), value)
                _add(out, c.ESTIMATED_QUALITY_SE, (*ids, name), macro_se.get(name, math.nan))
            for metric in estimates:
                for cls, value, error in zip(layout.classes, estimates[metric].tolist(), errors[metric].tolist()):
                    _add(out, c.ESTIMATED_CLASS_QUALITY, (*ids, cls, metric), value)
                    _add(out, c.ESTIMATED_CLASS_QUALITY_SE, (*ids, cls, metric), error)
        collect_segment_window(layout, ids, labelled, out)
    else:
        for name, value in regression_metrics(dict(zip(REGRESSION_SUMS, labelled.tolist())), n).items():
            _add(out, c.QUALITY_SCORE, (*ids, name), value)
        if n_predicted and isinstance(quality.calibration, ErrorModel):  # label-free: the reference's error per bin
            mae, mae_se, rmse, rmse_se = quality.calibration.estimate(predicted)
            for name, value, error in (("mae", mae, mae_se), ("rmse", rmse, rmse_se)):
                _add(out, c.ESTIMATED_QUALITY_SCORE, (*ids, name), value)
                _add(out, c.ESTIMATED_QUALITY_SE, (*ids, name), error)
        collect_segment_window(layout, ids, labelled, out)


def _collect_bias(quality: ModelQuality, ids: tuple[str, ...], labelled: np.ndarray, predicted: np.ndarray,
                  out: Exposition) -> None:
    layout = quality.layout
    codec = layout.codec
    if not codec.width:
        return
    selection = predicted[layout.segment_selection()].reshape(-1, 2)
    confusion = labelled[layout.segment_confusion()].reshape(-1, 4)
    for a, attribute in enumerate(codec.attributes):
        rows = slice(codec.offsets[a], codec.offsets[a] + len(codec.values[a]))
        n, positive, matrix = selection[rows, 0], selection[rows, 1], confusion[rows]
        rates = segment_rates(n, positive, matrix)
        for v, value in enumerate(codec.values[a]):
            seg = (*ids, attribute, value)
            out.add_one(c.SEGMENT_SAMPLES, (*seg, "predictions"), count_value(n[v]))
            out.add_one(c.SEGMENT_SAMPLES, (*seg, "labelled"), count_value(matrix[v].sum()))
            for metric in SEGMENT_METRICS:
                _add(out, c.SEGMENT_QUALITY, (*seg, metric), float(rates[metric][v]))
        measures = attribute_bias(n, positive, matrix)
        for metric in BIAS_METRICS:
            value, samples = measures[metric]
            _add(out, c.BIAS_RATIO, (*ids, attribute, metric), value)
            out.add_one(c.BIAS_SAMPLES, (*ids, attribute, metric), count_value(samples))


def collect_quality(store: StateStore, out: Exposition, now: float) -> None:
    """Every quality family; called once per scrape by the collector."""
    for model in store.config.models:
        collect_thresholds(model, out)
    for state in store.snapshot():
        collect_version_quality(state, out, now)
    collect_label_store(store, out)
