"""JSON text byte for byte as Helm's `toJson` writes it (Go's encoding/json), so a hash computed
here equals `sha256sum (toJson .Values.config)` computed by the chart.

Go sorts map keys, writes no spaces, escapes `<`, `>`, `&` (and U+2028/U+2029) as \\u00XX, keeps
other non-ASCII as UTF-8, and writes every number as a float64: integral values without a
fraction, |x| in [1e-6, 1e21) in plain decimals, others as `1e-07` -> `1e-7`. Values files lose
their null keys when Helm reads them, so nulls must already be gone (see `drop_nulls`).
"""

from __future__ import annotations

import hashlib
import json
import math
from decimal import Decimal
from typing import Any

_HTML_ESCAPES = {"<": "\\u003c", ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"}


def _string(text: str) -> str:
    encoded = json.dumps(text, ensure_ascii=False)
    for char, escape in _HTML_ESCAPES.items():
        encoded = encoded.replace(char, escape)
    return encoded


def _number(value: float) -> str:
    if not math.isfinite(value):
        raise ValueError(f"{value!r} has no JSON form")
    if value == int(value) and abs(value) < 1e21:
        return str(int(value))
    shortest = repr(float(value))  # the shortest text that reads back as the same float, as Go's -1 precision
    if 1e-6 <= abs(value) < 1e21:
        return format(Decimal(shortest), "f")
    mantissa, exponent = shortest.split("e")
    sign = "-" if exponent.startswith("-") else "+"
    return f"{mantissa}e{sign}{int(exponent.lstrip('+-')):02d}".replace("e+0", "e+").replace("e-0", "e-")


def dumps(value: Any) -> str:
    if value is None:
        return "null"
    if value is True or value is False:
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return _number(value)
    if isinstance(value, str):
        return _string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ",".join(dumps(v) for v in value) + "]"
    if isinstance(value, dict):
        items = sorted((str(k), v) for k, v in value.items())
        return "{" + ",".join(f"{_string(k)}:{dumps(v)}" for k, v in items) + "}"
    raise TypeError(f"{type(value).__name__} is not a values type")


def drop_nulls(value: Any) -> Any:
    """Helm deletes null keys when it reads values; do it first so both sides hash the same thing."""
    if isinstance(value, dict):
        return {k: drop_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [drop_nulls(v) for v in value]
    return value


def sha256(value: Any) -> str:
    """`sha256sum (toJson value)` as the chart computes it."""
    return hashlib.sha256(dumps(value).encode("utf-8")).hexdigest()
