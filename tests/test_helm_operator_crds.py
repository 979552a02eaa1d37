"""The chart's Prometheus Operator objects (AlertmanagerConfig, PodMonitor, ServiceMonitor) against the
operator's own CRD schemas, pinned in tests/fixtures/crds/ (each file names its source commit):
valid, and no field the API server would prune. Rendered with everything this chart can put in
them: act's routes and receivers with a webhook token, act's monitor, the sidecar endpoint extras."""

from __future__ import annotations

from types import ModuleType
from typing import Any

import jsonschema
import pytest

from tests.test_helm_act import act_config_values, act_objects
from tests.test_helm_chart import helm, render  # noqa: F401
from tests.test_rollouts import crd, unknown_fields

TOKEN = {"name": "act-webhook", "key": "token"}
ENDPOINT = {"scheme": "https", "tlsConfig": {"insecureSkipVerify": False, "serverName": "mlmon"}}


def check(obj: dict[str, Any]) -> None:
    pinned = crd(f"prometheus-operator-{obj['kind'].lower()}.json")
    assert obj["apiVersion"] == f"{pinned['group']}/{pinned['version']}"
    jsonschema.validate(obj, pinned["openAPIV3Schema"])
    assert unknown_fields(obj, pinned["openAPIV3Schema"]) == []


def test_the_alertmanager_config_with_act_routes_validates_against_the_operators_crd(helm: ModuleType) -> None:
    objects = render(helm, act_config_values(bearerTokenSecret=TOKEN))
    (config,) = [o for o in objects if o["kind"] == "AlertmanagerConfig"]
    assert any(r["receiver"].startswith("mlmon-act-") for r in config["spec"]["route"]["routes"])
    check(config)


@pytest.mark.parametrize("kind", ["PodMonitor", "ServiceMonitor"])
def test_the_monitors_validate_against_the_operators_crds(helm: ModuleType, kind: str) -> None:
    objects = render(helm, {"act": {"enabled": True, "bearerTokenSecret": TOKEN},
                            "monitor": {"kind": kind, "endpoint": ENDPOINT, "labels": {"release": "kps"}}})
    monitors = [o for o in objects if o["kind"] == kind]
    assert len(monitors) == 2 and len([m for m in monitors if m in act_objects(objects)]) == 1
    for monitor in monitors:
        check(monitor)


def test_a_field_the_operator_does_not_know_is_caught(helm: ModuleType) -> None:
    """The check can fail: a misspelt endpoint field would be pruned by the API server."""
    (monitor,) = [o for o in render(helm, {"monitor": {"endpoint": {"tlsConfg": {}}}}) if o["kind"] == "PodMonitor"]
    pinned = crd("prometheus-operator-podmonitor.json")
    assert unknown_fields(monitor, pinned["openAPIV3Schema"]) == ["/spec/podMetricsEndpoints/0/tlsConfg"]
