"""Fleet multivariate drift in a real Prometheus: the mean error and the verdict come from counters summed over pods.

Two exporters get different halves of one stream (one half drifted); a real Prometheus records the rules of alert_rules/fleet_multivariate.py. As in
tests/test_fleet_rules.py, increase() extrapolates each target's counters by its own factor f, so the
fleet histogram is f_A a + f_B b; the test reads f from a rule in the same evaluation.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import requests

from alert_rules.fleet_multivariate import mean_name, verdict_name
from alert_rules.fleet_rules import MULTIVARIATE, bins_name, fleet_recording_rules, rule_name
from alert_rules.fleet_verdict import verdict_groups_for
from alert_rules.fleet_multivariate import multivariate_groups_for
from exporter.http.drift_report import multivariate_floor
from exporter.stats import drift
from exporter.stats.multivariate import multivariate_drift
from exporter.tooling import synthetic
from exporter.http.server import start
from tests.support.processes import PrometheusProcess, require_binary
from tests.test_fleet_rules import FACTOR, fraud_config, record_factors, samples_at, scraped_since, settled_at, write_rules

N = 3000


def test_the_fleet_mean_error_and_verdict_are_the_union_streams(tmp_path: Path) -> None:
    require_binary("prometheus")
    config = fraud_config(["1h"])
    groups = fleet_recording_rules(config)
    verdicts, multivariate = verdict_groups_for(config), multivariate_groups_for(config)
    groups[0]["rules"] += verdicts[3600] + multivariate[3600]
    record_factors(groups[0])
    rules = write_rules(tmp_path / "fleet.yml", groups)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(2)]
    try:
        model = config.model("fraud")
        states = [r.exporter.store.version_state(model, "v1") for r in replicas]
        assert states[0].multivariate is not None  # the example profile carries a PCA basis
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with PrometheusProcess(tmp_path, targets, [rules]) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2")) == 2,
                          timeout=20, what="two scrapes of both replicas at zero")
            rng = np.random.default_rng(9)
            halves = [synthetic.records("fraud", "v1", N, rng),
                      synthetic.records("fraud", "v1", N, rng, drift=1.0, id_prefix="b")]
            for replica, half in zip(replicas, halves):
                requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=half, timeout=30).raise_for_status()
            at = settled_at(prom, after=scraped_since(prom, time.time()))
            f = {dict(k)["instance"]: v / N for k, v in samples_at(prom, FACTOR, at).items()}
            counts = [s.multivariate.cumulative.astype(float) for s in states]
            sums = [float(s.multivariate.cumulative_sum[0]) for s in states]
            mixed = sum(f[t] * c for t, c in zip(targets, counts))
            binning = states[0].multivariate.basis.error_binning
            fleet = samples_at(prom, bins_name(MULTIVARIATE, 3600), at)
            got = np.array([fleet[(("bin", b), ("model", "fraud"), ("model_version", "v1"))] for b in binning.labels])
            np.testing.assert_allclose(got, mixed, rtol=1e-6, atol=1e-9)  # the pods' histograms are summed
            mean = list(samples_at(prom, mean_name(3600), at).values())
            assert mean == [pytest.approx(sum(f[t] * s for t, s in zip(targets, sums)) / mixed.sum(), rel=1e-6)]
            # the union stream's mean (what one pod seeing all the traffic would say), up to the extrapolation mix
            assert mean[0] == pytest.approx(sum(sums) / sum(c.sum() for c in counts), rel=0.05)
            seg = drift.Segments.of_sizes([binning.n_bins])
            psi = drift.psi(binning.reference_ratio, drift.fractions(mixed, seg)[0], seg)[0]
            got_psi = list(samples_at(prom, rule_name(MULTIVARIATE, "psi", 3600), at).values())
            assert got_psi == [pytest.approx(psi, rel=1e-6)]
            python = multivariate_drift(binning.reference_ratio, binning.reference_total, mixed, 0.0, 0.0, 0.0,
                                        model.drift.alpha, multivariate_floor(model.drift), model.drift.min_samples)
            assert python.verdict == 1, python  # half the stream drifted
            assert list(samples_at(prom, verdict_name(3600), at).values()) == [python.verdict]
    finally:
        for replica in replicas:
            replica.stop()
