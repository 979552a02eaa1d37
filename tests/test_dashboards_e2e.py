"""End to end: a real Prometheus scrapes a real exporter fed with synthetic traffic, and every query
of every generated dashboard returns data: an empty answer is a dead panel.

Panels that are legitimately empty in a scenario are listed in EXPECTED_EMPTY with the reason;
anything else that comes back empty (or only NaN) fails the test.
"""

from __future__ import annotations

import copy
import json
import time
import urllib.parse
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml

from alert_rules.build import RULES_FILE, render as render_rules
from dashboards.build import build_all
from dashboards.inspect import DashboardQuery, panels, queries, substitute
from exporter import catalog
from exporter.tooling import synthetic
from exporter.config.model import MlmonConfig, parse_config
from exporter.profiles.pca import EXTRAS_KEY
from exporter.profiles.bin_labels import display_labels
from exporter.profiles.profile import Profile
from exporter.http.server import RunningExporter, start
from tests.support.processes import PrometheusProcess, http_json

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
ROUNDS = 5           # one batch per model version per second
FRAUD_V1 = 300       # records per round; labels for them arrive late through /v1/labels
FRAUD_V2 = 100       # never labelled: the "quality before labels" scenario
FRAUD_CANARY = 100   # v3, a canary: labelled late like v1
# v4, a shadow: v2's records (same ids) scored again, paired with them by id
DELIVERY_V1 = 200    # labels inline
# Grafana's $__rate_interval is max(4 x scrape interval, step + scrape interval); scrapes are 1 s here.
RATE_INTERVAL = "5s"
RANGE_SECONDS = 10

