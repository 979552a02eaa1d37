"""Three replicas behind one real Prometheus: the dashboards show what the alerts judge.

Three exporters share the example's built profiles and one drifted fraud stream in unequal shares
(50/30/20); the third also serves delivery_time, at a different rate (its records arrive in many
small batches). A real Prometheus scrapes them every second with the generated recording and
alerting rules, and a real Alertmanager holds the generated inhibit rules. Then:

(a) every reference distribution a dashboard shows sums to 1, not to the replica count;
(b) each drift panel, at the window the alerts judge, equals what the alert expression evaluates;
(c) fleet accuracy, recall and false negative rate (labels inline with the predictions) equal a
    count over the union of the three shares, within increase()'s extrapolation (below);
(d) stopping one exporter fires MLMonExporterDown for that pod and the models it served, and mutes
    those models' drift alerts only: delivery_time's, served elsewhere, stays live;
and every query of every dashboard runs.
"""

from __future__ import annotations

import json
import time
import urllib.parse
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import requests
import yaml

from alert_rules.build import ALERTS_FILE, render
from dashboards.build import build_all
from dashboards.inspect import queries, substitute
from exporter.config.model import MlmonConfig, parse_config
from exporter.http.server import RunningExporter, start
from exporter.tooling import synthetic
from exporter.tooling.stack import StackTiming, local_alerting, run_stack
from tests.support.processes import WebhookReceiver, http_json, require_binary, wait_until
from tests.test_dashboards_e2e import RATE_INTERVAL, RANGE_SECONDS

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
TIMING = StackTiming(drift_windows=("20s", "1m"), drift_for="1s")
ALERT_WINDOW = "1m"            # the longest drift window: the one the drift alerts judge
FRAUD = 3000                   # one drifted stream, shared 50/30/20 by the three replicas
SHARES = (0.5, 0.3, 0.2)
DELIVERY = 1200                # delivery_time, on the third replica only


def fleet_config(webhook: str) -> MlmonConfig:
    data = yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text())
    data["alerting"]["exporter"]["down_for"] = "1s"
    config = parse_config(data, base_dir=EXAMPLES, source="fleet config")
    return local_alerting(config, webhook, TIMING)


def post(replica: RunningExporter, records: list[dict[str, Any]], batches: int) -> None:
    url = f"http://127.0.0.1:{replica.ingest_port}/v1/predictions"
    for chunk in np.array_split(np.arange(len(records)), batches):
        requests.post(url, json=[records[i] for i in chunk], timeout=10).raise_for_status()


def query(prometheus_url: str, expr: str, at: float, instant: bool = True) -> list[dict[str, Any]]:
    if instant:
        path, params = "query", {"query": expr, "time": f"{at:.3f}"}
    else:
        path, params = "query_range", {"query": expr, "start": f"{at - RANGE_SECONDS:.3f}", "end": f"{at:.3f}", "step": "1"}
    answer = http_json(f"{prometheus_url}/api/v1/{path}?" + urllib.parse.urlencode(params))
    assert answer["status"] == "success", (expr, answer)
    return answer["data"]["result"]


def by_labels(result: list[dict[str, Any]], *labels: str) -> dict[tuple[str, ...], float]:
    return {tuple(s["metric"].get(k, "") for k in labels): float(s["value"][1]) for s in result}


def dashboard(config: MlmonConfig, uid: str) -> dict[str, Any]:
    return next(d for d in map(json.loads, build_all(config).values()) if d["uid"] == uid)


def panel_expr(board: dict[str, Any], title: str, ref: str = "A") -> str:
    for panel in board["panels"]:
        if panel.get("title") == title:
            return next(t["expr"] for t in panel["targets"] if t["refId"] == ref)
    raise KeyError(title)


def alert_rule(config: MlmonConfig, name: str, severity: str, model: str) -> dict[str, Any]:
    groups = yaml.safe_load(render(config)[ALERTS_FILE])["groups"]
    group = next(g for g in groups if g["name"] == f"mlmon.model.{model}.alerts")
    return next(r for r in group["rules"] if r["alert"] == name and r["labels"]["severity"] == severity)


FLEET: dict[str, Any] = {}  # what the fixture sent: the stream, and records per replica

