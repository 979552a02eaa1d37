"""The ingest API over real HTTP: answers, limits, data-quality counters and capture, read back from /metrics."""

from __future__ import annotations

import json
import time
from typing import Any, Callable

import pytest
import requests

from conftest import LiveExporter, build_config, series, toy_model_data, toy_record
from exporter.config.model import MlmonConfig

V1 = {"model": "toy", "model_version": "v1"}


def feature(live: LiveExporter, name: str, feature: str, **labels: str) -> float | None:
    return live.value(name, **V1, feature=feature, **labels)


# ----------------------------------------------------------------------------- answers


def test_accepts_records_and_counts_them(toy_exporter: LiveExporter) -> None:
    answer = toy_exporter.post_ok([toy_record(), toy_record(), toy_record("v2")])
    assert answer == {"accepted": 3, "rejected": 0, "rejections": []}
    assert toy_exporter.value("mlmon_predictions_total", **V1) == 2
    assert toy_exporter.value("mlmon_predictions_total", model="toy", model_version="v2") == 1


def test_a_bad_record_is_listed_with_its_reason_and_its_neighbours_are_kept(toy_exporter: LiveExporter) -> None:
    answer = toy_exporter.post_ok([toy_record(), {**toy_record(), "prediction": "high"}, toy_record(), {"model": "nope"}])
    assert answer["accepted"] == 2 and answer["rejected"] == 2
    assert [(r["index"], r["reason"]) for r in answer["rejections"]] == [(1, "invalid_prediction"), (3, "unknown_model")]
    assert toy_exporter.value("mlmon_predictions_total", **V1) == 2
    assert toy_exporter.value("mlmon_records_rejected_total", model="toy", reason="invalid_prediction") == 1
    assert toy_exporter.value("mlmon_records_rejected_total", model="__unknown__", reason="unknown_model") == 1


def test_answers_422_when_every_record_is_rejected(toy_exporter: LiveExporter) -> None:
    response = toy_exporter.post([{"model": "nope"}])
    assert response.status_code == 422
    assert response.json()["rejected"] == 1


def test_ndjson_with_one_malformed_line_rejects_only_that_line(toy_exporter: LiveExporter) -> None:
    body = "\n".join([json.dumps(toy_record()), "{oops", json.dumps(toy_record())])
    answer = toy_exporter.post_ok(body, "application/x-ndjson")
    assert (answer["accepted"], answer["rejected"]) == (2, 1)
    assert answer["rejections"][0]["reason"] == "malformed_json"
    assert toy_exporter.value("mlmon_records_rejected_total", model="__unknown__", reason="malformed_json") == 1


def test_columnar_body_is_ingested(toy_exporter: LiveExporter) -> None:
    body = {**V1, "features": {"x": [1.0, 2.0, 3.0], "color": ["red"] * 3, "flag": [True] * 3},
            "predictions": [0.1, 0.2, 0.3]}
    assert toy_exporter.post_ok(body)["accepted"] == 3
    assert toy_exporter.value("mlmon_predictions_total", **V1) == 3


def test_columnar_length_mismatch_is_a_400_json_error(toy_exporter: LiveExporter) -> None:
    response = toy_exporter.post({**V1, "features": {"x": [1.0]}, "predictions": [0.1, 0.2]})
    assert response.status_code == 400
    assert response.headers["Content-Type"] == "application/json"
    assert "features.x must be an array of 2 values" in response.json()["error"]


@pytest.mark.parametrize("body", [b"{oops", b"[1, 2", b"\xff\xfe\x00", b"42", b"null", b""])
def test_a_malformed_body_is_a_400_json_error_never_a_500(toy_exporter: LiveExporter, body: bytes) -> None:
    response = toy_exporter.post(body)
    assert response.status_code == 400
    assert set(response.json()) == {"error"}
    assert toy_exporter.value("mlmon_ingest_requests_total", endpoint="predictions", code="400") == 1


def test_an_empty_ndjson_body_or_empty_array_is_accepted_as_nothing(toy_exporter: LiveExporter) -> None:
    assert toy_exporter.post_ok(b"", "application/x-ndjson") == {"accepted": 0, "rejected": 0, "rejections": []}
    assert toy_exporter.post_ok([]) == {"accepted": 0, "rejected": 0, "rejections": []}


