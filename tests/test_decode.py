"""Decoding request bodies: every accepted shape, every reachable rejection, and good neighbours kept."""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import build_config, toy_model_data, toy_record
from exporter.ingest.decode import (
    MISSING,
    REJECTION_REASONS,
    BodyError,
    Decoded,
    TooManyRecords,
    decode_body,
    parse_json,
)

CONFIG = build_config({
    "exporter": {"max_label_value_length": 12},
    "models": [
        toy_model_data(),
        {
            "name": "species",
            "task": "multiclass_classification",
            "reference": {"capture": 10},
            "features": [{"name": "petal", "type": "numeric"}],
            "prediction": {"name": "kind", "type": "categorical", "classes": ["cat", "dog"]},
        },
    ],
})
NDJSON = "application/x-ndjson"


def decode(body: Any, content_type: str = "application/json", max_records: int = 1000) -> Decoded:
    raw = body if isinstance(body, bytes) else json.dumps(body).encode()
    return decode_body(raw, content_type, CONFIG, max_records)


def reasons(decoded: Decoded) -> list[tuple[int, str]]:
    return [(r.index, r.reason) for r in decoded.rejections]


def accepted(decoded: Decoded) -> int:
    return sum(batch.size for batch in decoded.batches)


# ----------------------------------------------------------------------------- shapes


def test_decodes_a_json_array_into_one_batch_per_model_version() -> None:
    decoded = decode([toy_record("v1", x=1.0), toy_record("v2", x=2.0), toy_record("v1", x=3.0)])
    assert decoded.records == 3 and decoded.rejections == []
    by_version = {batch.version: batch for batch in decoded.batches}
    assert list(by_version["v1"].features["x"]) == [1.0, 3.0]
    assert list(by_version["v2"].features["x"]) == [2.0]
    assert by_version["v1"].predictions == [0.5, 0.5]


def test_decodes_a_single_object_as_one_record() -> None:
    decoded = decode(toy_record(x=4.0))
    assert decoded.records == 1
    assert list(decoded.batches[0].features["x"]) == [4.0]


def test_decodes_ndjson_and_rejects_only_the_malformed_line() -> None:
    lines = [json.dumps(toy_record(x=1.0)), "{not json", "", json.dumps(toy_record(x=2.0))]
    decoded = decode("\n".join(lines).encode(), NDJSON)
    assert reasons(decoded) == [(1, "malformed_json")]
    assert "line 2" in decoded.rejections[0].detail
    assert list(decoded.batches[0].features["x"]) == [1.0, 2.0]


@pytest.mark.parametrize("content_type", ["application/jsonl", "application/x-ndjson; charset=utf-8"])
def test_accepts_other_spellings_of_json_lines(content_type: str) -> None:
    decoded = decode((json.dumps(toy_record()) + "\n" + json.dumps(toy_record())).encode(), content_type)
    assert accepted(decoded) == 2


def test_decodes_the_columnar_form() -> None:
    body = {
        "model": "toy", "model_version": "v3", "ids": ["a", "b"],
        "features": {"x": [1.0, 2.0], "color": ["red", "blue"], "flag": [True, False], "extra": [0, 0]},
        "predictions": [0.1, 0.2],
    }
    decoded = decode(body)
    (batch,) = decoded.batches
    assert (batch.version, batch.ids, batch.predictions) == ("v3", ["a", "b"], [0.1, 0.2])
    assert batch.features["color"] == ["red", "blue"]
    assert batch.unknown_features == 2  # one undeclared column, two rows


def test_a_columnar_feature_that_is_absent_is_missing_in_every_row() -> None:
    body = {"model": "toy", "model_version": "v1", "features": {"x": [1.0, 2.0]}, "predictions": [0.1, 0.2]}
    (batch,) = decode(body).batches
    assert batch.features["color"] == [MISSING, MISSING]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"model": "toy", "model_version": "v1", "features": {"x": [1.0]}, "predictions": [0.1, 0.2]},
         "features.x must be an array of 2 values"),
        ({"model": "toy", "model_version": "v1", "features": {"x": 5}, "predictions": [0.1]},
         "features.x must be an array of 1 values"),
        ({"model": "toy", "model_version": "v1", "ids": [1], "features": {}, "predictions": [0.1, 0.2]},
         "`ids` must be an array of 2 values"),
        ({"model": "toy", "model_version": "v1", "features": {}, "predictions": 3}, "`predictions` must be an array"),
    ],
)
def test_rejects_inconsistent_columns_as_a_bad_body(body: dict[str, Any], message: str) -> None:
    with pytest.raises(BodyError, match=message):
        decode(body)


