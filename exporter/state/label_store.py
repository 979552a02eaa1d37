"""Predictions waiting for their ground truth, kept by id in a bounded store.

Labels arrive minutes to weeks after the prediction (a chargeback, a delivery, a human review).
The store keeps what the join needs — model, version, the prediction, its packed segment code
and its time — for at most ``max_entries`` predictions and at most ``ttl`` seconds each. What
leaves the store without a label is counted by reason, never dropped silently:

    >>> store = LabelStore(max_entries=2, ttl=60)
    >>> store.put("fraud", "v1", ["a", "b", "c"], [0.1, 0.9, 0.4], [0, 0, 0], [0.0, 0.0, 0.0], now=0.0)
    0
    >>> store.evicted[("fraud", "capacity")], len(store)
    (1, 2)
    >>> store.take("b", now=1.0).prediction, store.take("b", now=1.0), store.take("a", now=1.0)
    (0.9, 'duplicate', 'unknown_id')

Ids are strings or integers; an integer id and its decimal string are the same id (label
pipelines often turn one into the other). Ids must be unique across the models of one
exporter. Memory is O(max_entries): each entry is one dict slot, its key and a small tuple,
plus a tombstone of joined ids (same bounds) so a second label for an id is a `duplicate`,
not an `unknown_id`.
"""

from __future__ import annotations

import threading
from collections import Counter, OrderedDict
from itertools import repeat
from typing import Any, Literal, NamedTuple, Sequence

EVICTION_REASONS = ("capacity", "expired")
# What became of each label: joined to a stored prediction, inline in the prediction record,
# no pending prediction with that id, a second label for an id, or a label of the wrong type.
OUTCOMES = ("joined", "inline", "unknown_id", "duplicate", "invalid")
Miss = Literal["unknown_id", "duplicate"]


class Pending(NamedTuple):
    """What the join needs of one prediction."""

    model: str
    version: str
    prediction: Any       # float score/value, or class name
    segment_code: int     # the record's segment values packed into one int (see bias.SegmentCodec)
    predicted_at: float   # unix seconds: the record's timestamp, else the time it was received
    stored_at: float      # exporter clock when stored; the TTL runs from here


MODEL, STORED_AT = Pending._fields.index("model"), Pending._fields.index("stored_at")


def id_key(value: Any) -> str | None:
    """The store key of a record id, or None when it is not a usable id."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class LabelStore:
    """Bounded by entries and age; thread-safe; every way out is counted per model."""

    def __init__(self, max_entries: int, ttl: float) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.lock = threading.Lock()
        # Entries are plain tuples in Pending's field order: building 5,000 NamedTuples per batch
        # costs more than the rest of the join, so they become Pending only when taken.
        self.pending: OrderedDict[str, tuple[Any, ...]] = OrderedDict()
        # Joined ids -> (model, time joined): answers `duplicate` for a second label.
        self.joined: OrderedDict[str, tuple[str, float]] = OrderedDict()
        self.pending_by_model: Counter[str] = Counter()
        self.evicted: Counter[tuple[str, str]] = Counter()
        self.duplicate_predictions: Counter[str] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def __len__(self) -> int:
        return len(self.pending)

    def put(
        self,
        model: str,
        version: str,
        ids: Sequence[str],
        predictions: Sequence[Any],
        segment_codes: Sequence[int],
        predicted_at: Sequence[float],
        now: float,
    ) -> int:
        """Store predictions by id; returns how many ids were already pending (the newer one wins)."""
        duplicates = 0
        with self.lock:
            pending = self.pending
            if pending.keys().isdisjoint(ids) and len(set(ids)) == len(ids):
                # The common case, new ids only: one C-level update instead of a Python loop.
                pending.update(zip(ids, zip(repeat(model), repeat(version), predictions, segment_codes,
                                            predicted_at, repeat(now))))
                ids = ()
            for key, prediction, code, at in zip(ids, predictions, segment_codes, predicted_at):
                old = pending.pop(key, None)
                if old is not None:
                    duplicates += 1
                    self.pending_by_model[old[MODEL]] -= 1
                pending[key] = (model, version, prediction, code, at, now)
            self.pending_by_model[model] += len(predictions)  # every id put is pending now (replaced ones subtracted)
            self.duplicate_predictions[model] += duplicates
            self._expire(now)
            excess = len(pending) - self.max_entries
            if excess > 0:
                evicted = Counter(pending.popitem(last=False)[1][MODEL] for _ in range(excess))
                for evicted_model, n in evicted.items():
                    self.pending_by_model[evicted_model] -= n
                    self.evicted[(evicted_model, "capacity")] += n
        return duplicates

    def peek(self, key: str, now: float) -> Pending | Miss:
        """The pending prediction of an id without taking it, or why there is none."""
        with self.lock:
            self._expire(now)
            entry = self.pending.get(key)
            if entry is not None:
                return Pending._make(entry)
            return "duplicate" if key in self.joined else "unknown_id"

    def take(self, key: str, now: float) -> Pending | Miss:
        """Remove and return the pending prediction of an id (its label has arrived)."""
        with self.lock:
            self._expire(now)
            stored = self.pending.pop(key, None)
            if stored is None:
                return "duplicate" if key in self.joined else "unknown_id"
            entry = Pending._make(stored)
            self.pending_by_model[entry.model] -= 1
            self.joined[key] = (entry.model, now)
            while len(self.joined) > self.max_entries:
                self.joined.popitem(last=False)
            return entry

    def _expire(self, now: float) -> None:
        """Drop entries older than the TTL; both dicts are in time order, so only the front is looked at."""
        horizon = now - self.ttl
        pending = self.pending
        while pending:
            entry = next(iter(pending.values()))
            if entry[STORED_AT] > horizon:
                break
            pending.popitem(last=False)
            self.pending_by_model[entry[MODEL]] -= 1
            self.evicted[(entry[MODEL], "expired")] += 1
        joined = self.joined
        while joined and next(iter(joined.values()))[1] <= horizon:
            joined.popitem(last=False)

    def joined_model(self, key: str) -> str | None:
        """The model of an id whose label was already joined (to attribute a duplicate), if remembered."""
        with self.lock:
            entry = self.joined.get(key)
            return entry[0] if entry is not None else None

    def count(self, model: str, outcome: str, n: int = 1) -> None:
        with self.lock:
            self.outcomes[(model, outcome)] += n

    def counts(self) -> tuple[dict[str, int], dict[tuple[str, str], int], dict[str, int]]:
        """(pending per model, evictions per (model, reason), duplicate predictions per model), copied."""
        with self.lock:
            return dict(self.pending_by_model), dict(self.evicted), dict(self.duplicate_predictions)
