"""Scrape time for quality per segment value of regression and multiclass models (segments with quality: true).

The labelled vector of such a model ends with one cell of sums per value of each chosen attribute
(exporter/state/quality.py, ``QualityLayout.segment_sums``): the class confusion matrix (multiclass) or
SEGMENT_REGRESSION_SUMS (regression). Cumulative cells become counters (mergeable across replicas, the
fleet rules of alert_rules/segment_quality.py divide their sums); windowed cells become the per-pod
gauges: accuracy and macro F1 (``mlmon_segment_quality_ratio``), MAE, RMSE, bias and RMSLE
(``mlmon_segment_quality_score``), with the labelled count in ``mlmon_segment_window_samples``. A value
without labelled pairs in the window has no gauge (undefined, not 0).
"""

from __future__ import annotations

import math
from typing import Iterator

import numpy as np

from exporter import catalog as c
from exporter.http.exposition import Exposition
from exporter.state.quality import SEGMENT_REGRESSION_SUMS, QualityLayout
from exporter.stats.quality_math import multiclass_metrics, segment_regression_metrics

MULTICLASS_METRICS = ("accuracy", "macro_f1")


def _cells(layout: QualityLayout, labelled: np.ndarray) -> Iterator[tuple[str, str, np.ndarray]]:
    """(attribute, value, cell of sums) for every value of the attributes with quality: true."""
    if not layout.segment_rows:
        return
    block = labelled[layout.segment_sums()].reshape(layout.segment_rows, layout.segment_cell)
    codec = layout.codec
    for a, start in zip(layout.segment_attributes, layout.segment_row_offsets()):
        for v, value in enumerate(codec.values[a]):
            yield codec.attributes[a], value, block[start + v]


def count_value(value: float) -> int | float:
    """Counts are stored as floats (one vector for all sums); export whole numbers as integers."""
    return int(value) if float(value).is_integer() else float(value)


def add_confusion(out: Exposition, metric: c.Metric, prefix: tuple[str, ...], names: tuple[str, ...],
                  matrix: np.ndarray) -> None:
    """One series per (actual, predicted) cell of a class confusion matrix, under `prefix` labels."""
    for i, actual in enumerate(names):
        for j, predicted in enumerate(names):
            out.add_one(metric, (*prefix, actual, predicted), count_value(matrix[i, j]))


def collect_segment_totals(layout: QualityLayout, ids: tuple[str, str], labelled: np.ndarray, out: Exposition) -> None:
    """The cumulative per-segment counters of one version (every cell from 0, so rate() sees the first pair)."""
    if layout.task == "multiclass_classification":
        names = (*layout.classes, "__other__")
        for attribute, value, cell in _cells(layout, labelled):
            add_confusion(out, c.SEGMENT_CLASS_CONFUSION, (*ids, attribute, value), names, cell.reshape(layout.k, layout.k))
        return
    for attribute, value, cell in _cells(layout, labelled):
        sums = dict(zip(SEGMENT_REGRESSION_SUMS, cell.tolist()))
        seg = (*ids, attribute, value)
        out.add_one(c.SEGMENT_REGRESSION_PAIRS, seg, count_value(sums["count"]))
        out.add_one(c.SEGMENT_REGRESSION_ERROR, (*seg, "over"), sums["over"])
        out.add_one(c.SEGMENT_REGRESSION_ERROR, (*seg, "under"), sums["under"])
        out.add_one(c.SEGMENT_REGRESSION_SQUARED_ERROR, seg, sums["squared"])
        out.add_one(c.SEGMENT_REGRESSION_SQUARED_LOG_ERROR, seg, sums["squared_log"])
        out.add_one(c.SEGMENT_REGRESSION_LOG_PAIRS, seg, count_value(sums["log_pairs"]))


def segment_window_metrics(layout: QualityLayout, labelled: np.ndarray) -> Iterator[tuple[str, str, float, dict[str, float]]]:
    """(attribute, value, labelled pairs, {metric: value}) per segment value of a window's labelled sums."""
    for attribute, value, cell in _cells(layout, labelled):
        if layout.task == "multiclass_classification":
            n = float(cell.sum())
            _, averages = multiclass_metrics(cell.reshape(layout.k, layout.k), len(layout.classes))
            metrics = {m: averages[m] for m in MULTICLASS_METRICS if m in averages}
        else:
            n = float(cell[0])
            metrics = segment_regression_metrics(dict(zip(SEGMENT_REGRESSION_SUMS, cell.tolist())))
        yield attribute, value, n, metrics


def collect_segment_window(layout: QualityLayout, ids: tuple[str, str, str], labelled: np.ndarray,
                           out: Exposition) -> None:
    """The per-pod gauges of one window: labelled samples and quality per segment value."""
    family = c.SEGMENT_QUALITY if layout.task == "multiclass_classification" else c.SEGMENT_QUALITY_SCORE
    for attribute, value, n, metrics in segment_window_metrics(layout, labelled):
        seg = (*ids, attribute, value)
        out.add_one(c.SEGMENT_SAMPLES, (*seg, "labelled"), count_value(n))
        for metric, number in metrics.items():
            if not math.isnan(number):
                out.add_one(family, (*seg, metric), number)
