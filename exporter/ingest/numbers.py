"""JSON numbers -> float64 columns, checked and converted in C-level passes.

``array('d', values)`` is the check and the conversion in one: it takes ints and floats (an int
as the nearest float, as ``float()`` does) and raises for a string, None, a list, an object or
an int beyond float range. It also takes True and False (as 1 and 0), so a column holding an
exact 0 or 1 gets the exact type check as well. About twice as fast as numpy's type inference,
and it never builds an intermediate list.

    >>> number_array([1, 2.5]), number_array([1, "2"]), number_array([True, 2.0])
    (array([1. , 2.5]), None, None)
"""

from __future__ import annotations

import itertools
import operator
from array import array as DoubleArray
from typing import Any, Collection, Iterable, Sequence

import numpy as np

RawColumn = list[Any] | np.ndarray  # a feature's raw values, or float64 when all are numbers
NUMBER_TYPES = frozenset({float, int})  # what a numeric JSON value is: bool is an int subclass, and is not


def number_array(raw: Sequence[Any]) -> np.ndarray | None:
    """The column as float64 when every value is an int or a float (no bool, string or null), else None.

    A float64 array is taken as it is: decode made it with feature_columns, which checked it.
    """
    if isinstance(raw, np.ndarray):
        return raw if raw.dtype == np.float64 else None
    if not raw:
        return np.zeros(0)
    try:
        values = np.frombuffer(DoubleArray("d", raw), dtype=np.float64)
    except (TypeError, ValueError, OverflowError):
        return None
    if _maybe_bool(values) and not set(map(type, raw)) <= NUMBER_TYPES:
        return None
    return values


def _maybe_bool(values: np.ndarray) -> np.ndarray:
    return ((values == 0) | (values == 1)).any(axis=-1)


def feature_columns(rows: list[dict[str, Any]], names: list[str], numeric: Collection[str]) -> dict[str, RawColumn]:
    """Every named feature's column from records' feature objects; numeric ones of plain numbers as float64.

    One pass over the rows gathers every named value into one flat list (each row's dict is visited
    once, not once per feature); each column is then a C-level slice of it, and a numeric column is
    typed by number_array (a column holding anything but ints and floats keeps its raw values and
    is typed value by value later, the same way). Raises KeyError when a row lacks a name.
    """
    if not names:
        return {}
    values = map(operator.itemgetter(*names), rows)  # one name: a value per row, not a tuple
    return _split(list(itertools.chain.from_iterable(values) if len(names) > 1 else values), names, numeric)


def tuple_columns(rows: Iterable[tuple[Any, ...]], names: list[str], numeric: Collection[str]) -> dict[str, RawColumn]:
    """feature_columns of rows that already hold every named value, in `names` order (decoded structs)."""
    return _split(list(itertools.chain.from_iterable(rows)), names, numeric) if names else {}


def _split(flat: list[Any], names: list[str], numeric: Collection[str]) -> dict[str, RawColumn]:
    """Row-major values -> one column per name (a C-level slice each), numeric ones typed."""
    width = len(names)
    columns: dict[str, RawColumn] = {}
    for offset, name in enumerate(names):
        column = flat[offset::width]
        typed = number_array(column) if name in numeric else None
        columns[name] = column if typed is None else typed
    return columns
