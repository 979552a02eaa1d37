"""The rollout gates against a real Prometheus scraping a real exporter with a champion and a canary.

One exporter serves `fraud` v1 (the champion: no variant configured, so `default`) and v2 (a canary by
`versions.variants`). Prometheus evaluates the generated recording rules every second. Every gate query
(as Argo and Flagger would send it, the canary version filled in) must return exactly one sample: NaN
(inconclusive) while the arms hold fewer than `rollout.min_samples`, a number once they hold enough;
and the recorded chi-square and z must be the Python formulas' (scipy-checked) on the counts
Prometheus summed, at the same evaluation.
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from alert_rules import champion_rules
from alert_rules.build import RULES_FILE, render
from alert_rules.rollouts import ARGO_PLACEHOLDER, analysis_template, gates
from exporter.stats.comparison import homogeneity_chisquare, two_proportion_z
from exporter.tooling import synthetic
from tests.conftest import build_config, example_config_data
from tests.support.processes import PrometheusProcess, require_binary
from tests.test_fleet_rules import samples_at

MIN_N = 300
W = "1h"


def gate_config():
    data = example_config_data()
    data["models"] = [m for m in data["models"] if m["name"] == "fraud"]
    data.pop("alerting", None)  # its routes name the team of the model dropped here
    fraud = data["models"][0]
    fraud["versions"] = {"variants": {"v2": "canary"}}
    fraud["rollout"] = {"min_samples": MIN_N, "window": W}
    return build_config(data)


def labelled(version: str, n: int, fnr: float, rng: np.random.Generator, prefix: str) -> list[dict]:
    """Records whose label is 1: a miss (score under the 0.02 decision threshold) with probability fnr."""
    records = synthetic.records("fraud", version, n, rng, id_prefix=prefix)
    for record in records:
        record["label"] = 1
        record["prediction"] = 0.01 if rng.random() < fnr else float(rng.uniform(0.05, 1.0))
    return records


def values(prom: PrometheusProcess, query: str) -> list[float]:
    return [float(s["value"][1]) for s in prom.query(query)]


def test_gate_queries_return_one_sample_inconclusive_below_min_n_and_the_formulas_values(
    tmp_path: Path, start_exporter
) -> None:
    require_binary("prometheus")
    config = gate_config()
    rules = tmp_path / RULES_FILE
    rules.write_text(render(config)[RULES_FILE])
    exporter = start_exporter(config)
    model = config.model("fraud")
    queries = {m["name"]: m["provider"]["prometheus"]["query"].replace(ARGO_PLACEHOLDER, "v2")
               for m in analysis_template(model)["spec"]["metrics"]}
    assert set(queries) == {"drift", "homogeneity", "quality"}
    n = champion_rules.names(W)
    rng = np.random.default_rng(15)
    with PrometheusProcess(tmp_path, [exporter.metrics_url.removeprefix("http://")], [rules]) as prom:
        exporter.post_ok(labelled("v1", 100, 0.10, rng, "a"))
        exporter.post_ok(labelled("v2", 100, 0.20, rng, "b"))
        # A counter born at 100 has no increase until it moves: the arms exist, the z not yet.
        prom.wait_for(lambda: values(prom, f'{n.challenger_samples}{{model_version="v2"}}')
                      and values(prom, n.champion_samples), timeout=30, what="the champion and canary arms recorded")
        variants = {s["metric"]["model_version"]: s["metric"]["variant"]
                    for s in prom.query("mlmon_model_version_variant_info")}
        assert variants == {"v1": "default", "v2": "canary"}
        for name, query in queries.items():
            got = values(prom, query)
            assert len(got) == 1 and math.isnan(got[0]), (name, got)  # below the minimum N: inconclusive

        exporter.post_ok(labelled("v1", 1400, 0.10, rng, "c"))
        exporter.post_ok(labelled("v2", 1400, 0.20, rng, "d"))
        prom.wait_for(lambda: all(v >= MIN_N for v in values(prom, f'{n.champion_trials}')), timeout=30,
                      what="enough champion trials")
        prom.wait_for(lambda: not math.isnan(values(prom, queries["quality"])[0]), timeout=30, what="quality gate")
        time.sleep(2)  # every rule evaluated on the final counts
        for name, query in queries.items():
            got = values(prom, query)
            assert len(got) == 1, (name, got)
        assert values(prom, queries["homogeneity"])[0] >= 0
        assert values(prom, queries["quality"])[0] > 3  # a canary 10 points worse on ~1,500 trials per arm

        at = max(float(s["value"][1]) for s in prom.query(f"timestamp({n.worse_z})"))
        # chi-square and dof on the arm counts Prometheus summed, at the same evaluation
        champion = samples_at(prom, n.champion_bins, at)
        canary = samples_at(prom, f'{n.arm_bins}{{model_version="v2"}}', at)
        bins = sorted({dict(k)["bin"] for k in champion})
        a = np.array([champion[(("bin", b), ("model", "fraud"))] for b in bins])
        b = np.array([canary[(("bin", b), ("model", "fraud"), ("model_version", "v2"), ("variant", "canary"))]
                      for b in bins])
        assert b.sum() > 1200  # the counts are what was sent (increase() extrapolates a little)
        statistic, dof = homogeneity_chisquare(a, b)
        [recorded] = samples_at(prom, n.chisquare, at).values()
        [recorded_dof] = samples_at(prom, n.dof, at).values()
        [critical] = samples_at(prom, n.critical99, at).values()
        assert recorded == pytest.approx(statistic, rel=1e-9)
        assert recorded_dof == dof
        assert critical == pytest.approx(champion_rules.critical_value(0.99, dof), rel=1e-12)
        # z on the trials and ratios Prometheus recorded
        sel = '{metric="false_negative_rate"}'
        [n_a] = samples_at(prom, n.champion_trials + sel, at).values()
        [p_a] = samples_at(prom, n.champion_ratio + sel, at).values()
        [n_b] = samples_at(prom, n.challenger_trials + sel, at).values()
        [p_b] = samples_at(prom, n.challenger_ratio + sel, at).values()
        [z] = samples_at(prom, n.worse_z + sel, at).values()
        assert z == pytest.approx(two_proportion_z(p_a * n_a, n_a, p_b * n_b, n_b), rel=1e-9)
    assert [g.name for g in gates(model)] == ["drift", "homogeneity", "quality"]
