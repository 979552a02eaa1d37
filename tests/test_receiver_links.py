"""PagerDuty and Opsgenie notifications carry the alert's model page, dashboard and runbook, as
Slack's text does: a real Alertmanager renders the generated receivers and posts to a local
stand-in for each service (the notifiers' own `url` / `api_url`, pointed at this machine)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import requests
import yaml

from alert_rules.alertmanager import alertmanager_config
from tests.conftest import build_config, example_config_data
from tests.support.processes import AlertmanagerProcess, WebhookReceiver, wait_until

PAGE = "https://mlmon.example.com/models/fraud?version=v1&window=1h#feature-amount"
DASHBOARD = "https://grafana.example.com/d/mlmon-model?var-model=fraud"
RUNBOOK = "https://github.com/example/runbooks/drift.md"


def receivers_config(tmp_path: Path, service_url: str) -> Path:
    """The generated Alertmanager config with one PagerDuty and one Opsgenie receiver, both posting here."""
    secret = tmp_path / "secret"
    secret.write_text("not-a-real-key")
    data = example_config_data()
    data["alerting"]["receivers"] = [
        {"name": "pager", "pagerduty": {"routing_key_file": str(secret)}},
        {"name": "genie", "opsgenie": {"api_key_file": str(secret), "responders_team": "ml"}},
    ]
    data["alerting"]["route"] = {"receiver": "pager"}
    data["alerting"]["routes"] = [{"receiver": "pager", "team": "risk"}]
    data["alerting"]["actions"] = []
    document = alertmanager_config(build_config(data))
    pager, genie = document["receivers"][:2]
    both = {"name": "both",
            "pagerduty_configs": [{**pager["pagerduty_configs"][0], "url": f"{service_url}/pagerduty"}],
            "opsgenie_configs": [{**genie["opsgenie_configs"][0], "api_url": f"{service_url}/opsgenie/"}]}
    document["receivers"] = [both]
    document["route"] = {"receiver": "both", "group_by": ["alertname"], "group_wait": "0s"}
    path = tmp_path / "am.yml"
    path.write_text(yaml.safe_dump(document))
    return path


def post_alert(url: str, name: str, annotations: dict[str, str]) -> None:
    body = [{"labels": {"alertname": name, "model": "fraud", "severity": "critical", "team": "risk"},
             "annotations": {"summary": "A feature's distribution drifted.", **annotations}}]
    requests.post(f"{url}/api/v2/alerts", json=body, timeout=5).raise_for_status()


def notifications(service: WebhookReceiver, key: str, name: str) -> list[dict[str, Any]]:
    """The PagerDuty events (key "payload") or Opsgenie alerts (key "details") about alert `name`."""
    return [p for p in service.payloads if key in p and name in json.dumps(p)]


def test_pagerduty_and_opsgenie_carry_the_page_dashboard_and_runbook_links(tmp_path: Path) -> None:
    with WebhookReceiver() as service:
        base = service.url.removesuffix("/hook")
        with AlertmanagerProcess(tmp_path, receivers_config(tmp_path, base)) as alertmanager:
            post_alert(alertmanager.url, "MLMonFeatureDrift",
                       {"page_url": PAGE, "dashboard_url": DASHBOARD, "runbook_url": RUNBOOK})
            post_alert(alertmanager.url, "MLMonNoPredictions", {"runbook_url": RUNBOOK})
            wait_until(lambda: all(notifications(service, key, name) for key in ("payload", "details")
                                   for name in ("MLMonFeatureDrift", "MLMonNoPredictions")),
                       timeout=30, what="a PagerDuty event and an Opsgenie alert per alert")

    (event,) = notifications(service, "payload", "MLMonFeatureDrift")
    assert event["links"] == [{"href": PAGE, "text": "Model page"}, {"href": DASHBOARD, "text": "Dashboard"},
                              {"href": RUNBOOK, "text": "Runbook"}]
    # An alert without a page (about the whole model on a per-version host): no broken link is sent.
    (bare,) = notifications(service, "payload", "MLMonNoPredictions")
    assert bare["links"] == [{"href": RUNBOOK, "text": "Runbook"}]

    (alert,) = notifications(service, "details", "MLMonFeatureDrift")
    # Alertmanager adds the common labels to the details.
    assert alert["details"] == {"page_url": PAGE, "dashboard_url": DASHBOARD, "runbook_url": RUNBOOK,
                                "alertname": "MLMonFeatureDrift", "model": "fraud", "severity": "critical", "team": "risk"}
    assert f"Model page: {PAGE}" in alert["description"] and f"Dashboard: {DASHBOARD}" in alert["description"]
    assert alert["message"] == "A feature's distribution drifted."
    (bare,) = notifications(service, "details", "MLMonNoPredictions")
    assert "Model page" not in bare["description"] and f"Runbook: {RUNBOOK}" in bare["description"]