# uid, variable values, and the queries ((panel title, refId) or variable/annotation name) that are
# empty in that scenario, with the reason.
SCENARIOS: list[tuple[str, dict[str, str], dict[tuple[str, str], str]]] = [
    ("mlmon-overview", {"model": ".*", "version": ".*"}, {
        ("Firing MLMon alerts", "A"): "nothing fires in a 10-second run (every alert has a `for` of minutes)",
    }),
    ("mlmon-model", {"model": "fraud", "version": "v1", "window": "5m", "feature": ".*", "segment": ".*"}, {
        ("Per-class probability drift (fleet)", "A"): "a binary model has no per-class scores (the row shows "
                                                      "when the config has a multiclass model, as here)",
    }),
    ("mlmon-model", {"model": "delivery_time", "version": "v1", "window": "1h", "feature": ".*", "segment": ".*"}, {
        ("Per-class probability drift (fleet)", "A"): "a regression model has no classes",
        ("Feature drift per segment", "A"): "delivery_time's weather segments keep quality, not drift (no drift: true)",
        **{(title, ref): "delivery_time has no attributions and no reference importance (docs/explainability.md)"
           for title, ref in (("Importance share: now vs reference", "A"), ("Importance share: now vs reference", "B"),
                              ("Drift impact ranking", "A"), ("Share drift (total variation)", "A"),
                              ("Importance ranking nDCG per replica", "A"), ("Top driver changed", "A"))},
    }),
    ("mlmon-quality", {"model": "fraud", "version": "v1", "window": "1h"}, {
        ("Estimated per-class quality", "A"): "a binary model has no per-class estimates",
        ("Estimated per-class quality", "B"): "a binary model has no macro estimates",
        ("Estimated per-class quality: standard error", "A"): "a binary model has no per-class estimates",
        ("Regression: estimated vs realised error", "A"): "a binary model has no MAE/RMSE",
        ("Regression: estimated vs realised error", "B"): "a binary model has no MAE/RMSE",
    }),
    ("mlmon-quality", {"model": "fraud", "version": "v2", "window": "1h"}, {
        ("Estimated per-class quality", "A"): "a binary model has no per-class estimates",
        ("Estimated per-class quality", "B"): "a binary model has no macro estimates",
        ("Estimated per-class quality: standard error", "A"): "a binary model has no per-class estimates",
        ("Regression: estimated vs realised error", "A"): "a binary model has no MAE/RMSE",
        ("Regression: estimated vs realised error", "B"): "a binary model has no MAE/RMSE",
        ("Label delay", "A"): "v2 is never labelled: no label delay observed",
        ("Label delay", "B"): "v2 is never labelled: no label delay observed",
        ("Label delay", "C"): "v2 is never labelled: no label delay observed",
        ("Quality ratios with 95% Wilson intervals", "A"): "no labels yet: realised quality is undefined",
        ("Quality ratios with 95% Wilson intervals", "B"): "no labels yet: no interval",
        ("Quality ratios with 95% Wilson intervals", "C"): "no labels yet: no interval",
        ("Quality scores", "A"): "no labels yet: no Brier score or log loss",
        ("Quality vs business thresholds", "A"): "no labels yet: the thresholds (B) still show",
        ("Estimated vs realised", "B"): "no labels yet: only the label-free estimate (A) exists",
    }),
    ("mlmon-quality", {"model": "delivery_time", "version": "v1", "window": "1h"}, {
        ("Estimated per-class quality", "A"): "a regression model has no classes",
        ("Estimated per-class quality", "B"): "a regression model has no classes",
        ("Estimated per-class quality: standard error", "A"): "a regression model has no classes",
        ("Regression: estimated vs realised error", "A"):
            "examples/reference/delivery_time.json has no error model (built without --label-column)",
        ("Quality ratios with 95% Wilson intervals", "A"): "regression: no 0-1 ratios (its metrics are scores)",
        ("Quality ratios with 95% Wilson intervals", "B"): "regression: no 0-1 ratios, no intervals",
        ("Quality ratios with 95% Wilson intervals", "C"): "regression: no 0-1 ratios, no intervals",
        ("Estimated vs realised", "A"): "estimates from calibrated scores exist for binary models only",
        ("Estimated vs realised", "B"): "regression: no 0-1 ratios",
        ("Confusion matrix", "A"): "regression: no confusion matrix",
        ("Rates per segment", "A"): "segments apply to binary models only",
        ("Bias measures", "A"): "segments apply to binary models only",
        ("Smallest segment behind each bias measure", "A"): "segments apply to binary models only",
        ("Label delay", "A"): "labels arrive inline with the predictions: no delay observed",
        ("Label delay", "B"): "labels arrive inline with the predictions: no delay observed",
        ("Label delay", "C"): "labels arrive inline with the predictions: no delay observed",
    }),
    # A multiclass model sent with per-class scores and inline labels (INTENT below): per-class drift and estimates.
    ("mlmon-model", {"model": "intent", "version": "v1", "window": "5m", "feature": ".*", "segment": ".*"}, {
        ("Feature drift per segment", "A"): "intent has no segments in this config",
        ("Quality per segment", "A"): "intent has no segments in this config",
        ("variable", "segment"): "intent has no segments in this config",
        ("Mean prediction", "A"): "a class has no mean",
        ("Feature values: categories the reference never saw", "A"): "intent has no categorical feature",
        **{(title, ref): "intent has no attributions and no reference importance (docs/explainability.md)"
           for title, ref in (("Importance share: now vs reference", "A"), ("Importance share: now vs reference", "B"),
                              ("Drift impact ranking", "A"), ("Share drift (total variation)", "A"),
                              ("Importance ranking nDCG per replica", "A"), ("Top driver changed", "A"))},
    }),
    ("mlmon-quality", {"model": "intent", "version": "v1", "window": "1h"}, {
        ("Regression: estimated vs realised error", "A"): "a multiclass model has no MAE/RMSE",
        ("Regression: estimated vs realised error", "B"): "a multiclass model has no MAE/RMSE",
        ("Quality ratios with 95% Wilson intervals", "B"): "multiclass: Wilson intervals are of binary ratios only",
        ("Quality ratios with 95% Wilson intervals", "C"): "multiclass: Wilson intervals are of binary ratios only",
        ("Quality scores", "A"): "multiclass: no Brier score, log loss or expected cost (binary) nor errors (regression)",
        ("Confusion matrix", "A"): "the tp/fp/tn/fn counters are binary; a multiclass model's matrix is per class pair",
        ("Label delay", "A"): "labels arrive inline with the predictions: no delay observed",
        ("Label delay", "B"): "labels arrive inline with the predictions: no delay observed",
        ("Label delay", "C"): "labels arrive inline with the predictions: no delay observed",
        ("Rates per segment", "A"): "segments apply to binary models only",
        ("Bias measures", "A"): "segments apply to binary models only",
        ("Smallest segment behind each bias measure", "A"): "segments apply to binary models only",
    }),
    ("mlmon-versions", {"model": "fraud", "version_a": "v1", "version_b": "v2", "window": "5m"}, {}),
    ("mlmon-rollouts", {"model": "fraud", "challenger": ".*"}, {
        ("annotation", "Reference switch"): "no reference is promoted or reset in a 10-second run",
    }),
    ("mlmon-exporter", {"job": "mlmon", "cluster": ".*", "namespace": ".*", "instance": ".*"}, {}),
]


