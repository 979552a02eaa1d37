"""Shadow deployments: the champion's and a shadow version's predictions of one request, paired by id.

A model with a `shadow` version in `versions.variants` keeps each prediction of its champion arm
(versions whose variant is `default`) and of its shadow versions by record `id` until the other
arm's prediction of the same id arrives, bounded by count (`rollout.shadow_pending`) and age
(`rollout.shadow_ttl`), every way out counted. A pair adds to the shadow version's counters:

* pairs, agreements (binary: the same decision at `quality.decision_threshold`; categorical: the
  same class; regression predictions have no decision, so no agreements), and
* the sum of |shadow score - champion score| (numeric predictions),

so Prometheus can take agreement rate and mean |difference| over any window, summed over replicas.

    >>> pairs = ShadowPairs(size=2, ttl=60)
    >>> pairs.offer("default", "v1", ["a", "b"], [1.0, 0.25], now=0.0, numeric=True, threshold=0.5)
    >>> pairs.offer("shadow", "v2", ["a", "b"], [0.75, 0.75], now=1.0, numeric=True, threshold=0.5)
    >>> pairs.counts["v2"], len(pairs)          # [pairs, agreements, sum |difference|]
    ([2, 1, 0.75], 0)
"""

from __future__ import annotations

import math
import threading
from collections import Counter, OrderedDict
from typing import Any

# paired: a champion/shadow pair counted; duplicate: the same arm sent an id it already holds (or an
# id already paired) again; expired: no partner within the TTL; evicted: the oldest dropped for room.
OUTCOMES = ("paired", "duplicate", "expired", "evicted")


def _score(value: Any) -> float | None:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


class ShadowPairs:
    """One model's unpaired predictions by id: (arm, version, prediction, time), oldest first."""

    snapshot_skip = ("size", "ttl")  # limits from the running config win (exporter/state/snapshot.py)

    def __init__(self, size: int, ttl: float) -> None:
        self.size, self.ttl = size, ttl
        self.pending: OrderedDict[str, tuple[str, str, Any, float]] = OrderedDict()
        self.paired_ids: OrderedDict[str, float] = OrderedDict()  # recent pairs: a third copy is a duplicate
        self.counts: dict[str, list[float]] = {}  # shadow version -> [pairs, agreements, sum |difference|]
        self.outcomes: Counter[str] = Counter()
        self.lock = threading.Lock()

    def offer(self, arm: str, version: str, ids: list[Any], predictions: list[Any], now: float,
              numeric: bool, threshold: float | None) -> None:
        """Hold or pair the predictions of one batch; `arm` is "default" (champion) or "shadow"."""
        with self.lock:
            self._expire(now)
            for key, prediction in zip(ids, predictions):
                if key is None:
                    continue
                key = str(key)
                held = self.pending.get(key)
                if key in self.paired_ids or (held is not None and held[0] == arm):
                    self.outcomes["duplicate"] += 1
                elif held is None:
                    if len(self.pending) >= self.size:
                        self.pending.popitem(last=False)
                        self.outcomes["evicted"] += 1
                    self.pending[key] = (arm, version, prediction, now)
                else:
                    del self.pending[key]
                    champion, shadow = (held, (arm, version, prediction)) if arm == "shadow" else \
                        ((arm, version, prediction), held)
                    self._pair(shadow[1], champion[2], shadow[2], numeric, threshold)
                    self.paired_ids[key] = now
                    if len(self.paired_ids) > self.size:
                        self.paired_ids.popitem(last=False)

    def _pair(self, version: str, champion: Any, shadow: Any, numeric: bool, threshold: float | None) -> None:
        counts = self.counts.setdefault(version, [0, 0, 0.0])
        counts[0] += 1
        self.outcomes["paired"] += 1
        if not numeric:  # classes: agree when they are the same class
            counts[1] += int(champion is not None and str(champion) == str(shadow))
            return
        a, b = _score(champion), _score(shadow)
        if a is not None and b is not None:
            counts[2] += abs(b - a)
            if threshold is not None:
                counts[1] += int((a >= threshold) == (b >= threshold))

    def expire(self, now: float) -> None:
        with self.lock:
            self._expire(now)

    def _expire(self, now: float) -> None:
        while self.pending:
            key, (_, _, _, seen) = next(iter(self.pending.items()))
            if now - seen < self.ttl:
                break
            del self.pending[key]
            self.outcomes["expired"] += 1
        while self.paired_ids and now - next(iter(self.paired_ids.values())) >= self.ttl:
            self.paired_ids.popitem(last=False)

    def __len__(self) -> int:
        return len(self.pending)
