"""Raw JSON values of one feature -> clean numpy values plus data-quality counts.

The common case (every value of the right type) takes one C-level pass to check types and one
numpy conversion; only a column that has a problem falls back to classifying value by value.
"""

from __future__ import annotations

import math
from typing import Any, NamedTuple, Sequence

import numpy as np

from exporter.ingest.decode import MISSING, Batch, Decoded, Rejection
from exporter.ingest.numbers import number_array as _number_array
from exporter.ingest.strings import all_short_strings as _all_short_strings
from exporter.profiles.profile import canonical_category


class Column(NamedTuple):
    """Usable values (finite floats, or category strings) and what was wrong with the rest."""

    values: np.ndarray
    missing: int = 0
    null: int = 0
    nonfinite: int = 0
    type_errors: int = 0
    too_long: int = 0  # of the type errors, strings over exporter.max_string_length (a limit hit)
    examples: tuple[tuple[int, str, Any], ...] = ()  # the first few (row, problem, value), for the answer


MAX_EXAMPLES = 3
TRUE_TEXTS = {"true": "true", "True": "true", "TRUE": "true", "1": "true",
              "false": "false", "False": "false", "FALSE": "false", "0": "false"}


def parse_number(text: str) -> float | None:
    """A numeric string ("12", "3.5e2") as a float, else None; exporter.type_errors: parse."""
    try:
        return float(text) if len(text) <= 64 else None
    except ValueError:
        return None


DEFAULT_MAX_LENGTH = 256  # exporter.max_string_length's default


def numeric_column(raw: list[Any], parse: bool = False) -> Column:
    values = _number_array(raw)
    if values is not None:
        finite = np.isfinite(values)
        if finite.all():
            return Column(values)
        return Column(values[finite], nonfinite=int((~finite).sum()))
    good: list[float] = []
    missing = null = nonfinite = type_errors = 0
    examples: list[tuple[int, str, Any]] = []
    for row, value in enumerate(raw):
        kind = type(value)
        if kind is str and parse:
            parsed = parse_number(value)
            if parsed is not None:
                value, kind = parsed, float
        if kind is float or kind is int:
            if _finite(value):
                good.append(value)
            else:  # NaN, infinity, or an integer beyond float range (1e400 written out in digits)
                nonfinite += 1
                if len(examples) < MAX_EXAMPLES:
                    examples.append((row, "nonfinite", value))
        elif value is MISSING:
            missing += 1
        elif value is None:
            null += 1
        else:  # strings, booleans, objects: never coerced unless asked to, so a schema bug is visible
            type_errors += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append((row, "type_error", value))
    return Column(np.asarray(good, dtype=np.float64), missing, null, nonfinite, type_errors, 0, tuple(examples))


def _finite(value: float | int) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:  # an int too large for a float
        return False


def float_values(raw: list[Any]) -> np.ndarray:
    """Numbers (already type-checked) as float64, row for row; an int beyond float range becomes +-inf."""
    try:
        return np.asarray(raw, dtype=np.float64)
    except OverflowError:
        return np.fromiter((_float(v) for v in raw), dtype=np.float64, count=len(raw))


def _float(value: float | int) -> float:
    try:
        return float(value)
    except OverflowError:
        return math.inf if value > 0 else -math.inf


def categorical_column(raw: list[Any], max_length: int = DEFAULT_MAX_LENGTH) -> Column:
    """Strings as they are; integers as their decimal text (IDs and codes); anything else is a type error.

    A string longer than `max_length` is a type error too: numpy stores strings at the width of
    the longest one, so one 50,000-character value would make every row of the column 200 KB.
    """
    if not raw:
        return Column(np.zeros(0, dtype=str))
    if _all_short_strings(raw, max_length):
        texts = np.asarray(raw, dtype=str)
        # Only a text with a "." can change ("4.0" -> "4"); one C-level search skips two numpy passes.
        return Column(_canonical_texts(texts) if "." in "".join(raw) else texts)
    good: list[str] = []
    missing = null = type_errors = too_long = 0
    examples: list[tuple[int, str, Any]] = []
    for row, value in enumerate(raw):
        kind = type(value)
        # One canonical text per category (exporter/profiles/profile.py): 4, 4.0 and "4.0" are "4".
        text = value if kind is str else _decimal(value) if kind is int else canonical_category(value) if kind is float else None
        if text is not None and len(text) <= max_length:
            good.append(text)
            continue
        if text is not None:
            too_long += 1
        elif value is MISSING:
            missing += 1
            continue
        elif value is None:
            null += 1
            continue
        type_errors += 1
        if len(examples) < MAX_EXAMPLES:
            examples.append((row, "type_error", value if text is None else text[:32] + "..."))
    return Column(_canonical_texts(np.asarray(good, dtype=str)), missing, null, 0, type_errors, too_long, tuple(examples))


