"""Shadow deployments: the champion's and a shadow version's predictions paired by record id.

The store is bounded like the label store (count and age, every way out counted); the exporter
exports per shadow version pairs, agreements and the sum of |score difference|, and the generated
rules turn them into an agreement rate and a mean |difference| over the rollout window.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest

from alert_rules.build import RULES_FILE, render
from alert_rules.champion_rules import shadow_names
from exporter.state.shadow import ShadowPairs
from exporter.tooling import synthetic
from tests.conftest import build_config, example_config_data, series
from tests.support.processes import PrometheusProcess, require_binary


def test_pairs_count_agreements_at_the_threshold_and_absolute_differences() -> None:
    rng = np.random.default_rng(4)
    champion, shadow = rng.random(200), rng.random(200)
    ids = [f"r{i}" for i in range(200)]
    pairs = ShadowPairs(size=1000, ttl=60)
    pairs.offer("shadow", "v2", ids[:100], list(shadow[:100]), now=0, numeric=True, threshold=0.3)  # shadow first
    pairs.offer("default", "v1", ids, list(champion), now=1, numeric=True, threshold=0.3)
    pairs.offer("shadow", "v2", ids[100:], list(shadow[100:]), now=2, numeric=True, threshold=0.3)
    paired, agreed, difference = pairs.counts["v2"]
    assert paired == 200 and len(pairs) == 0
    assert agreed == int(np.sum((champion >= 0.3) == (shadow >= 0.3)))
    assert difference == pytest.approx(np.abs(shadow - champion).sum(), rel=1e-12)


def test_classes_agree_when_they_are_the_same_class() -> None:
    pairs = ShadowPairs(size=10, ttl=60)
    pairs.offer("default", "v1", ["a", "b", "c"], ["cat", "dog", "cat"], now=0, numeric=False, threshold=None)
    pairs.offer("shadow", "v2", ["a", "b", "c"], ["cat", "cat", "cat"], now=0, numeric=False, threshold=None)
    assert pairs.counts["v2"] == [3, 2, 0.0]


def test_the_store_is_bounded_and_every_way_out_is_counted() -> None:
    pairs = ShadowPairs(size=2, ttl=10)
    pairs.offer("default", "v1", ["a", "b", "c"], [0.1, 0.2, 0.3], now=0, numeric=True, threshold=0.5)
    assert len(pairs) == 2 and pairs.outcomes["evicted"] == 1  # "a" made room for "c"
    pairs.offer("default", "v1", ["b"], [0.9], now=1, numeric=True, threshold=0.5)
    assert pairs.outcomes["duplicate"] == 1  # the same arm sent "b" again
    pairs.offer("shadow", "v2", ["b"], [0.25], now=2, numeric=True, threshold=0.5)
    pairs.offer("shadow", "v2", ["b"], [0.25], now=3, numeric=True, threshold=0.5)  # "b" already paired
    assert pairs.outcomes["paired"] == 1 and pairs.outcomes["duplicate"] == 2
    pairs.expire(now=20)
    assert len(pairs) == 0 and pairs.outcomes["expired"] == 1  # "c" never met its partner
    pairs.offer("shadow", "v2", ["z"], [None], now=21, numeric=True, threshold=0.5)  # a missing score still pairs
    pairs.offer("default", "v1", ["z"], [0.4], now=21, numeric=True, threshold=0.5)
    assert pairs.counts["v2"][0] == 2 and pairs.counts["v2"][2] == pytest.approx(0.05)


def shadow_config():
    data = example_config_data()
    data["models"] = [m for m in data["models"] if m["name"] == "fraud"]
    data.pop("alerting", None)
    data["models"][0]["versions"] = {"variants": {"v2": "shadow"}}
    return build_config(data)


def shadow_batches(rng: np.random.Generator, n: int, prefix: str) -> tuple[list[dict], list[dict]]:
    champion = synthetic.records("fraud", "v1", n, rng, id_prefix=prefix)
    shadow = [dict(r, model_version="v2", prediction=float(np.clip(r["prediction"] + rng.normal(0, 0.02), 0, 1)))
              for r in champion]
    return champion, shadow


def test_an_exporter_pairs_a_shadow_with_its_champion_and_prometheus_records_rate_and_mean_difference(
    tmp_path: Path, start_exporter
) -> None:
    require_binary("prometheus")
    config = shadow_config()
    live = start_exporter(config)
    rng = np.random.default_rng(21)
    first = shadow_batches(rng, 400, "a")
    live.post_ok(first[0])
    live.post_ok(first[1])
    samples = live.samples()
    [paired] = series(samples, "mlmon_shadow_pairs_total", model="fraud", model_version="v2").values()
    assert paired == 400
    assert series(samples, "mlmon_shadow_pending", model="fraud") == {frozenset({("model", "fraud")}): 0.0}
    assert series(samples, "mlmon_model_version_variant_info", model_version="v2")
    shadow_series = [key for key in samples if key[0].startswith("mlmon_shadow_")]
    assert len(shadow_series) == 3 + 1 + 4  # per shadow version 3; pending; 4 outcomes (series_budget counts these)

    rules = tmp_path / RULES_FILE
    rules.write_text(render(config)[RULES_FILE])
    pairs_rule, agreement_rule, difference_rule = shadow_names("1h")
    with PrometheusProcess(tmp_path, [live.metrics_url.removeprefix("http://")], [rules]) as prom:
        prom.wait_for(lambda: prom.query("count_over_time(mlmon_shadow_pairs_total[1m]) >= 3"), timeout=30,
                      what="three scrapes of the first batch")
        champion, shadow = shadow_batches(rng, 400, "b")
        live.post_ok(champion)
        live.post_ok(shadow)
        a = np.array([r["prediction"] for r in champion])
        b = np.array([r["prediction"] for r in shadow])
        threshold = config.model("fraud").quality.decision_threshold
        prom.wait_for(lambda: [s for s in prom.query(pairs_rule) if float(s["value"][1]) > 300], timeout=30,
                      what="the second batch recorded")
        time.sleep(2.5)
        # increase() scales both counters of one target by the same factor, so the ratios are exact
        # over the second batch (the first was scraped before it).
        [agreement] = [float(s["value"][1]) for s in prom.query(agreement_rule)]
        [difference] = [float(s["value"][1]) for s in prom.query(difference_rule)]
        assert agreement == pytest.approx(np.mean((a >= threshold) == (b >= threshold)), rel=1e-6)
        assert difference == pytest.approx(np.mean(np.abs(b - a)), rel=1e-6)
