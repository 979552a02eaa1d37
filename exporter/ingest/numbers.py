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
from typing import Any, Sequence

import numpy as np

NUMBER_TYPES = frozenset({float, int})  # what a numeric JSON value is: bool is an int subclass, and is not


def number_array(raw: Sequence[Any]) -> np.ndarray | None:
    """The column as float64 when every value is an int or a float (no bool, string or null), else None.

    A float64 array is taken as it is: decode made it with number_columns, which checked it.
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


def number_columns(rows: list[dict[str, Any]], names: list[str]) -> dict[str, np.ndarray]:
    """The numeric features that hold only numbers, as float64 columns, from records' feature objects.

    One pass over the rows gathers every named value into one flat list, then one float64 array
    (each row's dict is visited once, not once per feature, and no list per column is built). Columns left out
    (every one, when a single value anywhere is not a number; a column with a boolean) keep
    their raw values and are typed value by value later. Raises KeyError when a row lacks a name.
    """
    if len(names) < 2:  # itemgetter of one name gives a value, not a tuple; one column gains nothing here
        return {}
    # A list first: array('d') reads a list by index in C, ~20% faster than pulling from the chain's iterator.
    values = list(itertools.chain.from_iterable(map(operator.itemgetter(*names), rows)))
    try:
        flat = DoubleArray("d", values)
    except (TypeError, ValueError, OverflowError):
        return {}
    block = np.frombuffer(flat, dtype=np.float64).reshape(len(rows), len(names)).T.copy()  # a column per row
    typed = {}
    for j, (name, column, maybe_bool) in enumerate(zip(names, block, _maybe_bool(block))):
        if maybe_bool and not set(map(type, values[j::len(names)])) <= NUMBER_TYPES:  # the column's raw values
            continue
        typed[name] = column
    return typed