def test_nan_and_infinity_literals_are_counted_as_non_finite(toy_exporter: LiveExporter) -> None:
    body = "[" + ",".join(json.dumps(toy_record(x=v)) for v in (float("nan"), float("inf"), float("-inf"), 1.0)) + "]"
    assert "NaN" in body
    assert toy_exporter.post_ok(body)["accepted"] == 4
    assert feature(toy_exporter, "mlmon_feature_nonfinite_total", "x") == 3


def test_unknown_paths_and_methods_answer_json(toy_exporter: LiveExporter) -> None:
    missing = requests.get(f"{toy_exporter.ingest_url}/v2/nothing", timeout=5)
    assert missing.status_code == 404 and "error" in missing.json()
    wrong = requests.get(toy_exporter.predictions_url, timeout=5)
    assert wrong.status_code == 405 and "error" in wrong.json()


def test_reports_at_most_the_configured_number_of_rejections(
    start_exporter: Callable[[MlmonConfig], LiveExporter], toy_data: dict[str, Any], toy_dir
) -> None:
    toy_data["exporter"]["max_reported_rejections"] = 2
    live = start_exporter(build_config(toy_data, base_dir=toy_dir))
    answer = live.post([{"model": "nope"}] * 5 + [toy_record()]).json()
    assert answer["rejected"] == 5 and len(answer["rejections"]) == 2 and answer["rejections_truncated"] is True


def test_health_and_readiness_answer_on_both_listeners(toy_exporter: LiveExporter) -> None:
    for base in (toy_exporter.ingest_url, toy_exporter.metrics_url):
        assert requests.get(f"{base}/healthz", timeout=5).json() == {"status": "ok"}
        ready = requests.get(f"{base}/readyz", timeout=5)
        assert ready.status_code == 200 and ready.json() == {"status": "ready"}


# ----------------------------------------------------------------------------- data quality, end to end


def test_counts_every_data_quality_problem_exactly(toy_exporter: LiveExporter) -> None:
    missing_x = toy_record()
    del missing_x["features"]["x"]
    records = [
        toy_record(),                                   # clean
        missing_x,                                      # x missing
        toy_record(x=None, color=None),                 # null x, null color
        toy_record(x="12"), toy_record(x=False),        # wrong types for a numeric
        toy_record(x=-0.5), toy_record(x=-100.0),       # below the reference min (0)
        toy_record(x=99.5),                             # above the reference max (99)
        toy_record(x=0.0), toy_record(x=99.0),          # exactly at min and max: in range
        toy_record(color="purple"), toy_record(color="mauve"),  # categories the reference never saw
        toy_record(color=7),                            # an integer category is read as "7": unseen
        toy_record(color=1.5), toy_record(flag="yes"),  # wrong types for categorical and boolean
        toy_record(debug=1, trace_id="t"),              # two undeclared feature keys
    ]
    answer = toy_exporter.post_ok(records)
    quality = answer.pop("quality")
    assert answer == {"accepted": len(records), "rejected": 0, "rejections": []}
    # The answer says what was wrong, with the same counts as the counters below.
    examples = quality.pop("examples")
    assert quality == {"type_errors": 4, "null": 2, "missing": 1, "unknown_features": 2, "out_of_range": 3}
    assert examples[:2] == [{"index": 3, "feature": "x", "problem": "type_error", "value": "'12'"},
                            {"index": 4, "feature": "x", "problem": "type_error", "value": "False"}]
    samples = toy_exporter.samples()

    def value(name: str, feature_name: str, **labels: str) -> float:
        return samples[(name, frozenset({**V1, "feature": feature_name, **labels}.items()))]

    assert value("mlmon_feature_missing_total", "x") == 1
    assert value("mlmon_feature_null_total", "x") == 1
    assert value("mlmon_feature_null_total", "color") == 1
    assert value("mlmon_feature_type_errors_total", "x") == 2
    assert value("mlmon_feature_type_errors_total", "color") == 1
    assert value("mlmon_feature_type_errors_total", "flag") == 1
    assert value("mlmon_feature_nonfinite_total", "x") == 0
    assert value("mlmon_feature_out_of_range_total", "x", side="below") == 2
    assert value("mlmon_feature_out_of_range_total", "x", side="above") == 1
    assert value("mlmon_feature_unseen_category_total", "color") == 3
    assert value("mlmon_feature_unseen_category_total", "flag") == 0
    assert samples[("mlmon_unknown_features_total", frozenset(V1.items()))] == 2
    # Values with a problem are not binned; the rest are, in the bins they belong to.
    x_bins = {dict(k)["bin"]: v for k, v in series(samples, "mlmon_feature_bin_total", **V1, feature="x").items()}
    assert x_bins["00"] == 2 and x_bins["11"] == 1 and x_bins["01"] == 1 and x_bins["10"] == 1
    assert sum(x_bins.values()) == len(records) - 4  # missing, null and two wrong types
    color_bins = {dict(k)["bin"]: v for k, v in series(samples, "mlmon_feature_bin_total", **V1, feature="color").items()}
    assert color_bins == {"red": len(records) - 5, "green": 0, "blue": 0, "__other__": 3}