def _canonical_texts(texts: np.ndarray) -> np.ndarray:
    """Integral-float texts ("4.0") as the integer's text; one vectorised test, a loop only over those."""
    if not texts.size:
        return texts
    dotted = np.flatnonzero(np.char.endswith(texts, "0") & (np.char.find(texts, ".") >= 0))
    if not len(dotted):
        return texts
    out = texts.astype(object)
    for i in dotted:
        out[i] = canonical_category(str(texts[i]))
    return np.asarray(out, dtype=str)


def _decimal(value: int) -> str:
    """An int's decimal text; one past Python's 4,300-digit limit reads as too long."""
    try:
        return str(value)
    except ValueError:
        return "9" * 4301


def boolean_column(raw: list[Any], parse: bool = False) -> Column:
    """true/false, or 0/1; mapped onto the boolean categories 'false'/'true' ("true"/"0"... when parsing)."""
    good: list[str] = []
    missing = null = type_errors = 0
    examples: list[tuple[int, str, Any]] = []
    for row, value in enumerate(raw):
        if value is True or value is False:
            good.append("true" if value else "false")
        elif type(value) is int and value in (0, 1):
            good.append("true" if value else "false")
        elif value is MISSING:
            missing += 1
        elif value is None:
            null += 1
        elif parse and type(value) is str and value in TRUE_TEXTS:
            good.append(TRUE_TEXTS[value])
        else:
            type_errors += 1
            if len(examples) < MAX_EXAMPLES:
                examples.append((row, "type_error", value))
    return Column(np.asarray(good, dtype=str), missing, null, 0, type_errors, 0, tuple(examples))


def convert(kind: str, raw: list[Any], max_length: int = DEFAULT_MAX_LENGTH, parse: bool = False) -> Column:
    if kind == "numeric":
        return numeric_column(raw, parse)
    if kind == "categorical":
        return categorical_column(raw, max_length)
    return boolean_column(raw, parse)


def type_error_rows(kind: str, raw: list[Any], max_length: int = DEFAULT_MAX_LENGTH, parse: bool = False) -> list[int]:
    """Rows whose value is a type error (exporter.type_errors: reject); one C-level check when there are none."""
    if kind == "categorical" and _all_short_strings(raw, max_length):
        return []
    if kind == "numeric" and _number_array(raw) is not None:
        return []
    single = [convert(kind, [value], max_length, parse).type_errors for value in raw]
    return [row for row, bad in enumerate(single) if bad]


def reject_type_errors(decoded: Decoded, max_length: int, parse: bool) -> None:
    """exporter.type_errors: reject: drop the rows with a type error from their batches, as rejections."""
    kept_batches = []
    for batch in decoded.batches:
        bad: dict[int, str] = {}
        for feature in batch.model.features:
            for row in type_error_rows(feature.type, batch.features[feature.name], max_length, parse):
                bad.setdefault(row, feature.name)
        if not bad:
            kept_batches.append(batch)
            continue
        for row, name in sorted(bad.items()):
            decoded.rejections.append(Rejection(
                batch.indices[row], "type_error", f"feature {name}: a value of the wrong type", model=batch.model.name,
            ))
        keep = [row for row in range(batch.size) if row not in bad]
        if keep:
            kept_batches.append(_select_rows(batch, keep))
    decoded.batches = kept_batches
    decoded.rejections.sort(key=lambda r: r.index)


def _select_rows(batch: Batch, keep: list[int]) -> Batch:
    def select(column: Sequence[Any]) -> Sequence[Any]:
        if isinstance(column, np.ndarray):  # a numeric feature decode already typed
            return column[np.asarray(keep, dtype=np.intp)]
        return [column[i] for i in keep] if column else column

    unknown = batch.unknown_features * len(keep) // batch.size if batch.size else 0
    return Batch(
        model=batch.model, version=batch.version,
        features={name: select(column) for name, column in batch.features.items()},
        predictions=select(batch.predictions), ids=select(batch.ids), timestamps=select(batch.timestamps),
        labels=select(batch.labels), segments=select(batch.segments), unknown_features=unknown,
        indices=select(batch.indices), decisions=select(batch.decisions), class_scores=select(batch.class_scores),
    )
