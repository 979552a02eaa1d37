"""Serving platforms' bodies: OIP v2, KServe v1 and the KServe logger's CloudEvents, over real HTTP."""

from __future__ import annotations

from typing import Any

import pytest
import requests

from conftest import LiveExporter, build_config, toy_model_data
from exporter.ingest.cloudevents import REQUEST_TYPE, RESPONSE_TYPE, EventStore
from exporter.ingest.decode import BodyError
from exporter.ingest.serving import decode_serving

ROWS = [[10.0, "red", True], [20.0, "blue", False], [30.0, "red", True]]
SCORES = [0.1, 0.2, 0.3]


def v2_request(rows: list[list[Any]] = ROWS) -> dict[str, Any]:
    """One request, one input per feature (as MLServer and Triton send named columns)."""
    columns = list(zip(*rows))
    return {"id": "req-1", "inputs": [
        {"name": "x", "shape": [len(rows)], "datatype": "FP64", "data": list(columns[0])},
        {"name": "color", "shape": [len(rows)], "datatype": "BYTES", "data": list(columns[1])},
        {"name": "flag", "shape": [len(rows), 1], "datatype": "BOOL", "data": [[v] for v in columns[2]]},
    ]}


def v2_response(scores: list[float] = SCORES, version: str | None = None) -> dict[str, Any]:
    body: dict[str, Any] = {"model_name": "toy", "id": "req-1",
                            "outputs": [{"name": "score", "shape": [len(scores)], "datatype": "FP64", "data": scores}]}
    if version:
        body["model_version"] = version
    return body


def ingest(live: LiveExporter, path: str, body: Any, headers: dict[str, str] | None = None) -> requests.Response:
    return live.http.post(live.ingest_url + path, json=body, headers=headers or {}, timeout=10)


# ----------------------------------------------------------------------------- decoders


def test_a_2d_input_is_split_in_the_configs_feature_order(toy_config) -> None:
    body = {"inputs": [{"name": "input-0", "shape": [3, 3], "datatype": "BYTES", "data": ROWS}],
            "outputs": [{"name": "output-0", "shape": [3], "datatype": "FP64", "data": SCORES}]}
    decoded = decode_serving(body, "toy", None, toy_config, 100)
    [batch] = decoded.batches
    assert batch.features == {"x": [10.0, 20.0, 30.0], "color": ["red", "blue", "red"], "flag": [True, False, True]}
    assert batch.predictions == SCORES and batch.version == "default"


def test_serving_columns_and_names_override_the_order_and_the_model_name(toy_dir) -> None:
    model = {**toy_model_data(), "serving": {"names": ["toy-isvc"], "columns": ["color", "x", "flag"]}}
    config = build_config({"models": [model]}, base_dir=toy_dir)
    body = {"instances": [["red", 10.0, True]], "predictions": [0.5]}
    [batch] = decode_serving(body, "toy-isvc", "v7", config, 100).batches
    assert batch.model.name == "toy" and batch.version == "v7"
    assert batch.features == {"x": [10.0], "color": ["red"], "flag": [True]}


def test_shapes_that_disagree_with_their_data_are_a_400(toy_config) -> None:
    body = {"inputs": [{"name": "x", "shape": [3], "datatype": "FP64", "data": [1.0]}],
            "outputs": [{"name": "score", "shape": [1], "datatype": "FP64", "data": [0.5]}]}
    with pytest.raises(BodyError, match="needs 3 values"):
        decode_serving(body, "toy", None, toy_config, 100)
    with pytest.raises(BodyError, match="a request alone"):
        decode_serving(v2_request(), "toy", None, toy_config, 100)


def test_event_store_joins_in_either_order_and_counts_repeats_orphans_and_evictions() -> None:
    store = EventStore(size=2, max_bytes=1000, ttl=10)
    assert store.offer("a", "response", b"R", now=0) is None
    assert store.offer("a", "request", b"Q", now=1) == (b"Q", b"R")  # always (request, response)
    assert store.offer("a", "request", b"Q", now=2) is None          # a repeat of a joined id
    store.offer("b", "request", b"Q", now=3)
    store.offer("b", "request", b"Q", now=3)                          # a repeat of a held half
    store.offer("c", "request", b"Q", now=4)
    store.offer("d", "request", b"Q", now=5)                          # room for 2: b is evicted
    store.expire(now=100)                                             # c and d never got a response
    assert dict(store.counts) == {"received": 7, "joined": 1, "duplicate": 2, "expired": 2, "evicted": 1}
    assert len(store) == 0


# ----------------------------------------------------------------------------- over HTTP