VARIABLES = {"model": "fraud", "version": "v1", "window": ALERT_WINDOW, "feature": ".*", "segment": ".*",
             "version_a": "v1", "version_b": "v1", "challenger": ".*", "job": "mlmon", "cluster": ".*", "namespace": ".*", "instance": ".*",
             "__rate_interval": RATE_INTERVAL, "__range": f"{RANGE_SECONDS}s"}


@pytest.fixture(scope="module")
def fleet(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[MlmonConfig, Any, list[RunningExporter], float]]:
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    webhook = WebhookReceiver()
    config = fleet_config(webhook.url)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in SHARES]
    try:
        fraud, delivery = config.model("fraud"), config.model("delivery_time")
        for replica in replicas:  # counters exported from 0 before traffic: increase() sees all of it
            replica.exporter.store.version_state(fraud, "v1")
        replicas[2].exporter.store.version_state(delivery, "v1")
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with run_stack(config, render, targets, tmp_path_factory.mktemp("fleet"), webhook) as stack:
            prom = stack.prometheus
            scraped_twice = "count by (instance) (count_over_time(mlmon_predictions_total[1m]) >= 2)"
            prom.wait_for(lambda: len(prom.query(scraped_twice)) == 3,
                          timeout=60, what="two scrapes of every replica at zero")
            rng = np.random.default_rng(5)
            stream = synthetic.records("fraud", "v1", FRAUD, rng, drift=0.6, with_labels=True)
            edges = np.cumsum([0, *(int(FRAUD * s) for s in SHARES)])
            for replica, start_, end, batches in zip(replicas, edges[:-1], edges[1:], (1, 1, 12)):
                post(replica, stream[start_:end], batches)
            post(replicas[2], synthetic.records("delivery_time", "v1", DELIVERY, rng, drift=0.8), 12)
            fired = ('ALERTS{alertname="MLMonFeatureDrift", alertstate="firing", model="delivery_time"}',
                     'ALERTS{alertname="MLMonFeatureDrift", alertstate="firing", model="fraud"}')
            prom.wait_for(lambda: all(prom.query(f) for f in fired), timeout=20, what="drift alerts of both models")
            prom.wait_for(lambda: prom.query('model_version_metric:mlmon_quality_ratio:1h{model="fraud"}'),
                          timeout=10, what="fleet quality recorded")
            time.sleep(2)  # every replica scraped with its final counts, and the rules evaluated after
            FLEET["stream"], FLEET["sent"] = stream, dict(zip(targets, np.diff(edges).tolist()))
            yield config, stack, replicas, time.time() - 0.5
    finally:
        for replica in replicas:
            replica.stop()


def test_every_reference_distribution_sums_to_one_whatever_the_replica_count(fleet) -> None:
    config, stack, _, at = fleet
    model = dashboard(config, "mlmon-model")
    checked = 0
    for title, group in (("Prediction distribution: now vs reference", ()), ("$feature: now vs reference", ("feature",))):
        result = query(stack.prometheus.url, substitute(panel_expr(model, title, "B"), VARIABLES), at)
        sums: dict[tuple[str, ...], float] = {}
        for series in result:
            key = tuple(series["metric"].get(k, "") for k in group)
            sums[key] = sums.get(key, 0.0) + float(series["value"][1])
        assert sums and all(abs(total - 1) < 1e-9 for total in sums.values()), (title, sums)
        checked += len(sums)
    assert checked == 1 + len(config.model("fraud").features)


def at_any_grade(expr: str) -> str:
    """A drift alert (`score and on (...) grade >= 2`) with its grade bound at 0: every column with a verdict."""
    head, _, grade = expr.rpartition(" >= ")
    assert grade.strip() in {"1", "2", "3"}, expr
    return head + " >= 0"


def test_each_drift_panel_equals_what_the_drift_alert_evaluates(fleet) -> None:
    config, stack, _, at = fleet
    model = dashboard(config, "mlmon-model")
    alert = alert_rule(config, "MLMonFeatureDrift", "warning", "fraud")
    # The alert with its grade threshold at 0: the score it judges, for every feature with a verdict.
    judged = by_labels(query(stack.prometheus.url, at_any_grade(alert["expr"]), at), "feature")
    panel = by_labels(query(stack.prometheus.url, substitute(panel_expr(model, "Feature drift score"), VARIABLES), at),
                      "feature")
    assert judged and judged == panel
    assert max(judged.values()) >= 0.1, "the stream drifts: the warning threshold is crossed"

    prediction_alert = alert_rule(config, "MLMonPredictionDrift", "warning", "fraud")
    judged = by_labels(query(stack.prometheus.url, at_any_grade(prediction_alert["expr"]), at), "model")
    stat = by_labels(query(stack.prometheus.url, substitute(panel_expr(model, "Prediction drift"), VARIABLES), at), "model")
    assert judged and judged == stat

    overview = dashboard(config, "mlmon-overview")
    worst = by_labels(query(stack.prometheus.url, substitute(panel_expr(overview, "Worst feature drift (alert window)"),
                                                             {**VARIABLES, "model": ".*", "version": ".*"}), at),
                      "model")
    assert worst[("fraud",)] == max(panel.values())


