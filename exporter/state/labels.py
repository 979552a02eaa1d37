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
from exporter.state.label_store import LabelStore, StoreUnavailable, id_key
from exporter.state.redis_store import RedisLabelStore
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
        answer = {name: self.outcomes[name] for name in ("joined", "unknown_id", "duplicate", "invalid")}
        if self.outcomes["unavailable"]:  # only with a shared store that could not be reached: send these again
            answer["unavailable"] = self.outcomes["unavailable"]
        return answer


QualityLookup = Callable[[str, str], "ModelQuality | None"]


def join_labels(labels: LabelStore | RedisLabelStore, quality_of: QualityLookup, records: Sequence[LabelRecord],
                now: float) -> JoinResult:
    """Join label records (any body shape); see join_columns."""
    return join_columns(labels, quality_of, [r.id for r in records], [r.label for r in records],
                        [r.model for r in records], now)


def join_columns(labels: LabelStore | RedisLabelStore, quality_of: QualityLookup, ids: Sequence[Any],
                 values: Sequence[Any], models: Sequence[str | None] | str | None, now: float) -> JoinResult:
    """Join labels to pending predictions, score the pairs per model version, count every outcome.

    `models` is the model each label names (None: any), one per label or one for all (the columnar
    shape). The store is asked twice per request, for all labels at once: peek_many, then take_many
    of the labels that are valid for their prediction (an invalid label leaves its prediction
    waiting); no call per label, so a Redis store costs two round trips per request.
    `quality_of(model, version)` is the version's quality accumulator, or None once the version was
    evicted: the store is passed in, so this module needs nothing from the state store above it.
    """
    result = JoinResult()

    def count(model: str | None, outcome: str, n: int = 1) -> None:
        if n:
            result.outcomes[outcome] += n
            labels.count(model or UNKNOWN_MODEL_LABEL, outcome, n)

    def count_each(names: Sequence[str | None], outcome: str) -> None:
        for name, n in Counter(names).items():
            count(name, outcome, n)

    n = len(ids)
    named = models if models is None or isinstance(models, str) else None  # one model for every label
    model_of = (lambda i: named) if models is None or isinstance(models, str) else models.__getitem__
    if all(type(i) is str for i in ids):  # the common case: no conversion per id
        keys, positions = list(ids), range(n)
    else:
        converted = [id_key(i) for i in ids]
        positions = [i for i, key in enumerate(converted) if key is not None]
        count_each([model_of(i) for i, key in enumerate(converted) if key is None], "invalid")
        keys = [converted[i] for i in positions]
    try:
        found = labels.peek_many(keys, now)
    except StoreUnavailable:
        count_each([model_of(i) for i in positions], "unavailable")
        return result
    groups: dict[tuple[str, str], list[int]] = {}
    unknown: list[str | None] = []
    duplicates: list[str] = []
    for j, entry in enumerate(found):
        if entry.__class__ is tuple:
            wanted = named if named is not None or models is None else models[positions[j]]
            if wanted is not None and entry[0] != wanted:
                unknown.append(wanted)
            else:
                groups.setdefault((entry[0], entry[1]), []).append(j)
        elif entry is None:
            unknown.append(model_of(positions[j]))
        else:
            duplicates.append(entry)
    count_each(unknown, "unknown_id")
    count_each(duplicates, "duplicate")
    for (model, version), members in groups.items():
        _join_group(labels, quality_of, model, version, [keys[j] for j in members],
                    [values[positions[j]] for j in members], [found[j] for j in members], now, count)
    return result


def _join_group(labels: LabelStore | RedisLabelStore, quality_of: QualityLookup, model: str, version: str,
                keys: list[str], label_values: list[Any], entries: list[tuple[Any, ...]], now: float,
                count: Callable[..., None]) -> None:
    """One model version's labels: clean them, take the valid ones from the store, add their sums."""
    quality = quality_of(model, version)
    if quality is None:  # the version was evicted; its prediction cannot be scored any more
        try:
            labels.take_many(keys, now)
        except StoreUnavailable:
            pass
        count(model, "unknown_id", len(keys))
        return
    clean, ok = quality.clean_labels(label_values)
    values, usable = usable_predictions(quality, [entry[2] for entry in entries])
    good = ok & usable
    count(model, "invalid", int((~good).sum()))
    clean_index = np.cumsum(ok) - 1  # `clean` holds only the labels that were ok
    chosen = np.flatnonzero(good)
    try:
        taken = labels.take_many([keys[p] for p in chosen.tolist()], now)
    except StoreUnavailable:
        count(model, "unavailable", len(chosen))
        return
    hit = np.fromiter((entry.__class__ is tuple for entry in taken), dtype=bool, count=len(taken))
    # Not taken: the same id twice in one request, or a concurrent request (on any replica) won.
    for entry in taken:
        if entry.__class__ is not tuple:
            count(model, "duplicate" if entry else "unknown_id")
    if not hit.any():
        return
    joined = chosen[hit]
    got = [entry for entry in taken if entry.__class__ is tuple]
    codes = np.fromiter((entry[3] for entry in got), dtype=np.int64, count=len(got))
    delays = now - np.fromiter((entry[4] for entry in got), dtype=np.float64, count=len(got))
    quality.observe_labels(values[joined], clean[clean_index[joined]], codes, delays, now)
    count(model, "joined", len(got))
