"""The signals `mlmon serve` and `mlmon act` stop (or reload) on, taken by the main thread whichever thread the
kernel hands them to.

Why not only sigwait() with the signals blocked before the servers start: that covers the threads
started afterwards, but numpy's OpenBLAS and scipy start threads at import, long before, with the
signals open. A SIGTERM that came while the main thread was not inside sigwait() (just after the
listeners answered, say) went to one of those threads and, under the default disposition, killed
the process: no drain, no final snapshot (seen in CI as exit -15 right after /healthz answered).

So every awaited signal gets a handler (no thread dies of it), and Python's wakeup fd carries the
signal number from whichever thread ran the handler to the main thread, which reads it. The
threads the servers start still inherit a mask blocking these signals, so their system calls are
never interrupted by them.
"""

from __future__ import annotations

import os
import signal
from collections.abc import Iterable


def _noted(signum: int, frame: object) -> None:
    """The handler: the wakeup fd already carries the signal to `SignalInbox.wait`."""


class SignalInbox:
    """Create in the main thread before starting any server thread; call `wait` from the main thread."""

    def __init__(self, signals: Iterable[signal.Signals]) -> None:
        self.signals = frozenset(signals)
        self.read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)  # the C handler must never block on a full pipe
        signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        for signum in self.signals:
            signal.signal(signum, _noted)
        # Threads started from here on inherit the block; the main thread lifts it in wait().
        signal.pthread_sigmask(signal.SIG_BLOCK, self.signals)

    def wait(self) -> signal.Signals:
        """The next awaited signal; any that came while the servers started is already in the pipe."""
        signal.pthread_sigmask(signal.SIG_UNBLOCK, self.signals)
        while True:
            (number,) = os.read(self.read_fd, 1)
            if number in self.signals:  # other handled signals (none today) write here too
                return signal.Signals(number)
