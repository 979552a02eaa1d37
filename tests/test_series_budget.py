"""`mlmon config check` counts the series one exporter exports and the fleet rules add, within 5% of live.

A real exporter gets traffic that reaches every family (both example models, data-quality faults,
labels inline) and is scraped; the count by family group is compared with `per_exporter`. A real
Prometheus scraping it with the generated rules gives the number of recorded series.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from alert_rules.recording import recording_groups
from alert_rules.series import recorded_series
from exporter import catalog as c
from exporter.cli import main
from exporter.config.model import load_config
from exporter.http.server import start
from exporter.profiles.load import load_profiles
from exporter.tooling import synthetic
from exporter.tooling.series_budget import columns, explained, per_exporter
from tests.support.processes import PrometheusProcess, require_binary

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "examples" / "mlmon.yaml"
BINS = {c.FEATURE_BIN.name, c.FEATURE_REFERENCE.name, c.PREDICTION_BIN_COUNT.name, c.PREDICTION_REFERENCE.name}
METRICS = {m.name: m for m in vars(c).values() if isinstance(m, c.Metric)}


def group(name: str) -> str:
    for suffix in ("_bucket", "_sum", "_count"):
        if name.endswith(suffix) and name.removesuffix(suffix) in METRICS:
            name = name.removesuffix(suffix)
    metric = METRICS.get(name)
    if name in BINS:
        return "bins"
    if metric is None:
        return "core"
    if metric.issue == "drift":
        return "drift"
    if metric.issue == "explain":
        return "explain"
    if name.startswith(("mlmon_segment_", "mlmon_bias_")):
        return "bias"
    return "quality" if metric.issue == "quality" else "core"


def live_counts(text: str) -> Counter[str]:
    out: Counter[str] = Counter()
    for line in text.splitlines():
        if line and not line.startswith("#"):
            out[group(line.split("{")[0].split(" ")[0])] += 1
    return out


def unjudged_segments(text: str, min_samples: int) -> int:
    """Per-segment windows below min_samples have no verdict series yet, and those without values no score."""
    name = c.SEGMENT_FEATURE_WINDOW_SAMPLES.name + "{"
    counts = [float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name)]
    return sum(n < min_samples for n in counts) + sum(n == 0 for n in counts)


def test_config_check_prints_the_budget_and_warns_above_it(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "-c", str(CONFIG)]) == 0
    out = capsys.readouterr()
    assert "series per exporter (1 version(s) per model" in out.out and "bins 202" in out.out
    assert "fleet recording rules add" in out.out and "warning" not in out.err
    data = yaml.safe_load(CONFIG.read_text())
    data["exporter"]["series_budget"] = 100
    for model in data["models"]:
        model["reference"] = str(CONFIG.parent / model["reference"])
    small = tmp_path / "mlmon.yaml"
    small.write_text(yaml.safe_dump(data))
    assert main(["config", "check", "-c", str(small), "--versions", "2"]) == 0
    assert "above exporter.series_budget (100)" in capsys.readouterr().err


def test_the_count_is_within_5_percent_of_a_live_scrape_and_of_prometheus(tmp_path: Path) -> None:
    require_binary("prometheus")
    config = load_config(CONFIG)
    profiles = load_profiles(config)
    estimate = per_exporter(config, profiles)
    rules = tmp_path / "rules.yaml"
    rules.write_text(yaml.safe_dump({"groups": [g.to_dict() for g in recording_groups(config)]}, sort_keys=False))
    replica = start(config, "127.0.0.1:0", "127.0.0.1:0")
    try:
        for model in config.models:  # counters exported from 0, so the rules see the traffic as it comes
            replica.exporter.store.version_state(model, "v1")
        with PrometheusProcess(tmp_path, [f"127.0.0.1:{replica.metrics_port}"], [rules]) as prom:
            prom.wait_for(lambda: prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2"), timeout=30,
                          what="two scrapes at zero")
            rng = np.random.default_rng(3)
            for model in ("fraud", "delivery_time"):
                records = synthetic.records(model, "v1", 4000, rng, drift=0.3, faults=0.05, with_labels=True,
                                            attributions=True)
                requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", data=json.dumps(records),
                              headers={"Content-Type": "application/json"}, timeout=60)
            text = requests.get(f"http://127.0.0.1:{replica.metrics_port}/metrics", timeout=30).text
            live = live_counts(text)
            # Segment values rarer than min_samples in this traffic have no verdict yet: the count is their ceiling.
            live["drift"] += unjudged_segments(text, config.models[0].drift.min_samples)
            for name in ("bins", "drift", "quality", "explain"):
                assert live[name] == estimate[name], (name, live, estimate)
            total, counted = sum(live.values()), sum(estimate.values())
            assert abs(counted - total) <= 0.05 * total, (live, estimate)

            fleet = recorded_series(config, {m.name: columns(m, profiles.get(m.name)) for m in config.models},
                                    explained={m.name: explained(m, profiles.get(m.name)) for m in config.models})
            query = 'count({__name__=~".+:.+"})'
            time.sleep(5)  # every group evaluated after two scrapes with the traffic
            recorded = int(float(prom.query(query)[0]["value"][1]))
        print(f"exporter: live {dict(live)} = {total}, counted {dict(estimate)} = {counted}; "
              f"fleet rules: recorded {recorded}, counted {fleet}")
        assert abs(fleet - recorded) <= 0.05 * recorded, (fleet, recorded)
    finally:
        replica.stop()
