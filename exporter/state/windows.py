"""Time-sliced rings: a window of W seconds kept as S slots, so old counts fall out slot by slot.

    >>> ring = WindowRing(seconds=60, slots=6, width=2)
    >>> ring.add(np.array([1, 0]), samples=1, now=0.0)
    >>> ring.add(np.array([0, 2]), samples=2, now=15.0)
    >>> ring.totals(now=15.0)[0].tolist(), ring.totals(now=15.0)[1]
    ([1, 2], 3)
    >>> ring.totals(now=65.0)[0].tolist()  # the slot written at t=0 has left the window
    [0, 2]

A window covers the current (partial) slot and the S-1 slots before it, i.e. between
(S-1)/S and all of W seconds. Memory is O(S x width), whatever the traffic.
"""

from __future__ import annotations

import numpy as np


class WindowRing:
    def __init__(self, seconds: int, slots: int, width: int) -> None:
        self.seconds = seconds
        self.slots = slots
        self.slot_seconds = seconds / slots
        self.counts = np.zeros((slots, width), dtype=np.int64)
        self.samples = np.zeros(slots, dtype=np.int64)
        # The slot epoch (floor(time / slot_seconds)) each row holds; -1 means never written.
        self.epochs = np.full(slots, -1, dtype=np.int64)

    def _epoch(self, now: float) -> int:
        return int(now // self.slot_seconds)

    def add(self, counts: np.ndarray, samples: int, now: float) -> None:
        """Add a batch's bin counts to the slot of `now`, clearing it first if it holds an old epoch."""
        epoch = self._epoch(now)
        row = epoch % self.slots
        if self.epochs[row] != epoch:
            if self.epochs[row] > epoch:  # a clock step backwards: keep counting in the newest slot
                return self._add_row(int(np.argmax(self.epochs)), counts, samples)
            self.counts[row] = 0
            self.samples[row] = 0
            self.epochs[row] = epoch
        self._add_row(row, counts, samples)

    def _add_row(self, row: int, counts: np.ndarray, samples: int) -> None:
        self.counts[row] += counts
        self.samples[row] += samples

    def live_rows(self, now: float) -> np.ndarray:
        return self.epochs > self._epoch(now) - self.slots

    def totals(self, now: float) -> tuple[np.ndarray, int]:
        """Summed bin counts and sample count over the live slots."""
        live = self.live_rows(now)
        return self.counts[live].sum(axis=0), int(self.samples[live].sum())
