"""Limits checked on the raw body, before it is parsed: nesting depth, decoded size, NDJSON lines.

Parsing is where a small body becomes a large heap: a 3-byte ``[],`` becomes a 64-byte list, and
a parser that recurses dies on deep nesting. So the body's structure is measured first, in C
(``bytes.translate`` keeps only the structural characters, a few percent of the body), and a body
that would cost too much is refused with the name of the limit it exceeds:

    >>> structure(b'[{"a": [1, 2]}, {"a": []}]').depth
    3
    >>> structure(b'{"x": "[[["}').depth  # brackets inside strings are counted too (conservative)
    4

Every check here is O(body) in C or numpy; nothing loops in Python per value.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

# Everything but the structural characters, for bytes.translate(None, delete=...).
_NOT_STRUCTURE = bytes(range(256)).translate(None, b'[]{},:"')
_NOT_BRACKETS = bytes(range(256)).translate(None, b"[]{}")
_NOT_QUOTES = bytes(range(256)).translate(None, b'"')
_DEPTH_STEP = np.zeros(256, dtype=np.int8)
_DEPTH_STEP[list(b"[{")] = 1
_DEPTH_STEP[list(b"]}")] = -1
_CHUNK = 1 << 20  # depth is summed chunk by chunk so its scratch memory stays ~5 MiB whatever the body

# What parsed JSON costs in CPython objects, per structural character, measured with tracemalloc on
# the worst shapes (tests/test_limits.py holds the estimate above the real cost): a small dict is
# ~184 bytes with its first key, an empty list ~56; a list item is a pointer plus a float, a dict
# item a hash-table slot plus its value; a string ~50 bytes plus its text (the text is len(body)).
BYTES_PER_CONTAINER = 128
BYTES_PER_ITEM = 48
BYTES_PER_QUOTE = 20


class LimitExceeded(Exception):
    """A request over a configured limit: answered `status` with the limit's name, and counted."""

    def __init__(self, limit: str, setting: str, detail: str, status: int = 413) -> None:
        self.limit = limit
        self.setting = setting
        self.status = status
        super().__init__(f"{detail}: more than exporter.{setting} allows")

    def to_json(self) -> dict[str, str]:
        return {"error": str(self), "limit": self.limit}


class TooManyRecords(LimitExceeded):
    def __init__(self, count: int) -> None:
        self.count = count
        super().__init__("records_per_request", "max_records_per_request", f"{count} records")


class Structure(NamedTuple):
    depth: int            # deepest nesting of [ and {
    decoded_bytes: int    # estimated heap size of the parsed document


def structure(body: bytes) -> Structure:
    """Nesting depth and estimated decoded size of a JSON (or NDJSON) body, without parsing it."""
    marks = body.translate(None, _NOT_STRUCTURE)
    brackets = marks.translate(None, _NOT_BRACKETS)
    quotes = len(marks.translate(None, _NOT_QUOTES))
    items = len(marks) - len(brackets) - quotes + 1  # commas and colons: one per list item or dict entry
    estimate = (len(body) + BYTES_PER_CONTAINER * (len(brackets) // 2 + 1) + BYTES_PER_ITEM * items
                + BYTES_PER_QUOTE * quotes)
    return Structure(_depth(brackets), estimate)


def _depth(brackets: bytes) -> int:
    """Deepest running sum of +1 per opener and -1 per closer."""
    deepest = level = 0
    for start in range(0, len(brackets), _CHUNK):
        steps = _DEPTH_STEP[np.frombuffer(brackets, dtype=np.uint8, count=min(_CHUNK, len(brackets) - start),
                                          offset=start)]
        running = np.cumsum(steps, dtype=np.int64) + level
        deepest = max(deepest, int(running.max()))
        level = int(running[-1])
    return deepest


def check_structure(body: bytes, max_depth: int, max_decoded_bytes: int) -> None:
    """Raise LimitExceeded when parsing the body would nest too deep or cost too much memory."""
    shape = structure(body)
    if shape.depth > max_depth:
        raise LimitExceeded("nesting_depth", "max_nesting_depth", f"nesting depth {shape.depth}", status=400)
    if shape.decoded_bytes > max_decoded_bytes:
        raise LimitExceeded(
            "decoded_bytes", "max_decoded_bytes", f"estimated decoded size {shape.decoded_bytes} bytes"
        )


def split_lines(body: bytes, max_records: int) -> list[bytes]:
    """The lines of an NDJSON body; more than `max_records` lines raise before any is split or parsed.

    Lines are counted in C (``bytes.count``), blank ones included (a final newline is not a line),
    so a flood of tiny lines is refused before it costs a Python object per line.
    """
    lines = body.count(b"\n") + (0 if body.endswith(b"\n") or not body else 1)
    if lines > max_records:
        raise TooManyRecords(lines)
    return body.split(b"\n")