INTENT_CLASSES = ["billing", "tech", "sales"]
INTENT = 200         # multiclass records per round, per-class scores and labels inline


def intent_rows(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray, list[str]]:
    """Lengths, per-class scores (Dirichlet) and labels drawn from the scores (so they are calibrated)."""
    scores = rng.dirichlet([4.0, 2.0, 1.0], n)
    labels = [INTENT_CLASSES[rng.choice(3, p=row)] for row in scores]
    return rng.gamma(2.0, 20.0, n), scores, labels


def intent_reference(folder: Path) -> Path:
    """A profile of the multiclass model with per-class score binnings (exporter/profiles/class_scores.py)."""
    from exporter.profiles.build import build_profile

    lengths, scores, labels = intent_rows(np.random.default_rng(5), 5000)
    csv = folder / "intent.csv"
    lines = ["length,intent," + ",".join(f"intent_{c}" for c in INTENT_CLASSES)]
    lines += [f"{x},{INTENT_CLASSES[int(np.argmax(r))]}," + ",".join(map(str, r)) for x, r in zip(lengths, scores)]
    csv.write_text("\n".join(lines) + "\n")
    model = parse_config({"models": [intent_model({"capture": 10})]}).models[0]
    path = folder / "intent.json"
    build_profile(csv, model).write(path)
    return path


def intent_model(reference: Any) -> dict[str, Any]:
    return {"name": "intent", "task": "multiclass_classification", "reference": reference,
            "features": [{"name": "length", "type": "numeric"}],
            "prediction": {"name": "intent", "type": "categorical", "classes": INTENT_CLASSES},
            "drift": {"method": "psi", "warning": 0.1, "critical": 0.25, "min_samples": 500, "windows": ["5m", "1h"]},
            "quality": {"thresholds": {"macro_f1": {"min": 0.3}}, "windows": ["1h", "1d"]}}


def e2e_config(folder: Path | None = None) -> MlmonConfig:
    """The example config plus what the quality dashboard shows: business thresholds, a cost model
    and a sensitive attribute on the fraud model; with `folder`, a multiclass model (profile built there)."""
    data = yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text())
    if folder is not None:
        data["models"].append(intent_model(str(intent_reference(folder))))
    fraud = next(m for m in data["models"] if m["name"] == "fraud")
    fraud["quality"] = {
        **fraud.get("quality", {}),
        "thresholds": {"accuracy": {"min": 0.9}, "brier": {"max": 0.2}},
        "cost": {"false_negative": 100, "false_positive": 5},
    }
    fraud["segments"] = [{"attribute": "region", "values": ["na", "eu"], "drift": True, "features": ["amount"]}]
    # The rollouts dashboard compares a canary (v3, labelled) and a shadow (v4, v2's requests again)
    # with the champion (v1 and v2, the default arm).
    fraud["versions"] = {**fraud.get("versions", {}), "variants": {"v3": "canary", "v4": "shadow"}}
    return parse_config(copy.deepcopy(data), base_dir=EXAMPLES, source="e2e config")


def no_multivariate_reference(config: MlmonConfig, model: str) -> dict[tuple[str, str], str]:
    """Multivariate drift needs a PCA basis in the reference profile; profiles built before
    multivariate drift existed carry none, and then the exporter exports no multivariate series."""
    model_config = config.model(model)
    path = config.reference_path(model_config) if model_config else None
    if path is None or EXTRAS_KEY in Profile.read(path).extras:
        return {}
    reason = f"{path.name} has no PCA basis (profile extras), so no multivariate drift is computed"
    return {("Multivariate drift", "A"): reason, ("Multivariate drift", "B"): reason}


def region(country: str) -> str:
    return {"US": "na", "GB": "eu", "DE": "eu", "FR": "eu"}.get(country, "other")


