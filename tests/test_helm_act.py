"""The chart's `mlmon act` Deployment and Service (act.enabled): off by default, valid Kubernetes,
hardened like the sidecar, running the config's actions with its secrets mounted where the config
says, and a config the act process accepts."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exporter.config.model import load_config
import yaml

from tests.test_helm_chart import CHART, KUBE_VERSIONS, config_map, helm, kubernetes_validate, one, render, render_files  # noqa: F401

ACT = {"act": {"enabled": True, "dryRun": True,
               "extraVolumes": [{"name": "act-secrets", "secret": {"secretName": "mlmon-act-secrets"}}],
               "extraVolumeMounts": [{"name": "act-secrets", "mountPath": "/etc/mlmon/secrets", "readOnly": True}]}}


def act_objects(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [o for o in objects if o["metadata"].get("labels", {}).get("app.kubernetes.io/component") == "act"]


def test_act_is_off_by_default(helm: ModuleType) -> None:
    assert act_objects(render(helm)) == []


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_act_objects_are_valid_kubernetes_in_strict_mode(helm: ModuleType, kubernetes_validate: ModuleType,
                                                          kube_version: str) -> None:
    objects = act_objects(render(helm, ACT))
    assert sorted(o["kind"] for o in objects) == ["Deployment", "PodMonitor", "Service"]
    for obj in (o for o in objects if o["kind"] != "PodMonitor"):  # a CRD: kubernetes-validate has no schema
        kubernetes_validate.validate(obj, kube_version, strict=True)


def test_act_runs_one_hardened_replica_of_the_configs_actions(helm: ModuleType, tmp_path: Path) -> None:
    objects = render(helm, ACT)
    deployment = next(o for o in act_objects(objects) if o["kind"] == "Deployment")
    spec = deployment["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}  # never two dedupe records at once
    container = spec["template"]["spec"]["containers"][0]
    assert container["args"] == ["act", "--config", "/etc/mlmon/mlmon.yaml", "--listen", "0.0.0.0:8712",
                                 "--state-dir", "/var/lib/mlmon-act", "--dry-run"]
    assert container["securityContext"]["readOnlyRootFilesystem"] is True and container["securityContext"]["runAsNonRoot"]
    assert container["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "http"}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert mounts == {"mlmon-config": "/etc/mlmon", "act-state": "/var/lib/mlmon-act", "act-secrets": "/etc/mlmon/secrets"}
    service = next(o for o in act_objects(objects) if o["kind"] == "Service")
    assert service["metadata"]["name"] == "demo-mlmon-act" and service["spec"]["ports"][0]["port"] == 8712
    assert service["spec"]["selector"] == spec["selector"]["matchLabels"]
    # The mounted config is one `mlmon act` accepts, with the example's action, its secret under the mount.
    (tmp_path / "mlmon.yaml").write_text(config_map(objects)["data"]["mlmon.yaml"])
    actions = load_config(tmp_path / "mlmon.yaml").alerting.actions
    assert [a.name for a in actions] == ["retrain-fraud"]
    assert actions[0].github_dispatch.token_file.startswith("/etc/mlmon/secrets/")


@pytest.mark.parametrize(("values", "where"), [
    ({"act": {"port": 0}}, "/act/port"), ({"act": {"replicas": 0}}, "/act/replicas"),
    ({"act": {"service": {"type": "Headless"}}}, "/act/service/type"),
    ({"act": {"bearerTokenSecret": {"name": "Not_A_Name"}}}, "/act/bearerTokenSecret/name"),
    ({"sidecar": {"adminToken": {"secretName": "admin", "key": ""}}}, "/sidecar/adminToken/key"),
    ({"sidecar": {"webConfig": {"secret": "web"}}}, "'secret' not allowed"),
])
def test_the_schema_refuses_bad_act_values(helm: ModuleType, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as error:
        render_files(helm, values)
    assert where in str(error.value)


def test_two_act_replicas_need_the_shared_redis_record(helm: ModuleType) -> None:
    with pytest.raises(helm.HelmRenderError, match="act.replicas > 1 needs config.alerting.act.redis"):
        render_files(helm, act_config_values(replicas=2))
    values = act_config_values(replicas=2)
    values["config"]["alerting"]["act"] = {"redis": {"url": "redis://mlmon-redis:6379/0"}}
    deployment = next(o for o in act_objects(render(helm, values)) if o["kind"] == "Deployment")
    assert deployment["spec"]["replicas"] == 2 and deployment["spec"]["strategy"] == {"type": "RollingUpdate"}


def test_lints_clean_with_act_enabled(helm: ModuleType) -> None:
    from tests.test_helm_chart import CHART

    report = helm.lint(str(CHART), ACT, strict=True)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []


# ----------------------------------------------------------------------------- routing, scraping, token

ACTIONS = [
    {"name": "retrain-fraud", "matchers": ['alertname="MLMonFeatureDrift"', 'model="fraud"', "severity=critical"],
     "group_by": ["alertname", "model"], "group_wait": "10s", "repeat_interval": "6h",
     "http_post": {"url": "https://ci.example.com/hooks/retrain"}},
    {"name": "page-bot", "matchers": ['severity=~"warning|critical"', 'team!="ops"', 'summary="a \\"quoted\\" value"'],
     "http_post": {"url": "https://bot.example.com/hook"}},
]


def act_config_values(**act: Any) -> dict[str, Any]:
    """The example model's config with ACTIONS in place of its own, act and the AlertmanagerConfig on."""
    example = yaml.safe_load((CHART / "files" / "mlmon.yaml").read_text())
    for model in example["models"]:
        model["reference"] = Path(model["reference"]).name
    example["alerting"]["actions"] = ACTIONS
    for key in ("metrics_listen", "ingest_listen"):  # the chart sets them (the schema refuses them)
        example.get("exporter", {}).pop(key, None)
    return {"config": example, "act": {"enabled": True, **act}, "alertmanagerConfig": {"enabled": True}}


