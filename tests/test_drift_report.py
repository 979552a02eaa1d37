"""Scrape-time drift through a real exporter: /metrics families, the /drift report, verdict rules, cache."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from exporter.stats import drift

from exporter.tooling import synthetic
from exporter.config.model import parse_config
from exporter.http.drift_report import evaluate
from exporter.http.server import start

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def config(**drift_options):
    data = yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text())
    data.pop("alerting", None)
    data["models"] = [m for m in data["models"] if m["name"] == "fraud"]
    data["models"][0]["drift"].update(drift_options)
    return parse_config(data, base_dir=EXAMPLES)


@pytest.fixture
def running():
    instances = []

    def _start(**drift_options):
        instance = start(config(**drift_options), "127.0.0.1:0", "127.0.0.1:0")
        instances.append(instance)
        return instance

    yield _start
    for instance in instances:
        instance.stop()


def send(instance, n: int, drift_level: float, seed: int = 0) -> None:
    records = synthetic.records("fraud", "v1", n, np.random.default_rng(seed), drift=drift_level)
    requests.post(f"http://127.0.0.1:{instance.ingest_port}/v1/predictions", json=records, timeout=10).raise_for_status()


def metric_lines(instance, name: str) -> list[str]:
    text = requests.get(f"http://127.0.0.1:{instance.metrics_port}/metrics", timeout=10).text
    return [line for line in text.splitlines() if line.startswith(name + "{")]


def test_exports_the_configured_scores_with_the_window_n_next_to_them(running) -> None:
    instance = running(export=["js"])
    send(instance, 800, 0.0)
    scores = metric_lines(instance, "mlmon_feature_drift_score")
    methods = {line.split('method="')[1].split('"')[0] for line in scores}
    assert methods == {"js", "psi"}  # the export list plus the deciding method
    assert 'mlmon_feature_window_samples{model="fraud",model_version="v1",feature="amount",window="5m"} 800' in \
        metric_lines(instance, "mlmon_feature_window_samples")
    assert any('feature="country"' in line and 'method="chisquare"' in line
               for line in metric_lines(instance, "mlmon_feature_drift_p_value"))


def test_gives_no_verdict_below_min_samples(running) -> None:
    instance = running()
    send(instance, 300, 1.0)
    assert metric_lines(instance, "mlmon_feature_drift_detected") == []
    assert metric_lines(instance, "mlmon_drifted_features_ratio") == []
    assert metric_lines(instance, "mlmon_dataset_drift_detected") == []
    assert metric_lines(instance, "mlmon_feature_drift_score")  # scores are still exported, with their N


def test_flags_dataset_drift_when_most_features_drift(running) -> None:
    instance = running()
    send(instance, 2000, 1.0)
    ratio = metric_lines(instance, "mlmon_drifted_features_ratio")
    assert any('window="1h"' in line and float(line.split()[-1]) >= 0.5 for line in ratio)
    assert 'mlmon_dataset_drift_detected{model="fraud",model_version="v1",window="1h"} 1' in \
        metric_lines(instance, "mlmon_dataset_drift_detected")


def test_exported_psi_equals_psi_of_the_window_counts(running) -> None:
    instance = running()
    send(instance, 1000, 0.5, seed=3)
    state = instance.exporter.store.snapshot()[0]
    binning = state.layout.binnings[0]
    seg = drift.Segments.of_sizes([binning.n_bins])
    counts = state.cumulative[state.layout.slice(0)]
    expected = drift.psi(binning.reference_ratio, drift.fractions(counts, seg)[0], seg)[0]
    line = next(l for l in metric_lines(instance, "mlmon_feature_drift_score")
                if 'feature="amount"' in l and 'window="5m"' in l and 'method="psi"' in l)
    assert float(line.split()[-1]) == pytest.approx(expected, rel=1e-12)


def test_drift_report_sorts_features_by_severity_and_names_the_top_bins(running) -> None:
    instance = running()
    send(instance, 2000, 1.0)
    report = requests.get(f"http://127.0.0.1:{instance.ingest_port}/v1/models/fraud/drift?window=1h", timeout=10).json()
    version = report["versions"][0]
    order = {"critical": 0, "warning": 1, "drifted": 2, "none": 3, "no_verdict": 4}
    ranks = [order[f["severity"]] for f in version["features"]]
    assert ranks == sorted(ranks)
    top = version["features"][0]
    assert top["samples"] == 2000 and len(top["top_bins"]) == 3
    assert sum(top["current_fractions"]) == pytest.approx(1.0)
    assert set(top["scores"]) >= {"psi", "js", "kl", "hellinger"}
    assert version["prediction"]["name"] == "fraud_score"


def test_drift_report_rejects_unknown_models_and_unconfigured_windows(running) -> None:
    instance = running()
    base = f"http://127.0.0.1:{instance.ingest_port}/v1/models"
    assert requests.get(f"{base}/nope/drift", timeout=10).status_code == 404
    answer = requests.get(f"{base}/fraud/drift?window=2h", timeout=10)
    assert answer.status_code == 400 and "5m, 1h" in answer.json()["error"]
    assert requests.get(f"{base}/fraud/drift?window=soon", timeout=10).status_code == 400


def test_evaluation_is_cached_until_data_or_window_slots_change(running) -> None:
    instance = running()
    send(instance, 600, 0.0)
    state = instance.exporter.store.snapshot()[0]
    first = evaluate(state, 1000.0 + 0.0)
    assert evaluate(state, 1000.0 + 0.1) is first  # same scrape interval, nothing new
    send(instance, 10, 0.0, seed=1)
    assert evaluate(state, 1000.0 + 0.2) is not first


def test_exports_the_multivariate_verdict_and_the_mean_error_with_its_reference_band(running) -> None:
    instance = running()
    send(instance, 1000, 0.0, seed=3)
    labels = '{model="fraud",model_version="v1",window="5m"}'
    lines = {line.split(" ")[0]: float(line.split(" ")[1]) for name in (
        "mlmon_multivariate_drift_detected", "mlmon_multivariate_reconstruction_error_mean",
        "mlmon_multivariate_reconstruction_error_band_lower", "mlmon_multivariate_reconstruction_error_band_upper",
        "mlmon_multivariate_window_samples") for line in metric_lines(instance, name)}
    assert lines[f"mlmon_multivariate_window_samples{labels}"] == 1000
    assert lines[f"mlmon_multivariate_drift_detected{labels}"] in (0.0, 1.0)
    low, high = lines[f"mlmon_multivariate_reconstruction_error_band_lower{labels}"], lines[f"mlmon_multivariate_reconstruction_error_band_upper{labels}"]
    assert low < high and lines[f"mlmon_multivariate_reconstruction_error_mean{labels}"] > 0
    report = requests.get(f"http://127.0.0.1:{instance.ingest_port}/v1/models/fraud/drift", params={"window": "5m"}, timeout=10).json()
    mv = report["versions"][0]["multivariate"]
    assert mv["samples"] == 1000 and mv["drifted"] == bool(lines[f"mlmon_multivariate_drift_detected{labels}"])
    assert mv["reference_band"] == pytest.approx([low, high])