def test_columnar_rejects_only_the_rows_with_a_bad_prediction() -> None:
    body = {"model": "toy", "model_version": "v1", "ids": [1, 2, 3],
            "features": {"x": [1.0, 2.0, 3.0]}, "predictions": [0.1, "high", 0.3]}
    decoded = decode(body)
    assert reasons(decoded) == [(1, "invalid_prediction")]
    (batch,) = decoded.batches
    assert batch.features["x"] == [1.0, 3.0] and batch.ids == [1, 3]


def test_columnar_rows_of_an_unknown_model_are_rejected_one_by_one() -> None:
    decoded = decode({"model": "nope", "model_version": "v1", "features": {}, "predictions": [1, 2]})
    assert reasons(decoded) == [(0, "unknown_model"), (1, "unknown_model")]


def test_parses_nan_and_infinity_literals_through_the_fallback() -> None:
    body = b'[{"model": "toy", "model_version": "v1", "features": {"x": NaN, "color": "red"}, "prediction": Infinity}]'
    decoded = decode(body)
    (batch,) = decoded.batches
    assert batch.features["x"][0] != batch.features["x"][0]  # NaN
    assert batch.predictions == [float("inf")]


def test_parses_nan_in_an_ndjson_line_through_the_fallback() -> None:
    decoded = decode(b'{"model": "toy", "model_version": "v1", "features": {"x": -Infinity}, "prediction": 0.5}', NDJSON)
    assert decoded.batches[0].features["x"] == [float("-inf")]


@pytest.mark.parametrize("body", [b"", b"{oops", b"[1, 2", b"\xff\xfe"])
def test_rejects_a_body_that_is_not_json(body: bytes) -> None:
    with pytest.raises(BodyError, match="not valid JSON"):
        decode(body)


@pytest.mark.parametrize("body", [b"42", b'"text"', b"null", b"true"])
def test_rejects_a_top_level_that_is_not_records(body: bytes) -> None:
    with pytest.raises(BodyError, match="expected a JSON array of records"):
        decode(body)


def test_an_empty_array_and_an_empty_ndjson_body_decode_to_nothing() -> None:
    for decoded in (decode([]), decode(b"", NDJSON), decode(b"\n\n", NDJSON)):
        assert (decoded.records, decoded.batches, decoded.rejections) == (0, [], [])


def test_counts_records_against_the_limit_in_every_shape() -> None:
    with pytest.raises(TooManyRecords) as caught:
        decode([toy_record()] * 4, max_records=3)
    assert caught.value.count == 4
    with pytest.raises(TooManyRecords):
        decode(("\n".join([json.dumps(toy_record())] * 4)).encode(), NDJSON, max_records=3)
    with pytest.raises(TooManyRecords):
        decode({"model": "toy", "model_version": "v1", "features": {}, "predictions": [1, 2, 3, 4]}, max_records=3)