def send_traffic(exporter: RunningExporter, rng: np.random.Generator) -> int:
    """ROUNDS seconds of traffic; returns the fraud v1 records sent."""
    ingest = f"http://127.0.0.1:{exporter.ingest_port}"
    sent = 0
    for round_ in range(ROUNDS):
        v1 = synthetic.records("fraud", "v1", FRAUD_V1, rng, faults=0.05, id_prefix=f"r{round_}-", with_labels=True,
                               attributions=True)
        labels = [{"id": r["id"], "label": r.pop("label")} for r in v1]
        v2 = synthetic.records("fraud", "v2", FRAUD_V2, rng, drift=0.5, faults=0.05, id_prefix=f"r{round_}-v2-")
        canary = synthetic.records("fraud", "v3", FRAUD_CANARY, rng, faults=0.05, id_prefix=f"r{round_}-v3-",
                                   with_labels=True)
        labels += [{"id": r["id"], "label": r.pop("label")} for r in canary]
        shadow = [{**copy.deepcopy(r), "model_version": "v4",
                   "prediction": r["prediction"] * 0.9 if isinstance(r.get("prediction"), float) else r.get("prediction")}
                  for r in v2]
        for record in v1 + v2:
            record["segments"] = {"region": region(record["features"].get("country", ""))}
        delivery = synthetic.records("delivery_time", "v1", DELIVERY_V1, rng, faults=0.05, with_labels=True,
                                     id_prefix=f"r{round_}-")
        unknown = [{"model": "no_such_model", "model_version": "v1", "features": {}, "prediction": 1.0}]
        lengths, scores, classes = intent_rows(rng, INTENT)
        intent = [{"model": "intent", "model_version": "v1", "id": f"r{round_}-i{i}", "features": {"length": x},
                   "prediction": row, "label": label}
                  for i, (x, row, label) in enumerate(zip(lengths.tolist(), scores.tolist(), classes))]
        for batch in (v1, v2, canary, shadow, delivery, unknown, intent):
            response = requests.post(f"{ingest}/v1/predictions", data=json.dumps(batch),
                                     headers={"Content-Type": "application/json"}, timeout=10)
            assert response.status_code in (200, 422), response.text
        time.sleep(0.5)  # labels come later than their predictions: a real label delay
        answer = requests.post(f"{ingest}/v1/labels", json=labels, timeout=10).json()
        assert answer["joined"] == FRAUD_V1 + FRAUD_CANARY, answer
        sent += FRAUD_V1
        time.sleep(0.5)
    return sent


def has_data(result: list[dict[str, Any]]) -> bool:
    """Some series with some value that is a number (a NaN-only series draws nothing)."""
    for series in result:
        values = series.get("values") or ([series["value"]] if "value" in series else [])
        if any(v[1] not in ("NaN", "+Inf", "-Inf") for v in values):
            return True
    return False


def run(prometheus: PrometheusProcess, expr: str, instant: bool, now: float) -> list[dict[str, Any]]:
    if instant:
        params = {"query": expr, "time": f"{now:.3f}"}
        path = "query"
    else:
        params = {"query": expr, "start": f"{now - RANGE_SECONDS:.3f}", "end": f"{now:.3f}", "step": "1"}
        path = "query_range"
    answer = http_json(f"{prometheus.url}/api/v1/{path}?" + urllib.parse.urlencode(params))
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def scenario_queries(dashboard: dict[str, Any]) -> list[tuple[tuple[str, str], DashboardQuery, bool]]:
    """((panel title, refId) or (kind, name), query, instant?) for every query Grafana would run."""
    by_where = {q.where: q for q in queries(dashboard)}
    out = []
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            where = f"panel {panel['id']} {panel['title']!r} {target['refId']}"
            out.append(((panel["title"], target["refId"]), by_where.pop(where), bool(target["instant"])))
    for where, query in by_where.items():  # variables and annotations: instant lookups of series
        kind, _, name = where.partition(" ")
        out.append(((kind, name), query, True))
    return out


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("e2e")
    config = e2e_config(workdir)
    exporter = start(config, "127.0.0.1:0", "127.0.0.1:0")
    # Counters exported from 0 before the first scrape, so increase() sees every batch: the fleet verdicts
    # wait until the summed counters cover 90% of what the pods hold (alert_rules/fleet_verdict.py).
    for name, version in (("fraud", "v1"), ("fraud", "v2"), ("delivery_time", "v1"), ("intent", "v1")):
        exporter.exporter.store.version_state(config.model(name), version)
    # The drift panels read the fleet recording rules, as the alerts do: load the generated ones.
    rules = workdir / RULES_FILE
    rules.write_text(render_rules(config)[RULES_FILE])
    try:
        with PrometheusProcess(workdir, [f"127.0.0.1:{exporter.metrics_port}"], [rules]) as prom:
            # Prometheus's first scrape comes only after its discovery reload (~5 s): traffic sent
            # before that would land in the first sample and never show as a rate.
            prom.wait_for(lambda: prom.query("up == 1"), timeout=20, what="the first scrape")
            sent = send_traffic(exporter, np.random.default_rng(11))
            selector = f'{catalog.LABELLED_PREDICTIONS.name}{{model="fraud",model_version="v1"}}'
            prom.wait_for(lambda: prom.query(f"{selector} == {sent}"), timeout=15, what="the last labels scraped")
            # The graded verdicts wait for 90% coverage of the pods' counters: on a loaded machine the rule
            # evaluation that first reaches it can lag the last scrape, so wait for it before judging panels.
            for model in ("fraud", "delivery_time"):
                grade = f'model_version_feature:mlmon_feature_drift_grade:1h{{model="{model}",model_version="v1"}}'
                prom.wait_for(lambda grade=grade: has_data(prom.query(grade)), timeout=30, what=f"the drift grade of {model}")
            time.sleep(2)  # a few more scrapes, so every rate window holds two samples or more
            yield config, prom, time.time()
    finally:
        exporter.stop()


