"""Who triggered what: the last runs, newest first, for `GET /actions` (bounded).

This replica's runs here; with alerting.act.redis every replica's, in one list (shared.RedisRunLog).
"""

from __future__ import annotations

import itertools
import threading
from collections import deque
from dataclasses import asdict, dataclass, field
from typing import Any, Iterable


@dataclass
class RunRecord:
    action: str
    kind: str
    result: str  # success | failed | dry_run | rate_limited | duplicate | resolved_ignored
    group_key: str
    receiver: str
    external_url: str
    remote: str  # who sent the webhook (address of the Alertmanager)
    alertname: str
    labels: dict[str, str]
    alert_count: int
    starts_at: str
    received_at: str  # RFC 3339, when the webhook arrived
    attempts: int = 0
    call_latency_seconds: float | None = None  # webhook arrival to the first call
    duration_seconds: float | None = None  # webhook arrival to the result
    target: str = ""  # what was called: a URL or the program
    request: Any = None  # what was (or, in a dry run, would be) sent; secrets never
    error: str = ""
    output: str = ""  # a command's last output lines
    replica: str = ""  # the host (in Kubernetes, the pod) of the act process that took the webhook

    def as_json(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class RunLog:
    capacity: int
    items: deque[RunRecord] = field(default_factory=deque)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, record: RunRecord) -> None:
        with self.lock:
            self.items.appendleft(record)
            while len(self.items) > self.capacity:
                self.items.pop()

    def listing(self, action: str | None = None, limit: int | None = None) -> dict[str, Any]:
        """The body of `GET /actions` besides dry_run: the runs and whose they are."""
        with self.lock:
            runs = [r.as_json() for r in self.items]
        return {"scope": "replica", "runs": pick(runs, action, limit)}


def pick(runs: Iterable[dict[str, Any]], action: str | None, limit: int | None) -> list[dict[str, Any]]:
    """The runs (newest first) of `action`, or of every action, at most `limit` of them."""
    return list(itertools.islice((r for r in runs if action is None or r["action"] == action), limit))
