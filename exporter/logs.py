"""Log lines that cannot flood: at most N lines of a kind per interval, and sampled tracebacks.

A hostile or broken client can make the same event happen thousands of times a second (a new
model_version per record, a request that fails the same way): one log line each filled 46 MB of
log for 200,000 invented versions, and every 500 wrote a full traceback. The metrics count every
occurrence; the log only needs to say that it happens, and how often.

:class:`LogLimiter` is a logging filter installed on the handlers of the root logger (so it also
sees records of child loggers such as Flask's ``mlmon.ingest``). A *kind* of line is its logger,
level and unformatted message template, so "first record of version %s" is one kind whatever the
version. Per kind and interval it lets ``lines`` records through, drops the rest, and appends
"(K similar lines suppressed)" to the next line of that kind it lets through. Of the records that
carry a traceback, ``tracebacks`` per kind and interval keep it; the others keep only their line.

    >>> limiter = LogLimiter(lines=2, interval=60.0, clock=lambda: 0.0)
    >>> record = lambda: logging.LogRecord("mlmon", logging.INFO, __file__, 1, "new version %s", ("v",), None)
    >>> [limiter.filter(record()) for _ in range(4)]
    [True, True, False, False]
"""

from __future__ import annotations

import logging
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import Callable, Iterable

Kind = tuple[str, int, str]


@dataclass
class _Window:
    start: float
    passed: int = 0
    suppressed: int = 0
    tracebacks: int = 0


class LogLimiter(logging.Filter):
    """At most `lines` records of a kind per `interval` seconds, `tracebacks` of them with their traceback."""

    def __init__(
        self,
        lines: int = 5,
        interval: float = 60.0,
        tracebacks: int = 1,
        clock: Callable[[], float] = time.monotonic,
        max_kinds: int = 1000,
    ) -> None:
        super().__init__()
        self.lines = lines
        self.interval = interval
        self.tracebacks = tracebacks
        self.clock = clock
        self.max_kinds = max_kinds  # templates are few; the bound only guards against a message built per event
        self.windows: OrderedDict[Kind, _Window] = OrderedDict()
        self.lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        # Remembered on the record: a limiter on another handler may already have rewritten its msg.
        kind = record.__dict__.setdefault(
            "log_kind", (record.name, record.levelno, record.msg if isinstance(record.msg, str) else type(record.msg).__name__)
        )
        now = self.clock()
        with self.lock:
            window = self.windows.get(kind)
            carried = 0
            if window is None or now - window.start >= self.interval:
                carried = window.suppressed if window is not None else 0
                window = self.windows[kind] = _Window(now)
                self.windows.move_to_end(kind)
                while len(self.windows) > self.max_kinds:
                    self.windows.popitem(last=False)
            if window.passed >= self.lines:
                window.suppressed += 1
                return False
            window.passed += 1
            keep_traceback = window.tracebacks < self.tracebacks
            if record.exc_info and keep_traceback:
                window.tracebacks += 1
        notes = []
        if record.exc_info and not keep_traceback:
            exc_type = record.exc_info[0]
            # The type only: an exception's text may echo client input into the log.
            notes.append(f"{exc_type.__name__ if exc_type else 'error'}; traceback sampled out")
            record.exc_info, record.exc_text = None, None
        if carried:
            notes.append(f"{carried} similar lines suppressed")
        if notes:
            record.msg, record.args = f"{record.getMessage()} ({'; '.join(notes)})", None
        return True


def limit_log_lines(
    handlers: Iterable[logging.Handler] | None = None, lines: int = 5, interval: float = 60.0, tracebacks: int = 1
) -> LogLimiter:
    """Install one LogLimiter on `handlers` (default: the root logger's) that have none yet; returns it."""
    limiter = LogLimiter(lines, interval, tracebacks)
    for handler in logging.getLogger().handlers if handlers is None else handlers:
        if not any(isinstance(f, LogLimiter) for f in handler.filters):  # main() may run twice in one process
            handler.addFilter(limiter)
    return limiter
