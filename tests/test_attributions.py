"""Attributions with each record: decoded from every body shape, counted per feature as mergeable sums,
binned on the profile's phi edges, ranked (SageMaker's nDCG), snapshotted, and built into profiles.

Numbers are checked against independent computations: numpy on the values sent, and a separate
implementation of SageMaker Clarify's nDCG written from its documentation.
"""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from conftest import EXAMPLES, build_config, example_config_data, parse_metrics, series
from exporter.http.attribution_report import attribution_report, window_signals
from exporter.http.collector import collect
from exporter.http.exporter_stats import ExporterStats
from exporter.http.server import load_profiles
from exporter.ingest.decode import BodyError, decode_body
from exporter.profiles.build import build_profile
from exporter.state import snapshot
from exporter.state.store import StateStore
from exporter.stats import attribution as stats
from exporter.tooling import synthetic

NOW = 1_700_000_000.0
FEATURES = ("amount", "account_age_days", "country", "channel", "is_international")


def sagemaker_ndcg(reference: dict[str, float], live: dict[str, float]) -> float:
    """SageMaker Clarify's feature-attribution-drift nDCG, written from its documentation, independently:
    F = features by reference attribution, F' = features by live attribution, a(f) = reference attribution,
    DCG = sum a(F'_i) / log2(i + 1), iDCG = sum a(F_i) / log2(i + 1), i = 1..m."""
    ideal_order = sorted(reference, key=lambda f: reference[f], reverse=True)
    live_order = sorted(live, key=lambda f: live[f], reverse=True)
    dcg = sum(reference[f] / math.log2(i + 1) for i, f in enumerate(live_order, start=1))
    idcg = sum(reference[f] / math.log2(i + 1) for i, f in enumerate(ideal_order, start=1))
    return dcg / idcg


@pytest.mark.parametrize("seed", range(20))
def test_ndcg_is_sagemakers_formula_on_random_vectors(seed: int) -> None:
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 30))
    reference, live = rng.exponential(1.0, m), rng.exponential(1.0, m)  # continuous: no ties
    names = [f"f{i}" for i in range(m)]
    expected = sagemaker_ndcg(dict(zip(names, reference)), dict(zip(names, live)))
    assert stats.ndcg(reference, live) == pytest.approx(expected, abs=1e-9)


def test_ndcg_of_sagemakers_college_admission_example_and_of_an_unchanged_ranking() -> None:
    reference = {"sat": 0.70, "gpa": 0.50, "rank": 0.05}
    live = {"sat": 0.10, "gpa": 0.20, "rank": 0.70}
    # By hand: DCG = 0.05 + 0.5 / log2(3) + 0.7 / 2 = 0.71546; iDCG = 0.7 + 0.5 / log2(3) + 0.05 / 2 = 1.04046.
    assert stats.ndcg(np.array(list(reference.values())), np.array(list(live.values()))) == pytest.approx(
        (0.05 + 0.5 / math.log2(3) + 0.35) / (0.7 + 0.5 / math.log2(3) + 0.025), abs=1e-12)
    assert sagemaker_ndcg(reference, live) < 0.9  # a violation at SageMaker's default threshold
    assert stats.ndcg(np.array([3.0, 2.0, 1.0]), np.array([30.0, 2.5, 0.1])) == 1.0  # same order, other scale


def test_total_variation_and_shares_by_hand() -> None:
    shares = stats.shares(np.array([0.2, 0.4]))
    assert shares is not None and shares.tolist() == pytest.approx([1 / 3, 2 / 3])
    assert stats.total_variation(shares, np.array([0.6, 0.4])) == pytest.approx((0.6 - 1 / 3 + 2 / 3 - 0.4) / 2)
    assert stats.shares(np.zeros(3)) is None


# ----------------------------------------------------------------------------- one store, in process


def store() -> StateStore:
    config = build_config(example_config_data())
    return StateStore(config, load_profiles(config), clock=lambda: NOW)


def ingest(target: StateStore, body: Any, content_type: str = "application/json") -> None:
    text = body if isinstance(body, bytes) else json.dumps(body).encode()
    decoded = decode_body(text, content_type, target.config, 100_000)
    for batch in decoded.batches:
        target.ingest(batch)


def metrics(target: StateStore) -> dict:
    return parse_metrics(collect(target, ExporterStats([m.name for m in target.config.models]), NOW).render(False))


