"""Whatever the model code has (lists, numpy arrays, pandas Series and DataFrames, rows of dicts)
as plain Python columns, the shape the exporter's columnar body takes.

Duck-typed on purpose: numpy and pandas are never imported, so the client installs and imports
without them, and their objects are still taken as they are (``tolist()`` converts in C).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Optional


def is_dataframe(value: Any) -> bool:
    return hasattr(value, "columns") and hasattr(value, "to_dict") and hasattr(value, "iloc")


def snapshot(value: Any) -> Any:
    """A copy taken on the caller's thread, so a buffer the caller reuses after log_batch() is not sent changed.

    numpy arrays and pandas objects copy their memory (no per-value Python objects); lists and
    dicts are copied shallowly.
    """
    if value is None:
        return None
    if isinstance(value, Mapping) and not is_dataframe(value):
        return {key: snapshot(column) for key, column in value.items()}
    if isinstance(value, list):
        return list(value)
    copy = getattr(value, "copy", None)
    return copy() if callable(copy) else list(value)


def to_list(values: Any) -> list:
    """One column as a list of plain Python values."""
    tolist = getattr(values, "tolist", None)
    if callable(tolist):
        converted = tolist()
        if isinstance(converted, list):
            return converted
    return list(values)


def feature_columns(features: Any, feature_names: Optional[Sequence[str]] = None) -> dict[str, list]:
    """{name: column} from a DataFrame, a mapping of columns, rows of dicts, or a 2-D array with names."""
    if is_dataframe(features):
        return {str(name): to_list(features[name]) for name in features.columns}
    if isinstance(features, Mapping):
        return {str(name): to_list(column) for name, column in features.items()}
    if feature_names is not None:  # a 2-D array or a list of rows, in the order of feature_names
        rows = to_list(features)
        return {str(name): [row[i] for row in rows] for i, name in enumerate(feature_names)}
    rows = to_list(features)
    if rows and all(isinstance(row, Mapping) for row in rows):
        names = list(dict.fromkeys(key for row in rows for key in row))
        return {str(name): [row.get(name) for row in rows] for name in names}
    raise TypeError("features: expected a DataFrame, {name: column}, rows of {name: value}, or rows with feature_names")


def optional_column(values: Any, size: int, what: str) -> Optional[list]:
    if values is None:
        return None
    column = to_list(values)
    if len(column) != size:
        raise ValueError(f"{what}: {len(column)} values for {size} predictions")
    return column


def json_default(value: Any) -> Any:
    """json.dumps' fallback for values the stdlib does not know (numpy scalars, pandas NA, timestamps...)."""
    if type(value).__name__ in ("NAType", "NaTType"):  # pandas' missing values
        return None
    tolist = getattr(value, "tolist", None)  # numpy scalars (-> a Python scalar) and arrays (-> lists)
    if callable(tolist):
        return tolist()
    isoformat = getattr(value, "isoformat", None)  # datetime, pandas Timestamp: RFC 3339 text
    if callable(isoformat):
        return isoformat()
    if isinstance(value, (set, frozenset, tuple)):
        return list(value)
    return str(value)  # the exporter counts a type error for it; the batch still goes
