"""Scrape-time drift per segment value: counters of every bin, and per window the score, N and verdict.

Each attribute block of :class:`~exporter.state.segments.SegmentDrift` is scored in one call of the
feature scorer (:func:`exporter.http.drift_report.score_window`) with one row per segment value, against
the whole model's reference bins of the block's features: the same rule as a feature's verdict, so a
segment value drifts exactly when its own traffic would have drifted as a model of its own.
"""

from __future__ import annotations

import numpy as np

from exporter import catalog as c
from exporter.config.model import format_duration
from exporter.http.drift_report import Reference, score_window
from exporter.http.exposition import Exposition, lines_for, series_prefix
from exporter.state.segments import SegmentBlock
from exporter.state.store import VersionState


def _bin_prefixes(state: VersionState, block: SegmentBlock) -> list[str]:
    assert state.layout is not None
    metric, out = c.SEGMENT_FEATURE_BIN, []
    for value in block.values:
        for col in block.columns:
            binning = state.layout.binnings[col]
            for label in binning.labels:
                out.append(series_prefix(metric.name, metric.labels,
                                         (state.model.name, state.version, block.attribute, value, binning.name, label)))
    return out


def _plan(state: VersionState) -> list[tuple[SegmentBlock, Reference, list[str]]]:
    """Per block: its reference and its counter prefixes; built once per reference layout."""
    cache: dict[int, list[tuple[SegmentBlock, Reference, list[str]]]] = state.__dict__.setdefault("_segment_plan", {})
    key = id(state.layout)
    if key not in cache:
        assert state.layout is not None and state.segment_drift is not None
        cache.clear()
        cache[key] = [(b, Reference.of(b.layout(state.layout)), _bin_prefixes(state, b))
                      for b in state.segment_drift.blocks]
    return cache[key]


def collect_segment_drift(state: VersionState, out: Exposition, now: float) -> None:
    """The per-segment families of one version (nothing while its reference is captured or without drift segments)."""
    seg = state.segment_drift
    if seg is None or state.layout is None:
        return
    with state.lock:
        cumulative = seg.cumulative.copy()
        windows = {s: seg.window_counts(s, now) for s in seg.window_seconds}
    config = state.model.drift
    model, version = state.model.name, state.version
    for block, ref, prefixes in _plan(state):
        span = slice(block.start, block.start + block.width)
        out.add(c.SEGMENT_FEATURE_BIN, lines_for(prefixes, cumulative[span]))
        for seconds, counts in windows.items():
            rows = counts[span].reshape(len(block.values), block.row_width)
            scored = score_window(ref, rows, config)
            window = format_duration(seconds)
            for v, value in enumerate(block.values):
                for j, name in enumerate(ref.names):
                    labels = (model, version, block.attribute, value, name, window)
                    n = int(scored["n"][v, j])
                    out.add_one(c.SEGMENT_FEATURE_WINDOW_SAMPLES, labels, n)
                    if n:  # a value with no traffic in the window has no score (rather than NaN)
                        out.add_one(c.SEGMENT_FEATURE_DRIFT_SCORE, labels, float(scored["decision_score"][v, j]))
                    verdict = scored["verdict"][v, j]
                    if verdict == verdict:  # no verdict below min_samples: no series
                        out.add_one(c.SEGMENT_FEATURE_DRIFT_DETECTED, labels, int(verdict))
