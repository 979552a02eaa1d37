"""``POST /v1/labels``: ground truth for predictions made earlier, joined by id.

Three body shapes, like /v1/predictions:

* a JSON array of ``{"id": ..., "label": ..., "model": optional}`` objects,
* NDJSON, one such object per line (a bad line counts as one `invalid` label),
* columnar: ``{"ids": [...], "labels": [...], "model": optional}``.

The answer counts what became of every label: ``{"joined", "unknown_id", "duplicate",
"invalid"}``. ``model``, when given, must match the model of the stored prediction.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import orjson
from flask import Flask, Response, request

from exporter.http.body import read_body
from exporter.ingest.decode import NDJSON_TYPES, UNKNOWN_MODEL_LABEL, BodyError, parse_json
from exporter.ingest.limits import LimitExceeded, TooManyRecords, check_structure, split_lines
from exporter.state.labels import LabelRecord, join_columns

if TYPE_CHECKING:
    from exporter.http.service import Exporter

INVALID = LabelRecord(id=None, label=None)  # counts as one `invalid` label


def _record(item: Any, models: frozenset[str]) -> LabelRecord:
    if not isinstance(item, dict) or "label" not in item:
        return INVALID
    return LabelRecord(item.get("id"), item.get("label"), _model(item.get("model"), models))


def _model(value: Any, models: frozenset[str]) -> str | None:
    """A configured model name, __unknown__ for any other string (label outcomes are counted per model,
    so a client's made-up names must not become keys), None when absent."""
    if not isinstance(value, str):
        return None
    return value if value in models else UNKNOWN_MODEL_LABEL


LabelColumns = tuple[list[Any], list[Any], "list[str | None] | str | None"]


def decode_labels(body: bytes, content_type: str, models: frozenset[str] = frozenset(),
                  max_records: int = 100_000, max_depth: int = 32,
                  max_decoded_bytes: int = 96 << 20) -> list[LabelRecord]:
    """Label records of any accepted shape; raises BodyError for a body unusable as a whole and
    LimitExceeded (before parsing where it can) for one over the limits /v1/predictions has too."""
    ids, labels, named = decode_label_columns(body, content_type, models, max_records, max_depth, max_decoded_bytes)
    if named is None or isinstance(named, str):
        return [LabelRecord(i, label, named) for i, label in zip(ids, labels)]
    return [LabelRecord(i, label, model) for i, label, model in zip(ids, labels, named)]


def _columns(records: list[LabelRecord]) -> LabelColumns:
    return [r.id for r in records], [r.label for r in records], [r.model for r in records]


def decode_label_columns(body: bytes, content_type: str, models: frozenset[str] = frozenset(),
                         max_records: int = 100_000, max_depth: int = 32,
                         max_decoded_bytes: int = 96 << 20) -> LabelColumns:
    """(ids, labels, model per label or one model for all): the columnar shape is used as it was parsed,
    with no object per label."""
    media = content_type.split(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        lines = split_lines(body, max_records)
        check_structure(body, max_depth, max_decoded_bytes)
        records = []
        for line in lines:
            if not line.strip():
                continue
            try:
                records.append(_record(parse_json(line), models))
            except BodyError:
                records.append(INVALID)
        return _columns(records)
    check_structure(body, max_depth, max_decoded_bytes)
    document = parse_json(body)
    if isinstance(document, dict) and "ids" in document and "labels" in document:
        ids, labels, model = document["ids"], document["labels"], document.get("model")
        if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels):
            raise BodyError("columnar labels: `ids` and `labels` must be arrays of the same length")
        if len(ids) > max_records:
            raise TooManyRecords(len(ids))
        return ids, labels, _model(model, models)
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise BodyError("expected a JSON array of {id, label} objects, one object, or {ids: [...], labels: [...]}")
    if len(document) > max_records:
        raise TooManyRecords(len(document))
    return _columns([_record(item, models) for item in document])


def ingest_labels(exporter: Exporter, body: bytes, content_type: str) -> tuple[dict[str, Any], int]:
    limits = exporter.config.exporter
    models = frozenset(m.name for m in exporter.config.models)
    try:
        ids, values, named = decode_label_columns(body, content_type, models, limits.max_records_per_request,
                                                  limits.max_nesting_depth, limits.max_decoded_bytes)
    except LimitExceeded as error:
        exporter.stats.limit_hit(error.limit)
        return error.to_json(), error.status
    except BodyError as error:
        return {"error": str(error)}, 400
    store = exporter.store
    result = join_columns(store.labels, store.quality_for_label, ids, values, named, store.clock())
    return result.to_json(), 200


def register_label_routes(app: Flask, exporter: Exporter) -> None:
    """Add POST /v1/labels to the ingest app."""

    @app.post("/v1/labels")
    def labels() -> Response:
        body = read_body(exporter.config.exporter.max_request_bytes)  # a chunked body over the limit is a 413
        answer, status = ingest_labels(exporter, body, request.content_type or "application/json")
        exporter.stats.request("labels", status, len(body))
        return Response(orjson.dumps(answer), status=status, mimetype="application/json")

