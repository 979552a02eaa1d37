"""Fleet per-class probability drift in a real Prometheus: each class's score and verdict come from counters
summed over pods, and equal what one exporter would say about the union stream.

Two exporters get different halves of one multiclass stream (one half with the fox class's probability
shifted); a real Prometheus records the rules of alert_rules/fleet_class_drift.py. As in
tests/test_fleet_rules.py, increase() extrapolates each target's counters by its own factor f, so the
fleet histogram is f_A a + f_B b; the test reads f from a rule of the same evaluation and scores that
mix in Python (exporter/http/drift_report.py, the rule the exporter applies to one pod's counts).
"""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
import requests

from alert_rules.fleet_class_drift import class_groups_for, verdict_names
from alert_rules.fleet_rules import CLASSES, bins_name, fleet_recording_rules, rule_name
from alert_rules.fleet_verdict import verdict_groups_for
from alert_rules.rules import RecordingRule, RuleGroup
from alert_rules.series import recorded_series
from exporter import catalog as c
from exporter.tooling.series_budget import columns, per_exporter
from exporter.config.model import parse_config
from exporter.http.drift_report import Reference, score_window
from exporter.http.server import start
from exporter.profiles.build import build_profile
from exporter.state.layout import Layout
from tests.support.processes import PrometheusProcess, require_binary
from tests.test_class_drift import CLASSES as NAMES, REFERENCE_SHARE, SHIFTED_SHARE, model_data, scores, write_reference
from tests.test_fleet_rules import FACTOR, record_factors, samples_at, scraped_since, settled_at, write_rules

N = 3000
CLASS_FAMILIES = (c.CLASS_PROBABILITY_BIN, c.CLASS_PROBABILITY_REFERENCE, c.CLASS_PROBABILITY_REFERENCE_SAMPLES,
                  c.CLASS_PROBABILITY_DRIFT_SCORE, c.CLASS_PROBABILITY_DRIFT_P_VALUE, c.CLASS_PROBABILITY_DRIFT_DETECTED,
                  c.CLASS_PROBABILITY_WINDOW_SAMPLES)


def test_the_fleet_per_class_drift_is_the_union_streams(tmp_path: Path) -> None:
    require_binary("prometheus")
    model = parse_config({"models": [model_data({"capture": 10})]}).models[0]
    build_profile(write_reference(tmp_path / "ref.csv", np.random.default_rng(2), True), model).write(tmp_path / "m.json")
    config = parse_config({"exporter": {"window_slots": 10}, "models": [model_data("m.json")]}, base_dir=tmp_path)
    groups = fleet_recording_rules(config)
    groups[0]["rules"] += verdict_groups_for(config)[3600] + class_groups_for(config)[3600]
    record_factors(groups[0])
    rules = write_rules(tmp_path / "fleet.yml", groups)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(2)]
    try:
        model = config.model("m")
        states = [r.exporter.store.version_state(model, "v1") for r in replicas]
        assert states[0].class_drift is not None  # the profile carries the per-class binnings
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with PrometheusProcess(tmp_path, targets, [rules]) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2")) == 2,
                          timeout=20, what="two scrapes of both replicas at zero")
            rng = np.random.default_rng(9)
            halves = [scores(rng, N, REFERENCE_SHARE), scores(rng, N, SHIFTED_SHARE)]
            for replica, half in zip(replicas, halves):
                body = {"model": "m", "model_version": "v1", "features": {"x": [0.0] * N}, "predictions": half.tolist()}
                requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=body,
                              timeout=30).raise_for_status()
            after = scraped_since(prom, time.time())
            grade = verdict_names(3600).grade
            prom.wait_for(lambda: len(prom.query(grade)) == 3, timeout=20, what="a fleet grade per class")
            at = settled_at(prom, after=after)
            f = {dict(k)["instance"]: v / N for k, v in samples_at(prom, FACTOR, at).items()}
            drift_states = [s.class_drift for s in states]
            mixed = sum(f[t] * d.cumulative.astype(float) for t, d in zip(targets, drift_states))
            union = sum(d.cumulative for d in drift_states)
            assert union.sum() == 3 * 2 * N  # every row binned once per class, on one pod or the other
            binnings, offsets = drift_states[0].binnings, drift_states[0].offsets
            fleet = samples_at(prom, bins_name(CLASSES, 3600), at)
            got = np.array([fleet[(("bin", b), ("class", cls), ("model", "m"), ("model_version", "v1"))]
                            for cls, binning in zip(NAMES, binnings) for b in binning.labels])
            np.testing.assert_allclose(got, mixed, rtol=1e-6, atol=1e-9)  # the pods' class histograms are summed
            python = score_window(Reference.of(Layout(binnings, offsets)), mixed, model.drift)
            psi = samples_at(prom, rule_name(CLASSES, "psi", 3600), at)
            ks = samples_at(prom, rule_name(CLASSES, "ks", 3600), at)
            graded = samples_at(prom, grade, at)
            # With equal factors (counters older than the window) the mix is the union stream: what one exporter
            # seeing all the traffic scores. Scored that way here, the verdicts agree.
            union_scored = score_window(Reference.of(Layout(binnings, offsets)), union, model.drift)
            np.testing.assert_array_equal(union_scored["verdict"], python["verdict"])
            for i, cls in enumerate(NAMES):
                key = (("class", cls), ("model", "m"), ("model_version", "v1"))
                assert psi[key] == pytest.approx(python["scores"]["psi"][i], rel=1e-6, abs=1e-12)
                assert ks[key] == pytest.approx(python["scores"]["ks"][i], rel=1e-6, abs=1e-12)
                assert (graded[key] >= 1) == bool(python["verdict"][i]), (cls, graded, python["verdict"])
            fox = (("class", "fox"), ("model", "m"), ("model_version", "v1"))
            assert graded[fox] >= 1 and python["verdict"][2] == 1  # half the stream's fox probability moved
            # The series budget (mlmon config check) counts what the class families and rules add.
            live = sum(int(prom.query(f'count({{__name__="{m.name}", instance="{targets[0]}"}})')[0]["value"][1])
                       for m in CLASS_FAMILIES)
            profiles = {"m": replicas[0].exporter.store.version_state(model, "v1").profile}
            class_budget = per_exporter(config, profiles)["drift"] - per_exporter(config, {})["drift"]
            assert class_budget == live, (class_budget, live)
            recorded = int(float(prom.query('count({__name__=~"model_version_class.*"})')[0]["value"][1]))
            class_only = [RuleGroup("classes", [RecordingRule(r["record"], r["expr"]) for r in class_groups_for(config)[3600]])]
            counted = recorded_series(config, {"m": columns(model, profiles["m"])}, groups=class_only)
            assert counted == recorded, (counted, recorded)
    finally:
        for replica in replicas:
            replica.stop()
