"""POST /v1/labels over real HTTP: body shapes, join outcomes, store bounds and the /metrics families."""

from __future__ import annotations

import json
import subprocess
import time
from typing import Any

import numpy as np
import pytest

from exporter.tooling import synthetic
from tests.conftest import build_config, example_config_data, series


def fraud_records(n: int, seed: int = 1, prefix: str = "") -> list[dict[str, Any]]:
    records = synthetic.records("fraud", "v1", n, np.random.default_rng(seed), id_prefix=prefix)
    for record in records:
        record["segments"] = {"country": record["features"]["country"], "channel": record["features"]["channel"]}
    return records


def post_labels(live, body: Any, content_type: str = "application/json"):
    data = body if isinstance(body, (bytes, str)) else json.dumps(body)
    return live.http.post(f"{live.ingest_url}/v1/labels", data=data, headers={"Content-Type": content_type},
                          timeout=10)


@pytest.fixture
def clocked(start_exporter):
    """The example exporter with its state clock under the test's control."""
    live = start_exporter(build_config(example_config_data()))
    now = [time.time()]  # windows are read at the real time of the scrape
    live.running.exporter.store.clock = lambda: now[0]
    return live, now


def test_joins_json_ndjson_and_columnar_labels_and_answers_the_counts(clocked) -> None:
    live, _ = clocked
    live.post_ok(fraud_records(6))
    answer = post_labels(live, [{"id": "fraud-0", "label": 1}, {"id": "fraud-1", "label": 0}]).json()
    assert answer == {"joined": 2, "unknown_id": 0, "duplicate": 0, "invalid": 0}
    ndjson = '{"id": "fraud-2", "label": 0}\nnot json\n{"id": "fraud-0", "label": 1}\n'
    answer = post_labels(live, ndjson, "application/x-ndjson").json()
    assert answer == {"joined": 1, "unknown_id": 0, "duplicate": 1, "invalid": 1}
    answer = post_labels(live, {"ids": ["fraud-3", "fraud-4", "nope"], "labels": [1, "yes", 0]}).json()
    assert answer == {"joined": 1, "unknown_id": 1, "duplicate": 0, "invalid": 1}
    assert live.value("mlmon_labelled_predictions_total", model="fraud", model_version="v1") == 4
    assert live.value("mlmon_label_outcomes_total", model="__unknown__", outcome="unknown_id") == 1
    assert live.value("mlmon_label_outcomes_total", model="fraud", outcome="duplicate") == 1


def test_an_invalid_label_leaves_the_prediction_waiting_for_a_valid_one(clocked) -> None:
    live, _ = clocked
    live.post_ok(fraud_records(1))
    assert post_labels(live, [{"id": "fraud-0", "label": "fraud"}]).json()["invalid"] == 1
    assert post_labels(live, [{"id": "fraud-0", "label": True}]).json()["joined"] == 1


def test_a_label_naming_another_model_does_not_join(clocked) -> None:
    live, _ = clocked
    live.post_ok(fraud_records(1))
    assert post_labels(live, [{"id": "fraud-0", "label": 1, "model": "delivery_time"}]).json()["unknown_id"] == 1


def test_rejects_a_body_that_is_not_labels(clocked) -> None:
    live, _ = clocked
    assert post_labels(live, "{not json").status_code == 400
    assert post_labels(live, {"ids": [1, 2], "labels": [1]}).status_code == 400


def test_confusion_counters_match_the_labels_sent(clocked) -> None:
    live, _ = clocked
    records = fraud_records(400, seed=2)
    live.post_ok(records)
    rng = np.random.default_rng(3)
    labels = (rng.random(400) < np.array([r["prediction"] for r in records]) * 10).astype(int)
    post_labels(live, [{"id": r["id"], "label": int(y)} for r, y in zip(records, labels)])
    predicted = np.array([r["prediction"] for r in records]) >= 0.02  # the example's decision threshold
    samples = live.samples()
    expected = {"tp": predicted & (labels == 1), "fp": predicted & (labels == 0),
                "tn": ~predicted & (labels == 0), "fn": ~predicted & (labels == 1)}
    for outcome, mask in expected.items():
        got = series(samples, "mlmon_confusion_total", model="fraud", outcome=outcome)
        assert list(got.values()) == [mask.sum()], outcome
    recall = samples[("mlmon_quality_ratio", frozenset({"model": "fraud", "model_version": "v1", "window": "1h",
                                                        "metric": "recall"}.items()))]
    assert recall == pytest.approx(expected["tp"].sum() / labels.sum())
    bias = series(samples, "mlmon_bias_ratio", model="fraud", attribute="country", window="1h",
                  metric="disparate_impact_ratio")
    assert len(bias) == 1 and 0 <= next(iter(bias.values())) <= 1


