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

from exporter.ingest.decode import UNKNOWN_MODEL_LABEL
from exporter.state.label_store import LabelStore, Pending, id_key
from exporter.state.prepare import PreparedQuality, usable_predictions
from exporter.state.quality import ModelQuality


def apply_quality(quality: ModelQuality, store: LabelStore, model: str, version: str, prepared: PreparedQuality,
                  now: float) -> None:
    """Add a prepared batch's quality side: sums of its predictions and inline labels, its ids kept for labels."""
    quality.add_predictions(prepared.predicted, prepared.predicted_n, now)
    if prepared.inline is not None:
        quality.add_labels(prepared.inline, prepared.inline_n, None, now)
    if prepared.inline_n or prepared.inline_invalid:
        store.count(model, "inline", prepared.inline_n)
        store.count(model, "invalid", prepared.inline_invalid)
    if prepared.waiting_keys:
        store.put(model, version, prepared.waiting_keys, prepared.waiting_predictions, prepared.waiting_codes,
                  prepared.waiting_times, now)


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
        values, usable = usable_predictions(quality, [entry.prediction for _, _, entry in pairs])
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