def deployed_config(objects: list[dict[str, Any]], tmp_path: Path) -> Any:
    for key, text in config_map(objects)["data"].items():
        (tmp_path / key).write_text(text)
    return load_config(tmp_path / "mlmon.yaml")


def operator_matchers(matchers: list[dict[str, str]]) -> list[str]:
    from exporter.config.matchers import Matcher

    return [Matcher(m["name"], m["matchType"], m["value"]).render() for m in matchers]


def test_alertmanager_config_routes_each_action_to_act_as_the_generated_alertmanager_yml_does(
        helm: ModuleType, tmp_path: Path) -> None:
    """Same receivers, matchers, timings and `continue: true` as alert_rules/alertmanager.py, in the
    operator's spelling, with the URL of the act Service; the last route keeps the catch-all."""
    from alert_rules.alertmanager import alertmanager_config

    objects = render(helm, act_config_values())
    generated = alertmanager_config(deployed_config(objects, tmp_path))
    spec = one(objects, "AlertmanagerConfig")["spec"]
    routes = spec["route"]["routes"]
    assert routes[-1] == {"receiver": spec["route"]["receiver"]}
    expected = [r for r in generated["route"]["routes"] if r.get("receiver", "").startswith("mlmon-act-")]
    assert [{"receiver": r["receiver"], "matchers": operator_matchers(r["matchers"]), "continue": r["continue"],
             **{k: r[k] for k in ("groupBy", "groupWait", "groupInterval", "repeatInterval") if k in r}}
            for r in routes[:-1]] == [
        {"receiver": r["receiver"], "matchers": r["matchers"], "continue": True,
         **{camel: r[snake] for snake, camel in (("group_by", "groupBy"), ("group_wait", "groupWait"),
                                                 ("group_interval", "groupInterval"), ("repeat_interval", "repeatInterval"))
            if snake in r}}
        for r in expected]
    receivers = {r["name"]: r for r in spec["receivers"]}
    for action in ACTIONS:
        hook = receivers[f"mlmon-act-{action['name']}"]["webhookConfigs"][0]
        assert hook == {"url": f"http://demo-mlmon-act.ml.svc:8712/v1/alerts/{action['name']}", "sendResolved": True}
    # the act Service answers at that URL, and the config's act.url says so for `mlmon rules build`
    service = next(o for o in act_objects(objects) if o["kind"] == "Service")
    assert service["metadata"]["name"] == "demo-mlmon-act" and service["spec"]["ports"][0]["port"] == 8712
    assert [r["webhook_configs"][0]["url"] for r in generated["receivers"] if r["name"].startswith("mlmon-act-")] == [
        h["webhookConfigs"][0]["url"] for n, h in receivers.items() if n.startswith("mlmon-act-")]


def test_without_act_the_alertmanager_config_has_no_action_routes(helm: ModuleType) -> None:
    values = act_config_values()
    values["act"]["enabled"] = False
    spec = one(render(helm, values), "AlertmanagerConfig")["spec"]
    assert "routes" not in spec["route"] and not any(r["name"].startswith("mlmon-act-") for r in spec["receivers"])


def test_a_bad_action_matcher_fails_the_render_naming_it(helm: ModuleType) -> None:
    values = act_config_values()
    values["config"]["alerting"]["actions"] = [{**ACTIONS[1], "matchers": ["severity ~ warning"]}]
    with pytest.raises((helm.HelmRenderError, helm.HelmValuesError), match="severity ~ warning"):
        render_files(helm, values)


