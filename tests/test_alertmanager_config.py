"""The generated Alertmanager config: valid for amtool, every route delivers where the config says,
inhibition works in a real Alertmanager, secrets stay in files, and bad routes are config errors."""

from __future__ import annotations

import json
import socket
import subprocess
import urllib.request
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.alertmanager import alertmanager_config
from alert_rules.build import ALERTMANAGER_FILE, render
from exporter.config.model import ConfigError
from tests.conftest import build_config, example_config_data
from tests.support.processes import require_binary, wait_until

ROOT = Path(__file__).resolve().parents[1]
GENERATED_AM = ROOT / "alert_rules" / "generated" / ALERTMANAGER_FILE

# Where the example config's routes must send an alert with these labels, worked out by hand from
# examples/mlmon.yaml: critical alerts also go to the audit webhook (`continue: true`), then the
# first team route that matches wins; anything else lands on the root receiver.
EXPECTED_ROUTES = [
    ({"team": "risk", "severity": "critical"}, "audit-webhook,risk-pagerduty"),
    ({"team": "risk", "severity": "warning"}, "risk-slack"),
    ({"team": "logistics", "severity": "warning"}, "logistics-email"),
    ({"team": "logistics", "severity": "critical"}, "audit-webhook,logistics-email"),
    ({"team": "platform", "severity": "warning"}, "platform-slack"),
    ({"team": "platform", "severity": "critical"}, "audit-webhook,platform-slack"),
    ({"team": "nobody", "severity": "info"}, "platform-slack"),
]


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=60)


def test_amtool_accepts_the_generated_config() -> None:
    result = amtool("check-config", str(GENERATED_AM))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receivers"), EXPECTED_ROUTES, ids=lambda v: str(v))
def test_route_delivers_to_the_receivers_worked_out_by_hand(labels: dict[str, str], receivers: str) -> None:
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={GENERATED_AM}", f"--verify.receivers={receivers}", *pairs)
    assert result.returncode == 0, result.stdout + result.stderr


def test_every_declared_route_is_reachable_with_its_own_labels() -> None:
    config = build_config(example_config_data())
    for route in config.alerting.routes:
        labels = [f"{k}={v}" for k in ("team", "severity", "model") if (v := getattr(route, k))]
        result = amtool("config", "routes", "test", f"--config.file={GENERATED_AM}", *labels)
        assert route.receiver in result.stdout.strip().split(","), (labels, result.stdout)


def test_every_receiver_kind_renders_a_config_amtool_accepts(tmp_path: Path) -> None:
    data = example_config_data()
    secret = "/etc/alertmanager/secrets/x"
    data["alerting"]["receivers"] = [
        {"name": "e", "email": {"to": "a@example.com", "from": "m@example.com", "smarthost": "smtp:587",
                                "auth_username": "m", "auth_password_file": secret}},
        {"name": "s", "slack": {"api_url_file": secret, "channel": "#ml"}},
        {"name": "p", "pagerduty": {"routing_key_file": secret}},
        {"name": "o", "opsgenie": {"api_key_file": secret, "responders_team": "ml"}},
        {"name": "t", "msteams": {"bridge_url": "http://prometheus-msteams:2000/ml"}},
        {"name": "w", "webhook": {"url": "https://hooks.example.com/am", "bearer_token_file": secret}},
        {"name": "n", "sns": {"region": "eu-west-1", "topic_arn": "arn:aws:sns:eu-west-1:1:ml"}},
        {"name": "m", "sns": {"region": "eu-west-1", "phone_number": "+15555550100", "role_arn": "arn:aws:iam::1:role/am"}},
        {"name": "x", "sms": {"gateway_url": "https://sms.example.com/am", "bearer_token_file": secret}},
    ]
    data["alerting"]["route"] = {"receiver": "e"}
    data["alerting"]["actions"] = []  # the receivers of actions: tests/test_act_config.py
    data["alerting"]["routes"] = [{"receiver": r["name"], "team": "risk"} for r in data["alerting"]["receivers"]]
    path = tmp_path / "am.yml"
    path.write_text(render(build_config(data))[ALERTMANAGER_FILE])
    result = amtool("check-config", str(path))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "9 receivers" in result.stdout


def _walk(node: Any, path: str = "") -> list[tuple[str, Any]]:
    if isinstance(node, dict):
        return [item for key, value in node.items() for item in _walk(value, f"{path}.{key}")]
    if isinstance(node, list):
        return [item for i, value in enumerate(node) for item in _walk(value, f"{path}[{i}]")]
    return [(path, node)]


def test_secrets_are_only_referenced_by_file() -> None:
    secret_keys = {"api_url", "routing_key", "service_key", "api_key", "auth_password", "auth_secret",
                   "credentials", "password", "bearer_token", "secret_key", "webhook_url"}
    document = yaml.safe_load(GENERATED_AM.read_text())
    for path, _ in _walk(document):
        assert path.rsplit(".", 1)[-1] not in secret_keys, f"{path} holds a secret inline"


