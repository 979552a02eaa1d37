"""Scrape time for per-class probability drift: each class's score bins against the reference's, scored with
the prediction's rule (score_window: test AND effect, no verdict below min_samples). O(classes x bins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from exporter import catalog as c
from exporter.config.model import format_duration
from exporter.http.drift_report import Reference, score_window
from exporter.http.exposition import Exposition, lines_for, series_prefix
from exporter.profiles.bin_labels import display_labels
from exporter.state.layout import Layout

if TYPE_CHECKING:
    from exporter.state.class_drift import ClassDriftState
    from exporter.state.store import VersionState


def _reference(drift: ClassDriftState) -> Reference:
    cached = drift.__dict__.get("reference")
    if cached is None:
        cached = drift.__dict__["reference"] = Reference.of(Layout(drift.binnings, drift.offsets))
    return cached


def _bin_lines(drift: ClassDriftState, metric: c.Metric, ids: tuple[str, str], classes: tuple[str, ...]) -> list[str]:
    """Label prefixes of a per-class bin family (with each bin's display label where the family has one),
    built once per state: the binnings never change for it."""
    cache: dict[str, list[str]] = drift.__dict__.setdefault("prefixes", {})
    if metric.name not in cache:
        shown = "bin_label" in metric.labels
        cache[metric.name] = [
            series_prefix(metric.name, metric.labels, (*ids, cls, label, text) if shown else (*ids, cls, label))
            for cls, binning in zip(classes, drift.binnings)
            for label, text in zip(binning.labels, display_labels(binning) if shown else binning.labels)
        ]
    return cache[metric.name]


def collect_class_counters(state: VersionState, drift: ClassDriftState, out: Exposition) -> None:
    """Each class's score bins since start, the reference's ratios and N: what the fleet rules sum over pods."""
    ids, classes = (state.model.name, state.version), tuple(state.model.quality_classes)
    with state.lock:
        counts = drift.cumulative.copy()
    out.add(c.CLASS_PROBABILITY_BIN, lines_for(_bin_lines(drift, c.CLASS_PROBABILITY_BIN, ids, classes), counts))
    ratios = np.concatenate([b.reference_ratio for b in drift.binnings])
    out.add(c.CLASS_PROBABILITY_REFERENCE,
            lines_for(_bin_lines(drift, c.CLASS_PROBABILITY_REFERENCE, ids, classes), ratios))
    for cls, binning in zip(classes, drift.binnings):
        out.add_one(c.CLASS_PROBABILITY_REFERENCE_SAMPLES, (*ids, cls), int(binning.reference_counts.sum()))


def collect_class_drift(state: VersionState, out: Exposition, now: float) -> None:
    drift = state.class_drift
    if drift is None:
        return
    collect_class_counters(state, drift, out)
    ref = _reference(drift)
    config = state.model.drift
    method = config.method if config.method != "chisquare" else "psi"  # every class column is numeric
    classes = state.model.quality_classes
    ids = (state.model.name, state.version)
    for seconds in drift.window_seconds:
        with state.lock:
            counts = drift.window_counts(seconds, now)
        scored = score_window(ref, counts, config)
        window = format_duration(seconds)
        n = scored["n"]
        out.add_one(c.CLASS_PROBABILITY_WINDOW_SAMPLES, (*ids, window), int(n[0]) if len(n) else 0)
        scores = scored["scores"][method]
        for i, cls in enumerate(classes):
            labels = (*ids, window, cls)
            if n[i] > 0:
                out.add_one(c.CLASS_PROBABILITY_DRIFT_SCORE, (*labels, method), float(scores[i]))
                out.add_one(c.CLASS_PROBABILITY_DRIFT_P_VALUE, labels, float(scored["p_value"][i]))
            verdict = scored["verdict"][i]
            if not np.isnan(verdict):
                out.add_one(c.CLASS_PROBABILITY_DRIFT_DETECTED, labels, int(verdict))