def test_the_webhook_token_secret_reaches_alertmanager_act_and_its_monitor(helm: ModuleType, tmp_path: Path) -> None:
    objects = render(helm, act_config_values(bearerTokenSecret={"name": "act-webhook", "key": "tok"}))
    config = deployed_config(objects, tmp_path)
    assert config.alerting.act.bearer_token_file == "/var/run/secrets/mlmon-act-webhook/tok"
    assert config.alerting.act.url == "http://demo-mlmon-act.ml.svc:8712"
    deployment = next(o for o in act_objects(objects) if o["kind"] == "Deployment")
    pod = deployment["spec"]["template"]["spec"]
    assert {"name": "act-webhook-token", "mountPath": "/var/run/secrets/mlmon-act-webhook", "readOnly": True} in \
        pod["containers"][0]["volumeMounts"]
    assert next(v for v in pod["volumes"] if v["name"] == "act-webhook-token")["secret"] == {
        "secretName": "act-webhook", "items": [{"key": "tok", "path": "tok"}]}
    secret = {"name": "act-webhook", "key": "tok"}
    for receiver in one(objects, "AlertmanagerConfig")["spec"]["receivers"]:
        if receiver["name"].startswith("mlmon-act-"):
            assert receiver["webhookConfigs"][0]["httpConfig"]["authorization"] == {"type": "Bearer", "credentials": secret}
    monitor = next(o for o in act_objects(objects) if o["kind"] == "PodMonitor")
    assert monitor["spec"]["podMetricsEndpoints"][0]["authorization"] == {"type": "Bearer", "credentials": secret}


@pytest.mark.parametrize("kind", ["PodMonitor", "ServiceMonitor"])
def test_acts_metrics_are_scraped_with_the_charts_monitor_labels(helm: ModuleType, kind: str) -> None:
    objects = render(helm, {**ACT, "monitor": {"kind": kind, "labels": {"release": "kps"}}, "commonLabels": {"team": "ml"}})
    monitor = next(o for o in act_objects(objects) if o["kind"] == kind)
    assert monitor["metadata"]["labels"]["release"] == "kps" and monitor["metadata"]["labels"]["team"] == "ml"
    endpoints = monitor["spec"]["podMetricsEndpoints" if kind == "PodMonitor" else "endpoints"]
    assert endpoints[0]["port"] == "http" and endpoints[0]["path"] == "/metrics"
    assert endpoints[0]["relabelings"] == [{"action": "replace", "targetLabel": "job", "replacement": "mlmon-act"}]
    # it selects the act pods (PodMonitor) or the act Service (ServiceMonitor), and only them
    deployment = next(o for o in act_objects(objects) if o["kind"] == "Deployment")
    service = next(o for o in act_objects(objects) if o["kind"] == "Service")
    target = deployment["spec"]["template"]["metadata"]["labels"] if kind == "PodMonitor" else service["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= target.items()
    assert next(p for p in service["spec"]["ports"])["name"] == "http"
    assert not any(o["kind"] == kind for o in act_objects(render(helm, {"monitor": {"kind": kind}})))


def test_the_act_pod_waits_for_its_drain(helm: ModuleType) -> None:
    values = act_config_values()
    values["config"]["exporter"]["shutdown_grace"] = "40s"
    deployment = next(o for o in act_objects(render(helm, values)) if o["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 42


def test_the_act_pod_mounts_only_its_own_secrets(helm: ModuleType) -> None:
    values = {**ACT, "sidecar": {"adminToken": {"secretName": "adm"}, "webConfig": {"secretName": "web"}}}
    deployment = next(o for o in act_objects(render(helm, values)) if o["kind"] == "Deployment")
    assert sorted(v["name"] for v in deployment["spec"]["template"]["spec"]["volumes"]) == [
        "act-secrets", "act-state", "mlmon-config"]


def test_turning_act_on_rolls_the_pods_that_mount_the_changed_config(helm: ModuleType) -> None:
    def checksum(values: dict[str, Any] | None) -> str:
        deployment = next(o for o in render(helm, values) if o["kind"] == "Deployment" and "example" in o["metadata"]["name"])
        return deployment["spec"]["template"]["metadata"]["annotations"]["checksum/mlmon-config"]

    assert checksum(None) != checksum({"act": {"enabled": True}})  # alerting.act.url changed in mlmon.yaml
    assert checksum({"act": {"enabled": True}}) == checksum({"act": {"enabled": True, "dryRun": True}})


def test_lints_clean_with_every_new_secret_and_monitor_option(helm: ModuleType) -> None:
    from tests.test_helm_chart import CHART

    values = {"act": {"enabled": True, "bearerTokenSecret": {"name": "t"}}, "alertmanagerConfig": {"enabled": True},
              "sidecar": {"adminToken": {"secretName": "a"}, "webConfig": {"secretName": "w"}},
              "monitor": {"kind": "ServiceMonitor", "endpoint": {"scheme": "https"}}}
    report = helm.lint(str(CHART), values, strict=True)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