def test_oip_v2_infer_path_ingests_request_and_response_in_one_body(toy_exporter: LiveExporter) -> None:
    response = ingest(toy_exporter, "/v2/models/toy/versions/v3/infer", {**v2_request(), **v2_response()})
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 3
    assert toy_exporter.value("mlmon_predictions_total", model="toy", model_version="v3") == 3


def test_kserve_v1_predict_path_takes_objects_and_lists(toy_exporter: LiveExporter) -> None:
    body = {"instances": [{"x": 10.0, "color": "red", "flag": True}, [20.0, "blue", False], [1.0]],
            "predictions": [0.1, 0.2, 0.3]}
    answer = ingest(toy_exporter, "/v1/models/toy:predict", body).json()
    assert (answer["accepted"], answer["rejected"]) == (2, 1)
    assert answer["rejections"][0]["reason"] == "invalid_features"
    assert toy_exporter.value("mlmon_predictions_total", model="toy", model_version="default") == 2
    assert ingest(toy_exporter, "/v1/models/nope:predict", body).status_code == 422


def logger_headers(event_id: str, kind: str, endpoint: str = "default") -> dict[str, str]:
    """The headers KServe's logger sets in binary mode (kserve/kserve pkg/logger/worker.go)."""
    return {"Ce-Specversion": "1.0", "Ce-Id": event_id, "Ce-Type": kind, "Ce-Source": "http://localhost:9081/",
            "Ce-Inferenceservicename": "toy", "Ce-Namespace": "default", "Ce-Component": "predictor",
            "Ce-Endpoint": endpoint, "Ce-Metadata": "{}", "Content-Type": "application/json"}


def test_kserve_logger_pairs_are_joined_by_ce_id_in_either_order(toy_exporter: LiveExporter) -> None:
    first = ingest(toy_exporter, "/v1/cloudevents", v2_response(), logger_headers("e1", RESPONSE_TYPE, "canary"))
    assert first.status_code == 200 and first.json()["pending"] is True
    second = ingest(toy_exporter, "/v1/cloudevents", v2_request(), logger_headers("e1", REQUEST_TYPE, "canary"))
    assert second.json()["accepted"] == 3
    ingest(toy_exporter, "/v1/cloudevents", v2_request(), logger_headers("e1", REQUEST_TYPE, "canary"))  # a repeat
    v1 = {"instances": [[10.0, "red", True]]}
    ingest(toy_exporter, "/v1/cloudevents", v1, logger_headers("e2", REQUEST_TYPE))
    ingest(toy_exporter, "/v1/cloudevents", {"predictions": [0.4]}, logger_headers("e2", RESPONSE_TYPE))
    ingest(toy_exporter, "/v1/cloudevents", v1, logger_headers("e3", REQUEST_TYPE))  # an orphan, for now
    assert toy_exporter.value("mlmon_predictions_total", model="toy", model_version="canary") == 3
    assert toy_exporter.value("mlmon_predictions_total", model="toy", model_version="default") == 1
    assert toy_exporter.value("mlmon_cloudevents_total", outcome="joined") == 2
    assert toy_exporter.value("mlmon_cloudevents_total", outcome="duplicate") == 1
    assert toy_exporter.value("mlmon_cloudevents_pending") == 1
    bad = ingest(toy_exporter, "/v1/cloudevents", v1, {"Ce-Id": "x", "Ce-Type": "something.else"})
    assert bad.status_code == 400
    long_id = ingest(toy_exporter, "/v1/cloudevents", v1, logger_headers("i" * 257, REQUEST_TYPE))
    assert long_id.status_code == 400 and long_id.json()["limit"] == "string_length"


# ----------------------------------------------------------------------------- predictions as models emit them

from types import SimpleNamespace  # noqa: E402

from exporter.ingest.decode import check_prediction, valid_version  # noqa: E402


def fake_model(task: str, kind: str, classes: list[str] | None = None) -> Any:
    return SimpleNamespace(name="m", task=task, prediction=SimpleNamespace(type=kind, classes=classes),
                           quality_classes=tuple(classes or ()))


@pytest.mark.parametrize(("value", "expected"), [
    ([0.2, 0.8], 0.8), ([0.7], 0.7), ({"0": 0.3, "1": 0.7}, 0.7), ({"false": 0.9, "true": 0.1}, 0.1),
])
def test_a_binary_model_takes_its_predict_proba_row_or_class_scores(value: Any, expected: float) -> None:
    assert check_prediction(fake_model("binary_classification", "numeric"), value) == expected


def test_binary_class_scores_use_the_configured_positive_class() -> None:
    model = fake_model("binary_classification", "numeric", ["stay", "churn"])
    assert check_prediction(model, {"stay": 0.25, "churn": 0.75}) == 0.75
    with pytest.raises(ValueError, match="positive class"):
        check_prediction(model, {"0": 0.25, "1": 0.75})


