"""The dedupe record and the rate limits of `mlmon act` in Redis, shared by every act replica.

With one record per process, two act replicas behind one Service would each run an alert group
that Alertmanager delivers to both (an HA pair delivers from each peer) and each spend its own
rate limit. Here every replica claims keys and spends budget in one Redis, each step one Lua
script (atomic on the server), so a group runs once and `rate_limit.runs` holds for the fleet.

Keys, under `alerting.act.redis.key_prefix` (default `mlmon:`):

* `act:k`           a sorted set of every remembered key, scored by when it was last claimed. A
                    member is the 40-hex id of its group followed by the key, so the script that
                    evicts the oldest beyond `dedupe_entries` finds the group set to remove it from;
* `act:g:<group>`   the set of one (action, alert group)'s members: what a failed run forgets;
* `act:r:<action>`  a sorted set of the action's run tokens scored by start time: the sliding window;
* `act:runs`        a list of the last `alerting.act.records` run records (JSON), newest first, that
                    every replica writes, so `GET /actions` on any replica lists the fleet's runs.

Times come from the Redis server (TIME), so replicas with skewed clocks share one window. When
Redis cannot be reached, a call raises SharedStateUnavailable and the webhook is answered 503:
Alertmanager delivers it again later, so nothing runs twice and nothing is lost.
"""

from __future__ import annotations

import hashlib
import logging
import uuid
from typing import Any, Callable

import orjson

from exporter.actions.records import RunLog, RunRecord, pick
from exporter.config.actions import ActRedis

log = logging.getLogger("mlmon.act")

GROUP_ID = 40  # hex characters of a group's id (sha1)

# KEYS: index, group set. ARGV: capacity, prefix, then members. Returns {seen (0/1), evicted}.
CLAIM = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local seen = 0
for i = 3, #ARGV do
  if redis.call('ZSCORE', KEYS[1], ARGV[i]) then seen = 1 end
  redis.call('ZADD', KEYS[1], now, ARGV[i])
  redis.call('SADD', KEYS[2], ARGV[i])
end
local excess = redis.call('ZCARD', KEYS[1]) - tonumber(ARGV[1])
local evicted = 0
if excess > 0 then
  local gone = redis.call('ZPOPMIN', KEYS[1], excess)
  for j = 1, #gone, 2 do
    redis.call('SREM', ARGV[2] .. 'act:g:' .. string.sub(gone[j], 1, %(group_id)d), gone[j])
    evicted = evicted + 1
  end
end
return {seen, evicted}
""" % {"group_id": GROUP_ID}

# KEYS: index, group set. ARGV: members. Forgets them.
RELEASE = """
for i = 1, #ARGV do
  redis.call('ZREM', KEYS[1], ARGV[i])
  redis.call('SREM', KEYS[2], ARGV[i])
end
return #ARGV
"""

# KEYS: index, group set. Forgets the whole group (also members that joined while its run tried).
RELEASE_GROUP = """
local members = redis.call('SMEMBERS', KEYS[2])
for i = 1, #members do redis.call('ZREM', KEYS[1], members[i]) end
redis.call('DEL', KEYS[2])
return #members
"""

# KEYS: the action's window. ARGV: runs, period (seconds), token. Returns 1 when the run may start.
TAKE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1e6
local period = tonumber(ARGV[2])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - period)
if redis.call('ZCARD', KEYS[1]) >= tonumber(ARGV[1]) then return 0 end
redis.call('ZADD', KEYS[1], now, ARGV[3])
redis.call('PEXPIRE', KEYS[1], math.ceil(period * 1000) + 1000)
return 1
"""


class SharedStateUnavailable(RuntimeError):
    """Redis did not answer (down, unreachable, slower than alerting.act.redis.timeout)."""


def group_id(prefix: str) -> str:
    """The id of an (action, alert group) from its keys' prefix (matching.Selection.group_prefix)."""
    return hashlib.sha1(prefix.encode()).hexdigest()


def key_group_id(key: str) -> str:
    """The group id of a key: a key is `<action>\\x1f<group>\\x1f<startsAt>\\x1f<status>`."""
    return group_id(key.rsplit("\x1f", 2)[0] + "\x1f")


def connect(settings: ActRedis) -> Any:
    try:
        import redis
    except ImportError as error:  # the optional extra: pip install 'mlmon[redis]'
        raise RuntimeError("alerting.act.redis needs the redis package: pip install 'mlmon[redis]'") from error
    return redis.Redis.from_url(settings.url, socket_timeout=settings.timeout,
                                socket_connect_timeout=settings.timeout, retry_on_timeout=False)