def test_parse_json_prefers_orjson_but_accepts_python_literals() -> None:
    assert parse_json(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    assert parse_json(b"[Infinity]") == [float("inf")]


# ----------------------------------------------------------------------------- rejections

GOOD = toy_record()
SPECIES = {"model": "species", "model_version": "v1", "features": {"petal": 1.0}}

# One bad record per reachable reason, each between two good neighbours.
BAD_RECORDS: dict[str, Any] = {
    "not_an_object": [1, 2],
    "missing_model": {**GOOD, "model": None},
    "unknown_model": {**GOOD, "model": "nope"},
    "invalid_model_version": {**GOOD, "model_version": "v 1"},
    "model_version_too_long": {**GOOD, "model_version": "v" * 13},
    "invalid_features": {**GOOD, "features": [1.0, "red"]},
    "missing_prediction": {k: v for k, v in GOOD.items() if k != "prediction"},
    "invalid_prediction": {**GOOD, "prediction": "0.5"},
    "invalid_id": {**GOOD, "id": {"nested": 1}},
    "invalid_timestamp": {**GOOD, "timestamp": "yesterday"},
    "value_too_long": {**GOOD, "id": "i" * 257},
}


@pytest.mark.parametrize("reason", list(BAD_RECORDS))
def test_rejects_a_bad_record_with_its_reason_and_keeps_its_neighbours(reason: str) -> None:
    decoded = decode([GOOD, BAD_RECORDS[reason], GOOD])
    assert reasons(decoded) == [(1, reason)]
    assert accepted(decoded) == 2
    assert decoded.rejections[0].detail


def test_every_rejection_reason_is_tested() -> None:
    # malformed_json is an NDJSON-only reason, tested with NDJSON bodies above; the three version
    # reasons are decided by the state (tests/test_versions.py), not by the decoder; type_error only
    # with exporter.type_errors: reject (tests/test_serving_formats.py).
    state_reasons = {"version_not_allowed", "version_rate_limited", "too_many_versions"}
    assert set(REJECTION_REASONS) - set(BAD_RECORDS) == {"malformed_json", "type_error"} | state_reasons


def test_every_batch_knows_the_positions_of_its_records_in_the_body() -> None:
    decoded = decode([toy_record("v1"), toy_record("v2"), GOOD, toy_record("v2")])
    assert {b.version: list(b.indices) for b in decoded.batches} == {"v1": [0, 2], "v2": [1, 3]}


def test_the_rejection_keeps_the_model_name_when_it_is_known() -> None:
    decoded = decode([BAD_RECORDS["invalid_prediction"], BAD_RECORDS["unknown_model"]])
    assert [r.model for r in decoded.rejections] == ["toy", "__unknown__"]
    assert decoded.rejections[1].to_json() == {"index": 1, "reason": "unknown_model", "detail": "model 'nope' is not in the config"}


@pytest.mark.parametrize("version", ["1.2.3", "v1+build.7", "2024-01-01", "a:b", 7, 2.5])
def test_accepts_label_safe_model_versions_and_numbers(version: Any) -> None:
    decoded = decode({**GOOD, "model_version": version})
    assert decoded.rejections == []
    assert decoded.batches[0].version == str(version)


@pytest.mark.parametrize("version", [None, True, "", "-v1", "v/1", 'v"1', ["v1"]])
def test_rejects_model_versions_that_are_not_label_safe(version: Any) -> None:
    assert reasons(decode({**GOOD, "model_version": version})) == [(0, "invalid_model_version")]


@pytest.mark.parametrize("timestamp", [1700000000, 1700000000.5, "2024-05-01T12:00:00Z", "2024-05-01T12:00:00+02:00", None])
def test_accepts_unix_and_rfc3339_timestamps(timestamp: Any) -> None:
    assert decode({**GOOD, "timestamp": timestamp}).rejections == []


@pytest.mark.parametrize("prediction", [True, None, [0.5], {"a": 1}])
def test_a_numeric_prediction_must_be_a_number(prediction: Any) -> None:
    assert reasons(decode({**GOOD, "prediction": prediction})) == [(0, "invalid_prediction")]


@pytest.mark.parametrize(("prediction", "predicted"), [("cat", "cat"), (3, "3"), ({"cat": 0.2, "dog": 0.8}, "dog")])
def test_a_class_prediction_is_a_class_or_the_argmax_of_scores(prediction: Any, predicted: str) -> None:
    decoded = decode({**SPECIES, "prediction": prediction})
    assert decoded.batches[0].predictions == [predicted]


@pytest.mark.parametrize("prediction", [{}, {"cat": "high"}, {"cat": float("nan")}, 0.7, True])
def test_rejects_class_predictions_that_name_no_class(prediction: Any) -> None:
    assert reasons(decode({**SPECIES, "prediction": prediction})) == [(0, "invalid_prediction")]


def test_counts_unknown_feature_keys_per_record() -> None:
    records = [toy_record(debug=1), toy_record(debug=1, trace="x"), toy_record()]
    assert decode(records).batches[0].unknown_features == 3


def test_absent_features_are_marked_missing_not_null() -> None:
    record = toy_record()
    del record["features"]["x"]
    record["features"]["color"] = None
    (batch,) = decode([record]).batches
    assert batch.features["x"] == [MISSING]
    assert batch.features["color"] == [None]


def test_a_columnar_batch_knows_the_positions_of_the_rows_it_kept() -> None:
    body = {"model": "toy", "model_version": "v1", "features": {"x": [1.0, 2.0, 3.0]}, "predictions": [0.1, "no", 0.3]}
    (batch,) = decode(body).batches
    assert list(batch.indices) == [0, 2]
