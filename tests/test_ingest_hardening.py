"""Hostile values in real requests: exact counts for mixed batches, no 5xx, retries that never count twice.

Each test posts to a real exporter and reads the counters back from /metrics (issue 16, items 3, 4, 8).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from conftest import LiveExporter, build_config, example_config_data, series

COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "NG", "JP"]
FRAUD = {"model": "fraud", "model_version": "v1"}
DELIVERY = {"model": "delivery_time", "model_version": "v1"}


def fraud_record(i: int, **features: Any) -> dict[str, Any]:
    values = {"amount": 10.0 + i % 500, "account_age_days": 1 + i % 3000, "country": COUNTRIES[i % 8],
              "channel": ["web", "app", "pos"][i % 3], "is_international": bool(i % 2)}
    values.update(features)
    return {**FRAUD, "id": f"f-{i}", "features": values, "prediction": (i % 100) / 100.0,
            "segments": {"country": COUNTRIES[i % 8]}}


def delivery_record(i: int, prediction: Any = 30.0, **features: Any) -> dict[str, Any]:
    values = {"distance_km": 1.0 + i % 30, "items": 1 + i % 7, "hour": i % 24, "weather": "clear"}
    values.update(features)
    return {**DELIVERY, "id": f"d-{i}", "features": values, "prediction": prediction}


def raw_post(live: LiveExporter, body: bytes, content_type: str = "application/json", **headers: str):
    return live.http.post(live.predictions_url, data=body, headers={"Content-Type": content_type, **headers},
                          timeout=10)


def total(live: LiveExporter, name: str, **labels: str) -> float:
    return sum(series(live.samples(), name, **labels).values())


@pytest.fixture
def limited(start_exporter) -> LiveExporter:
    data = example_config_data()
    data["exporter"].update(max_string_length=32, max_nesting_depth=8, max_abs_value=1e12)
    return start_exporter(build_config(data))


# ----------------------------------------------------------------------------- mixed batches


def test_a_mixed_batch_keeps_every_good_record_and_counts_every_bad_value_exactly(limited: LiveExporter) -> None:
    good = [fraud_record(i) for i in range(40)]
    bad_values = [
        fraud_record(100, amount=[5.0]),                  # a list for a number: type error, record kept
        fraud_record(101, amount={"v": 5.0}),             # an object for a number: type error
        fraud_record(102, country="x" * 5_000),           # a category over max_string_length: type error
        fraud_record(103, country=["DE"]),                # a list for a category: type error
    ]
    rejected = [
        {**fraud_record(200), "id": "i" * 33},            # an id over max_string_length
        {**fraud_record(201), "prediction": [0.5, 0.3, 0.2]},  # three scores for a binary model
        {**fraud_record(202), "model_version": "v" * 65}, # a version over max_label_value_length
    ]
    body = json.dumps(good + bad_values + rejected).encode()
    body = body.replace(b'"amount": 10.0', b'"amount": ' + b"1" + b"0" * 400, 1)  # a 401-digit integer, f-0
    answer = raw_post(limited, body).json()
    assert (answer["accepted"], answer["rejected"]) == (44, 3)
    assert [r["reason"] for r in answer["rejections"]] == ["value_too_long", "invalid_prediction",
                                                         "model_version_too_long"]
    assert limited.value("mlmon_predictions_total", **FRAUD) == 44
    assert limited.value("mlmon_feature_type_errors_total", **FRAUD, feature="amount") == 2
    assert limited.value("mlmon_feature_nonfinite_total", **FRAUD, feature="amount") == 1  # beyond float range
    assert limited.value("mlmon_feature_type_errors_total", **FRAUD, feature="country") == 2
    assert total(limited, "mlmon_feature_bin_total", **FRAUD, feature="amount") == 41
    assert total(limited, "mlmon_feature_bin_total", **FRAUD, feature="channel") == 44
    assert limited.value("mlmon_label_store_pending", model="fraud") == 44
    assert limited.value("mlmon_limit_hits_total", limit="string_length") == 2  # the category and the id


def test_a_huge_integer_in_one_record_does_not_cost_its_neighbours(example_exporter: LiveExporter) -> None:
    records = [fraud_record(i) for i in range(50)]
    records[25]["features"]["account_age_days"] = "__HUGE__"
    body = json.dumps(records).encode().replace(b'"__HUGE__"', b"1" + b"0" * 400)
    response = raw_post(example_exporter, body)
    assert response.status_code == 200 and response.json()["accepted"] == 50
    assert example_exporter.value("mlmon_predictions_total", **FRAUD) == 50
    assert example_exporter.value("mlmon_feature_nonfinite_total", **FRAUD, feature="account_age_days") == 1


def test_list_valued_numbers_in_every_record_are_type_errors_not_a_500(example_exporter: LiveExporter) -> None:
    records = [fraud_record(i, amount=[5.0]) for i in range(10)] + [delivery_record(1, distance_km=[5.0])]
    answer = example_exporter.post_ok(records)
    assert answer["accepted"] == 11
    assert example_exporter.value("mlmon_feature_type_errors_total", **FRAUD, feature="amount") == 10
    assert total(example_exporter, "mlmon_feature_bin_total", **FRAUD, feature="country") == 10
    assert example_exporter.value("mlmon_feature_type_errors_total", **DELIVERY, feature="distance_km") == 1


def test_a_lone_surrogate_is_a_value_not_a_500(example_exporter: LiveExporter) -> None:
    records = [fraud_record(1, country="__S__"), {**fraud_record(2), "model": "__S__"}]
    body = json.dumps(records).encode().replace(b'"__S__"', b'"\\ud800"')
    response = raw_post(example_exporter, body)
    assert response.status_code == 200
    assert (response.json()["accepted"], response.json()["rejections"][0]["reason"]) == (1, "unknown_model")
    assert example_exporter.value("mlmon_feature_unseen_category_total", **FRAUD, feature="country") == 1


@pytest.mark.parametrize("depth", [9, 1_000, 100_000])
def test_deep_nesting_is_a_400_naming_the_limit_before_parsing(limited: LiveExporter, depth: int) -> None:
    response = raw_post(limited, b"[" * depth + b"]" * depth)
    assert response.status_code == 400
    assert response.json()["limit"] == "nesting_depth"
    assert limited.value("mlmon_limit_hits_total", limit="nesting_depth") == 1


def test_deep_nesting_inside_a_record_rejects_the_request_and_counts_nothing(limited: LiveExporter) -> None:
    body = json.dumps([fraud_record(1)]).encode().replace(b'"amount": 11.0', b'"amount": ' + b"[" * 20 + b"]" * 20)
    assert raw_post(limited, body).status_code == 400
    assert limited.value("mlmon_predictions_total", **FRAUD) is None


def test_an_ndjson_flood_of_tiny_lines_is_refused_before_it_is_parsed(example_exporter: LiveExporter) -> None:
    response = raw_post(example_exporter, b"1\n" * 200_001, "application/x-ndjson")
    assert response.status_code == 413
    assert response.json() == {"error": "200001 records: more than exporter.max_records_per_request allows",
                               "limit": "records_per_request"}


def test_a_body_that_would_decode_too_large_is_a_413(start_exporter) -> None:
    data = example_config_data()
    data["exporter"]["max_decoded_bytes"] = 1_000_000
    live = start_exporter(build_config(data))
    response = raw_post(live, b"[" + b",".join([b"{}"] * 50_000) + b"]")
    assert (response.status_code, response.json()["limit"]) == (413, "decoded_bytes")
    assert live.value("mlmon_limit_hits_total", limit="decoded_bytes") == 1


# ----------------------------------------------------------------------------- saturation


def test_huge_predictions_are_counted_not_summed(limited: LiveExporter) -> None:
    records = [delivery_record(i, prediction=p) for i, p in enumerate([1.7e308, 1.7e308, -1e13, 10.0, 20.0])]
    limited.post_ok(records)
    sums = {dict(k)["sign"]: v for k, v in series(limited.samples(), "mlmon_prediction_value_sum_total",
                                                  **DELIVERY).items()}
    assert sums == {"positive": 30.0, "negative": 0.0}
    assert limited.value("mlmon_prediction_values_total", **DELIVERY) == 2
    assert limited.value("mlmon_prediction_values_unsummed_total", **DELIVERY) == 3
    assert limited.value("mlmon_predictions_total", **DELIVERY) == 5


def test_a_huge_regression_label_is_invalid_and_the_error_sums_stay_finite(limited: LiveExporter) -> None:
    limited.post_ok([delivery_record(i) for i in range(3)])
    labels = [{"id": "d-0", "label": -1.7e308}, {"id": "d-1", "label": 32.0}, {"id": "d-2", "label": 1e-320}]
    response = limited.http.post(f"{limited.ingest_url}/v1/labels", json=labels, timeout=10)
    assert response.json() == {"joined": 2, "unknown_id": 0, "duplicate": 0, "invalid": 1}
    samples = limited.samples()
    assert limited.value("mlmon_regression_squared_error_total", **DELIVERY) == 904.0  # (30 - 32)^2 + (30 - 1e-320)^2
    sums = [v for (name, _), v in samples.items() if name.startswith("mlmon_regression_")]
    assert sums and all(abs(value) < float("inf") for value in sums)
    assert limited.value("mlmon_regression_nonzero_labels_total", **DELIVERY) == 1  # 1e-320 has no finite APE


# ----------------------------------------------------------------------------- all or nothing, retries


def test_a_request_answered_with_an_error_changed_nothing_so_its_retry_counts_once(limited: LiveExporter) -> None:
    good = [fraud_record(i) for i in range(100)]
    too_deep = json.dumps(good).encode()[:-1] + b", " + b"[" * 10 + b"]" * 10 + b"]"
    assert raw_post(limited, too_deep).status_code == 400
    assert limited.value("mlmon_predictions_total", **FRAUD) is None
    limited.post_ok(good)
    assert limited.value("mlmon_predictions_total", **FRAUD) == 100


def test_an_unexpected_failure_while_preparing_changes_nothing(example_exporter: LiveExporter, monkeypatch) -> None:
    store = example_exporter.running.exporter.store
    real_prepare = store.prepare

    def failing_prepare(batches):
        real_prepare(batches)  # every batch converts fine ...
        raise RuntimeError("a bug found after the first batches were prepared")

    monkeypatch.setattr(store, "prepare", failing_prepare)
    body = [fraud_record(i) for i in range(100)] + [delivery_record(i) for i in range(10)]
    assert example_exporter.post(body).status_code == 500
    assert example_exporter.value("mlmon_predictions_total", **FRAUD) is None
    monkeypatch.setattr(store, "prepare", real_prepare)
    example_exporter.post_ok(body)  # the client's retry
    assert example_exporter.value("mlmon_predictions_total", **FRAUD) == 100
    assert example_exporter.value("mlmon_predictions_total", **DELIVERY) == 10


def test_a_retry_with_the_same_idempotency_key_answers_the_first_counts_and_adds_nothing(
    example_exporter: LiveExporter,
) -> None:
    body = json.dumps([fraud_record(i) for i in range(100)] + [{"model": "nope"}]).encode()
    first = raw_post(example_exporter, body, **{"Idempotency-Key": "batch-7"})
    retry = raw_post(example_exporter, body, **{"Idempotency-Key": "batch-7"})
    assert first.status_code == retry.status_code == 200
    assert first.json() == retry.json() and first.json()["accepted"] == 100
    assert example_exporter.value("mlmon_predictions_total", **FRAUD) == 100
    assert example_exporter.value("mlmon_idempotency_keys_total", outcome="replayed") == 1
    raw_post(example_exporter, body, **{"Idempotency-Key": "batch-8"})  # another key is another batch
    assert example_exporter.value("mlmon_predictions_total", **FRAUD) == 200


def test_idempotency_keys_are_bounded_and_their_evictions_counted(start_exporter) -> None:
    data = example_config_data()
    data["exporter"]["idempotency_keys"] = 2
    live = start_exporter(build_config(data))
    body = json.dumps([fraud_record(1)]).encode()
    for key in ("a", "b", "c"):
        raw_post(live, body, **{"Idempotency-Key": key})
    raw_post(live, body, **{"Idempotency-Key": "a"})  # forgotten: ingested again
    assert live.value("mlmon_predictions_total", **FRAUD) == 4
    assert live.value("mlmon_idempotency_keys_total", outcome="evicted") == 2


def test_a_malformed_idempotency_key_is_a_400(example_exporter: LiveExporter) -> None:
    response = raw_post(example_exporter, b"[]", **{"Idempotency-Key": "k" * 201})
    assert response.status_code == 400 and "Idempotency-Key" in response.json()["error"]


# ----------------------------------------------------------------------------- labels


def test_a_chunked_labels_body_over_the_limit_is_a_413_not_a_silent_cut(start_exporter) -> None:
    data = example_config_data()
    data["exporter"]["max_request_bytes"] = 4096
    live = start_exporter(build_config(data))
    lines = b"\n".join(json.dumps({"id": f"never-{i}", "label": 1}).encode() for i in range(500))

    def chunks():
        for start in range(0, len(lines), 1000):
            yield lines[start:start + 1000]

    response = live.http.post(f"{live.ingest_url}/v1/labels", data=chunks(),
                              headers={"Content-Type": "application/x-ndjson"}, timeout=10)
    assert response.status_code == 413
    assert response.json()["limit"] == "request_bytes"
    assert live.value("mlmon_ingest_requests_total", endpoint="labels", code="413") == 1


def test_label_outcomes_of_made_up_model_names_are_counted_as_unknown(example_exporter: LiveExporter) -> None:
    labels = [{"id": f"x-{i}", "label": 1, "model": f"made-up-{i}"} for i in range(50)]
    example_exporter.http.post(f"{example_exporter.ingest_url}/v1/labels", json=labels, timeout=10)
    outcomes = example_exporter.running.exporter.store.labels.outcomes
    assert {model for model, _ in outcomes} == {"__unknown__"}


def test_timestamps_and_class_scores_beyond_any_range_reject_their_record_only(example_exporter: LiveExporter) -> None:
    records = [{**fraud_record(1), "timestamp": -1.7e308}, {**fraud_record(2), "timestamp": "__HUGE__"},
               fraud_record(3)]
    body = json.dumps(records).encode().replace(b'"__HUGE__"', b"1" + b"0" * 400)
    answer = raw_post(example_exporter, body).json()
    assert (answer["accepted"], [r["reason"] for r in answer["rejections"]]) == (1, ["invalid_timestamp"] * 2)


def test_a_huge_feature_value_is_binned_out_of_range_and_multivariate_drift_survives_it(
    example_exporter: LiveExporter,
) -> None:
    answer = example_exporter.post_ok([fraud_record(1, amount=1.7e308), fraud_record(2, amount=-1.7e308)])
    assert answer["accepted"] == 2
    assert example_exporter.value("mlmon_feature_out_of_range_total", **FRAUD, feature="amount", side="above") == 1
    assert example_exporter.value("mlmon_feature_out_of_range_total", **FRAUD, feature="amount", side="below") == 1
