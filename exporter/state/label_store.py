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
from collections import Counter, OrderedDict, deque
from itertools import compress, repeat
from operator import itemgetter
from typing import Any, Literal, NamedTuple, Sequence

# unavailable: a shared store (Redis) could not be reached, so the prediction was never stored.
EVICTION_REASONS = ("capacity", "expired", "unavailable")
# What became of each label: joined to a stored prediction, inline in the prediction record,
# no pending prediction with that id, a second label for an id, a label of the wrong type, or
# a shared store that could not be reached (the label was not joined; send it again later).
OUTCOMES = ("joined", "inline", "unknown_id", "duplicate", "invalid", "unavailable")
Miss = Literal["unknown_id", "duplicate"]
# What peek_many/take_many give per key: the entry (a tuple in Pending's field order) when pending,
# the model name of an id already joined (a `duplicate`), or None (an `unknown_id`).
Found = "tuple[Any, ...] | str | None"


class StoreUnavailable(Exception):
    """The shared store could not be reached; nothing was changed by the failed call."""


class Pending(NamedTuple):
    """What the join needs of one prediction."""

    model: str
    version: str
    prediction: Any       # float score/value, or class name
    segment_code: int     # the record's segment values packed into one int (see bias.SegmentCodec)
    predicted_at: float   # unix seconds: the record's timestamp, else the time it was received
    stored_at: float      # exporter clock when stored; the TTL runs from here


STORED_AT = Pending._fields.index("stored_at")


def id_key(value: Any) -> str | None:
    """The store key of a record id, or None when it is not a usable id."""
    if isinstance(value, str):
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