def test_fleet_quality_equals_a_count_over_the_union_of_the_replicas(fleet) -> None:
    """increase() extrapolates each replica's counters by its own factor f_i (see
    tests/test_fleet_rules.py), so the fleet ratio is sum f_i a_i / sum f_i b_i, not sum a_i /
    sum b_i; its distance from the union's ratio is at most f_max / f_min - 1, measured here from
    the labelled-predictions counter at the evaluation that recorded the ratios."""
    config, stack, _, at = fleet
    url = stack.prometheus.url
    threshold = config.model("fraud").quality.decision_threshold
    labels = np.array([r["label"] for r in FLEET["stream"]])
    positive = np.array([r["prediction"] >= threshold for r in FLEET["stream"]])
    tp, fn = np.sum(positive & (labels == 1)), np.sum(~positive & (labels == 1))
    fp, tn = np.sum(positive & (labels == 0)), np.sum(~positive & (labels == 0))
    union = {"accuracy": (tp + tn) / len(labels), "recall": tp / (tp + fn), "false_negative_rate": fn / (tp + fn)}

    quality = dashboard(config, "mlmon-quality")
    expr = substitute(panel_expr(quality, "Quality ratios with 95% Wilson intervals"), {**VARIABLES, "window": "1h"})
    fleet_ratios = {k[0]: v for k, v in by_labels(query(url, expr, at), "metric").items()}
    recorded = query(url, 'timestamp(model_version_metric:mlmon_quality_ratio:1h{model="fraud",metric="accuracy"})', at)
    evaluated = float(recorded[0]["value"][1])
    increases = by_labels(query(url, 'increase(mlmon_labelled_predictions_total{model="fraud"}[1h])', evaluated), "instance")
    factors = [increases[(target,)] / sent for target, sent in FLEET["sent"].items()]
    spread = max(factors) / min(factors) - 1
    for metric, expected in union.items():
        assert fleet_ratios[metric] == pytest.approx(expected, rel=spread + 1e-9), (metric, spread)
    assert 0 < union["recall"] < 1 and spread < 0.5, spread  # a vacuous tolerance would prove nothing


def test_every_query_of_every_dashboard_runs(fleet) -> None:
    config, stack, _, at = fleet
    ran = 0
    for text in build_all(config).values():
        for q in queries(json.loads(text)):
            query(stack.prometheus.url, substitute(q.expr, VARIABLES), at, instant=not q.where.startswith("panel"))
            ran += 1
    assert ran > 100


def test_a_stopped_replica_mutes_only_the_models_it_served(fleet) -> None:
    config, stack, replicas, _ = fleet
    stopped = f"127.0.0.1:{replicas[0].metrics_port}"
    replicas[0].stop()  # it served fraud only; delivery_time runs on the third replica

    def exporter_down() -> list[dict[str, Any]]:
        return [a for a in stack.prometheus.alerts()
                if a["labels"]["alertname"] == "MLMonExporterDown" and a["state"] == "firing"]

    down = wait_until(exporter_down, timeout=20, what="MLMonExporterDown")
    assert [(a["labels"]["instance"], a["labels"].get("model")) for a in down] == [(stopped, "fraud")]

    def drift_alerts() -> dict[str, bool] | None:
        alerts = http_json(f"{stack.alertmanager.url}/api/v2/alerts")
        drift = {a["labels"]["model"]: bool(a["status"]["inhibitedBy"]) for a in alerts
                 if a["labels"]["alertname"] == "MLMonFeatureDrift" and a["labels"]["severity"] == "critical"}
        return drift if drift.get("fraud") and set(drift) == {"fraud", "delivery_time"} else None

    assert wait_until(drift_alerts, timeout=20, what="fraud's drift alert muted") == {"fraud": True, "delivery_time": False}
