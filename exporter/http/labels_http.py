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

from exporter.ingest.decode import BodyError, parse_json
from exporter.state.labels import LabelRecord, join_labels

if TYPE_CHECKING:
    from exporter.http.service import Exporter

NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")
INVALID = LabelRecord(id=None, label=None)  # counts as one `invalid` label


def _record(item: Any) -> LabelRecord:
    if not isinstance(item, dict) or "label" not in item:
        return INVALID
    model = item.get("model")
    return LabelRecord(item.get("id"), item.get("label"), model if isinstance(model, str) else None)


def decode_labels(body: bytes, content_type: str) -> list[LabelRecord]:
    """Label records of any accepted shape; raises BodyError for a body unusable as a whole."""
    media = content_type.split(";")[0].strip().lower()
    if media in NDJSON_TYPES:
        records = []
        for line in body.splitlines():
            if not line.strip():
                continue
            try:
                records.append(_record(orjson.loads(line)))
            except orjson.JSONDecodeError:
                records.append(INVALID)
        return records
    document = parse_json(body)
    if isinstance(document, dict) and "ids" in document and "labels" in document:
        ids, labels, model = document["ids"], document["labels"], document.get("model")
        if not isinstance(ids, list) or not isinstance(labels, list) or len(ids) != len(labels):
            raise BodyError("columnar labels: `ids` and `labels` must be arrays of the same length")
        model = model if isinstance(model, str) else None
        return [LabelRecord(i, label, model) for i, label in zip(ids, labels)]
    if isinstance(document, dict):
        document = [document]
    if not isinstance(document, list):
        raise BodyError("expected a JSON array of {id, label} objects, one object, or {ids: [...], labels: [...]}")
    return [_record(item) for item in document]


def ingest_labels(exporter: Exporter, body: bytes, content_type: str) -> tuple[dict[str, Any], int]:
    limit = exporter.config.exporter.max_records_per_request
    try:
        records = decode_labels(body, content_type)
    except BodyError as error:
        return {"error": str(error)}, 400
    if len(records) > limit:
        exporter.stats.limit_hit("records_per_request")
        return {"error": f"{len(records)} labels exceed max_records_per_request ({limit})"}, 413
    store = exporter.store
    result = join_labels(store.labels, store.quality_of, records, store.clock())
    return result.to_json(), 200


def register_label_routes(app: Flask, exporter: Exporter) -> None:
    """Add POST /v1/labels to the ingest app."""

    @app.post("/v1/labels")
    def labels() -> Response:
        body = request.get_data(cache=False)
        answer, status = ingest_labels(exporter, body, request.content_type or "application/json")
        exporter.stats.request("labels", status, len(body))
        return Response(orjson.dumps(answer), status=status, mimetype="application/json")