def test_exports_the_reference_ratio_next_to_every_bin(toy_exporter: LiveExporter) -> None:
    toy_exporter.post_ok([toy_record()])
    samples = toy_exporter.samples()
    ratios = {dict(k)["bin"]: v for k, v in series(samples, "mlmon_feature_reference_ratio", **V1, feature="color").items()}
    assert ratios == {"red": 0.5, "green": 0.3, "blue": 0.2, "__other__": 0.0}
    bins = series(samples, "mlmon_feature_bin_total", **V1)
    reference = series(samples, "mlmon_feature_reference_ratio", **V1)
    assert set(bins) == {frozenset((k, v) for k, v in key if k != "bin_label") for key in reference}
    # Each ratio names its bin as a person reads it (the edges in feature units; categories by name).
    labels = {dict(k)["bin"]: dict(k)["bin_label"] for k in series(samples, "mlmon_feature_reference_ratio", **V1,
                                                                    feature="color")}
    assert labels == {"red": "red", "green": "green", "blue": "blue", "__other__": "(other)"}
    prediction = series(samples, "mlmon_prediction_reference_ratio", **V1)
    assert len(prediction) == 6 and sum(prediction.values()) == pytest.approx(1.0)


# ----------------------------------------------------------------------------- limits


@pytest.fixture
def limited(start_exporter: Callable[[MlmonConfig], LiveExporter], toy_data: dict[str, Any], toy_dir) -> LiveExporter:
    toy_data["exporter"].update(
        max_request_bytes=4096, max_records_per_request=5, max_versions_per_model=2, max_label_value_length=10
    )
    return start_exporter(build_config(toy_data, base_dir=toy_dir))


def test_a_body_over_max_request_bytes_is_a_413_and_counted(limited: LiveExporter) -> None:
    response = limited.post(b"[" + b" " * 5000 + b"]")
    assert response.status_code == 413
    assert response.json() == {"error": "request body exceeds max_request_bytes (4096)", "limit": "request_bytes"}
    assert limited.value("mlmon_limit_hits_total", limit="request_bytes") == 1
    assert limited.value("mlmon_ingest_requests_total", endpoint="predictions", code="413") == 1
    # The listener keeps serving after refusing a body.
    assert limited.post_ok([toy_record()])["accepted"] == 1


def test_a_body_exactly_at_max_request_bytes_is_read(limited: LiveExporter) -> None:
    body = json.dumps([toy_record()]).encode()
    body = body[:-1] + b" " * (4096 - len(body)) + b"]"
    assert len(body) == 4096
    assert limited.post_ok(body)["accepted"] == 1


