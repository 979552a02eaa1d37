"""Pending predictions in Redis (or Valkey), shared by every replica: a label posted to any pod joins.

The same small interface as the in-memory LabelStore (put, peek_many, take_many, count, counts,
...), so the label join (labels.py) does not know which one it talks to. Keys, under
``label_store.key_prefix`` (default ``mlmon:``):

* ``p:<id>``     the pending prediction: model, version, prediction, segment code, predicted_at and
                 stored_at on six lines (``encode``), written with ``EX label_ttl``;
* ``i:<model>``  a sorted set of the model's pending ids scored by the time they were stored: the
                 bound (``max_pending_predictions`` split between the models) and the expiry count;
* ``j:<id>``     the model of an id already joined, for ``label_ttl``: a second label is a `duplicate`.

Every write is one Lua script per batch (one round trip, atomic on the server): ``put`` stores a
batch, sweeps the model's expired ids and evicts its oldest beyond its share; ``take`` removes a
batch of ids (GETDEL, ZREM, SET j:; Redis >= 6.2 or Valkey) so two replicas can never join the same prediction twice.
Reads (``peek_many``) are two MGETs. Expiry is counted by the sweep, not by Redis's own TTL: an
id whose stored time is older than the TTL is removed from the index by exactly one replica's
sweep (ZRANGEBYSCORE + ZREMRANGEBYSCORE in one script), which counts it, so the fleet's sum of
``mlmon_label_store_evictions_total{reason="expired"}`` counts each once. Redis's key TTL only
frees the memory; the index entry of such a key is still counted by the next sweep.

Outage: every call has a short socket timeout (``label_store.timeout``); after a failure the store
stays "down" for ``retry_interval`` seconds without trying, then tries again (redis-py reconnects).
While down, puts are dropped and counted (``evictions_total{reason="unavailable"}``) and label
requests are answered with their labels counted as ``unavailable`` (not joined; send them again):
the ingest path never waits longer than one timeout and never raises.

One Redis (a primary, or Valkey) is assumed: the scripts build key names from the prefix, which
Redis Cluster does not allow across slots.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import Counter
from typing import Any, Sequence

import numpy as np
import orjson

from exporter.state.label_store import LabelStore, Pending, StoreUnavailable

log = logging.getLogger("mlmon")

SWEEP_LIMIT = 10_000  # ids one sweep removes at most (a Lua script blocks Redis while it runs)
CHUNK = 10_000        # ids per script call

# ARGV: prefix, model, now, ttl, share, then id, payload pairs. Returns {duplicates, expired, evicted}.
PUT = """
local p, model, now, ttl, share = ARGV[1], ARGV[2], tonumber(ARGV[3]), tonumber(ARGV[4]), tonumber(ARGV[5])
local idx = p .. 'i:' .. model
local dup = 0
for i = 6, #ARGV, 2 do
  local id = ARGV[i]
  local key = p .. 'p:' .. id
  local old = redis.call('GET', key)
  if old then
    dup = dup + 1
    local m = string.sub(old, 1, string.find(old, '\\n', 1, true) - 1)
    if m ~= model then redis.call('ZREM', p .. 'i:' .. m, id) end
  end
  redis.call('SET', key, ARGV[i + 1], 'EX', ttl)
  redis.call('ZADD', idx, now, id)
end
local expired = 0
local old_ids = redis.call('ZRANGEBYSCORE', idx, '-inf', now - ttl, 'LIMIT', 0, %(limit)d)
for j = 1, #old_ids do
  redis.call('DEL', p .. 'p:' .. old_ids[j])
  redis.call('ZREM', idx, old_ids[j])
  expired = expired + 1
end
local evicted = 0
local excess = redis.call('ZCARD', idx) - share
if excess > 0 then
  local gone = redis.call('ZPOPMIN', idx, excess)
  for j = 1, #gone, 2 do redis.call('DEL', p .. 'p:' .. gone[j]) end
  evicted = excess
