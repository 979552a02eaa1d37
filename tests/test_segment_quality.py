"""Fleet quality per segment value: the recorded ratios equal scikit-learn's on the same rows, per country.

A real exporter gets labelled fraud traffic (inline labels) and a real Prometheus records the
segment-quality rules of alert_rules/segment_quality.py. One target means one extrapolation factor
for every counter, so the ratios of increase() are the ratios of the counts: exact.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml
from sklearn.metrics import accuracy_score, f1_score, precision_score, recall_score

from alert_rules.segment_quality import ratio_name, segment_quality_groups
from conftest import build_config, example_config_data
from exporter.http.server import start
from exporter.tooling import synthetic
from tests.support.processes import PrometheusProcess, require_binary


def test_recorded_quality_per_country_equals_sklearn_on_the_same_rows(tmp_path: Path) -> None:
    require_binary("prometheus")
    data = example_config_data()
    data["models"] = data["models"][:1]
    data.pop("alerting", None)
    config = build_config(data)
    groups = [g.to_dict() for g in segment_quality_groups(config)]
    rules = tmp_path / "segment_quality.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=100_000))
    replica = start(config, "127.0.0.1:0", "127.0.0.1:0")
    try:
        replica.exporter.store.version_state(config.model("fraud"), "v1")  # counters exported from 0
        with PrometheusProcess(tmp_path, [f"127.0.0.1:{replica.metrics_port}"], [rules]) as prom:
            prom.wait_for(lambda: prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2"), timeout=20,
                          what="two scrapes at zero")
            records = synthetic.records("fraud", "v1", 20_000, np.random.default_rng(11), drift=0.5, with_labels=True)
            requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=records, timeout=60).raise_for_status()
            time.sleep(4)  # scraped with the final counts, and the rules evaluated after
            got = {(s["metric"]["segment"], s["metric"]["metric"]): float(s["value"][1])
                   for s in prom.query(f'{ratio_name("1h")}{{attribute="country"}}')}
    finally:
        replica.stop()
    threshold = config.model("fraud").quality.decision_threshold
    countries = {r["segments"]["country"] for r in records}
    assert {segment for segment, _ in got} == countries  # no __other__: every synthetic country is listed
    for country in countries:
        rows = [r for r in records if r["segments"]["country"] == country]
        y = np.array([r["label"] for r in rows])
        predicted = np.array([r["prediction"] >= threshold for r in rows], dtype=int)
        fp, tn = int(((predicted == 1) & (y == 0)).sum()), int(((predicted == 0) & (y == 0)).sum())
        expected = {
            "accuracy": accuracy_score(y, predicted), "precision": precision_score(y, predicted, zero_division=np.nan),
            "recall": recall_score(y, predicted, zero_division=np.nan), "f1": f1_score(y, predicted, zero_division=np.nan),
            "false_positive_rate": fp / (fp + tn),
        }
        for metric, value in expected.items():
            if np.isnan(value):  # no denominator: no sample
                assert (country, metric) not in got
            else:
                assert got[(country, metric)] == pytest.approx(value, rel=1e-9), (country, metric)
