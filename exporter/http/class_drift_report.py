"""Scrape time for per-class probability drift: each class's score bins against the reference's, scored with
the prediction's rule (score_window: test AND effect, no verdict below min_samples). O(classes x bins)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from exporter import catalog as c
from exporter.config.model import format_duration
from exporter.http.drift_report import Reference, score_window
from exporter.http.exposition import Exposition
from exporter.state.layout import Layout

if TYPE_CHECKING:
    from exporter.state.class_drift import ClassDriftState
    from exporter.state.store import VersionState


def _reference(drift: ClassDriftState) -> Reference:
    cached = drift.__dict__.get("reference")
    if cached is None:
        cached = drift.__dict__["reference"] = Reference.of(Layout(drift.binnings, drift.offsets))
    return cached


def collect_class_drift(state: VersionState, out: Exposition, now: float) -> None:
    drift = state.class_drift
    if drift is None:
        return
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

