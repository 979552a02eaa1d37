"""Decode, then apply: a decoded Batch becomes a Prepared batch before any state changes.

Everything that can find fault with a value happens here: type checks and numpy conversion of
every column, the saturation of sums, the cleaning of inline labels, the quality sum vectors and
the label-store entries. What is left for ``StateStore.apply`` is adding numbers to arrays that
already exist and putting prepared entries into the label store, which cannot fail halfway; so
a request either changes the state for all its accepted records or for none of them, and a
client's retry of a failed request never counts anything twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Sequence

import numpy as np

from exporter.config.model import ExporterConfig
from exporter.ingest.columns import Column, convert, float_values
from exporter.ingest.decode import Batch, check_timestamp
from exporter.state.label_store import id_key
from exporter.state.quality import QualityMath


@dataclass
class PreparedQuality:
    """The quality side of a batch: sum vectors to add and predictions to keep for their labels."""

    predicted: np.ndarray | None = None  # binary: expected confusion, score histogram, selection
    predicted_n: int = 0
    inline: np.ndarray | None = None     # labelled sums of the records that carried their label
    inline_n: int = 0
    inline_invalid: int = 0
    waiting_keys: list[str] = field(default_factory=list)
    waiting_predictions: list[Any] = field(default_factory=list)
    waiting_codes: list[int] = field(default_factory=list)
    waiting_times: list[float] = field(default_factory=list)
    segment_codes: np.ndarray | None = None  # every record's packed segment values (when the batch has any)


@dataclass
class Prepared:
    """One batch, typed and checked: what VersionState.apply adds."""

    batch: Batch
    columns: list[Column]              # features in config order, then the prediction
    quality_counts: np.ndarray         # (columns x 4) missing, null, nonfinite, type_errors
    sums: np.ndarray                   # (sum of positives, sum of |negatives|) of summed predictions
    summed: int                        # predictions in `sums`
    unsummed: int                      # finite predictions beyond max_abs_value: counted, not summed
    quality: PreparedQuality
    out_of_range: int = 0              # feature values binned below or above the reference (set by apply)
    attributions: Any = None           # PreparedAttributions (exporter/state/attributions.py), set by StateStore.prepare

    @property
    def size(self) -> int:
        return self.batch.size


def saturated_sums(values: np.ndarray, max_abs: float) -> tuple[np.ndarray, int, int]:
    """(sums by sign, values summed, values left out) of finite values; beyond max_abs is left out.

    Two predictions of 1.7e308 would otherwise turn a counter into +Inf until a restart.
    """
    inside = np.abs(values) <= max_abs
    kept = values[inside] if not inside.all() else values
    sums = np.array([np.maximum(kept, 0.0).sum(), -np.minimum(kept, 0.0).sum()])
    return sums, len(kept), len(values) - len(kept)


def prepare(batch: Batch, limits: ExporterConfig, math: QualityMath, now: float) -> Prepared:
    """Convert and check one batch; raises nothing for bad values (they are counted), changes nothing."""
    model = batch.model
    parse = limits.type_errors == "parse"
    columns = [convert(f.type, batch.features[f.name], limits.max_string_length, parse) for f in model.features]
    columns.append(convert(model.prediction.type, batch.predictions, limits.max_string_length))
    counts = np.array([[c.missing, c.null, c.nonfinite, c.type_errors] for c in columns], dtype=np.int64)
    if model.prediction.type == "numeric":
        sums, summed, unsummed = saturated_sums(columns[-1].values, limits.max_abs_value)
    else:
        sums, summed, unsummed = np.zeros(2), 0, 0
    return Prepared(batch, columns, counts, sums, summed, unsummed, prepare_quality(batch, math, now))


def usable_predictions(math: QualityMath, predictions: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(values, mask of usable ones): multiclass needs a class, the others a number within max_abs."""
    if math.model.task == "multiclass_classification":
        return np.asarray(predictions, dtype=object), np.ones(len(predictions), dtype=bool)
    values = float_values(list(predictions))
    return values, np.abs(values) <= math.max_abs  # NaN and +-Inf fail the comparison


def prediction_times(raw: Sequence[Any], indices: list[int], now: float) -> list[float]:
    """The record's own timestamp where it has a valid one, else the time it was received."""
    if not raw or all(t is None for t in raw):
        return [now] * len(indices)
    times = []
    for i in indices:
        try:
            at = check_timestamp(raw[i])
        except (ValueError, TypeError, OverflowError):
            at = None
        times.append(now if at is None else at)
    return times


def prepare_quality(batch: Batch, math: QualityMath, now: float) -> PreparedQuality:
    """Sum vectors of the batch's predictions and inline labels; the ids that wait for a label."""
    n = batch.size
    codec = math.layout.codec
    codes = codec.encode(batch.segments) if codec.width and batch.segments else np.zeros(n, dtype=np.int64)
    values, usable = usable_predictions(math, batch.predictions)
    extras = math.extras(batch.decisions, batch.class_scores, n)  # the model's own decisions, per-class scores
    out = PreparedQuality(segment_codes=codes if codec.width and len(batch.segments) == n else None)
    if math.model.task == "binary_classification":
        out.predicted = math.prediction_vector(values[usable], codes[usable], None if extras is None else extras[usable])
        out.predicted_n = int(usable.sum())
    elif math.model.task == "regression" and math.calibration is not None:  # the error model's bin counts
        out.predicted = math.prediction_vector(values[usable], codes[usable])
        out.predicted_n = int(usable.sum())
    elif extras is not None and math.model.task == "multiclass_classification":
        out.predicted = math.prediction_vector(values, codes, extras)
        out.predicted_n = int((~np.isnan(extras[:, 0])).sum()) if out.predicted is not None else 0
    labels = batch.labels or [None] * n
    inline = [] if labels.count(None) == n else [i for i, label in enumerate(labels) if label is not None]
    if inline:
        clean, ok = math.clean_labels([labels[i] for i in inline])
        index = np.asarray(inline, dtype=np.int64)
        keep = ok & usable[index]
        clean = clean[keep[ok]]
        index = index[keep]
        if len(index):
            out.inline = math.label_vector(values[index], clean, codes[index], None if extras is None else extras[index])
        out.inline_n = len(index)
        out.inline_invalid = len(inline) - len(index)
    if batch.ids:
        # The common batch: string ids and no inline label, so every row waits; no Python call per row.
        every = not inline and set(map(type, batch.ids)) == {str}
        keys = list(batch.ids) if every else [id_key(v) for v in batch.ids]
        waiting = list(range(n)) if every else [i for i, key in enumerate(keys) if key is not None and labels[i] is None]
        if waiting:
            canonical = values.tolist() if values.dtype != object else list(values)
            out.waiting_keys = keys if every else [keys[i] for i in waiting]
            kept = canonical if every else [canonical[i] for i in waiting]
            out.waiting_predictions = kept if extras is None else math.pack(kept, extras[waiting])
            out.waiting_codes = codes.tolist() if every else codes[waiting].tolist()
            out.waiting_times = prediction_times(batch.timestamps, waiting, now)
    return out