def test_a_chunked_body_over_max_request_bytes_is_a_413(limited: LiveExporter) -> None:
    chunks = (b" " * 1024 for _ in range(8))  # no Content-Length: the limit must hold while reading
    response = limited.http.post(limited.predictions_url, data=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 413
    assert limited.value("mlmon_limit_hits_total", limit="request_bytes") == 1


def test_a_chunked_body_exactly_at_max_request_bytes_is_read_whole(limited: LiveExporter) -> None:
    body = json.dumps([toy_record()] * 5).encode()
    body = body[:-1] + b" " * (4096 - len(body)) + b"]"
    chunks = (body[i : i + 1000] for i in range(0, len(body), 1000))
    response = limited.http.post(limited.predictions_url, data=chunks, headers={"Content-Type": "application/json"})
    assert response.status_code == 200 and response.json()["accepted"] == 5


def test_more_records_than_max_records_per_request_is_a_413_and_counted(limited: LiveExporter) -> None:
    response = limited.post([toy_record()] * 6)
    assert response.status_code == 413
    assert response.json() == {"error": "6 records: more than exporter.max_records_per_request allows", "limit": "records_per_request"}
    assert limited.value("mlmon_limit_hits_total", limit="records_per_request") == 1
    assert limited.value("mlmon_predictions_total", **V1) is None  # nothing of the batch was kept
    assert limited.post_ok([toy_record()] * 5)["accepted"] == 5


def test_a_model_version_over_max_label_value_length_is_rejected_with_its_reason(limited: LiveExporter) -> None:
    answer = limited.post_ok([toy_record("v" * 11), toy_record("v" * 10)])
    assert answer["accepted"] == 1
    assert answer["rejections"][0]["reason"] == "model_version_too_long"
    assert limited.value("mlmon_records_rejected_total", model="toy", reason="model_version_too_long") == 1
    assert limited.value("mlmon_limit_hits_total", limit="label_value_length") == 1
    assert limited.value("mlmon_predictions_total", model="toy", model_version="v" * 11) is None


def test_a_new_version_beyond_the_cap_is_refused_while_the_held_ones_are_in_use(limited: LiveExporter) -> None:
    limited.post_ok([toy_record("a")])
    limited.post_ok([toy_record("b")])
    answer = limited.post_ok([toy_record("a"), toy_record("c")])  # a and b were seen within evict_idle_after
    assert answer["rejections"] == [{"index": 1, "reason": "too_many_versions", "detail": answer["rejections"][0]["detail"]}]
    samples = limited.samples()
    assert samples[("mlmon_model_versions_evicted_total", frozenset({"model": "toy"}.items()))] == 0
    assert samples[("mlmon_limit_hits_total", frozenset({"limit": "versions_per_model"}.items()))] == 1
    versions = {dict(k)["model_version"] for (name, k) in samples if "model_version" in dict(k)}
    assert versions == {"a", "b"}


def test_the_least_recently_seen_version_is_evicted_once_idle_and_its_series_disappear(
    start_exporter: Callable[[MlmonConfig], LiveExporter], toy_data: dict[str, Any], toy_dir
) -> None:
    toy_data["exporter"]["max_versions_per_model"] = 2
    toy_data["models"][0]["versions"] = {"evict_idle_after": "1s"}
    live = start_exporter(build_config(toy_data, base_dir=toy_dir))
    live.post_ok([toy_record("a")])
    live.post_ok([toy_record("b")])
    time.sleep(1.1)
    live.post_ok([toy_record("a")])
    live.post_ok([toy_record("c")])  # b is the least recently seen, idle for over 1 s
    samples = live.samples()
    assert samples[("mlmon_model_versions_evicted_total", frozenset({"model": "toy"}.items()))] == 1
    assert samples[("mlmon_limit_hits_total", frozenset({"limit": "versions_per_model"}.items()))] == 1
    versions = {dict(k)["model_version"] for (name, k) in samples if "model_version" in dict(k)}
    assert versions == {"a", "c"}
    assert samples[("mlmon_predictions_total", frozenset({"model": "toy", "model_version": "a"}.items()))] == 2


# ----------------------------------------------------------------------------- reference capture


def test_a_captured_reference_shows_capturing_until_n_samples_then_bins(
    start_exporter: Callable[[MlmonConfig], LiveExporter],
) -> None:
    live = start_exporter(build_config({"models": [toy_model_data(reference={"capture": 20})]}))
    live.post_ok([toy_record(x=float(i)) for i in range(12)])
    samples = live.samples()
    assert samples[("mlmon_reference_capturing", frozenset(V1.items()))] == 1
    assert samples[("mlmon_reference_samples", frozenset(V1.items()))] == 12
    assert series(samples, "mlmon_feature_bin_total") == {}
    info = series(samples, "mlmon_model_info", **V1)
    assert [dict(k)["reference_hash"] for k in info] == [""]

    live.post_ok([toy_record(x=float(i)) for i in range(12, 24)])
    samples = live.samples()
    assert samples[("mlmon_reference_capturing", frozenset(V1.items()))] == 0
    assert samples[("mlmon_reference_samples", frozenset(V1.items()))] == 20
    x_bins = series(samples, "mlmon_feature_bin_total", **V1, feature="x")
    assert len(x_bins) == 12
    assert sum(x_bins.values()) == 4  # the four records past the capture target
    assert sum(series(samples, "mlmon_feature_reference_ratio", **V1, feature="x").values()) == pytest.approx(1.0)
    (hash_label,) = [dict(k)["reference_hash"] for k in series(samples, "mlmon_model_info", **V1)]
    assert len(hash_label) == 12