end
return {dup, expired, evicted}
""" % {"limit": SWEEP_LIMIT}

# ARGV: prefix, brief, ttl, then ids. Returns per id the stored value (or 1 when brief) when taken, else false.
TAKE = """
local p, brief, ttl = ARGV[1], ARGV[2] == '1', tonumber(ARGV[3])
local out = {}
for i = 4, #ARGV do
  local id = ARGV[i]
  local value = redis.call('GETDEL', p .. 'p:' .. id)
  if value then
    local m = string.sub(value, 1, string.find(value, '\\n', 1, true) - 1)
    redis.call('ZREM', p .. 'i:' .. m, id)
    redis.call('SET', p .. 'j:' .. id, m, 'EX', ttl)
    if brief then out[#out + 1] = 1 else out[#out + 1] = value end
  else
    out[#out + 1] = false
  end
end
return out
"""

# ARGV: prefix, horizon, then models. Returns per model the number of expired ids removed.
SWEEP = """
local p, horizon = ARGV[1], ARGV[2]
local out = {}
for i = 3, #ARGV do
  local idx = p .. 'i:' .. ARGV[i]
  local old_ids = redis.call('ZRANGEBYSCORE', idx, '-inf', horizon, 'LIMIT', 0, %(limit)d)
  for j = 1, #old_ids do
    redis.call('DEL', p .. 'p:' .. old_ids[j])
    redis.call('ZREM', idx, old_ids[j])
  end
  out[#out + 1] = #old_ids
end
return out
""" % {"limit": SWEEP_LIMIT}


def encode(model: str, version: str, predictions: Sequence[Any], codes: Sequence[int], times: Sequence[float],
           now: float) -> list[bytes]:
    """Stored values: six newline-separated fields, model first (the scripts read it), JSON where a field
    is a string (JSON never holds a raw newline), so a batch of them is split and parsed in one go."""
    head = b"%s\n%s\n" % (model.encode(), orjson.dumps(version))
    tail = b"\n%r" % float(now)
    dumps = orjson.dumps
    return [b"%s%s\n%d\n%r%s" % (head, dumps(p), c, float(t), tail) for p, c, t in zip(predictions, codes, times)]


def decode(values: Sequence[bytes]) -> list[tuple[Any, ...]]:
    """Stored values to entries in Pending's field order: one split of all of them, each column parsed in
    one call (orjson or numpy), tuples built by zip; no Python frame per entry."""
    if not values:
        return []
    fields = b"\n".join(values).split(b"\n")
    names = {raw: raw.decode() for raw in set(fields[0::6])}
    versions = {raw: orjson.loads(raw) for raw in set(fields[1::6])}
    predictions = orjson.loads(b"[" + b",".join(fields[2::6]) + b"]")
    codes = np.array(fields[3::6]).astype(np.int64).tolist()
    at = np.array(fields[4::6]).astype(np.float64).tolist()
    stored = np.array(fields[5::6]).astype(np.float64).tolist()
    return list(zip(map(names.__getitem__, fields[0::6]), map(versions.__getitem__, fields[1::6]),
                    predictions, codes, at, stored))


class RedisLabelStore:
    """The pending-prediction store in Redis; thread-safe; local counters are this replica's share."""

    snapshot = False  # lives in Redis: exporter/state/snapshot.py must not save or restore it
    backend = "redis"

    def __init__(self, url: str, max_entries: int, ttl: float, models: Sequence[str] = (), key_prefix: str = "mlmon:",
                 timeout: float = 0.25, retry_interval: float = 2.0, client: Any = None,
                 clock: Any = time.time) -> None:
        try:
            import redis
        except ImportError as error:  # the optional extra: pip install 'mlmon[redis]'
            raise RuntimeError("exporter.label_store.backend redis needs the redis package: "
                               "pip install 'mlmon[redis]'") from error
        self.errors = (redis.RedisError, OSError)
        self.max_entries = max_entries
        self.ttl = ttl
        self.models = tuple(models)
        self.share = max(1, max_entries // len(models)) if models else max_entries
        self.prefix = key_prefix
        self.retry_interval = retry_interval
        self.url = url
        self.redis = client or redis.Redis.from_url(
            url, socket_timeout=timeout, socket_connect_timeout=timeout, health_check_interval=30,
            retry_on_timeout=False,
        )
        self.put_script = self.redis.register_script(PUT)
        self.take_script = self.redis.register_script(TAKE)
        self.sweep_script = self.redis.register_script(SWEEP)
        self.lock = threading.Lock()  # guards the local counters below, never held across a Redis call
        self.evicted: Counter[tuple[str, str]] = Counter()
        self.duplicate_predictions: Counter[str] = Counter()
        self.outcomes: Counter[tuple[str, str]] = Counter()
        self.failures = 0
        self.down_until = 0.0
        self.last_pending: dict[str, int] = {m: 0 for m in self.models}
        self.clock = clock  # the state store's clock: scrape-time sweeps use the same time as puts

    # ---- reaching Redis ------------------------------------------------------------------------
    def _call(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """One Redis call, or StoreUnavailable at once while a recent failure's retry interval runs."""
        if time.monotonic() < self.down_until:
            raise StoreUnavailable(f"redis at {self.url} unavailable; retrying in <= {self.retry_interval:g} s")
        try:
            return fn(*args, **kwargs)
        except self.errors as error:
            with self.lock:
                self.failures += 1
                first = self.down_until == 0.0 or time.monotonic() - self.down_until > self.retry_interval
                self.down_until = time.monotonic() + self.retry_interval
            if first:
                log.error("label store: redis at %s unavailable (%s: %s); predictions and labels are counted as "
                          "unavailable, retrying every %g s", self.url, type(error).__name__, error,
                          self.retry_interval)
            raise StoreUnavailable(str(error)) from error

    @property
    def available(self) -> bool:
        return time.monotonic() >= self.down_until

    # ---- the interface of LabelStore -----------------------------------------------------------
    def put(self, model: str, version: str, ids: Sequence[str], predictions: Sequence[Any],
            segment_codes: Sequence[int], predicted_at: Sequence[float], now: float) -> int:
        """Store predictions by id (a Lua script per 10k ids); dropped and counted while Redis is down."""
        ttl = max(1, int(self.ttl))
        duplicates = expired = evicted = 0
        for start in range(0, len(ids), CHUNK):
            end = start + CHUNK
            args: list[Any] = [self.prefix, model, now, ttl, self.share]
            payloads = encode(model, version, predictions[start:end], segment_codes[start:end],
                              predicted_at[start:end], now)
            args += [item for pair in zip(ids[start:end], payloads) for item in pair]
            try:
                dup, exp, evi = self._call(self.put_script, args=args)
            except StoreUnavailable:
                with self.lock:
                    self.evicted[(model, "unavailable")] += (len(args) - 5) // 2
                continue
            duplicates, expired, evicted = duplicates + dup, expired + exp, evicted + evi
        with self.lock:
            self.duplicate_predictions[model] += duplicates
            if expired:
                self.evicted[(model, "expired")] += expired
            if evicted:
                self.evicted[(model, "capacity")] += evicted
        return duplicates

    def peek_many(self, keys: Sequence[str], now: float) -> list[Any]:
        """Per key: the pending entry, the model of an id already joined, or None; raises StoreUnavailable."""
        if not keys:
            return []
        prefix = self.prefix
        pipe = self.redis.pipeline(transaction=False)
        for start in range(0, len(keys), CHUNK):
            pipe.mget([f"{prefix}p:{key}" for key in keys[start:start + CHUNK]])
        values = [v for chunk in self._call(pipe.execute) for v in chunk]
        return self._resolve(keys, values)

    def take_many(self, keys: Sequence[str], now: float, peeked: Sequence[Any] | None = None) -> list[Any]:
        """Remove the pending entries of keys atomically (a concurrent replica's take gets `duplicate`).

        With `peeked` (the entries peek_many gave for these keys) the script answers 1 per taken id instead
        of the stored value, and the peeked entry is returned: half the bytes, nothing decoded twice."""
        if not keys:
            return []
        ttl = max(1, int(self.ttl))
        brief = "1" if peeked is not None else "0"
        values: list[Any] = []
        for start in range(0, len(keys), CHUNK):
            values += self._call(self.take_script, args=[self.prefix, brief, ttl, *keys[start:start + CHUNK]])
        if peeked is None:
            return self._resolve(keys, values)
        if all(values):
            return list(peeked)
        out: list[Any] = [entry if taken else None for entry, taken in zip(peeked, values)]
        misses = [i for i, taken in enumerate(values) if not taken]
        joined = self._call(self.redis.mget, [f"{self.prefix}j:{keys[i]}" for i in misses])
        for i, model in zip(misses, joined):
            out[i] = model.decode() if model else None
        return out

    def _resolve(self, keys: Sequence[str], values: list[Any]) -> list[Any]:
        hits = [i for i, value in enumerate(values) if value]
        out: list[Any] = [None] * len(keys)
        for i, entry in zip(hits, decode([values[i] for i in hits])):
            out[i] = entry
        misses = [i for i, value in enumerate(values) if not value]
        if misses:
            joined = self._call(self.redis.mget, [f"{self.prefix}j:{keys[i]}" for i in misses])
            for i, model in zip(misses, joined):
                out[i] = model.decode() if model else None
        return out

    def sweep(self, now: float) -> None:
        """Remove and count ids older than the TTL (put does this per model; scrapes do it for all)."""
        models = self.models
        if not models:
            return
        removed = self._call(self.sweep_script, args=[self.prefix, now - self.ttl, *models])
        with self.lock:
            for model, n in zip(models, removed):
                if n:
                    self.evicted[(model, "expired")] += n

    def peek(self, key: str, now: float) -> Any:
        entry = self.peek_many([key], now)[0]
        return Pending._make(entry) if isinstance(entry, tuple) else ("duplicate" if entry else "unknown_id")

    def take(self, key: str, now: float) -> Any:
        entry = self.take_many([key], now)[0]
        return Pending._make(entry) if isinstance(entry, tuple) else ("duplicate" if entry else "unknown_id")

    def joined_model(self, key: str) -> str | None:
        try:
            model = self._call(self.redis.get, f"{self.prefix}j:{key}")
        except StoreUnavailable:
            return None
        return model.decode() if model else None

    def count(self, model: str, outcome: str, n: int = 1) -> None:
        with self.lock:
            self.outcomes[(model, outcome)] += n

    def drop_model_locked(self, model: str, reason: str) -> int:
        """Nothing to drop: the shared store outlives this process (snapshots never restore it)."""
        return 0

    def pending_counts(self) -> dict[str, int]:
        """Pending ids per model (ZCARD of each index, after a sweep); the last known numbers while Redis is down."""
        try:
            self.sweep(self.clock())
            pipe = self.redis.pipeline(transaction=False)
            for model in self.models:
                pipe.zcard(f"{self.prefix}i:{model}")
            cards = self._call(pipe.execute)
        except StoreUnavailable:
            return dict(self.last_pending)
        self.last_pending = dict(zip(self.models, cards))
        return dict(self.last_pending)

    def __len__(self) -> int:
        return sum(self.pending_counts().values())

    @property
    def pending_by_model(self) -> Counter[str]:
        return Counter(self.pending_counts())

    def counts(self) -> tuple[dict[str, int], dict[tuple[str, str], int], dict[str, int]]:
        """(pending per model, evictions per (model, reason), duplicate predictions per model)."""
        pending = self.pending_counts()
        with self.lock:
            return pending, dict(self.evicted), dict(self.duplicate_predictions)


def build_label_store(config: Any, models: Sequence[str], clock: Any = time.time) -> LabelStore | RedisLabelStore:
    """The store `exporter.label_store` names: memory (default) or redis."""
    limits = config.exporter
    chosen = limits.label_store
    if chosen.backend == "redis":
        return RedisLabelStore(chosen.url, limits.max_pending_predictions, limits.label_ttl, models,
                               chosen.key_prefix, chosen.timeout, chosen.retry_interval, clock=clock)
    return LabelStore(limits.max_pending_predictions, limits.label_ttl, models)