def test_inline_labels_are_scored_without_waiting(clocked) -> None:
    live, _ = clocked
    records = synthetic.records("delivery_time", "v1", 50, np.random.default_rng(4), with_labels=True)
    live.post_ok(records)
    assert live.value("mlmon_label_outcomes_total", model="delivery_time", outcome="inline") == 50
    errors = np.array([r["prediction"] - r["label"] for r in records])
    mae = live.value("mlmon_quality_score", model="delivery_time", model_version="v1", window="1h", metric="mae")
    assert mae == pytest.approx(np.abs(errors).mean())
    assert live.value("mlmon_label_store_pending", model="delivery_time") == 0  # scored, so not stored


def test_label_delay_is_observed_from_the_prediction_time(clocked) -> None:
    live, now = clocked
    live.post_ok(fraud_records(3))
    now[0] += 120.0
    post_labels(live, [{"id": "fraud-0", "label": 0}, {"id": "fraud-1", "label": 0}])
    labels = {"model": "fraud", "model_version": "v1"}
    assert live.value("mlmon_label_delay_seconds_count", **labels) == 2
    assert live.value("mlmon_label_delay_seconds_sum", **labels) == 240.0
    assert live.value("mlmon_label_delay_seconds_bucket", le="60.0", **labels) == 0
    assert live.value("mlmon_label_delay_seconds_bucket", le="300.0", **labels) == 2


def test_counts_ttl_and_capacity_evictions_on_metrics(start_exporter) -> None:
    data = example_config_data()
    data["exporter"].update(max_pending_predictions=10, label_ttl="1h")  # a share of 5 for each of 2 models
    live = start_exporter(build_config(data))
    now = [0.0]
    live.running.exporter.store.clock = lambda: now[0]
    live.post_ok(fraud_records(8))
    assert live.value("mlmon_label_store_evictions_total", model="fraud", reason="capacity") == 3
    assert live.value("mlmon_label_store_pending", model="fraud") == 5
    now[0] = 3_601.0
    assert post_labels(live, [{"id": "fraud-7", "label": 1}]).json()["unknown_id"] == 1
    assert live.value("mlmon_label_store_evictions_total", model="fraud", reason="expired") == 5
    assert live.value("mlmon_label_store_pending", model="fraud") == 0


def test_estimates_are_exported_before_any_label(clocked) -> None:
    live, _ = clocked
    live.post_ok(fraud_records(300))
    samples = live.samples()
    estimated = series(samples, "mlmon_estimated_quality_ratio", model="fraud", window="1h")
    assert {dict(k)["metric"] for k in estimated} == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert series(samples, "mlmon_quality_ratio", model="fraud") == {}  # no labels, no realised metrics
    assert live.value("mlmon_quality_threshold", model="fraud", metric="recall", bound="min") == 0.5


def test_metrics_with_quality_families_pass_promtool(clocked) -> None:
    live, _ = clocked
    records = fraud_records(200)
    live.post_ok(records)
    post_labels(live, [{"id": r["id"], "label": 0} for r in records[:100]])
    live.post_ok(synthetic.records("delivery_time", "v1", 20, np.random.default_rng(5), with_labels=True))
    text = live.scrape().text
    result = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr


def test_label_delay_buckets_reach_months_and_are_configurable(start_exporter) -> None:
    data = example_config_data()
    fraud = next(m for m in data["models"] if m["name"] == "fraud")
    fraud.setdefault("quality", {})["label_delay_buckets"] = ["1m", "30d", "90d"]
    live = start_exporter(build_config(data))
    records = fraud_records(1)
    records[0]["timestamp"] = time.time() - 45 * 86400  # a chargeback 45 days after the prediction
    live.post_ok(records)
    assert post_labels(live, [{"id": "fraud-0", "label": 1}]).json()["joined"] == 1
    buckets = series(live.samples(), "mlmon_label_delay_seconds_bucket", model="fraud", model_version="v1")
    by_le = {dict(labels)["le"]: value for labels, value in buckets.items()}
    assert by_le == {"60.0": 0, "2592000.0": 0, "7776000.0": 1, "+Inf": 1}


def test_label_delay_buckets_must_increase() -> None:
    data = example_config_data()
    data["models"][0].setdefault("quality", {})["label_delay_buckets"] = ["1d", "1h"]
    with pytest.raises(Exception, match="strictly increasing"):
        build_config(data)
