"""Explainability through a real Prometheus: the fleet attribution rules over two replicas give the shares
of the union stream, and a model swapped for one that weighs another feature fires MLMonAttributionDrift
while the input-drift alerts stay silent. Helpers and tolerances are those of tests/test_fleet_rules.py.
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import requests
import yaml

from alert_rules.attribution_rules import attribution_groups, impact_name, name, samples_name
from alert_rules.build import ALERTS_FILE, RULES_FILE, render
from alert_rules.fleet_rules import FEATURES as FEATURE_SIDE, fleet_recording_rules, rule_name
from exporter.config.model import parse_config
from exporter.http.server import start
from exporter.stats import attribution as stats
from exporter.tooling import synthetic
from exporter.tooling.fleet_attributions import fleet_report, recorded_importance
from tests.support.processes import PrometheusProcess, require_binary
from tests.test_fleet_rules import EXAMPLES, MODEL, record_factors, samples_at, scraped_since, settled_at, write_rules

FEATURES = ("amount", "account_age_days", "country", "channel", "is_international")
WINDOW = 3600
FACTOR = "test:mlmon_attribution_records:increase1h"  # each target's extrapolation factor (record_factors)


def fraud_config(alert_for: str = "15m"):
    data = yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text())
    data["models"] = [m for m in data["models"] if m["name"] == MODEL]
    data["models"][0]["drift"]["windows"] = ["1h"]
    data["models"][0]["quality"]["windows"] = ["1h"]
    data["alerting"] = {"runbook_url": "https://example.com/runbooks", "drift": {"for": alert_for}}
    return parse_config(data, base_dir=EXAMPLES)


def model_reference_importance(replica) -> dict[str, float]:
    data = replica.exporter.store.profiles[MODEL].extras["attributions"]["importance"]
    return {n: data[n] for n in FEATURES}


def test_mlmon_explain_reads_the_rule_the_generator_records() -> None:
    assert recorded_importance(WINDOW) == name("model_version_feature", "importance", WINDOW)


def post(replica, records) -> None:
    requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=records, timeout=10).raise_for_status()


def test_fleet_importance_shares_from_the_rules_are_those_of_the_union_stream(tmp_path: Path) -> None:
    require_binary("prometheus")
    config = fraud_config()
    groups = fleet_recording_rules(config) + [g.to_dict() for g in attribution_groups(config)]
    # Test-only: each target's extrapolation factor, recorded in the same evaluation as the shares.
    record_factors(groups[-1], FACTOR, "mlmon_attribution_records_total")
    rules = write_rules(tmp_path / "fleet.yml", groups)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(2)]
    try:
        model = config.model(MODEL)
        for replica in replicas:
            replica.exporter.store.version_state(model, "v1")  # counters exported from 0
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with PrometheusProcess(tmp_path, targets, [rules]) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_attribution_records_total[1m]) >= 2")) == 2,
                          timeout=20, what="two scrapes of both replicas at zero")
            rng = np.random.default_rng(11)
            halves = [synthetic.records(MODEL, "v1", 1500, rng, attributions=True),
                      synthetic.records(MODEL, "v1", 1000, rng, attributions=True, swap=True, id_prefix="b")]
            for replica, half in zip(replicas, halves):
                post(replica, half)
            after = scraped_since(prom, time.time())  # both replicas scraped with their final counts
            share_rule = name("model_version_feature", "share", WINDOW)
            at = settled_at(prom, FACTOR, after=after)  # both replicas' factors recorded, and no scrape landed mid-group
            shares = {dict(k)["feature"]: v for k, v in samples_at(prom, share_rule, at).items()}
            factors = samples_at(prom, FACTOR, at)
            f = {dict(k)["instance"]: v for k, v in factors.items()}
            f = {t: f[t] / len(h) for t, h in zip(targets, halves)}
            phi = [{n: np.abs([r["attributions"][n] for r in h]).sum() for n in FEATURES} for h in halves]
            # (1) The rules sum the replicas: importance = sum_i f_i S_i / sum_i f_i N_i, shares from those.
            mixed = {n: sum(f[t] * p[n] for t, p in zip(targets, phi)) / sum(f[t] * len(h) for t, h in zip(targets, halves))
                     for n in FEATURES}
            total = sum(mixed.values())
            assert shares == pytest.approx({n: v / total for n, v in mixed.items()}, rel=1e-6, abs=1e-12)
            # (2) The union stream's shares, up to the extrapolation mix (as in tests/test_fleet_rules.py).
            union = {n: phi[0][n] + phi[1][n] for n in FEATURES}
            spread = max(f.values()) / min(f.values()) - 1
            for n in FEATURES:
                assert shares[n] == pytest.approx(union[n] / sum(union.values()), rel=0.1 + 4 * spread, abs=0.005)
            n_rule = samples_at(prom, samples_name(WINDOW), at)
            assert list(n_rule.values())[0] == pytest.approx(sum(f[t] * len(h) for t, h in zip(targets, halves)), rel=1e-6)
            # (3) The fleet's nDCG (a sort: not PromQL) from the merged counters, as `mlmon explain` reports it:
            # SageMaker's formula on the union stream's importances, reference importances as gains.
            report = fleet_report(prom.url, model, WINDOW)
            row = report["versions"][0]
            reference = np.array([row["reference_importance"][n] for n in FEATURES])
            union_importance = np.array([union[n] / sum(len(h) for h in halves) for n in FEATURES])
            assert row["ndcg"] == pytest.approx(stats.ndcg(reference, np.array([mixed[n] for n in FEATURES])), rel=1e-6)
            assert row["ndcg"] == pytest.approx(stats.ndcg(reference, union_importance), abs=0.02 + spread)
            expected_ref = {n: v for n, v in model_reference_importance(replicas[0]).items()}
            assert row["reference_importance"] == pytest.approx(expected_ref)
            # (4) Drift impact, fleet-wide: reference importance share x the fleet PSI of each feature.
            # The drift group records PSI on its own schedule: wait for a PSI evaluation after the final scrapes and
            # an impact evaluation after that, then take, per feature, the PSI sample the impact rule read (the
            # latest at or before the impact's evaluation). CI once read an impact from a PSI of the zero counts.
            def evaluated_after(expr: str, since: float) -> float | None:
                stamps = [float(x["value"][1]) for x in prom.query(f"timestamp({expr})")]
                return max(stamps) if len(stamps) == len(FEATURES) and min(stamps) > since else None

            psi_at = prom.wait_for(lambda: evaluated_after(rule_name(FEATURE_SIDE, "psi", WINDOW), after), timeout=20,
                                   what="a PSI evaluation after the final scrapes")
            impact_at = prom.wait_for(lambda: evaluated_after(impact_name(WINDOW), psi_at), timeout=20,
                                      what="an impact evaluation after that PSI")
            impact = {dict(k)["feature"]: v for k, v in samples_at(prom, impact_name(WINDOW), impact_at).items()}
            psi = {}
            for series in prom.query(f"{rule_name(FEATURE_SIDE, 'psi', WINDOW)}[10s]"):
                before = [float(v) for ts, v in series["values"] if float(ts) <= impact_at + 1e-6]
                psi[series["metric"]["feature"]] = before[-1]
            ref_total = sum(expected_ref.values())
            assert impact == pytest.approx({n: expected_ref[n] / ref_total * psi[n] for n in FEATURES}, rel=1e-6, abs=1e-12)
    finally:
        for replica in replicas:
            replica.stop()


def test_a_swapped_model_fires_attribution_drift_and_no_input_drift_in_a_real_prometheus(tmp_path: Path) -> None:
    require_binary("prometheus")
    config = fraud_config(alert_for="1s")
    files = render(config)
    paths = []
    for file_name in (RULES_FILE, ALERTS_FILE):
        (tmp_path / file_name).write_text(files[file_name])
        paths.append(tmp_path / file_name)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(2)]
    try:
        model = config.model(MODEL)
        for replica in replicas:
            replica.exporter.store.version_state(model, "v1")
            replica.exporter.store.version_state(model, "v2")
        with PrometheusProcess(tmp_path, [f"127.0.0.1:{r.metrics_port}" for r in replicas], paths) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_attribution_records_total[1m]) >= 2")) == 4,
                          timeout=20, what="two scrapes of both replicas at zero")
            rng = np.random.default_rng(12)
            for i, replica in enumerate(replicas):  # same inputs; v2 is the swapped model, v1 the reference model
                post(replica, synthetic.records(MODEL, "v1", 1500, rng, attributions=True, id_prefix=f"a{i}"))
                post(replica, synthetic.records(MODEL, "v2", 1500, rng, attributions=True, swap=True, id_prefix=f"b{i}"))

            def firing() -> set[tuple[str, str]]:
                return {(a["labels"]["alertname"], a["labels"].get("model_version", ""))
                        for a in prom.alerts() if a["state"] == "firing"}

            prom.wait_for(lambda: ("MLMonAttributionDrift", "v2") in firing(), timeout=30, what="MLMonAttributionDrift on v2")
            time.sleep(3)  # a few more evaluations for anything else to fire
            alerts = firing()
            assert ("MLMonAttributionDrift", "v1") not in alerts
            assert not {a for a in alerts if a[0] in ("MLMonFeatureDrift", "MLMonMultivariateDrift", "MLMonDriftedFeatureShare")}
            tv = {s["metric"]["model_version"]: float(s["value"][1]) for s in prom.query(name("model_version", "share_tv", WINDOW))}
            assert tv["v2"] >= 0.2 > tv["v1"]
    finally:
        for replica in replicas:
            replica.stop()