@pytest.mark.parametrize("uid, values, expected_empty", SCENARIOS,
                         ids=[f"{uid}-{'-'.join(v.values())}" for uid, v, _ in SCENARIOS])
def test_every_dashboard_query_returns_data(live, uid, values, expected_empty):
    config, prometheus, now = live
    if "model" in values and uid == "mlmon-model":
        expected_empty = {**expected_empty, **no_multivariate_reference(config, values["model"])}
    dashboard = next(json.loads(t) for t in build_all(config).values() if json.loads(t)["uid"] == uid)
    variables = {**values, "__rate_interval": RATE_INTERVAL, "__range": f"{RANGE_SECONDS}s"}
    dead, unexpectedly_alive = [], []
    for key, query, instant in scenario_queries(dashboard):
        expr = substitute(query.expr, variables)
        alive = has_data(run(prometheus, expr, instant, now))
        if not alive and key not in expected_empty:
            dead.append(f"{key}: {expr}")
        if alive and key in expected_empty:
            unexpectedly_alive.append(f"{key} (documented empty: {expected_empty[key]})")
    assert not dead, "dead panels (no data):\n" + "\n".join(dead)
    assert not unexpectedly_alive, "documented as empty but returned data:\n" + "\n".join(unexpectedly_alive)


@pytest.mark.parametrize("title", ["$feature: now vs reference", "Prediction distribution: now vs reference"])
def test_now_vs_reference_tables_name_every_bin_by_its_edges_as_the_model_page_does(live, title):
    """Both queries of the table carry the same bin_label per bin, equal to the page's display labels."""
    config, prometheus, now = live
    dashboard = json.loads(build_all(config)["mlmon-model.json"])
    (panel,) = [p for p in panels(dashboard) if p["title"] == title]
    excluded = panel["transformations"][2]["options"]["excludeByName"]
    assert excluded["bin"] is True and panel["transformations"][2]["options"]["renameByName"]["bin_label"] == "bin"
    profile = Profile.read(config.reference_path(config.model("fraud")))
    binnings = {**profile.features, "": profile.prediction}
    variables = {"model": "fraud", "version": "v1", "window": "5m", "feature": ".*", "__rate_interval": RATE_INTERVAL}
    rows = []
    for target in panel["targets"]:
        result = run(prometheus, substitute(target["expr"], variables), True, now)
        labels = {(s["metric"].get("feature", ""), s["metric"]["bin"]): s["metric"]["bin_label"] for s in result}
        assert len(labels) == len(result) and result, target["expr"]  # one row per bin
        rows.append(labels)
    assert rows[0] == rows[1]  # now and reference join row for row
    for (feature, bin_), label in rows[0].items():
        binning = binnings[feature]
        assert label == display_labels(binning)[binning.labels.index(bin_)], (feature, bin_, label)
    if title.startswith("$feature"):
        amount = [label for (feature, _), label in sorted(rows[0].items()) if feature == "amount"]
        assert amount[0].startswith("< ") and amount[1].startswith("[") and amount[-1].startswith("> "), amount
