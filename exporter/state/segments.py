"""Drift per segment value: the bins of chosen features, counted separately for each value of an attribute.

A segment attribute configured with ``drift: true`` (``models[].segments``, docs/drift.md "Drift per
segment") gets, for each of its configured values plus ``__other__``, the same reference bins as the
whole model for its ``features`` (default: every feature). Segment values come from a record's
``segments`` object and are packed by the bias side's :class:`~exporter.stats.bias.SegmentCodec`, so
an unlisted, missing or non-string value folds into ``__other__`` and the label values stay the
config's. The per-value counts of a feature sum to the whole model's counts of that feature.

All blocks live in one flat vector (attribute blocks one after the other; in a block one row of
``row_width`` bins per value), so a batch is one ``np.bincount`` and one vector add per window, as
in :mod:`exporter.state.store`. Memory: sum over attributes of (values + 1) x (bins of its features)
int64 counters, times (1 + windows x slots); nothing grows with traffic.
"""

from __future__ import annotations

from typing import Any, NamedTuple, Sequence

import numpy as np

from exporter.config.model import ModelConfig
from exporter.ingest.columns import Column, convert
from exporter.ingest.decode import Batch
from exporter.state.layout import Layout
from exporter.state.windows import WindowRing
from exporter.stats.bias import SegmentCodec


class SegmentBlock(NamedTuple):
    """One attribute's part of the flat vector: a row of bins per value (its values, then __other__)."""

    attribute: str
    index: int  # the attribute's position in the codec (its position in models[].segments)
    values: tuple[str, ...]
    columns: tuple[int, ...]  # feature positions in the model (and in the version's Layout)
    bin_offsets: np.ndarray  # where each column's bins start in a row; the last entry is the row width
    start: int  # where the block starts in the flat vector

    @property
    def row_width(self) -> int:
        return int(self.bin_offsets[-1])

    @property
    def width(self) -> int:
        return len(self.values) * self.row_width

    def layout(self, layout: Layout) -> Layout:
        """The version's layout cut down to this block's features (what drift scores a row against)."""
        return Layout(tuple(layout.binnings[i] for i in self.columns), self.bin_offsets)


def drift_blocks(model: ModelConfig, layout: Layout) -> tuple[SegmentBlock, ...]:
    codec = SegmentCodec([(s.attribute, tuple(s.values)) for s in model.segments])
    names = [f.name for f in model.features]
    blocks, start = [], 0
    for a, segment in enumerate(model.segments):
        if not segment.drift:
            continue
        columns = tuple(names.index(n) for n in segment.features) if segment.features else tuple(range(len(names)))
        offsets = np.concatenate([[0], np.cumsum([layout.binnings[i].n_bins for i in columns])]).astype(np.int64)
        block = SegmentBlock(segment.attribute, a, tuple(codec.values[a]), columns, offsets, start)
        blocks.append(block)
        start += block.width
    return tuple(blocks)


class SegmentDrift:
    """Cumulative and windowed bin counts per segment value of a version (None when no segment has drift)."""

    snapshot_skip = ("blocks", "codec", "kinds", "names", "max_length", "parse", "window_seconds")

    def __init__(self, model: ModelConfig, layout: Layout, window_seconds: Sequence[int], slots: int,
                 max_length: int, parse: bool) -> None:
        self.codec = SegmentCodec([(s.attribute, tuple(s.values)) for s in model.segments])
        self.blocks = drift_blocks(model, layout)
        self.kinds = [f.type for f in model.features]
        self.names = [f.name for f in model.features]
        self.max_length, self.parse = max_length, parse  # the ingest limits, to convert raw values again
        self.window_seconds = tuple(window_seconds)
        self.width = sum(b.width for b in self.blocks)
        self.cumulative = np.zeros(self.width, dtype=np.int64)
        self.windows = [WindowRing(s, slots, self.width) for s in window_seconds]

    @classmethod
    def of(cls, model: ModelConfig, layout: Layout, window_seconds: Sequence[int], slots: int,
           max_length: int, parse: bool) -> SegmentDrift | None:
        if not any(s.drift for s in model.segments):
            return None
        return cls(model, layout, window_seconds, slots, max_length, parse)

    def counts(self, batch: Batch, columns: Sequence[Column], layout: Layout, start: int = 0,
               codes: np.ndarray | None = None) -> np.ndarray:
        """Bin counts of the batch's rows from `start` on, per segment value; pure (runs before any change).
        `codes`: the batch's packed segment values as the quality side computed them (same codec), if any."""
        n = batch.size - start
        if codes is None or len(codes) != batch.size:
            # Records without a `segments` object are __other__ everywhere (a zero code would be each first value).
            segments = batch.segments[start:] if len(batch.segments) == batch.size else [None] * n
            codes = self.codec.encode(segments)
        else:
            codes = codes[start:]
        values = self.codec.decode(codes)
        parts = []
        for block in self.blocks:
            value = values[:, block.index]
            for j, col in enumerate(block.columns):
                rows, bins = self._binned(col, batch, columns[col] if start == 0 else None, value, start, layout)
                parts.append(block.start + rows * block.row_width + int(block.bin_offsets[j]) + bins)
        flat = np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)
        return np.bincount(flat, minlength=self.width)

    def _binned(self, col: int, batch: Batch, column: Column | None, value: np.ndarray, start: int,
                layout: Layout) -> tuple[np.ndarray, np.ndarray]:
        """(segment value index, bin index) of every usable value of a feature column.

        A typed column keeps only its usable values, so its rows line up with the records only when
        every value was usable (the common case: reused as is). Otherwise the raw values are converted
        again per segment value, which keeps each value with its record at the cost of a second pass.
        """
        binning = layout.binnings[col]
        if column is not None and len(column.values) == len(value):
            return value, binning.assign(column.values)
        raw: list[Any] = batch.features[self.names[col]][start:]
        rows, bins = [], []
        for v in np.unique(value).tolist():
            where = np.flatnonzero(value == v).tolist()
            typed = convert(self.kinds[col], [raw[i] for i in where], self.max_length, self.parse)
            bins.append(binning.assign(typed.values))
            rows.append(np.full(len(typed.values), v, dtype=np.int64))
        if not bins:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.concatenate(rows), np.concatenate(bins)

    def add(self, counts: np.ndarray, now: float) -> None:
        self.cumulative += counts
        for ring in self.windows:
            ring.add(counts, 0, now)

    def window_counts(self, window: int, now: float) -> np.ndarray:
        return self.windows[self.window_seconds.index(window)].totals(now)[0]
