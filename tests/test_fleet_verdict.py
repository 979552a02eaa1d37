"""The fleet drift verdict in PromQL is the exporter's verdict on the same counts.

Three real exporters (one built profile, different shares of one stream with different drift, one
of them at a third of the others' volume) behind one real Prometheus with the generated rules. At
one rule evaluation, the recorded fleet bin counts are scored by the exporter's own
``drift_report.score_window`` (the code behind ``mlmon_feature_drift_detected``) and its grade
(0 not drifted, 1 info, 2 warning, 3 critical) must equal ``..._drift_grade:1h`` for every feature
and the prediction, the recorded method score must equal the exporter's decision score, and the
recorded significance must be >= 1 exactly when the exporter's p-value is below alpha (except in the
band where Wilson-Hilferty's chi-square quantile and the exact one disagree, asserted empty here).
"""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest
import requests
from scipy import stats

from alert_rules import fleet_verdict
from alert_rules.fleet_rules import FEATURES, PREDICTION, bins_name
from alert_rules.recording import fleet_drift_groups
from exporter.http import drift_report
from exporter.http.server import start
from exporter.tooling import synthetic
from tests.support.processes import PrometheusProcess, require_binary
from tests.test_fleet_rules import MODEL, WINDOW, fraud_config, samples_at, scraped_since, write_rules


def grade(verdict: float, score: float, warning: float, critical: float) -> float:
    if math.isnan(verdict):
        return math.nan
    return 0.0 if verdict == 0 else 1.0 + (score >= warning) + (score >= critical)


@pytest.mark.parametrize("alpha,dof", [(a, d) for a in (0.05, 0.01, 0.001) for d in (1, 2, 3, 5, 10, 20, 50)])
def test_critical_values_are_the_test_quantiles(alpha: float, dof: int) -> None:
    # KS: the first term of the Kolmogorov series is the whole p-value at these levels.
    lam = fleet_verdict.ks_lambda(alpha)
    assert stats.kstwobign.sf(lam) == pytest.approx(alpha, rel=2e-5)  # next term: 2 (alpha/2)^4
    # chi-square: exact for one degree of freedom; Wilson-Hilferty within 2.3% (dof 2, alpha 0.001),
    # 1.2% from dof 5 and 0.6% from dof 10 (measured; docs/drift.md has the table).
    exact = stats.chi2.isf(alpha, dof)
    tolerance = 1e-9 if dof == 1 else 0.025 if dof < 5 else 0.012 if dof < 10 else 0.006
    assert fleet_verdict.chi2_quantile(alpha, dof) == pytest.approx(exact, rel=tolerance)


def test_fleet_verdict_of_three_replicas_is_the_exporters_verdict_of_the_summed_counts(tmp_path: Path) -> None:
    require_binary("prometheus")
    config = fraud_config(["1h"])
    model = config.model(MODEL)
    drift_config = model.drift
    groups = [{"name": g.name, "rules": [{"record": r.record, "expr": r.expr} for r in g.rules]}
              for g in fleet_drift_groups(config)]
    rules = write_rules(tmp_path / "fleet.yml", groups)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(3)]
    try:
        state = [r.exporter.store.version_state(model, "v1") for r in replicas][0]  # counters exported from 0
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with PrometheusProcess(tmp_path, targets, [rules]) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2")) == 3,
                          timeout=20, what="two scrapes of every replica at zero")
            rng = np.random.default_rng(11)
            shares = [synthetic.records(MODEL, "v1", 1500, rng, drift=0.0),
                      synthetic.records(MODEL, "v1", 1500, rng, drift=0.35, id_prefix="b"),
                      synthetic.records(MODEL, "v1", 500, rng, drift=1.0, id_prefix="c")]
            for replica, share in zip(replicas, shares):
                requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=share,
                              timeout=10).raise_for_status()
            after = scraped_since(prom, time.time(), targets=3)  # every replica scraped with its final counts
            names = {side: fleet_verdict.names(side, WINDOW) for side in (FEATURES, PREDICTION)}
            at = prom.wait_for(lambda: max((t for s in prom.query(f"timestamp({names[FEATURES].grade})")
                                            if (t := float(s["value"][1])) > after), default=None),
                               timeout=20, what="a fleet grade evaluated after the final scrapes")

            layout = state.layout
            reference = drift_report.Reference.of(layout)
            counts = []
            for side in (FEATURES, PREDICTION):
                bins = samples_at(prom, bins_name(side, WINDOW), at)
                for binning in (layout.binnings[:-1] if side is FEATURES else layout.binnings[-1:]):
                    keys = {"model": MODEL, "model_version": "v1", "bin": None}
                    if side is FEATURES:
                        keys["feature"] = binning.name
                    counts.append([bins[tuple(sorted({**keys, "bin": label}.items()))] for label in binning.labels])
            flat = np.concatenate([np.array(c, dtype=float) for c in counts])
            exporter = drift_report.score_window(reference, flat, drift_config)

            seen = set()
            for column, binning in enumerate(layout.binnings):
                side = PREDICTION if column == len(layout.binnings) - 1 else FEATURES
                match = "" if side is PREDICTION else f'{{feature="{binning.name}"}}'
                got = {k: list(samples_at(prom, f"{getattr(names[side], k)}{match}", at).values())
                       for k in ("score", "significance", "grade")}
                assert all(len(v) == 1 for v in got.values()), (binning.name, got)
                score, significance, fleet_grade = (v[0] for v in got.values())
                decision = float(exporter["decision_score"][column])
                assert score == pytest.approx(decision, rel=1e-6, abs=1e-12), binning.name
                p_value = float(exporter["p_value"][column])
                assert not 0.95 < significance < 1.05, (binning.name, significance)  # WH band: not a coin flip
                assert (significance >= 1) == (p_value < drift_config.alpha), (binning.name, significance, p_value)
                expected = grade(float(exporter["verdict"][column]), decision, drift_config.warning, drift_config.critical)
                assert fleet_grade == expected, (binning.name, fleet_grade, expected, decision, p_value)
                seen.add(fleet_grade)
            assert len(seen) >= 2, seen  # the mix gives more than one grade

            share = list(samples_at(prom, f"{fleet_verdict.drifted_share_name(WINDOW)}", at).values())
            assert share == [pytest.approx(exporter["drifted_ratio"], rel=1e-9)]
    finally:
        for replica in replicas:
            replica.stop()
