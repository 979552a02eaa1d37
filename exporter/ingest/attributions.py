"""A record's `attributions: {feature: phi}` (or a columnar `attributions` block) as raw columns.

Only the model's configured features are kept (config order): other keys are counted as unknown,
never turned into labels. A record without attributions simply has none (MISSING in every
column); an `attributions` that is not an object is counted as invalid, and the record is still
accepted. Nothing here converts values: exporter/state/attributions.py does, in the prepare step.
Models without `attributions.enabled` skip all of this.
"""

from __future__ import annotations

import operator
from dataclasses import dataclass
from typing import Any

from exporter.config.model import ModelConfig

MISSING_PHI = object()  # a feature without a phi in a record that has attributions


class AttributionBodyError(ValueError):
    """A columnar `attributions` block of the wrong shape (a 400, like the features block)."""


@dataclass(slots=True)
class AttributionColumns:
    """Raw phi per configured feature (MISSING_PHI where absent), for the rows that carry attributions."""

    columns: dict[str, list[Any]]
    rows: int          # records with an attributions object
    unknown: int = 0   # keys that are not configured features
    invalid: int = 0   # records whose `attributions` is not an object
    partial: frozenset[str] = frozenset()  # features some row lacks (their columns hold MISSING_PHI)


def from_records(records: list[dict[str, Any]], model: ModelConfig) -> AttributionColumns | None:
    """Attribution columns of accepted records; None when the model does not count them or none has any."""
    if not model.attributions.enabled:
        return None
    return from_values([r.get("attributions") for r in records], model)


def from_values(raw: list[Any], model: ModelConfig) -> AttributionColumns | None:
    """from_records of the records' `attributions` values (None where a record has none)."""
    if not model.attributions.enabled:
        return None
    dicts = [a for a in raw if type(a) is dict]
    invalid = len(raw) - len(dicts) - raw.count(None)
    if not dicts:
        return AttributionColumns({}, 0, 0, invalid) if invalid else None
    names = [f.name for f in model.features]
    columns, present, partial = {}, 0, set()
    for name in names:  # one C-level pass per feature when every record has it (the common case)
        try:
            columns[name] = list(map(operator.itemgetter(name), dicts))
            present += len(dicts)
        except KeyError:
            column = columns[name] = [d.get(name, MISSING_PHI) for d in dicts]
            present += len(column) - sum(1 for v in column if v is MISSING_PHI)
            partial.add(name)
    return AttributionColumns(columns, len(dicts), sum(map(len, dicts)) - present, invalid, frozenset(partial))


def from_columnar(block: Any, count: int, keep: list[int] | range, model: ModelConfig) -> AttributionColumns | None:
    """The columnar `attributions: {feature: [phi per row]}` block, rows selected like the features'."""
    if block is None or not model.attributions.enabled:
        return None
    if not isinstance(block, dict):
        raise AttributionBodyError("columnar body: `attributions` must be an object {feature: [phi, ...]}")
    for name, column in block.items():
        if not isinstance(column, list) or len(column) != count:
            raise AttributionBodyError(
                f"columnar body: attributions.{ascii(str(name)[:64])[1:-1]} must be an array of {count} values")
    known = {f.name for f in model.features}
    whole = len(keep) == count
    columns = {
        f.name: (block[f.name] if whole else [block[f.name][i] for i in keep]) if f.name in block
        else [MISSING_PHI] * len(keep)
        for f in model.features
    }
    unknown = sum(1 for name in block if name not in known) * len(keep)
    partial = frozenset(f.name for f in model.features if f.name not in block)
    return AttributionColumns(columns, len(keep), unknown, 0, partial) if len(keep) else None
