"""The client's own counters: what became of every record and label it was given.

Every record handed to ``log()``/``log_batch()`` ends in exactly one of ``sent``, ``rejected``,
``invalid``, ``unconfirmed`` or one of the ``dropped_*`` counters, or is still ``queued``; the
same holds for labels with the ``labels_*`` counters. That identity is what the tests check
against the exporter's own counts.
"""

from __future__ import annotations

import threading
from typing import NamedTuple


class Stats(NamedTuple):
    """A snapshot of the counters (``Client.stats()``); counts are records unless named otherwise."""

    queued: int = 0               # waiting in the client, or in a request not answered yet
    sent: int = 0                 # accepted by the exporter
    rejected: int = 0             # refused by the exporter for their data (a 4xx, or listed as rejected): never retried
    invalid: int = 0              # arguments the client could not read (counted, never raised)
    unconfirmed: int = 0          # the request went out but no answer came (timeout, reset, 5xx): may have counted, never re-sent
    dropped_queue_full: int = 0   # the bounded queue was full when they were logged
    dropped_unreachable: int = 0  # the sidecar stayed unreachable for `retry_for` seconds
    dropped_closed: int = 0       # logged after close(), or still queued when close()'s deadline passed
    retried: int = 0              # requests sent again after a safe-to-retry failure (requests, not records)
    requests: int = 0             # HTTP requests made, retries included
    labels_joined: int = 0        # labels the exporter joined to a stored prediction
    labels_unmatched: int = 0     # labels whose id was unknown to the exporter, or already labelled
    labels_rejected: int = 0      # labels the exporter found invalid
    labels_dropped: int = 0       # labels lost to a full queue, an unreachable sidecar or close()
    labels_unconfirmed: int = 0   # label requests that went out but got no answer

    @property
    def dropped(self) -> int:
        """Records that never reached the exporter, whatever the reason."""
        return self.dropped_queue_full + self.dropped_unreachable + self.dropped_closed


class Counters:
    """Thread-safe counters. Only the sender thread and the drop paths touch them, never the fast path."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._values = dict.fromkeys(Stats._fields, 0)

    def add(self, name: str, n: int = 1) -> None:
        if n:
            with self._lock:
                self._values[name] += n

    def snapshot(self, queued: int) -> Stats:
        with self._lock:
            values = dict(self._values)
        values["queued"] = queued
        return Stats(**values)