def test_config_without_receivers_routes_everything_to_a_null_receiver(tmp_path: Path) -> None:
    data = example_config_data()
    data["alerting"] = {}
    path = tmp_path / "am.yml"
    path.write_text(render(build_config(data))[ALERTMANAGER_FILE])
    assert amtool("check-config", str(path)).returncode == 0
    result = amtool("config", "routes", "test", f"--config.file={path}", "--verify.receivers=mlmon-null", "team=risk")
    assert result.returncode == 0, result.stdout


@pytest.mark.parametrize(("change", "problem"), [
    (lambda a: a["routes"][1].update(receiver="risk-pager"),
     "alerting.routes[1].receiver: 'risk-pager' is not a declared receiver; declared: platform-slack, risk-pagerduty"),
    (lambda a: a["route"].update(receiver="nowhere"), "alerting.route.receiver: 'nowhere' is not a declared receiver"),
    (lambda a: a["routes"][0].update(model="frad"), "alerting.routes[0].model: 'frad' is not a model; models: fraud, delivery_time"),
    (lambda a: a["routes"][2].update(team="rsk"), "alerting.routes[2].team: no alert carries team 'rsk'"),
])
def test_rejects_routes_that_point_nowhere_naming_the_exact_place(change: Any, problem: str) -> None:
    data = example_config_data()
    change(data["alerting"])
    with pytest.raises(ConfigError) as error:
        build_config(data)
    assert any(p.startswith(problem) for p in error.value.problems), error.value.problems


@pytest.mark.parametrize(("receiver", "problem"), [
    ({"name": "x", "slack": {"api_url_file": "secrets/slack", "channel": "#a"}}, "api_url_file"),
    ({"name": "x", "webhook": {"url": "https://user:pw@hooks.example.com/a"}}, "without user:password@"),
    ({"name": "x", "slack": {"api_url": "https://hooks.slack.com/services/T/B/X", "channel": "#a"}}, "unknown key"),
    ({"name": "x", "slack": {"api_url_file": "/s", "channel": "#a"}, "pagerduty": {"routing_key_file": "/p"}},
     "set exactly one of"),
    ({"name": "x", "sns": {"region": "eu-west-1"}}, "set exactly one of topic_arn or phone_number"),
])
def test_rejects_receivers_with_inline_secrets_or_ambiguous_kinds(receiver: dict[str, Any], problem: str) -> None:
    data = example_config_data()
    data["alerting"]["receivers"].append(receiver)
    with pytest.raises(ConfigError) as error:
        build_config(data)
    assert problem in error.value.render()


# ------------------------------------------------------------------ inhibition, in a real Alertmanager


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_json(url: str, data: bytes | None = None) -> Any:
    request = urllib.request.Request(url, data=data, headers={"Content-Type": "application/json"} if data else {})
    with urllib.request.urlopen(request, timeout=5) as response:
        body = response.read()
    return json.loads(body) if body else None


@pytest.fixture
def alertmanager(tmp_path: Path) -> Any:
    """A real Alertmanager with the generated inhibit rules and a receiver that sends nothing."""
    binary = require_binary("prometheus-alertmanager")
    document = alertmanager_config(build_config(example_config_data()))
    document["receivers"] = [{"name": "null"}]
    document["route"] = {"receiver": "null", "group_by": ["alertname"]}
    config = tmp_path / "am.yml"
    config.write_text(yaml.safe_dump(document))
    port = free_port()
    log = open(tmp_path / "alertmanager.log", "wb")
    process = subprocess.Popen([
        binary, f"--config.file={config}", f"--storage.path={tmp_path / 'data'}",
        f"--web.listen-address=127.0.0.1:{port}", "--cluster.listen-address=",
    ], stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    try:
        wait_until(lambda: http_json(f"{url}/api/v2/status"), timeout=20, what="alertmanager to start")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=10)
        log.close()


def _post(url: str, alerts: list[dict[str, str]]) -> None:
    body = [{"labels": labels, "annotations": {"summary": "test."}} for labels in alerts]
    http_json(f"{url}/api/v2/alerts", data=json.dumps(body).encode())


def assert_inhibition(url: str, expected: dict[str, bool]) -> None:
    """Alertmanager's inhibitor learns of source alerts asynchronously, after the POST is answered, so an
    inhibition shows only once it has caught up: wait for the expected marks (never wrongly set, so a
    wrong True or a missing one still fails) and report the last ones seen."""
    seen: dict[str, bool] = {}

    def matches() -> bool:
        nonlocal seen
        seen = {a["labels"]["id"]: bool(a["status"]["inhibitedBy"]) for a in http_json(f"{url}/api/v2/alerts")}
        return seen == expected

    try:
        wait_until(matches, timeout=10, what="the expected inhibitions")
    except pytest.fail.Exception:
        pytest.fail(f"inhibited: {seen}, expected {expected}")


