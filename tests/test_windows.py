"""WindowRing: a window of W seconds kept as S slots forgets old traffic slot by slot."""

from __future__ import annotations

import numpy as np

from exporter.state.windows import WindowRing


def ring() -> WindowRing:
    """60 s in 6 slots of 10 s, two bins wide."""
    return WindowRing(seconds=60, slots=6, width=2)


def test_sums_every_slot_inside_the_window() -> None:
    window = ring()
    window.add(np.array([1, 0]), samples=1, now=0.0)
    window.add(np.array([0, 2]), samples=2, now=15.0)
    window.add(np.array([3, 3]), samples=6, now=59.9)
    counts, samples = window.totals(now=59.9)
    assert counts.tolist() == [4, 5] and samples == 9


def test_forgets_a_slot_once_it_is_a_whole_window_old() -> None:
    window = ring()
    window.add(np.array([1, 0]), samples=1, now=0.0)    # slot [0, 10)
    window.add(np.array([0, 2]), samples=2, now=15.0)   # slot [10, 20)
    assert window.totals(now=59.9)[1] == 3
    assert window.totals(now=60.0)[1] == 2               # [0, 10) left when [60, 70) began
    assert window.totals(now=70.0)[1] == 0
    assert window.totals(now=70.0)[0].tolist() == [0, 0]


def test_reuses_a_slot_without_carrying_its_old_counts() -> None:
    window = ring()
    window.add(np.array([5, 5]), samples=10, now=5.0)
    window.add(np.array([1, 0]), samples=1, now=65.0)   # same row, next lap of the ring
    counts, samples = window.totals(now=65.0)
    assert counts.tolist() == [1, 0] and samples == 1


def test_after_a_long_silence_the_window_is_empty() -> None:
    window = ring()
    for t in range(0, 60, 7):
        window.add(np.array([1, 1]), samples=1, now=float(t))
    assert window.totals(now=10_000.0)[1] == 0


def test_survives_a_clock_step_backwards_without_losing_or_double_counting() -> None:
    window = ring()
    window.add(np.array([1, 0]), samples=1, now=100.0)  # epoch 10, row 4
    window.add(np.array([0, 1]), samples=1, now=45.0)   # clock stepped back into row 4's previous lap
    counts, samples = window.totals(now=45.0)
    assert counts.tolist() == [1, 1] and samples == 2    # counted in the newest slot, not lost
    # Once time passes the newest slot by a whole window, everything expires as usual.
    assert window.totals(now=170.0)[1] == 0


def test_a_clock_step_backwards_into_an_unused_slot_starts_counting_there() -> None:
    window = ring()
    window.add(np.array([1, 0]), samples=1, now=100.0)  # row 4
    window.add(np.array([0, 1]), samples=1, now=75.0)   # row 1, never written
    assert window.totals(now=100.0)[1] == 2
    window.add(np.array([1, 1]), samples=1, now=101.0)
    assert window.totals(now=101.0)[1] == 3


def test_memory_does_not_grow_with_traffic() -> None:
    window = ring()
    before = window.counts.nbytes + window.samples.nbytes
    for t in np.linspace(0, 10_000, 2_000):
        window.add(np.array([1, 1]), samples=1, now=float(t))
    assert window.counts.shape == (6, 2)
    assert window.counts.nbytes + window.samples.nbytes == before
