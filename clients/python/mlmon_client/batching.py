"""Queued items -> request bodies in the exporter's columnar shapes (docs/ingest.md).

Runs on the sender thread only. Single records are grouped by model, version and feature names,
so every body is one model version with every column present: a record without a feature key
would otherwise have to be sent as null, and the exporter counts absent and null differently.
"""

from __future__ import annotations

import json
import operator
from dataclasses import dataclass
from typing import Any, NamedTuple, Optional

from mlmon_client.columns import feature_columns, json_default, optional_column, to_list

PREDICTIONS = "/v1/predictions"
LABELS = "/v1/labels"


class Record(NamedTuple):
    """The fields of one ``log()`` call. Queued as a plain tuple in this order: building a NamedTuple
    costs a Python-level call, a tuple display does not, and the fast path is counted in nanoseconds."""

    model: str
    version: Any
    features: dict
    prediction: Any
    id: Any
    segments: Optional[dict]
    timestamp: Any
    predicted_class: Any  # the class the model itself predicted (None: the exporter decides from the score)


class ColumnBatch(NamedTuple):
    """One ``log_batch()`` call, as queued: the caller's columns, copied but not yet converted."""

    model: str
    version: Any
    features: Any
    predictions: Any
    ids: Any
    segments: Any
    timestamps: Any
    labels: Any
    feature_names: Any
    rows: int
    predicted_classes: Any = None


class Label(NamedTuple):
    id: Any
    label: Any
    model: Optional[str]


@dataclass
class Chunk:
    """One request to make: a JSON document for `route` carrying `rows` records or labels."""

    route: str
    rows: int
    document: dict
    body: Optional[bytes] = None

    def encoded(self) -> bytes:
        if self.body is None:  # encoded once, re-used by retries
            self.body = json.dumps(self.document, separators=(",", ":"), default=json_default).encode()
        return self.body

    def halves(self) -> list[Chunk]:
        """The same rows in two requests (after a 413); every column of the document is split."""
        middle = self.rows // 2
        first, second = {}, {}
        for key, value in self.document.items():
            if isinstance(value, list):
                first[key], second[key] = value[:middle], value[middle:]
            elif isinstance(value, dict):  # features: {name: column}
                first[key] = {name: column[:middle] for name, column in value.items()}
                second[key] = {name: column[middle:] for name, column in value.items()}
            else:
                first[key] = second[key] = value
        return [Chunk(self.route, middle, first), Chunk(self.route, self.rows - middle, second)]


def _optional(document: dict, key: str, column: Optional[list]) -> None:
    # Optional columns are left out when every value is None: smaller bodies, same meaning.
    if column is not None and any(value is not None for value in column):
        document[key] = column


def columnar_document(
    model: str, version: Any, features: dict, predictions: list,
    ids: Optional[list] = None, segments: Optional[list] = None,
    timestamps: Optional[list] = None, labels: Optional[list] = None, predicted_classes: Optional[list] = None,
) -> dict:
    document = {"model": model, "model_version": version, "features": features, "predictions": predictions}
    _optional(document, "ids", ids)
    _optional(document, "segments", segments)
    _optional(document, "timestamps", timestamps)
    _optional(document, "labels", labels)
    _optional(document, "predicted_classes", predicted_classes)
    return document


def _slices(document: dict, rows: int, batch_size: int) -> list[Chunk]:
    if rows <= batch_size:
        return [Chunk(PREDICTIONS, rows, document)]
    chunks = [Chunk(PREDICTIONS, rows, document)]
    while chunks[0].rows > batch_size:  # halve until small enough; keeps one slicing routine
        chunks = [half for chunk in chunks for half in chunk.halves()]
    return chunks


def record_chunks(records: list[tuple], batch_size: int) -> tuple[list[Chunk], int]:
    """(chunks, records that could not be grouped); `records` are Record-shaped plain tuples."""
    groups: dict[tuple, list[tuple]] = {}
    invalid = 0
    for record in records:
        try:
            groups.setdefault((record[0], record[1], tuple(record[2])), []).append(record)
        except TypeError:  # an unhashable model or version: the exporter could not attribute it either
            invalid += 1
    chunks = []
    for (model, version, names), group in groups.items():
        for start in range(0, len(group), batch_size):
            part = group[start:start + batch_size]
            _, _, dicts, predictions, ids, segments, timestamps, own = zip(*part)  # columns of the Record fields
            features = {name: list(map(operator.itemgetter(name), dicts)) for name in names}
            document = columnar_document(
                model, version, features, list(predictions), ids=list(ids), segments=list(segments), timestamps=list(timestamps),
                predicted_classes=list(own),
            )
            chunks.append(Chunk(PREDICTIONS, len(part), document))
    return chunks, invalid


def batch_chunks(batch: ColumnBatch, batch_size: int, now: float) -> list[Chunk]:
    """Raises TypeError/ValueError for columns that cannot be read (counted as invalid by the sender)."""
    predictions = to_list(batch.predictions)
    rows = len(predictions)
    features = feature_columns(batch.features, batch.feature_names)
    for name, column in features.items():
        if len(column) != rows:
            raise ValueError(f"features.{name}: {len(column)} values for {rows} predictions")
    if batch.timestamps is None or isinstance(batch.timestamps, (int, float, str)):  # one time for every row
        timestamps = [now if batch.timestamps is None else batch.timestamps] * rows
    else:
        timestamps = optional_column(batch.timestamps, rows, "timestamps")
    document = columnar_document(
        batch.model, batch.version, features, predictions,
        ids=optional_column(batch.ids, rows, "ids"), segments=_segments(batch.segments, rows),
        timestamps=timestamps, labels=optional_column(batch.labels, rows, "labels"),
        predicted_classes=optional_column(batch.predicted_classes, rows, "predicted_classes"),
    )
    return _slices(document, rows, batch_size)


def _segments(segments: Any, rows: int) -> Optional[list]:
    """Segments as rows of {attribute: value}; also taken as columns {attribute: [...]} or a DataFrame."""
    if segments is None:
        return None
    if isinstance(segments, dict) or hasattr(segments, "columns"):
        columns = feature_columns(segments)
        for name, column in columns.items():
            if len(column) != rows:
                raise ValueError(f"segments.{name}: {len(column)} values for {rows} predictions")
        return [dict(zip(columns, values)) for values in zip(*columns.values())] if columns else None
    return optional_column(segments, rows, "segments")


def label_chunks(labels: list[Label], batch_size: int) -> list[Chunk]:
    groups: dict[Optional[str], list[Label]] = {}
    for label in labels:
        groups.setdefault(label.model, []).append(label)
    chunks = []
    for model, group in groups.items():
        for start in range(0, len(group), batch_size):
            part = group[start:start + batch_size]
            document: dict[str, Any] = {"ids": [x.id for x in part], "labels": [x.label for x in part]}
            if model is not None:
                document["model"] = model
            chunks.append(Chunk(LABELS, len(part), document))
    return chunks
