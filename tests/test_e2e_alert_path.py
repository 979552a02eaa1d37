"""End to end with real processes: drifting traffic -> exporter -> Prometheus (generated rules) ->
Alertmanager (generated routing) -> webhook, and the alert resolves when traffic is normal again.

The config is the example one, rewritten by exporter.tooling.stack.local_alerting exactly as
`mlmon demo --stack` does: every declared receiver becomes a webhook to a local receiver that
keeps its name, so the test sees which route each notification took. Drift is judged over a
20 s window so that the whole story takes about a minute.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from alert_rules.build import render
from exporter.tooling import synthetic
from exporter.config.model import load_config
from exporter.http.server import start
from exporter.tooling.stack import StackTiming, local_alerting, run_stack
from support.processes import WebhookReceiver, require_binary, wait_until

TIMING = StackTiming(drift_windows=("20s",), drift_for="2s")


class Traffic:
    """Posts fraud records at a steady rate; `drift` can be changed while it runs."""

    def __init__(self, ingest_port: int, rate: int = 400) -> None:
        self.url = f"http://127.0.0.1:{ingest_port}/v1/predictions"
        self.rate = rate
        self.drift = 0.0
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.rng = np.random.default_rng(11)

    def _run(self) -> None:
        batch = 0
        while not self.stop.is_set():
            records = synthetic.records("fraud", "v1", self.rate // 4, self.rng, drift=self.drift, id_prefix=f"{batch}-")
            requests.post(self.url, json=records, timeout=5).raise_for_status()
            batch += 1
            self.stop.wait(0.25)

    def __enter__(self) -> Traffic:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)


def drift_alerts(webhook: WebhookReceiver, status: str) -> list[tuple[str, dict[str, Any]]]:
    """(receiver, alert) for every MLMonFeatureDrift notification with this status."""
    return [
        (payload["receiver"], alert)
        for payload in webhook.payloads
        for alert in payload["alerts"]
        if alert["labels"]["alertname"] == "MLMonFeatureDrift" and alert["status"] == status
    ]


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory):
    require_binary("prometheus")
    require_binary("prometheus-alertmanager")
    webhook = WebhookReceiver()
    config = local_alerting(load_config("examples/mlmon.yaml"), webhook.url, TIMING)
    exporter = start(config, "127.0.0.1:0", "127.0.0.1:0")
    try:
        workdir: Path = tmp_path_factory.mktemp("stack")
        with run_stack(config, render, [f"127.0.0.1:{exporter.metrics_port}"], workdir, webhook) as local:
            local.prometheus.wait_for(lambda: local.prometheus.query('up{job="mlmon"} == 1'), what="first scrape")
            yield config, exporter, local
    finally:
        exporter.stop()


def test_drift_alert_travels_the_declared_route_with_its_labels_and_resolves(stack) -> None:
    config, exporter, local = stack
    prometheus, webhook = local.prometheus, local.webhook
    with Traffic(exporter.ingest_port) as traffic:
        # Clean traffic: the window fills past min_samples and no drift alert is pending or firing.
        wait_until(lambda: prometheus.query('sum(mlmon_feature_window_samples{model="fraud",window="20s"}) > 2000'),
                   timeout=30, what="a full window of clean traffic")
        # ... and the counters older than the window: until then increase() skews the fleet shares
        # (docs/drift.md, the coverage guard), which on a loaded machine can pass for info drift.
        time.sleep(22)
        assert prometheus.query('ALERTS{alertname="MLMonFeatureDrift"}') == []

        # The inputs drift: the alert fires and reaches the receivers of the risk team's routes.
        traffic.drift = 1.0
        wait_until(lambda: {r for r, a in drift_alerts(webhook, "firing") if a["labels"]["severity"] == "critical"}
                   >= {"risk-pagerduty", "audit-webhook"}, timeout=60, what="critical drift notifications")
        wait_until(lambda: "risk-slack" in {r for r, _ in drift_alerts(webhook, "firing")}, timeout=30,
                   what="the warning on risk-slack")

        # Labels and annotations say what drifted, where, how badly and what to do.
        receiver, alert = next((r, a) for r, a in drift_alerts(webhook, "firing") if a["labels"]["severity"] == "critical")
        labels, annotations = alert["labels"], alert["annotations"]
        feature = labels["feature"]
        assert feature in {f.name for f in config.model("fraud").features}
        assert {k: labels[k] for k in ("model", "model_version", "team", "window")} == {
            "model": "fraud", "model_version": "v1", "team": "risk", "window": "20s",
        }
        assert annotations["summary"] == "A feature's distribution drifted from its reference."
        assert feature in annotations["description"] and "psi" in annotations["description"]
        assert annotations["runbook_url"].endswith("/MLMonFeatureDrift.md")
        # Warnings of the team go to Slack, never to PagerDuty.
        assert all(a["labels"]["severity"] == "critical" for r, a in drift_alerts(webhook, "firing")
                   if r == "risk-pagerduty")

        # Traffic returns to normal: the 20 s window forgets the drift, the resolution of the
        # critical alert is notified, and no drift alert is left firing or pending on that feature.
        # (Its warning was inhibited by the critical one, so it may never be notified at all.)
        traffic.drift = 0.0
        wait_until(lambda: any(a["labels"]["feature"] == feature and a["labels"]["severity"] == "critical"
                               for _, a in drift_alerts(webhook, "resolved")),
                   timeout=90, what=f"the critical drift alert on {feature} to resolve")
        wait_until(lambda: prometheus.query(f'ALERTS{{alertname="MLMonFeatureDrift", feature="{feature}"}}') == [],
                   timeout=60, what=f"no drift alert left on {feature}")


def test_the_demo_printer_shows_each_alert_once_per_status() -> None:
    from exporter.tooling.stack import AlertPrinter

    alert = {"fingerprint": "abc", "status": "firing", "labels": {"alertname": "MLMonFeatureDrift", "severity": "warning",
             "model": "fraud", "feature": "amount"}, "annotations": {"summary": "A feature drifted."}}
    printer = AlertPrinter()
    first = printer({"receiver": "risk-slack", "alerts": [alert]})
    again = printer({"receiver": "risk-slack", "alerts": [alert]})
    resolved = printer({"receiver": "risk-slack", "alerts": [{**alert, "status": "resolved"}]})
    assert len(first) == 1 and "FIRING" in first[0] and "feature=amount" in first[0] and "[risk-slack]" in first[0]
    assert again == []
    assert len(resolved) == 1 and "RESOLVED" in resolved[0]
