"""Idempotent retries: the answer of a batch sent with an ``Idempotency-Key`` header, remembered.

A client that lost the answer to a request (a timeout, a reset) cannot know whether it was
counted. Sent again with the same key, the batch is not applied a second time: the exporter
answers the original counts. Keys are the client's (a UUID per batch is the usual choice);
answers are kept for the last ``size`` keys, the oldest forgotten first (and counted):

    >>> answers = AnswerCache(size=1)
    >>> answers.begin("a") is None                     # new: the caller ingests, then finishes
    True
    >>> answers.finish("a", {"accepted": 3}, 200)
    >>> answers.begin("a")                             # a retry: the first answer, nothing ingested
    ({'accepted': 3}, 200)
    >>> answers.finish("b", {"accepted": 1}, 200) if answers.begin("b") is None else None
    >>> answers.begin("a") is None, answers.counts["evicted"]   # "a" was forgotten for "b"
    (True, 1)

Only answers that changed state (200 and 422) are kept: a 400 or 413 changed nothing, so its
retry is simply decoded again. A second request with a key still in flight gets a 409.
"""

from __future__ import annotations

import re
import threading
from collections import Counter, OrderedDict
from typing import Any

KEY_PATTERN = re.compile(r"[\x21-\x7e]{1,200}")  # visible ASCII, as HTTP header values are safely
OUTCOMES = ("stored", "replayed", "evicted", "in_flight")
IN_FLIGHT = "in_flight"
Answer = tuple[dict[str, Any], int]


class AnswerCache:
    """Bounded by key count; an answer is a few counts and at most max_reported_rejections reasons."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.lock = threading.Lock()
        self.answers: OrderedDict[str, Answer] = OrderedDict()
        self.in_flight: set[str] = set()
        self.counts: Counter[str] = Counter({outcome: 0 for outcome in OUTCOMES})

    def begin(self, key: str) -> Answer | str | None:
        """The remembered answer of `key`, IN_FLIGHT while its first request runs, or None (go ahead)."""
        with self.lock:
            answer = self.answers.get(key)
            if answer is not None:
                self.counts["replayed"] += 1
                return answer
            if key in self.in_flight:
                self.counts["in_flight"] += 1
                return IN_FLIGHT
            self.in_flight.add(key)
            return None

    def finish(self, key: str, answer: dict[str, Any], status: int) -> None:
        with self.lock:
            self.in_flight.discard(key)
            if status not in (200, 422) or self.size == 0:
                return
            self.answers[key] = (answer, status)
            self.counts["stored"] += 1
            while len(self.answers) > self.size:
                self.answers.popitem(last=False)
                self.counts["evicted"] += 1

    def abandon(self, key: str) -> None:
        """The request failed before an answer: its retry must be ingested afresh."""
        with self.lock:
            self.in_flight.discard(key)