class LabelStore:
    """Bounded by entries and age; thread-safe; every way out is counted per model.

    Each model has its own share of ``max_entries`` (an equal split over the models given, or
    all of it when none are), kept in its own time-ordered dict: a model whose ids flood in
    evicts its own oldest predictions, never another model's.
    """

    snapshot_skip = ("share",)  # from the running config (exporter/state/snapshot.py)
    snapshot = True  # lives in this process, so exporter/state/snapshot.py saves it (the Redis store does not)
    backend = "memory"

    def __init__(self, max_entries: int, ttl: float, models: Sequence[str] = ()) -> None:
        self.max_entries = max_entries
        self.ttl = ttl
        self.models = tuple(models)
        self.share = max(1, max_entries // len(models)) if models else max_entries
        self.lock = threading.Lock()
        # Entries are plain tuples in Pending's field order: building 5,000 NamedTuples per batch
        # costs more than the rest of the join, so they become Pending only when taken.
        self.pending: dict[str, OrderedDict[str, tuple[Any, ...]]] = {m: OrderedDict() for m in models}
        # Joined ids -> (model, time joined): answers `duplicate` for a second label. Two generations of
        # plain dicts: when the newer holds max_entries / 2 ids it becomes the older and the older is
        # dropped whole, so at least the last max_entries / 2 and at most max_entries ids are remembered,
        # with no per-id deletion (the join's cost was mostly that); entries older than the TTL are ignored
        # and a generation whose newest entry is older than the TTL is dropped.
        self.joined: dict[str, tuple[str, float]] = {}
        self.joined_older: dict[str, tuple[str, float]] = {}
        self.joined_newest = 0.0
        self.joined_older_newest = 0.0
        self.evicted: Counter[tuple[str, str]] = Counter()
        self.duplicate_predictions: Counter[str] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()

    def __len__(self) -> int:
        return sum(map(len, self.pending.values()))

    @property
    def pending_by_model(self) -> Counter[str]:
        return Counter({model: len(entries) for model, entries in self.pending.items()})

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
            pending = self.pending.setdefault(model, OrderedDict())
            others = [entries for name, entries in self.pending.items() if name != model and entries]
            if (pending.keys().isdisjoint(ids) and len(set(ids)) == len(ids)
                    and all(entries.keys().isdisjoint(ids) for entries in others)):
                # The common case, new ids only: one C-level update instead of a Python loop.
                pending.update(zip(ids, zip(repeat(model), repeat(version), predictions, segment_codes,
                                            predicted_at, repeat(now))))
                ids = ()
            for key, prediction, code, at in zip(ids, predictions, segment_codes, predicted_at):
                old = pending.pop(key, None)
                for entries in others:  # ids are unique per exporter: the newer prediction wins
                    old = entries.pop(key, None) or old
                if old is not None:
                    duplicates += 1
                pending[key] = (model, version, prediction, code, at, now)
            self.duplicate_predictions[model] += duplicates
            self._expire(now)
            excess = len(pending) - self.share
            if excess > 0:  # the oldest go; a C-level loop (a full store evicts a whole batch per put)
                deque(map(pending.popitem, repeat(False, excess)), maxlen=0)
                self.evicted[(model, "capacity")] += excess
        return duplicates

    def _find(self, key: str) -> OrderedDict[str, tuple[Any, ...]] | None:
        for entries in self.pending.values():
            if key in entries:
                return entries
        return None

    def peek(self, key: str, now: float) -> Pending | Miss:
        """The pending prediction of an id without taking it, or why there is none."""
        with self.lock:
            self._expire(now)
            entries = self._find(key)
            if entries is not None:
                return Pending._make(entries[key])
            return "duplicate" if self._joined(key, now) else "unknown_id"

    def take(self, key: str, now: float) -> Pending | Miss:
        """Remove and return the pending prediction of an id (its label has arrived)."""
        with self.lock:
            self._expire(now)
            entries = self._find(key)
            if entries is None:
                return "duplicate" if self._joined(key, now) else "unknown_id"
            entry = Pending._make(entries.pop(key))
            self.joined[key] = (entry.model, now)
            self._rotate_joined(now)
            return entry

    def peek_many(self, keys: Sequence[str], now: float) -> list[Any]:
        """Per key: the pending entry (a tuple in Pending's order), the model of an id already joined, or None."""
        with self.lock:
            self._expire(now)
            found: list[Any] | None = None
            for entries in self.pending.values():
                if entries:  # map(dict.get) runs in C: no Python frame per label
                    got = list(map(entries.get, keys))
                    found = got if found is None else [a or b for a, b in zip(found, got)]
            return self._misses(keys, [None] * len(keys) if found is None else found, now)

    def take_many(self, keys: Sequence[str], now: float, peeked: Sequence[Any] | None = None) -> list[Any]:
        """Remove the pending entries of keys (their labels arrived); the same shape as peek_many.

        A key that is not pending any more (taken by a concurrent request, or twice in one call) comes
        back as the model of its joined id, a `duplicate`. `peeked` (what peek_many gave) is for the shared
        store, which can then answer less; here the entries taken are returned as they are."""
        with self.lock:
            self._expire(now)
            found: list[Any] | None = None
            for entries in self.pending.values():
                if entries:
                    got = list(map(entries.pop, keys, repeat(None)))
                    found = got if found is None else [a or b for a, b in zip(found, got)]
            if found is None:
                found = [None] * len(keys)
            joined = self.joined
            # compress() keeps the taken ones (tuples are true, None false): all of it in C.
            models = set(map(itemgetter(0), compress(found, found)))
            if len(models) == 1:  # one model (the usual case): every tombstone shares one tuple
                joined.update(zip(compress(keys, found), repeat((models.pop(), now))))
            else:
                joined.update(zip(compress(keys, found), zip(map(itemgetter(0), compress(found, found)), repeat(now))))
            self._rotate_joined(now)
            # Taken ones are new tuples; a key seen twice found None the second time and is a duplicate now.
            return self._misses(keys, found, now)

    def _misses(self, keys: Sequence[str], found: list[Any], now: float) -> list[Any]:
        if all(found):
            return found
        return [entry if entry is not None else self._joined(key, now) for key, entry in zip(keys, found)]

    def _joined(self, key: str, now: float | None = None) -> str | None:
        """The model of an id joined within the TTL (any time when `now` is None), else None."""
        entry = self.joined.get(key) or self.joined_older.get(key)
        if entry is None or (now is not None and entry[1] <= now - self.ttl):
            return None
        return entry[0]

    def _rotate_joined(self, now: float) -> None:
        self.joined_newest = now
        if len(self.joined) >= max(1, self.max_entries // 2):
            self.joined_older, self.joined = self.joined, {}
            self.joined_older_newest = now

    def _expire(self, now: float) -> None:
        """Drop entries older than the TTL; the dicts are in time order, so only their fronts are looked at."""
        horizon = now - self.ttl
        for model, pending in self.pending.items():
            expired = 0
            while pending and next(iter(pending.values()))[STORED_AT] <= horizon:
                pending.popitem(last=False)
                expired += 1
            if expired:
                self.evicted[(model, "expired")] += expired
        if self.joined_older and self.joined_older_newest <= horizon:
            self.joined_older = {}
        if self.joined and self.joined_newest <= horizon:
            self.joined = {}

    def drop_model_locked(self, model: str, reason: str) -> int:
        """Count a model's pending predictions as evicted for `reason` and drop them; the caller holds the lock.

        A model no longer configured loses its place in the store altogether.
        """
        entries = self.pending.get(model)
        if entries is None:
            return 0
        dropped = len(entries)
        if dropped:
            self.evicted[(model, reason)] += dropped
        if model in self.models or not self.models:
            entries.clear()
        else:
            del self.pending[model]
        return dropped

    def joined_model(self, key: str) -> str | None:
        """The model of an id whose label was already joined (to attribute a duplicate), if remembered."""
        with self.lock:
            return self._joined(key)

    def count(self, model: str, outcome: str, n: int = 1) -> None:
        with self.lock:
            self.outcomes[(model, outcome)] += n

    def counts(self) -> tuple[dict[str, int], dict[tuple[str, str], int], dict[str, int]]:
        """(pending per model, evictions per (model, reason), duplicate predictions per model), copied."""
        with self.lock:
            pending = {model: len(entries) for model, entries in self.pending.items()}
            return pending, dict(self.evicted), dict(self.duplicate_predictions)