class RedisCalls:
    """One client and its scripts; every Redis error becomes SharedStateUnavailable."""

    def __init__(self, settings: ActRedis, client: Any = None) -> None:
        self.url = settings.url
        self.prefix = settings.key_prefix
        self.redis = client or connect(settings)  # says which package to install when redis is missing
        import redis

        self.errors = (redis.RedisError, OSError)
        self.scripts = {name: self.redis.register_script(text)
                        for name, text in (("claim", CLAIM), ("release", RELEASE),
                                           ("release_group", RELEASE_GROUP), ("take", TAKE))}

    def __call__(self, script: str, keys: list[str], args: list[Any]) -> Any:
        try:
            return self.scripts[script](keys=keys, args=args)
        except self.errors as error:
            log.error("act: redis at %s unavailable (%s: %s)", self.url, type(error).__name__, error)
            raise SharedStateUnavailable(f"redis at {self.url}: {error}") from error

    def zcard(self, key: str) -> int:
        try:
            return int(self.redis.zcard(key))
        except self.errors:
            return 0  # the gauge only: a scrape must not fail on it


class RedisDedupeRecord:
    """DedupeRecord's interface (claim, release, release_group, len) on the shared keys."""

    def __init__(self, capacity: int, calls: RedisCalls, on_evict: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self.calls = calls
        self.on_evict = on_evict
        self.index = f"{calls.prefix}act:k"

    def _group(self, gid: str) -> str:
        return f"{self.calls.prefix}act:g:{gid}"

    def _members(self, keys: list[str]) -> tuple[str, list[str]]:
        gids = {key_group_id(k) for k in keys}
        if len(gids) != 1:
            raise ValueError("the keys of one claim belong to one action's group")
        (gid,) = gids
        return gid, [gid + k for k in keys]

    def claim(self, keys: list[str]) -> bool:
        """True when no key was seen before by any replica (then this one runs the action)."""
        gid, members = self._members(keys)
        seen, evicted = self.calls("claim", [self.index, self._group(gid)], [self.capacity, self.calls.prefix, *members])
        for _ in range(int(evicted)):
            if self.on_evict is not None:
                self.on_evict()
        return not int(seen)

    def release(self, keys: list[str]) -> None:
        gid, members = self._members(keys)
        self.calls("release", [self.index, self._group(gid)], members)

    def release_group(self, prefix: str) -> None:
        self.calls("release_group", [self.index, self._group(group_id(prefix))], [])

    def __len__(self) -> int:
        return self.calls.zcard(self.index)


class RedisRateLimit:
    """RateLimit's interface (take, give_back) on one window every replica shares."""

    def __init__(self, action: str, runs: int, period_seconds: float, calls: RedisCalls) -> None:
        self.runs = runs
        self.period = period_seconds
        self.calls = calls
        self.key = f"{calls.prefix}act:r:{action}"

    def take(self) -> str | None:
        """A token for one run from the fleet's budget; None when the period's runs are used up."""
        token = uuid.uuid4().hex
        return token if int(self.calls("take", [self.key], [self.runs, self.period, token])) else None

    def give_back(self, token: str) -> None:
        try:
            self.calls.redis.zrem(self.key, token)
        except self.calls.errors as error:  # the run stays counted: the budget errs towards fewer runs
            log.error("act: could not give a run back to %s's rate limit: %s", self.key, error)


class RedisRunLog:
    """RunLog's interface (add, listing) on the list every replica writes.

    Records are history, not a decision: when Redis does not answer, a run is not held up. Its
    record stays in this replica's own log (listed while Redis is away) and is counted as unshared.
    """

    def __init__(self, capacity: int, calls: RedisCalls, on_unshared: Callable[[], None] | None = None) -> None:
        self.capacity = capacity
        self.calls = calls
        self.on_unshared = on_unshared
        self.local = RunLog(capacity)
        self.key = f"{calls.prefix}act:runs"

    def add(self, record: RunRecord) -> None:
        self.local.add(record)
        try:
            pipe = self.calls.redis.pipeline(transaction=True)
            pipe.lpush(self.key, orjson.dumps(record.as_json()))
            pipe.ltrim(self.key, 0, self.capacity - 1)
            pipe.execute()
        except self.calls.errors as error:
            log.error("act: could not share the record of %s's run (%s); GET /actions on other replicas misses it",
                      record.action, error)
            if self.on_unshared is not None:
                self.on_unshared()

    def listing(self, action: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """The fleet's runs, newest first; this replica's, with the reason, when Redis does not answer."""
        try:
            raw = self.calls.redis.lrange(self.key, 0, self.capacity - 1)
        except self.calls.errors as error:
            return {**self.local.listing(action, limit), "error": f"redis at {self.calls.url}: {error}"}
        return {"scope": "fleet", "runs": pick(map(orjson.loads, raw), action, limit)}
