"""Joining ground truth to predictions: inline labels, pending predictions, late labels.

Two ways in. A prediction record may carry its ``label`` (offline replays, or models whose
truth is known at once): it is scored on the spot. Otherwise a prediction with an ``id`` waits
in the bounded LabelStore until ``POST /v1/labels`` brings ``{id, label}``; the pair is then
scored in the window of the label's arrival and its delay is observed.
"""

from __future__ import annotations

from collections import Counter
from itertools import repeat
from operator import is_, itemgetter
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
    if set(map(type, ids)) <= {str}:  # the common case, in one C-level pass: no conversion per id
        keys, positions = list(ids), list(range(n))
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
    # Entries (tuples) apart from misses, without a Python frame per label: map(type) and map(is_) run in C.
    every = set(map(type, found)) == {tuple}  # every label has a pending prediction: one C-level pass
    hit = np.ones(len(found), dtype=bool) if every else \
        np.fromiter(map(is_, map(type, found), repeat(tuple)), dtype=bool, count=len(found))
    if not every:
        unknown: list[str | None] = []
        duplicates: list[str] = []
        for j in np.flatnonzero(~hit).tolist():
            (duplicates.append(found[j]) if found[j] is not None else unknown.append(model_of(positions[j])))
        count_each(unknown, "unknown_id")
        count_each(duplicates, "duplicate")
    members = np.flatnonzero(hit).tolist()
    entries = found if len(members) == len(found) else [found[j] for j in members]
    if not entries:
        return result
    # A label that names another model than its prediction's is an unknown id for that model.
    if models is not None and not (named is not None and set(map(itemgetter(0), entries)) == {named}):
        wanted = [named] * len(members) if named is not None else [models[positions[j]] for j in members]
        mismatch = [w is not None and w != e[0] for w, e in zip(wanted, entries)]
        if any(mismatch):
            count_each([w for w, bad in zip(wanted, mismatch) if bad], "unknown_id")
            members = [j for j, bad in zip(members, mismatch) if not bad]
            entries = [e for e, bad in zip(entries, mismatch) if not bad]
            if not entries:
                return result
    first = entries[0]
    if set(map(itemgetter(0), entries)) == {first[0]} and set(map(itemgetter(1), entries)) == {first[1]}:
        groups = {(first[0], first[1]): range(len(entries))}  # one model version, the common case: no loop
    else:
        groups = {}
        for index, entry in enumerate(entries):
            groups.setdefault((entry[0], entry[1]), []).append(index)
    for (model, version), chosen in groups.items():
        rows = [members[i] for i in chosen] if len(chosen) != len(members) else members
        group_entries = entries if len(chosen) == len(entries) else [entries[i] for i in chosen]
        same = len(rows) == n and len(keys) == n  # every label of the request: take the lists as they are
        _join_group(labels, quality_of, model, version,
                    keys if same else [keys[j] for j in rows],
                    list(values) if same else [values[positions[j]] for j in rows], group_entries, now, count)
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
    stored, extras = quality.unpack(list(map(itemgetter(2), entries)))  # the model's own decision, class scores
    values, usable = usable_predictions(quality, stored)
    good = ok & usable
    count(model, "invalid", int((~good).sum()))
    clean_index = np.cumsum(ok) - 1  # `clean` holds only the labels that were ok
    chosen = np.flatnonzero(good)
    try:
        if len(chosen) == len(keys):
            taken = labels.take_many(keys, now, entries)
        else:
            picked = chosen.tolist()
            taken = labels.take_many([keys[p] for p in picked], now, [entries[p] for p in picked])
    except StoreUnavailable:
        count(model, "unavailable", len(chosen))
        return
    every = set(map(type, taken)) == {tuple}
    hit = np.ones(len(taken), dtype=bool) if every else \
        np.fromiter(map(is_, map(type, taken), repeat(tuple)), dtype=bool, count=len(taken))
    got = taken
    if not every:
        # Not taken: the same id twice in one request, or a concurrent request (on any replica) won.
        for j in np.flatnonzero(~hit).tolist():
            count(model, "duplicate" if taken[j] else "unknown_id")
        got = [taken[j] for j in np.flatnonzero(hit).tolist()]
    if not got:
        return
    joined = chosen[hit]
    codes = np.fromiter(map(itemgetter(3), got), dtype=np.int64, count=len(got))
    delays = now - np.fromiter(map(itemgetter(4), got), dtype=np.float64, count=len(got))
    quality.observe_labels(values[joined], clean[clean_index[joined]], codes, delays, now,
                           None if extras is None else extras[joined])
    count(model, "joined", len(got))
