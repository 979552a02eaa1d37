"""alerting.actions in mlmon.yaml: matchers as Alertmanager reads them, the template language, the
checks that make a bad action a config error, and the generated routing checked by a real amtool."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.alertmanager import alertmanager_config
from exporter.actions.alerts import BadPayload, parse_delivery
from exporter.actions.matching import select
from exporter.config.action_templates import check_template, render_value
from exporter.config.matchers import parse_matcher
from exporter.config.model import ConfigError
from support.act import webhook
from support.processes import require_binary
from tests.conftest import build_config, example_config_data

RETRAIN = {"name": "retrain", "matchers": ['alertname="MLMonFeatureDrift"', 'severity="critical"', 'model="fraud"'],
           "github_dispatch": {"repository": "acme/fraud", "token_file": "/etc/mlmon/secrets/github-token"}}


def config_with(*actions: dict[str, Any], **act: Any) -> Any:
    data = example_config_data()
    data["alerting"]["actions"] = list(actions)
    if act:
        data["alerting"]["act"] = act
    return build_config(data)


@pytest.mark.parametrize(("text", "labels", "expected"), [
    ('model="fraud"', {"model": "fraud"}, True),
    ("model=fraud", {"model": "fraud"}, True),
    ('model!="fraud"', {"model": "eta"}, True),
    ('model!="fraud"', {}, True),  # a missing label is "" (Alertmanager's rule)
    ('severity=~"warning|critical"', {"severity": "critical"}, True),
    ('severity=~"warn"', {"severity": "warning"}, False),  # anchored at both ends
    ('feature!~"amount.*"', {"feature": "amount_usd"}, False),
    ('team=""', {}, True),
    ('note="say \\"hi\\""', {"note": 'say "hi"'}, True),
])
def test_matchers_read_and_match_as_alertmanager_does(text: str, labels: dict[str, str], expected: bool) -> None:
    matcher = parse_matcher(text)
    assert matcher.matches(labels) is expected
    assert parse_matcher(matcher.render()) == matcher  # the text written to the route reads back the same


@pytest.mark.parametrize(("text", "problem"), [
    ("model", "is not a matcher"), ('model=="x"', "is not a matcher"), ('model=~"(("', "does not compile"),
    ('1model="x"', "is not a matcher"),
])
def test_a_bad_matcher_is_refused_with_the_reason(text: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        parse_matcher(text)


def test_templates_fill_in_values_and_keep_them_inside_their_json_strings() -> None:
    context = {"status": "firing", "action": "retrain", "labels": {"model": 'fr"aud', "feature": "amount"},
               "annotations": {}, "alerts": [{"a": 1}], "starts_at": "t0"}
    body = {"text": "${labels.model} drifted on ${labels.feature} (${labels.absent}) $$5", "alerts": "${alerts}",
            "nested": ["${status}", 3, True]}
    rendered = render_value(body, context)
    assert rendered == {"text": 'fr"aud drifted on amount () $5', "alerts": [{"a": 1}], "nested": ["firing", 3, True]}
    assert json.loads(json.dumps(rendered))["text"] == 'fr"aud drifted on amount () $5'


@pytest.mark.parametrize(("template", "problem"), [
    ("${labels}x${nope}", "unknown placeholder"), ("cost $5", "lone \\$"), ("${labels.a.b}", "unknown placeholder"),
    ("${__import__}", "unknown placeholder"), ("{labels.model}${labels.model!r}", "unknown placeholder"),
])
def test_a_template_naming_anything_else_is_refused(template: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        check_template({"body": template})


@pytest.mark.parametrize(("change", "problem"), [
    ({"http_post": {"url": "http://x"}}, "set exactly one of"),
    ({"github_dispatch": None}, "set exactly one of"),
    ({"matchers": []}, "at least 1"),
    ({"matchers": ["model"]}, "is not a matcher"),
    ({"github_dispatch": {"repository": "acme/fraud", "token_file": "relative/token"}}, "must be an absolute path"),
    ({"github_dispatch": {"repository": "acme/fraud", "token_file": "/t",
                          "client_payload": {str(i): i for i in range(11)}}}, "at most 10"),
    ({"github_dispatch": None, "http_post": {"url": "http://x", "headers": {"Authorization": "Bearer x"}}}, "bearer_token_file"),
    ({"github_dispatch": None, "http_post": {"url": "http://user:pw@x"}}, "without user:password"),
    ({"github_dispatch": None, "kubeflow_run": {"url": "http://kfp", "pipeline_id": "p", "pipeline_version_id": "v",
                                                "parameters": {"m": "${model}"}}}, "unknown placeholder"),
])
def test_a_bad_action_is_a_config_error_naming_its_place(change: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem) as error:
        config_with({**RETRAIN, **change})
    assert "alerting.actions[0]" in str(error.value)


def test_action_names_are_unique() -> None:
    with pytest.raises(ConfigError, match="action names must be unique; repeated: retrain"):
        config_with(RETRAIN, RETRAIN)


def test_an_action_runs_only_on_the_alerts_its_matchers_pick() -> None:
    action = config_with(RETRAIN).alerting.actions[0]
    assert select(action, parse_delivery(json.dumps(webhook(model="eta")).encode())) is None
    chosen = select(action, parse_delivery(json.dumps(webhook()).encode()))
    assert chosen is not None and len(chosen.alerts) == 1 and chosen.context()["labels"]["feature"] == "amount"
    resolved = select(action, parse_delivery(json.dumps(webhook(status="resolved")).encode()))
    assert resolved is not None and resolved.resolved_only


def test_a_payload_that_is_not_a_webhook_names_the_problem() -> None:
    with pytest.raises(BadPayload, match="alerts must be a list"):
        parse_delivery(b'{"groupKey": "g", "status": "firing"}')
    with pytest.raises(BadPayload, match=r"alerts\[0\].labels must be an object of strings"):
        parse_delivery(json.dumps({**webhook(), "alerts": [{**webhook()["alerts"][0], "labels": {"a": 1}}]}).encode())


# ----------------------------------------------------------------------------- the generated routing


def amtool(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("amtool"), *args], capture_output=True, text=True, timeout=60)


@pytest.fixture(scope="module")
def routed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    eta = {"name": "eta-ticket", "matchers": ['alertname=~"MLMon.*Quality.*"', 'model="eta"'],
           "group_wait": "2m", "http_post": {"url": "https://tickets.example.com/api"}}
    config = config_with(RETRAIN, eta, url="http://mlmon-act.ml.svc:8712", bearer_token_file="/etc/alertmanager/secrets/act")
    path = tmp_path_factory.mktemp("am") / "alertmanager.yml"
    path.write_text(yaml.safe_dump(alertmanager_config(config), sort_keys=False))
    return path


def test_amtool_accepts_the_config_with_actions(routed: Path) -> None:
    result = amtool("check-config", str(routed))
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("labels", "receivers"), [
    # The action's route comes first and continues: the human routes of the example still get the alert.
    ({"alertname": "MLMonFeatureDrift", "severity": "critical", "model": "fraud", "team": "risk"},
     "mlmon-act-retrain,audit-webhook,risk-pagerduty"),
    ({"alertname": "MLMonFeatureDrift", "severity": "warning", "model": "fraud", "team": "risk"}, "risk-slack"),
    ({"alertname": "MLMonModelQualityLow", "severity": "warning", "model": "eta", "team": "logistics"},
     "mlmon-act-eta-ticket,logistics-email"),
    # Matched by an action only: the catch-all route still hands it to the root receiver.
    ({"alertname": "MLMonModelQualityLow", "severity": "info", "model": "eta", "team": "nobody"},
     "mlmon-act-eta-ticket,platform-slack"),
    ({"alertname": "MLMonExporterDown", "severity": "critical", "team": "platform"}, "audit-webhook,platform-slack"),
])
def test_amtool_routes_the_chosen_alerts_to_mlmon_act_and_on(routed: Path, labels: dict[str, str], receivers: str) -> None:
    pairs = [f"{k}={v}" for k, v in labels.items()]
    result = amtool("config", "routes", "test", f"--config.file={routed}", f"--verify.receivers={receivers}", *pairs)
    assert result.returncode == 0, result.stdout + result.stderr


def test_each_action_has_a_webhook_at_its_own_path_with_the_token_file(routed: Path) -> None:
    config = yaml.safe_load(routed.read_text())
    receivers = {r["name"]: r for r in config["receivers"]}
    hook = receivers["mlmon-act-retrain"]["webhook_configs"][0]
    assert hook["url"] == "http://mlmon-act.ml.svc:8712/v1/alerts/retrain" and hook["send_resolved"] is True
    assert hook["http_config"]["authorization"]["credentials_file"] == "/etc/alertmanager/secrets/act"
    routes = config["route"]["routes"]
    assert routes[0] == {"receiver": "mlmon-act-retrain", "continue": True, "matchers": RETRAIN["matchers"]}
    assert routes[1]["group_wait"] == "2m" and routes[-1] == {"receiver": "platform-slack"}


def test_without_actions_the_routing_is_unchanged() -> None:
    config = config_with()
    assert [r["receiver"] for r in alertmanager_config(config)["route"]["routes"]] == [r.receiver for r in config.alerting.routes]


def test_the_generated_example_routes_its_dry_run_action_ahead_of_the_humans() -> None:
    generated = Path(__file__).resolve().parents[1] / "alert_rules" / "generated" / "alertmanager.yml"
    labels = ["alertname=MLMonFeatureDrift", "model=fraud", "severity=critical", "team=risk"]
    result = amtool("config", "routes", "test", f"--config.file={generated}",
                    "--verify.receivers=mlmon-act-retrain-fraud,audit-webhook,risk-pagerduty", *labels)
    assert result.returncode == 0, result.stdout + result.stderr
