"""`mlmon chart kustomize`: the chart's objects as plain YAML for a Deployment Helm does not manage.

A config that is not the example (helm/examples/churn) becomes a Kustomize component; its ConfigMaps,
and a user's Deployment with the sidecar patch applied (as a container, and as a native sidecar in
initContainers), are valid Kubernetes in strict mode; the PrometheusRule holds exactly the groups
`mlmon chart values` generates (promtool accepts them); the PodMonitor selects the patched pods and
sets the job the exporter alerts watch.
"""

from __future__ import annotations

import copy
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from chart_values.kustomize import POD_LABEL
from chart_values.values import chart_values
from exporter.cli import main
from exporter.config.model import load_config
from tests.support.processes import require_binary
from tests.test_chart_values import CHURN, KUBE_VERSIONS
from tests.test_helm_chart import require

USER_DEPLOYMENT = {
    "apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "shop-model", "namespace": "shop"},
    "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "shop-model"}}, "template": {
        "metadata": {"labels": {"app": "shop-model"}},
        "spec": {"containers": [{"name": "model", "image": "registry.example.com/shop-model:1.4.2",
                                 "ports": [{"name": "http", "containerPort": 8080}]}]}}},
}


def strategic_merge(deployment: dict[str, Any], patch: dict[str, Any]) -> dict[str, Any]:
    """What `kubectl patch`/Kustomize do with this patch: maps merge, containers and volumes merge by name."""
    def merge(base: Any, change: Any) -> Any:
        if isinstance(base, dict) and isinstance(change, dict):
            return {**base, **{k: merge(base.get(k), v) for k, v in change.items()}}
        if isinstance(base, list) and isinstance(change, list) and all("name" in i for i in base + change):
            names = [i["name"] for i in change]
            return [i for i in base if i["name"] not in names] + change
        return change
    return merge(copy.deepcopy(deployment), patch["spec"] and {"spec": patch["spec"]})


def generate(tmp_path: Path, *extra: str) -> dict[str, list[dict[str, Any]]]:
    out = tmp_path / "mlmon"
    assert main(["chart", "kustomize", "--config", str(CHURN), "--deployment", "shop-model", "--namespace", "shop",
                 "--out", str(out), *extra]) == 0
    return {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in sorted(out.iterdir())}


def mounted_config(written: dict[str, list[dict[str, Any]]], folder: Path) -> Any:
    """The config the pods read: the ConfigMap's keys as files in one folder, as the volume mounts them."""
    (config_map,) = written["mlmon-config.yaml"]
    for key, text in config_map["data"].items():
        (folder / key).write_text(text)
    return load_config(folder / "mlmon.yaml")