def test_the_counters_are_numpys_sums_of_the_phi_sent_in_records_ndjson_and_columns() -> None:
    rng = np.random.default_rng(3)
    records = synthetic.records("fraud", "v1", 300, rng, attributions=True)
    target = store()
    ingest(target, records[:100])
    ingest(target, "\n".join(json.dumps(r) for r in records[100:200]).encode(), "application/x-ndjson")
    block = records[200:]
    ingest(target, {"model": "fraud", "model_version": "v1", "features": {n: [r["features"][n] for r in block] for n in FEATURES},
                    "predictions": [r["prediction"] for r in block],
                    "attributions": {n: [r["attributions"][n] for r in block] for n in FEATURES}})
    samples = metrics(target)
    labels = {"model": "fraud", "model_version": "v1"}
    for name in FEATURES:
        phi = np.array([r["attributions"][name] for r in records])
        at = {**labels, "feature": name}
        assert samples[("mlmon_attribution_samples_total", frozenset(at.items()))] == 300
        positive = samples[("mlmon_attribution_value_sum_total", frozenset({**at, "sign": "positive"}.items()))]
        negative = samples[("mlmon_attribution_value_sum_total", frozenset({**at, "sign": "negative"}.items()))]
        assert positive - negative == pytest.approx(phi.sum(), abs=1e-9)
        assert positive + negative == pytest.approx(np.abs(phi).sum(), abs=1e-9)
        assert samples[("mlmon_attribution_squared_sum_total", frozenset(at.items()))] == pytest.approx((phi ** 2).sum())
        bins = series(samples, "mlmon_attribution_bin_total", **at)
        assert sum(bins.values()) == 300  # every finite phi lands in exactly one bin
    assert samples[("mlmon_attribution_records_total", frozenset(labels.items()))] == 300


def test_phi_bins_are_the_reference_edges_counted_like_numpy() -> None:
    rng = np.random.default_rng(4)
    records = synthetic.records("fraud", "v1", 500, rng, attributions=True)
    target = store()
    ingest(target, records)
    edges = np.array(target.profiles["fraud"].extras["attributions"]["features"]["amount"]["edges"])
    phi = np.array([r["attributions"]["amount"] for r in records])
    # Independently: underflow, [e_i, e_i+1) inside (the last closed at the max), overflow.
    expected = [int((phi < edges[0]).sum())]
    for i in range(len(edges) - 1):
        upper = phi <= edges[i + 1] if i == len(edges) - 2 else phi < edges[i + 1]
        expected.append(int(((phi >= edges[i]) & upper).sum()))
    expected.append(int((phi > edges[-1]).sum()))
    samples = metrics(target)
    bins = series(samples, "mlmon_attribution_bin_total", model="fraud", model_version="v1", feature="amount")
    got = [bins[k] for k in sorted(bins, key=lambda k: dict(k)["bin"])]
    assert got == expected


def test_unknown_keys_and_bad_values_are_counted_never_labelled() -> None:
    target = store()
    record = synthetic.records("fraud", "v1", 1, np.random.default_rng(5), attributions=True)[0]
    record["attributions"].update({"amount": "high", "channel": float("nan"), "injected_label_value": 1.0, "x" * 200: 2})
    other = dict(record, attributions=[1, 2, 3])  # not an object: counted, the record still accepted
    ingest(target, [record, other])
    samples = metrics(target)
    dropped = series(samples, "mlmon_attributions_dropped_total", model="fraud", model_version="v1")
    assert {dict(k)["reason"]: v for k, v in dropped.items()} == {"unknown_feature": 2, "invalid_value": 3}
    assert not any("injected" in str(key) or "x" * 200 in str(key) for key in samples)
    assert samples[("mlmon_predictions_total", frozenset({"model": "fraud", "model_version": "v1"}.items()))] == 2


def test_a_columnar_attributions_block_of_the_wrong_length_is_a_400_naming_it() -> None:
    target = store()
    body = {"model": "fraud", "model_version": "v1", "features": {n: [1.0, 2.0] for n in FEATURES},
            "predictions": [0.1, 0.2], "attributions": {"amount": [0.1]}}
    with pytest.raises(BodyError, match="attributions.amount must be an array of 2 values"):
        decode_body(json.dumps(body).encode(), "application/json", target.config, 100)


