"""At most N runs of an action in any period: a sliding window of the last N run times.

This one is the process's own; actions/shared.py keeps the same window in Redis for act replicas.
"""

from __future__ import annotations

import threading
import time
from collections import deque


class RateLimit:
    def __init__(self, runs: int, period_seconds: float) -> None:
        self.runs = runs
        self.period = period_seconds
        self.times: deque[float] = deque()
        self.lock = threading.Lock()

    def take(self, now: float | None = None) -> float | None:
        """A token (the run's time) from the budget; None (nothing taken) when the period's runs are used up."""
        now = time.monotonic() if now is None else now
        with self.lock:
            while self.times and now - self.times[0] >= self.period:
                self.times.popleft()
            if len(self.times) >= self.runs:
                return None
            self.times.append(now)
            return now

    def give_back(self, token: float) -> None:
        """A run that never started (no room in the queue) does not use the budget."""
        with self.lock:
            try:
                self.times.remove(token)
            except ValueError:
                pass  # already out of the window