@pytest.fixture(scope="module", params=["container", "native"])
def files(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[str, dict]:
    extra = ("--native",) if request.param == "native" else ()
    return request.param, generate(tmp_path_factory.mktemp(request.param), *extra)


def test_the_component_lists_every_file_and_patches_the_named_deployment(files) -> None:
    _, written = files
    (kustomization,) = written["kustomization.yaml"]
    assert kustomization["kind"] == "Component"
    assert sorted(kustomization["resources"] + [kustomization["patches"][0]["path"], "kustomization.yaml"]) == sorted(written)
    assert kustomization["patches"][0]["target"] == {"kind": "Deployment", "name": "shop-model"}


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
def test_core_objects_and_the_patched_deployment_are_valid_kubernetes_in_strict_mode(files, kube_version: str) -> None:
    kubernetes_validate = require("kubernetes_validate")
    kind, written = files
    (patch,) = written["mlmon-sidecar-patch.yaml"]
    patched = strategic_merge(USER_DEPLOYMENT, patch)
    pod = patched["spec"]["template"]["spec"]
    where = "initContainers" if kind == "native" else "containers"
    assert [c["name"] for c in pod[where]][-1] == "mlmon"
    assert [c["name"] for c in pod["containers"]][0] == "model", "the model container stays"
    assert (pod[where][-1].get("restartPolicy") == "Always") == (kind == "native")
    assert patched["spec"]["template"]["metadata"]["labels"] == {"app": "shop-model", **POD_LABEL}
    if kind == "native" and kube_version < "1.29":
        return  # restartPolicy on an init container is a 1.29 field
    for obj in written["mlmon-config.yaml"] + written["mlmon-dashboards.yaml"] + [patched]:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {kube_version}: {error}")


def test_the_sidecar_runs_the_config_the_configmap_holds(files, tmp_path: Path) -> None:
    _, written = files
    config = mounted_config(written, tmp_path)
    assert [m.name for m in config.models] == ["churn", "basket_size"]
    (config_map,) = written["mlmon-config.yaml"]
    (patch,) = written["mlmon-sidecar-patch.yaml"]
    volumes = patch["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "mlmon-config", "configMap": {"name": config_map["metadata"]["name"]}}]
    assert config.exporter.metrics_listen.endswith(":8710")


def test_rules_dashboards_and_monitor_are_the_configs(files, tmp_path: Path) -> None:
    _, written = files
    values = chart_values(CHURN)
    (rule,) = written["mlmon-prometheusrule.yaml"]
    assert rule["spec"]["groups"] == values["generated"]["rules"]["groups"]
    assert not any("fraud" in g["name"] for g in rule["spec"]["groups"])
    rules_file = tmp_path / "rules.yaml"
    rules_file.write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([require_binary("promtool"), "check", "rules", str(rules_file)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    dashboards = {k for d in written["mlmon-dashboards.yaml"] for k in d["data"]}
    assert dashboards == set(values["generated"]["dashboards"]["files"])
    assert all(d["metadata"]["labels"]["grafana_dashboard"] == "1" for d in written["mlmon-dashboards.yaml"])
    (monitor,) = written["mlmon-podmonitor.yaml"]
    assert monitor["spec"]["selector"]["matchLabels"] == POD_LABEL
    job = load_config(CHURN).alerting.exporter.job
    assert monitor["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["replacement"] == job


def test_the_sidecar_probes_and_the_pod_waits_as_the_charts_do(files) -> None:
    _, written = files
    (patch,) = written["mlmon-sidecar-patch.yaml"]
    pod = patch["spec"]["template"]["spec"]
    grace = load_config(CHURN).exporter.shutdown_grace
    assert pod["terminationGracePeriodSeconds"] == max(30, grace + 2)
    sidecar = next(c for c in pod.get("initContainers", []) + pod.get("containers", []) if c["name"] == "mlmon")
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


# ----------------------------------------------------------------------------- mlmon act


@pytest.fixture(scope="module")
def with_actions(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, list[dict[str, Any]]]]:
    """The churn config with one action: the component then holds `mlmon act` too."""
    folder = tmp_path_factory.mktemp("act") / "churn"
    shutil.copytree(CHURN.parent, folder)  # the profiles beside the config, as the churn example keeps them
    data = yaml.safe_load(CHURN.read_text())
    data["alerting"]["actions"] = [{"name": "retrain-churn", "matchers": ['alertname="MLMonFeatureDrift"'],
                                    "http_post": {"url": "https://ci.example.com/hooks/retrain"}}]
    source = folder / "mlmon.yaml"
    source.write_text(yaml.safe_dump(data))
    out = folder / "mlmon"
    assert main(["chart", "kustomize", "--config", str(source), "--deployment", "shop-model", "--namespace", "shop",
                 "--out", str(out)]) == 0
    return source, {p.name: [d for d in yaml.safe_load_all(p.read_text()) if d] for p in sorted(out.iterdir())}


def test_a_config_without_actions_gets_no_act(files) -> None:
    assert "mlmon-act.yaml" not in files[1]


def test_act_objects_are_valid_kubernetes_and_listed_in_the_component(with_actions) -> None:
    kubernetes_validate = require("kubernetes_validate")
    _, written = with_actions
    assert "mlmon-act.yaml" in written["kustomization.yaml"][0]["resources"]
    deployment, service, monitor = written["mlmon-act.yaml"]
    for obj in (deployment, service):
        for kube_version in KUBE_VERSIONS:
            kubernetes_validate.validate(obj, kube_version, strict=True)
    assert service["spec"]["selector"] == deployment["spec"]["selector"]["matchLabels"] == \
        deployment["spec"]["template"]["metadata"]["labels"] == monitor["spec"]["selector"]["matchLabels"]
    job = load_config(CHURN).alerting.exporter.job
    assert monitor["spec"]["podMetricsEndpoints"][0]["relabelings"][0]["replacement"] == f"{job}-act"


def test_act_runs_as_the_charts_act_does(with_actions) -> None:
    """The container the chart renders for the same config (helm/mlmon/templates/act.yaml), less its secrets."""
    from tests.test_helm_chart import render

    source, written = with_actions
    deployment = written["mlmon-act.yaml"][0]
    chart = next(o for o in render(require("helm_python"), chart_values(source))
                 if o["kind"] == "Deployment" and o["metadata"]["name"].endswith("-act"))
    ours, theirs = (d["spec"]["template"]["spec"] for d in (deployment, chart))
    assert deployment["spec"]["strategy"] == chart["spec"]["strategy"] and deployment["spec"]["replicas"] == 1
    (container,), (expected,) = ours["containers"], theirs["containers"]
    for key in ("args", "ports", "readinessProbe", "livenessProbe", "resources", "securityContext", "volumeMounts"):
        assert container[key] == expected[key], key
    assert [v["name"] for v in ours["volumes"]] == [v["name"] for v in theirs["volumes"]]
    assert ours["terminationGracePeriodSeconds"] == theirs["terminationGracePeriodSeconds"]


def test_alertmanager_reaches_act_at_its_service(with_actions, tmp_path: Path) -> None:
    _, written = with_actions
    config = mounted_config(written, tmp_path)
    _, service, _ = written["mlmon-act.yaml"]
    name, port = service["metadata"]["name"], service["spec"]["ports"][0]["port"]
    assert config.alerting.act.url == f"http://{name}.shop.svc:{port}"
    assert [a.name for a in config.alerting.actions] == ["retrain-churn"]