def test_a_model_without_attributions_enabled_ignores_them_at_no_cost() -> None:
    target = store()
    records = synthetic.records("delivery_time", "v1", 10, np.random.default_rng(6))
    for r in records:
        r["attributions"] = {"distance_km": 1.0}
    decoded = decode_body(json.dumps(records).encode(), "application/json", target.config, 100)
    assert decoded.batches[0].attributions is None
    for batch in decoded.batches:
        target.ingest(batch)
    assert not series(metrics(target), "mlmon_attribution_samples_total", model="delivery_time")


def test_a_swapped_model_moves_the_rank_signals_and_the_reference_model_does_not() -> None:
    rng = np.random.default_rng(7)
    same, swapped = store(), store()
    ingest(same, synthetic.records("fraud", "v1", 3000, rng, attributions=True))
    ingest(swapped, synthetic.records("fraud", "v1", 3000, rng, attributions=True, swap=True))
    calm = window_signals(same.versions["fraud"]["v1"], 3600, NOW)
    moved = window_signals(swapped.versions["fraud"]["v1"], 3600, NOW)
    assert calm is not None and moved is not None
    assert calm["ndcg"] > 0.99 and calm["share_tv"] < 0.05 and calm["drifted"] is False
    assert not calm["top_driver_changed"]
    assert moved["ndcg"] < 0.9 and moved["share_tv"] > 0.2 and moved["drifted"] is True
    assert moved["top_driver_changed"]  # the channel, which the reference model ignores, now leads
    report = attribution_report(swapped.versions["fraud"]["v1"], 3600, NOW)
    assert report is not None and report["ndcg"] == pytest.approx(moved["ndcg"]) and report["samples"] == 3000


def test_attribution_counters_survive_a_snapshot(tmp_path: Path) -> None:
    original = store()
    ingest(original, synthetic.records("fraud", "v1", 400, np.random.default_rng(8), attributions=True))
    path = tmp_path / "state.npz"
    snapshot.save(path, original)
    restored = store()
    assert snapshot.restore(path, restored).result == "restored"
    before, after = original.versions["fraud"]["v1"].attributions, restored.versions["fraud"]["v1"].attributions
    assert after is not None and before is not None
    np.testing.assert_array_equal(after.sums, before.sums)
    np.testing.assert_array_equal(after.bins, before.bins)
    assert after.records == 400 and after.window_sums(3600, NOW)[1] == 400


