"""Joining ground truth to predictions: inline labels, pending predictions, late labels.

Two ways in. A prediction record may carry its ``label`` (offline replays, or models whose
truth is known at once): it is scored on the spot. Otherwise a prediction with an ``id`` waits
in the bounded LabelStore until ``POST /v1/labels`` brings ``{id, label}``; the pair is then
scored in the window of the label's arrival and its delay is observed.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from exporter.ingest.decode import UNKNOWN_MODEL_LABEL, Batch, check_timestamp
from exporter.state.label_store import LabelStore, Pending, id_key
from exporter.state.quality import ModelQuality


def _prediction_times(raw: Sequence[Any], indices: list[int], now: float) -> list[float]:
    """The record's own timestamp where it has a valid one, else the time it was received."""
    if not raw or all(t is None for t in raw):
        return [now] * len(indices)
    times = []
    for i in indices:
        try:
            at = check_timestamp(raw[i])
        except (ValueError, TypeError):
            at = None
        times.append(now if at is None else at)
    return times


def _usable_predictions(quality: ModelQuality, predictions: Sequence[Any]) -> tuple[np.ndarray, np.ndarray]:
    """(values, mask of usable ones): numeric tasks need a finite number, multiclass a class."""
    if quality.model.task == "multiclass_classification":
        return np.asarray(predictions, dtype=object), np.ones(len(predictions), dtype=bool)
    values = np.asarray(predictions, dtype=np.float64)
    return values, np.isfinite(values)


def observe_batch(quality: ModelQuality, store: LabelStore, batch: Batch, now: float) -> None:
    """The quality side of accepting a batch of predictions."""
    model = batch.model.name
    n = batch.size
    codec = quality.layout.codec
    codes = codec.encode(batch.segments) if codec.width and batch.segments else np.zeros(n, dtype=np.int64)
    values, usable = _usable_predictions(quality, batch.predictions)
    if quality.model.task == "binary_classification":
        quality.observe_predictions(values[usable], codes[usable], now)
    labels = batch.labels or [None] * n
    inline = [i for i, label in enumerate(labels) if label is not None]
    if inline:
        clean, ok = quality.clean_labels([labels[i] for i in inline])
        index = np.asarray(inline, dtype=np.int64)
        keep = ok & usable[index]
        clean = clean[keep[ok]]
        index = index[keep]
        quality.observe_labels(values[index], clean, codes[index], None, now)
        store.count(model, "inline", len(index))
        store.count(model, "invalid", len(inline) - len(index))
    if batch.ids:
        keys = [id_key(v) for v in batch.ids]
        waiting = [i for i, key in enumerate(keys) if key is not None and labels[i] is None]
        if waiting:
            store.put(
                model, batch.version, [keys[i] for i in waiting], [batch.predictions[i] for i in waiting],
                codes[waiting].tolist(), _prediction_times(batch.timestamps, waiting, now), now,
            )


@dataclass
class LabelRecord:
    id: Any
    label: Any
    model: str | None = None


@dataclass
class JoinResult:
    outcomes: Counter[str] = field(default_factory=Counter)

    def to_json(self) -> dict[str, int]:
        return {name: self.outcomes[name] for name in ("joined", "unknown_id", "duplicate", "invalid")}


QualityLookup = Callable[[str, str], "ModelQuality | None"]


def join_labels(labels: LabelStore, quality_of: QualityLookup, records: Sequence[LabelRecord], now: float) -> JoinResult:
    """Join labels to pending predictions, score the pairs per model version, count every outcome.

    `quality_of(model, version)` is the version's quality accumulator, or None once the version was
    evicted: the store is passed in, so this module needs nothing from the state store above it.
    """
    result = JoinResult()

    def count(model: str | None, outcome: str, n: int = 1) -> None:
        result.outcomes[outcome] += n
        labels.count(model or UNKNOWN_MODEL_LABEL, outcome, n)

    groups: dict[tuple[str, str], list[tuple[str, Any, Pending]]] = {}
    for record in records:
        key = id_key(record.id)
        if key is None:
            count(record.model, "invalid")
            continue
        entry = labels.peek(key, now)
        if isinstance(entry, str):
            count(labels.joined_model(key) if entry == "duplicate" else record.model, entry)
            continue
        if record.model is not None and entry.model != record.model:
            count(record.model, "unknown_id")
            continue
        groups.setdefault((entry.model, entry.version), []).append((key, record.label, entry))
    for (model, version), pairs in groups.items():
        quality = quality_of(model, version)
        if quality is None:  # the version was evicted; its prediction cannot be scored any more
            for key, _, _ in pairs:
                labels.take(key, now)
            count(model, "unknown_id", len(pairs))
            continue
        clean, ok = quality.clean_labels([label for _, label, _ in pairs])
        values, usable = _usable_predictions(quality, [entry.prediction for _, _, entry in pairs])
        good = ok & usable
        count(model, "invalid", int((~good).sum()))
        clean_index = np.cumsum(ok) - 1  # `clean` holds only the labels that were ok
        joined, delays, keep = [], [], []
        for position in np.flatnonzero(good).tolist():
            taken = labels.take(pairs[position][0], now)
            if isinstance(taken, str):  # the same id twice in one request, or a concurrent request won
                count(model, taken)
                continue
            joined.append(position)
            keep.append(int(clean_index[position]))
            delays.append(now - taken.predicted_at)
        if not joined:
            continue
        codes = np.asarray([pairs[p][2].segment_code for p in joined], dtype=np.int64)
        quality.observe_labels(values[joined], clean[keep], codes, np.asarray(delays), now)
        count(model, "joined", len(joined))
    return result
