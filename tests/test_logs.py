"""The log limiter: a flood of one kind of line becomes a few lines a minute and a count; tracebacks are sampled."""

from __future__ import annotations

import io
import logging
import sys

from exporter.logs import LogLimiter, limit_log_lines


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def logger_with_limiter(**options) -> tuple[logging.Logger, io.StringIO, Clock]:
    """A private logger writing to a string through a handler with a LogLimiter."""
    clock = Clock()
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(logging.Formatter("%(levelname)s %(message)s"))
    handler.addFilter(LogLimiter(clock=clock, **options))
    logger = logging.getLogger(f"test.logs.{id(out)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, out, clock


def lines(out: io.StringIO) -> list[str]:
    return out.getvalue().splitlines()


def test_at_most_n_lines_of_a_kind_pass_per_interval() -> None:
    log, out, _ = logger_with_limiter(lines=3, interval=60)
    for i in range(1000):
        log.info("model %s: first record of version %s", "fraud", f"v{i}")
    assert lines(out) == [f"INFO model fraud: first record of version v{i}" for i in range(3)]


def test_the_next_line_after_the_interval_says_how_many_were_suppressed() -> None:
    log, out, clock = logger_with_limiter(lines=2, interval=60)
    for i in range(10):
        log.info("new version %s", i)
    clock.now = 60.0
    log.info("new version %s", 10)
    log.info("new version %s", 11)
    assert lines(out)[2:] == ["INFO new version 10 (8 similar lines suppressed)", "INFO new version 11"]


def test_kinds_are_counted_apart_by_logger_level_and_template() -> None:
    log, out, _ = logger_with_limiter(lines=1, interval=60)
    for _ in range(5):
        log.info("first %s", 1)
        log.info("second %s", 2)
        log.warning("first %s", 1)
    assert lines(out) == ["INFO first 1", "INFO second 2", "WARNING first 1"]


def raise_and_log(log: logging.Logger) -> None:
    try:
        raise ValueError("client text that should not reach the log")
    except ValueError:
        log.exception("unexpected error")


def test_only_the_first_traceback_of_a_kind_per_interval_is_written() -> None:
    log, out, clock = logger_with_limiter(lines=5, interval=60, tracebacks=1)
    for _ in range(3):
        raise_and_log(log)
    text = out.getvalue()
    assert text.count("Traceback") == 1
    assert text.count("ERROR unexpected error (ValueError; traceback sampled out)") == 2
    assert not [line for line in text.splitlines() if "sampled out" in line and "client text" in line]
    clock.now = 61.0
    raise_and_log(log)
    assert out.getvalue().count("Traceback") == 2


def test_installing_twice_adds_one_limiter_per_handler() -> None:
    handler = logging.StreamHandler(sys.stderr)
    limit_log_lines([handler])
    limit_log_lines([handler])
    assert sum(isinstance(f, LogLimiter) for f in handler.filters) == 1


def test_the_number_of_kinds_remembered_is_bounded() -> None:
    limiter = LogLimiter(max_kinds=10)
    for i in range(100):
        limiter.filter(logging.LogRecord("x", logging.INFO, __file__, 1, f"built per event {i}", None, None))
    assert len(limiter.windows) == 10


def test_a_burst_of_500s_writes_one_traceback(start_exporter, toy_config, caplog, monkeypatch) -> None:
    live = start_exporter(toy_config)
    limit_log_lines([caplog.handler])

    def fail(*args, **kwargs):
        raise RuntimeError("a bug")

    monkeypatch.setattr(live.running.exporter, "ingest_predictions", fail)
    answers = [live.post([]).status_code for _ in range(20)]
    assert answers == [500] * 20
    errors = [r for r in caplog.records if r.name == "mlmon.ingest"]
    assert len(errors) == 5  # lines of a kind per minute
    assert sum(r.exc_info is not None for r in errors) == 1
    assert "traceback sampled out" in errors[1].getMessage()