def test_profile_build_takes_the_reference_importance_from_attr_columns(tmp_path: Path) -> None:
    config = build_config(example_config_data())
    model = config.model("fraud")
    profile = build_profile(EXAMPLES / "data" / "fraud_reference.csv", model)
    with open(EXAMPLES / "data" / "fraud_reference.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    for name in FEATURES:
        phi = np.array([float(r[f"attr_{name}"]) for r in rows])
        assert profile.extras["attributions"]["importance"][name] == pytest.approx(np.abs(phi).mean(), rel=1e-12)


def test_importance_given_in_the_config_wins_and_needs_no_attributions() -> None:
    data = example_config_data()
    delivery = next(m for m in data["models"] if m["name"] == "delivery_time")
    for feature, importance in zip(delivery["features"], (6.0, 2.0, 1.0, 1.0)):
        feature["importance"] = importance
    config = build_config(data)
    target = StateStore(config, load_profiles(config), clock=lambda: NOW)
    ingest(target, synthetic.records("delivery_time", "v1", 800, np.random.default_rng(9), drift=1.0))
    samples = metrics(target)
    shares = series(samples, "mlmon_feature_importance_reference_share_ratio", model="delivery_time")
    assert {dict(k)["feature"]: v for k, v in shares.items()} == pytest.approx(
        {"distance_km": 0.6, "items": 0.2, "hour": 0.1, "weather": 0.1})
    impact = series(samples, "mlmon_feature_drift_impact", model="delivery_time", window="1h")
    scores = series(samples, "mlmon_feature_drift_score", model="delivery_time", window="1h", method="psi")
    by_feature = {dict(k)["feature"]: v for k, v in scores.items()}
    for key, value in impact.items():
        feature = dict(key)["feature"]
        assert value == pytest.approx(shares[frozenset({**dict(key), "feature": feature}.items()) - {("window", "1h")}]
                                      * by_feature[feature])


def test_inputs_drifting_in_a_feature_the_model_ignores_is_high_drift_and_low_impact() -> None:
    # The reference fraud model gives the channel weight 0 (its reference importance share is 0): move most
    # traffic to the point-of-sale channel and that input drifts hard, yet the drift that matters stays small.
    rng = np.random.default_rng(10)
    records = synthetic.records("fraud", "v1", 3000, rng, attributions=True)
    for record in records[: 2000]:
        record["features"]["channel"] = "pos"
        record["segments"]["channel"] = "pos"
    target = store()
    ingest(target, records)
    samples = metrics(target)
    at = {"model": "fraud", "model_version": "v1", "window": "1h"}
    psi = {dict(k)["feature"]: v for k, v in series(samples, "mlmon_feature_drift_score", method="psi", **at).items()}
    impact = {dict(k)["feature"]: v for k, v in series(samples, "mlmon_feature_drift_impact", **at).items()}
    detected = {dict(k)["feature"]: v for k, v in series(samples, "mlmon_feature_drift_detected", **at).items()}
    assert detected["channel"] == 1 and psi["channel"] > 1.0  # high input drift
    assert impact["channel"] == 0.0  # ... in a feature the model ignores
    assert max(impact.values()) < 0.05  # nothing that matters drifted
    signals = window_signals(target.versions["fraud"]["v1"], 3600, NOW)
    assert signals is not None and signals["drifted"] is False  # the explanations did not move either


def test_the_drift_report_and_the_model_page_show_the_attributions(start_exporter) -> None:
    live = start_exporter(build_config(example_config_data()))
    live.post_ok(synthetic.records("fraud", "v1", 1500, np.random.default_rng(11), attributions=True, swap=True))
    report = live.http.get(f"{live.ingest_url}/v1/models/fraud/drift?window=1h", timeout=10).json()
    block = report["versions"][0]["attributions"]
    assert block["samples"] == 1500 and block["drifted"] is True and block["ndcg"] < 0.9
    assert block["reference_source"] == "attributions"
    by_feature = {f["feature"]: f for f in block["features"]}
    assert by_feature["channel"]["reference_share"] == 0.0 and by_feature["channel"]["share"] > 0.3
    page = live.http.get(f"{live.metrics_url}/models/fraud?window=1h", timeout=10).text
    assert "What drives the model" in page and 'data-feature="importance"' in page


def test_the_python_client_and_an_oip_output_carry_attributions(start_exporter) -> None:
    from mlmon_client import Client

    live = start_exporter(build_config(example_config_data()))
    records = synthetic.records("fraud", "v1", 40, np.random.default_rng(12), attributions=True)
    client = Client(live.predictions_url, flush_interval=0.05)
    for r in records[:20]:
        client.log("fraud", "v1", r["features"], r["prediction"], attributions=r["attributions"])
    rest = records[20:]
    client.log_batch("fraud", "v2", {n: [r["features"][n] for r in rest] for n in FEATURES}, [r["prediction"] for r in rest],
                     attributions={n: [r["attributions"][n] for r in rest] for n in FEATURES})
    assert client.flush(timeout=30)
    client.close()
    for version, part in (("v1", records[:20]), ("v2", rest)):
        got = live.value("mlmon_attribution_value_sum_total", model="fraud", model_version=version, feature="amount",
                         sign="positive")
        assert got == pytest.approx(sum(max(r["attributions"]["amount"], 0.0) for r in part))
    # KServe / Open Inference Protocol: an output named attributions.output, one row per instance.
    rows = [[r["features"][n] for n in FEATURES] for r in records[:3]]
    phi = [[r["attributions"][n] for n in FEATURES] for r in records[:3]]
    body = {"inputs": [{"name": "x", "shape": [3, 5], "datatype": "BYTES", "data": rows}],
            "outputs": [{"name": "score", "shape": [3], "datatype": "FP64", "data": [r["prediction"] for r in records[:3]]},
                        {"name": "attributions", "shape": [3, 5], "datatype": "FP64", "data": phi}]}
    response = live.http.post(f"{live.ingest_url}/v2/models/fraud/versions/v3/infer", json=body, timeout=10)
    assert response.status_code == 200, response.text
    assert live.value("mlmon_attribution_samples_total", model="fraud", model_version="v3", feature="channel") == 3