def test_a_multiclass_row_is_read_in_class_order_and_ties_go_to_the_first_class() -> None:
    model = fake_model("multiclass_classification", "categorical", ["cat", "dog", "fox"])
    assert check_prediction(model, [0.1, 0.7, 0.2]) == "dog"
    assert check_prediction(model, [0.4, 0.4, 0.2]) == "cat"
    assert check_prediction(model, {"fox": 0.4, "dog": 0.4, "cat": 0.2}) == "dog"  # class order, not key order
    with pytest.raises(ValueError, match="one finite number per class"):
        check_prediction(model, [0.5, 0.5])


def test_a_regression_model_still_needs_a_number() -> None:
    with pytest.raises(ValueError):
        check_prediction(fake_model("regression", "numeric"), [1.0, 2.0])


@pytest.mark.parametrize(("raw", "label"), [
    ("models:/churn/3", "churn.3"), ("models:/churn@champion", "churn.champion"),
    ("sha256:" + "0123456789abcdef" * 4, "sha256:0123456789ab"),
    ("registry.example/churn@sha256:" + "f" * 64, "sha256:ffffffffffff"),
    ("v1.2.3", "v1.2.3"), ("a/b", None), ("models:/churn/3/extra", None),
])
def test_registry_versions_map_to_short_label_safe_values(raw: str, label: str | None) -> None:
    assert valid_version(raw, 64) == label


def test_an_mlflow_version_over_http_is_counted_under_its_label(toy_exporter: LiveExporter) -> None:
    record = {"model": "toy", "model_version": "models:/toy/3", "features": {"x": 1.0, "color": "red", "flag": True},
              "prediction": 0.5}
    assert toy_exporter.post_ok([record])["accepted"] == 1
    assert toy_exporter.value("mlmon_predictions_total", model="toy", model_version="toy.3") == 1


# ----------------------------------------------------------------------------- type errors: count, parse or reject


@pytest.fixture
def typed_exporter(start_exporter, toy_data, toy_dir):
    def start(mode: str) -> LiveExporter:
        data = {**toy_data, "exporter": {**toy_data["exporter"], "type_errors": mode}}
        return start_exporter(build_config(data, base_dir=toy_dir))
    return start


STRINGY = [{"model": "toy", "model_version": "v1", "features": {"x": "12", "color": "red", "flag": "True"},
            "prediction": 0.5},
           {"model": "toy", "model_version": "v1", "features": {"x": 12.0, "color": "red", "flag": True},
            "prediction": 0.5}]


def test_numeric_strings_are_counted_and_said_by_default(typed_exporter) -> None:
    answer = typed_exporter("count").post_ok(STRINGY)
    assert answer["accepted"] == 2 and answer["quality"]["type_errors"] == 2
    assert {e["feature"] for e in answer["quality"]["examples"]} == {"x", "flag"}


def test_numeric_strings_are_parsed_when_asked(typed_exporter) -> None:
    live = typed_exporter("parse")
    answer = live.post_ok(STRINGY)
    assert answer == {"accepted": 2, "rejected": 0, "rejections": []}
    assert live.value("mlmon_feature_type_errors_total", model="toy", model_version="v1", feature="x") == 0


def test_type_errors_reject_their_records_when_strict(typed_exporter) -> None:
    live = typed_exporter("reject")
    answer = live.post_ok(STRINGY)
    assert (answer["accepted"], answer["rejected"]) == (1, 1)
    assert answer["rejections"][0]["index"] == 0 and answer["rejections"][0]["reason"] == "type_error"
    assert live.value("mlmon_predictions_total", model="toy", model_version="v1") == 1
    assert live.value("mlmon_records_rejected_total", model="toy", reason="type_error") == 1


def test_records_without_their_segments_are_said_in_the_answer(example_exporter: LiveExporter) -> None:
    body = {"model": "fraud", "model_version": "v1", "predictions": [0.1, 0.9],
            "features": {"amount": [12.5, 900.0], "account_age_days": [300, 2], "country": ["DE", "FR"],
                         "channel": ["web", "app"], "is_international": [False, True]},
            "segments": [{"country": "DE", "channel": "web"}, {"country": "FR"}]}
    answer = example_exporter.post_ok(body)
    assert answer["quality"]["missing_segments"] == 1


def test_serving_columns_must_name_features(toy_dir) -> None:
    from exporter.config.errors import ConfigError

    model = {**toy_model_data(), "serving": {"columns": ["x", "colour", "flag"]}}
    with pytest.raises((ConfigError, ValueError), match="serving.columns"):
        build_config({"models": [model]}, base_dir=toy_dir)
