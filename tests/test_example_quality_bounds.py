"""The example config's quality bounds hold on the example's own clean data.

A bound that the reference itself crosses makes `make demo` fire quality alerts on clean traffic and
`mlmon report` fail the reference data. Both are checked for every bound the example configures
(a bound added later is covered too), through the exporter's own quality code (`mlmon report`'s
`check_batch`), with the values cross-checked against scikit-learn.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import mean_absolute_error, recall_score, roc_auc_score

from exporter.config.model import load_config
from exporter.stats.quality_math import PROPORTIONS
from exporter.tooling.demo import DemoOptions, demo_records
from exporter.tooling.report import check_batch

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mlmon.yaml"
CONFIG = load_config(EXAMPLE)
BOUNDED = [m.name for m in CONFIG.models if m.quality.thresholds]
# Rows of clean demo traffic per seed: about 100 s of `make demo` per model, 360 frauds; the alerts
# judge a day of it (and need 30 minutes of crossing), so this is the noisy end of what they see.
DEMO_ROWS = 20_000
SEEDS = (DemoOptions().seed, 1, 2)


def measured(report) -> dict[str, dict]:
    """The report's measured quality metrics by name (every quality window holds the whole batch)."""
    window = report.document["versions"][0]["quality"]["windows"][0]
    return {m["metric"]: m for m in window["metrics"] if m["kind"] == "measured"}


def test_every_example_model_with_bounds_is_checked() -> None:
    assert BOUNDED == ["fraud", "delivery_time"]


@pytest.mark.parametrize("model", BOUNDED)
def test_the_reference_data_is_inside_every_bound_with_its_whole_95_percent_interval(model: str) -> None:
    config = CONFIG.model(model)
    report = check_batch(CONFIG, config, ROOT / "examples" / "data" / f"{model}_reference.csv")
    assert not [r for r in report.reasons if "outside" in r], report.reasons
    metrics = measured(report)
    for name, bound in config.quality.thresholds.items():
        m = metrics[name]
        assert m["crossed"] is False, m
        if name in PROPORTIONS:  # not even the interval reaches the bound: a margin, not luck
            assert bound.min is None or m["lower"] > bound.min, m
            assert bound.max is None or m["upper"] < bound.max, m


def test_the_reference_quality_matches_scikit_learn() -> None:
    fraud = pd.read_csv(ROOT / "examples" / "data" / "fraud_reference.csv")
    threshold = CONFIG.model("fraud").quality.decision_threshold
    report = measured(check_batch(CONFIG, CONFIG.model("fraud"), ROOT / "examples" / "data" / "fraud_reference.csv"))
    recall = recall_score(fraud.label, fraud.fraud_score >= threshold)
    assert report["recall"]["value"] == pytest.approx(recall, abs=1e-12)
    assert report["false_negative_rate"]["value"] == pytest.approx(1 - recall, abs=1e-12)
    # ROC AUC comes from the exporter's score histogram (quality.score_bins), not the raw scores.
    assert report["roc_auc"]["value"] == pytest.approx(roc_auc_score(fraud.label, fraud.fraud_score), abs=0.01)
    delivery = pd.read_csv(ROOT / "examples" / "data" / "delivery_time_reference.csv")
    report = measured(check_batch(CONFIG, CONFIG.model("delivery_time"),
                                  ROOT / "examples" / "data" / "delivery_time_reference.csv"))
    assert report["mae"]["value"] == pytest.approx(mean_absolute_error(delivery.label, delivery.minutes), rel=1e-9)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("model", BOUNDED)
def test_the_demo_clean_traffic_crosses_no_quality_bound(model: str, seed: int, tmp_path: Path) -> None:
    rng = np.random.default_rng(seed)
    prediction = CONFIG.model(model).prediction.name
    rows = [{**r["features"], prediction: r["prediction"], "label": r["label"]}
            for r in demo_records(model, "v1", DEMO_ROWS, rng, drift=0.0)]
    data = tmp_path / f"{model}.jsonl"  # flat rows, as `mlmon report` reads a scoring log
    data.write_text("".join(json.dumps(row) + "\n" for row in rows))
    report = check_batch(CONFIG, CONFIG.model(model), data)
    metrics = measured(report)
    assert set(CONFIG.model(model).quality.thresholds) <= set(metrics)
    crossed = {name: m["value"] for name, m in metrics.items() if m["crossed"]}
    assert crossed == {}, f"clean demo traffic (seed {seed}) crosses {crossed}"