def test_critical_mutes_the_warning_of_the_same_alert_and_model_only(alertmanager: str) -> None:
    base = {"alertname": "MLMonFeatureDrift", "model": "fraud", "model_version": "v1", "window": "1h",
            "category": "drift", "team": "risk"}
    _post(alertmanager, [
        {**base, "feature": "amount", "severity": "critical", "id": "critical-amount"},
        {**base, "feature": "amount", "severity": "warning", "id": "warning-amount"},
        {**base, "feature": "country", "severity": "warning", "id": "warning-country"},
        {**base, "model": "delivery_time", "feature": "amount", "severity": "warning", "id": "warning-other-model"},
        {**base, "alertname": "MLMonFeatureMissing", "feature": "amount", "severity": "warning", "id": "other-alert"},
    ])
    assert_inhibition(alertmanager, {
        "critical-amount": False, "warning-amount": True, "warning-country": False,
        "warning-other-model": False, "other-alert": False,
    })


def test_a_down_exporter_mutes_drift_and_traffic_alerts_but_not_data_quality(alertmanager: str) -> None:
    _post(alertmanager, [
        {"alertname": "MLMonExporterDown", "severity": "critical", "category": "exporter", "instance": "a:8710",
         "job": "mlmon", "model": "fraud", "id": "down"},
        {"alertname": "MLMonFeatureDrift", "severity": "warning", "category": "drift", "model": "fraud",
         "feature": "amount", "id": "drift"},
        {"alertname": "MLMonNoPredictions", "severity": "warning", "category": "traffic", "model": "fraud",
         "id": "traffic"},
        {"alertname": "MLMonFeatureMissing", "severity": "warning", "category": "data_quality", "model": "fraud",
         "feature": "amount", "id": "data-quality"},
    ])
    assert_inhibition(alertmanager, {"down": False, "drift": True, "traffic": True, "data-quality": False})


def test_a_down_pod_mutes_only_the_models_it_served(alertmanager: str) -> None:
    """ExporterDown carries the model the pod served; the fleet-wide drift alerts have no pod, so
    `model` is what the two share: pod a (fraud) going down mutes fraud, never delivery_time."""
    _post(alertmanager, [
        {"alertname": "MLMonExporterDown", "severity": "critical", "category": "exporter", "instance": "a:8710",
         "pod": "shop-a", "job": "mlmon", "model": "fraud", "id": "down-a-fraud"},
        {"alertname": "MLMonFeatureDrift", "severity": "warning", "category": "drift", "model": "fraud",
         "model_version": "v1", "feature": "amount", "id": "fraud-drift"},
        {"alertname": "MLMonFeatureDrift", "severity": "warning", "category": "drift", "model": "delivery_time",
         "model_version": "v1", "feature": "distance_km", "id": "delivery-drift"},
        {"alertname": "MLMonNoPredictions", "severity": "warning", "category": "traffic", "model": "delivery_time",
         "id": "delivery-traffic"},
    ])
    assert_inhibition(alertmanager, {
        "down-a-fraud": False, "fraud-drift": True, "delivery-drift": False, "delivery-traffic": False,
    })


def test_a_down_pod_that_never_reported_a_model_mutes_no_model(alertmanager: str) -> None:
    _post(alertmanager, [
        {"alertname": "MLMonExporterDown", "severity": "critical", "category": "exporter", "instance": "a:8710",
         "job": "mlmon", "id": "down"},
        {"alertname": "MLMonFeatureDrift", "severity": "warning", "category": "drift", "model": "fraud",
         "feature": "amount", "id": "drift"},
        # Posted last, so once its warning shows muted the inhibitor has seen the down alert too.
        *({"alertname": "MLMonFeatureDrift", "severity": severity, "category": "drift", "model": "sentinel",
           "feature": "x", "id": f"sentinel-{severity}"} for severity in ("critical", "warning")),
    ])
    assert_inhibition(alertmanager, {"down": False, "drift": False, "sentinel-critical": False, "sentinel-warning": True})


def test_no_exporter_at_all_mutes_every_models_drift_and_traffic(alertmanager: str) -> None:
    _post(alertmanager, [
        {"alertname": "MLMonExporterAbsent", "severity": "critical", "category": "exporter", "job": "mlmon",
         "id": "absent"},
        {"alertname": "MLMonFeatureDrift", "severity": "warning", "category": "drift", "model": "fraud",
         "feature": "amount", "id": "fraud-drift"},
        {"alertname": "MLMonNoPredictions", "severity": "warning", "category": "traffic", "model": "delivery_time",
         "id": "delivery-traffic"},
    ])
    assert_inhibition(alertmanager, {"absent": False, "fraud-drift": True, "delivery-traffic": True})
