"""The Helm chart helm/mlmon, rendered offline with helm-python-sdk (Helm's Go SDK, no cluster).

Core objects are checked against the Kubernetes OpenAPI schemas (kubernetes-validate, strict);
the PrometheusRule and the dashboard ConfigMaps are compared with the generated files they embed.
"""

from __future__ import annotations

import importlib
import json
import os
import re
import shutil
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from exporter.config.model import load_config
from exporter.profiles.load import load_profiles

ROOT = Path(__file__).resolve().parents[1]
CHART = ROOT / "helm" / "mlmon"
GENERATED_RULES = ROOT / "alert_rules" / "generated"
GENERATED_DASHBOARDS = ROOT / "dashboards" / "generated"
CORE_KINDS = {"ConfigMap", "Deployment", "Service"}
# The oldest Kubernetes the chart supports (Chart.yaml kubeVersion) and a current one.
KUBE_VERSIONS = ("1.25.0", "1.33.0")


def require(module: str) -> ModuleType:
    """Import a test dependency; outside CI a missing one skips loudly, in CI it fails."""
    try:
        return importlib.import_module(module)
    except ImportError:
        reason = f"{module} is not installed: `make venv` installs the test extra of pyproject.toml"
        if os.environ.get("CI"):
            pytest.fail(f"{reason} (CI must not skip this)", pytrace=False)
        pytest.skip(f"SKIPPED LOUDLY: {reason}")


@pytest.fixture(scope="module")
def helm() -> ModuleType:
    return require("helm_python")


@pytest.fixture(scope="module")
def kubernetes_validate() -> ModuleType:
    return require("kubernetes_validate")


def render_files(helm: ModuleType, values: dict[str, Any] | None = None, chart: Path = CHART) -> dict[str, str]:
    with helm.Chart.load(str(chart)) as loaded:
        return loaded.render(values, name="demo", namespace="ml", is_install=True)


def render(helm: ModuleType, values: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    """Every rendered object (NOTES.txt left out)."""
    objects = []
    for path, text in render_files(helm, values).items():
        if not path.endswith(".txt"):
            objects.extend(doc for doc in yaml.safe_load_all(text) if doc)
    return objects


def of_kind(objects: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [o for o in objects if o["kind"] == kind]


def one(objects: list[dict[str, Any]], kind: str) -> dict[str, Any]:
    found = of_kind(objects, kind)
    assert len(found) == 1, f"expected one {kind}, got {[o['metadata']['name'] for o in found]}"
    return found[0]


def config_map(objects: list[dict[str, Any]]) -> dict[str, Any]:
    """The sidecar's ConfigMap (the other ConfigMaps hold dashboards)."""
    found = [o for o in of_kind(objects, "ConfigMap") if "mlmon.yaml" in o["data"]]
    assert len(found) == 1, f"expected one ConfigMap with mlmon.yaml, got {len(found)}"
    return found[0]


def container(deployment: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == name)


@pytest.fixture(scope="module")
def objects(helm: ModuleType) -> list[dict[str, Any]]:
    return render(helm)


# ----------------------------------------------------------------------------- lint and schema


@pytest.mark.parametrize(
    "values",
    [None, {"monitor": {"kind": "ServiceMonitor"}, "alertmanagerConfig": {"enabled": True}, "exampleModel": {"enabled": False}}],
    ids=["defaults", "service-monitor-and-alertmanager-config"],
)
def test_lints_clean_in_strict_mode(helm: ModuleType, values: dict[str, Any] | None) -> None:
    report = helm.lint(str(CHART), values, strict=True)
    assert report["errors"] == []
    # Severity 1 is informational ("icon is recommended"); strict mode fails on warnings (2) and errors (3).
    assert [m for m in report["messages"] if m["severity"] >= 2] == []


def test_default_values_pass_the_schema(helm: ModuleType) -> None:
    with helm.Chart.load(str(CHART)) as chart:
        chart.validate_schema(chart.merge_values({}))


BAD_VALUES = [
    ({"monitor": {"kind": "ServiceMonitors"}}, "/monitor/kind", "must be one of 'PodMonitor', 'ServiceMonitor'"),
    ({"sidecar": {"metricsPort": 70000}}, "/sidecar/metricsPort", "maximum"),
    ({"sidecar": {"securityContext": {"runAsNonRoot": False}}}, "/sidecar/securityContext/runAsNonRoot", "must be true"),
    ({"sidecar": {"securityContext": {"readOnlyRootFilesystem": False}}}, "readOnlyRootFilesystem", "must be true"),
    ({"commonLabels": {"release": 1}}, "/commonLabels/release", "want string"),
    ({"dashboards": {"labels": {"grafana_dashboard": 1}}}, "/dashboards/labels/grafana_dashboard", "want string"),
    ({"imagee": {"tag": "1"}}, "'imagee' not allowed", "additional properties"),
    ({"monitor": {"interval": "30 seconds"}}, "/monitor/interval", "does not match pattern"),
    ({"references": {"fraud": "{}"}}, "/references", "fraud"),
    ({"image": {"digest": "sha256:abc"}}, "/image/digest", "does not match pattern"),
    ({"config": {"exporter": {"metrics_listen": "0.0.0.0:9000"}}}, "/config/exporter", ""),
    (
        {"config": {"models": [{"name": "m", "task": "regression", "reference": "profiles/m.json", "features": []}]}},
        "/config/models/0/reference",
        "",
    ),
]


@pytest.mark.parametrize(("values", "where", "why"), BAD_VALUES, ids=[b[1] for b in BAD_VALUES])
def test_schema_rejects_bad_values_naming_the_key(helm: ModuleType, values: dict[str, Any], where: str, why: str) -> None:
    with pytest.raises(helm.HelmValuesError) as error:
        render_files(helm, values)
    assert where in str(error.value)
    assert why in str(error.value)


# ----------------------------------------------------------------------------- Kubernetes validity


@pytest.mark.parametrize("kube_version", KUBE_VERSIONS)
@pytest.mark.parametrize(
    "values",
    [None, {"monitor": {"kind": "ServiceMonitor"}, "exampleModel": {"traffic": {"enabled": False}}, "existingConfigMap": "mine"}],
    ids=["defaults", "variant"],
)
def test_core_objects_are_valid_kubernetes_in_strict_mode(
    helm: ModuleType, kubernetes_validate: ModuleType, kube_version: str, values: dict[str, Any] | None
) -> None:
    core = [o for o in render(helm, values) if o["kind"] in CORE_KINDS]
    assert {o["kind"] for o in core} >= {"Deployment", "Service"}
    for obj in core:
        try:
            kubernetes_validate.validate(obj, kube_version, strict=True)
        except kubernetes_validate.ValidationError as error:
            pytest.fail(f"{obj['kind']}/{obj['metadata']['name']} on {kube_version}: {error}")


def test_operator_objects_use_the_monitoring_api_groups(objects: list[dict[str, Any]]) -> None:
    assert one(objects, "PodMonitor")["apiVersion"] == "monitoring.coreos.com/v1"
    if (CHART / "files/rules/mlmon_rules.yaml").exists():
        assert one(objects, "PrometheusRule")["apiVersion"] == "monitoring.coreos.com/v1"


# ----------------------------------------------------------------------------- the sidecar


def test_sidecar_runs_hardened(objects: list[dict[str, Any]]) -> None:
    sidecar = container(one(objects, "Deployment"), "mlmon")
    assert sidecar["securityContext"] == {
        "runAsNonRoot": True,
        "runAsUser": 10001,
        "runAsGroup": 10001,
        "readOnlyRootFilesystem": True,
        "allowPrivilegeEscalation": False,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def test_sidecar_serves_its_mounted_config_with_probes_on_the_metrics_port(objects: list[dict[str, Any]]) -> None:
    deployment = one(objects, "Deployment")
    sidecar = container(deployment, "mlmon")
    assert sidecar["args"] == ["serve", "--config", "/etc/mlmon/mlmon.yaml"]
    assert sidecar["ports"] == [{"name": "metrics", "containerPort": 8710, "protocol": "TCP"}]
    assert sidecar["livenessProbe"]["httpGet"] == {"path": "/healthz", "port": "metrics"}
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}
    assert sidecar["resources"]["limits"]["memory"] and sidecar["resources"]["requests"]["cpu"]
    assert sidecar["volumeMounts"] == [{"name": "mlmon-config", "mountPath": "/etc/mlmon", "readOnly": True}]
    volume = next(v for v in deployment["spec"]["template"]["spec"]["volumes"] if v["name"] == "mlmon-config")
    assert volume["configMap"]["name"] == config_map(objects)["metadata"]["name"]


def test_rendered_config_loads_in_the_exporter_with_its_profiles(objects: list[dict[str, Any]], tmp_path: Path) -> None:
    """The ConfigMap, written out as the kubelet mounts it, is a config the exporter accepts."""
    for key, text in config_map(objects)["data"].items():
        (tmp_path / key).write_text(text)
    config = load_config(tmp_path / "mlmon.yaml")
    profiles = load_profiles(config)
    assert sorted(profiles) == ["delivery_time", "fraud"]
    assert config.exporter.metrics_listen == "0.0.0.0:8710"
    assert config.exporter.ingest_listen == "127.0.0.1:8711"


def test_ports_follow_the_sidecar_values_everywhere(helm: ModuleType) -> None:
    objects = render(helm, {"sidecar": {"metricsPort": 9123, "ingestPort": 9124}})
    deployment = one(objects, "Deployment")
    config = yaml.safe_load(config_map(objects)["data"]["mlmon.yaml"])
    assert config["exporter"]["metrics_listen"] == "0.0.0.0:9123"
    assert config["exporter"]["ingest_listen"] == "127.0.0.1:9124"
    assert container(deployment, "mlmon")["ports"][0]["containerPort"] == 9123
    model_env = {e["name"]: e["value"] for e in container(deployment, "model")["env"]}
    assert model_env["MLMON_INGEST_URL"] == "http://127.0.0.1:9124/v1/predictions"


def test_default_config_is_the_example_config_with_flat_reference_paths(objects: list[dict[str, Any]]) -> None:
    """The bundled rules and dashboards were generated from examples/mlmon.yaml: the sidecar runs the same."""
    expected = yaml.safe_load((ROOT / "examples/mlmon.yaml").read_text())
    for model in expected["models"]:
        if isinstance(model["reference"], str):
            model["reference"] = Path(model["reference"]).name
    expected["exporter"].update(metrics_listen="0.0.0.0:8710", ingest_listen="127.0.0.1:8711")
    assert yaml.safe_load(config_map(objects)["data"]["mlmon.yaml"]) == expected


def test_a_users_config_replaces_the_example(helm: ModuleType) -> None:
    model = {"name": "churn", "task": "regression", "reference": "churn.json", "features": [{"name": "x", "type": "numeric"}]}
    objects = render(helm, {"config": {"models": [model]}, "exampleReferences": False, "references": {"churn.json": "{}"}})
    data = config_map(objects)["data"]
    assert yaml.safe_load(data["mlmon.yaml"]) == {
        "exporter": {"metrics_listen": "0.0.0.0:8710", "ingest_listen": "127.0.0.1:8711"},
        "models": [model],
    }
    assert sorted(data) == ["churn.json", "mlmon.yaml"]


def test_bundled_reference_profiles_are_the_example_profiles(objects: list[dict[str, Any]]) -> None:
    data = config_map(objects)["data"]
    for profile in sorted((ROOT / "examples/reference").glob("*.json")):
        assert json.loads(data[profile.name]) == json.loads(profile.read_text()), f"{profile.name}: make chart-files"


def test_existing_config_map_replaces_the_rendered_one(helm: ModuleType) -> None:
    objects = render(helm, {"existingConfigMap": "team-mlmon"})
    assert [o for o in of_kind(objects, "ConfigMap") if "mlmon.yaml" in o["data"]] == []
    volumes = one(objects, "Deployment")["spec"]["template"]["spec"]["volumes"]
    assert volumes == [{"name": "mlmon-config", "configMap": {"name": "team-mlmon"}}]


def test_config_change_changes_the_pod_checksum(helm: ModuleType) -> None:
    def checksum(values: dict[str, Any] | None) -> str:
        return one(render(helm, values), "Deployment")["spec"]["template"]["metadata"]["annotations"]["checksum/mlmon-config"]

    assert checksum(None) != checksum({"config": {"exporter": {"window_slots": 30}}})


PARENT_DEPLOYMENT = """apiVersion: apps/v1
kind: Deployment
metadata: {name: shop-model}
spec:
  selector: {matchLabels: {app: shop}}
  template:
    metadata:
      labels:
        app: shop
        {{- include "mlmon.podLabels" . | nindent 8 }}
    spec:
      terminationGracePeriodSeconds: {{ include "mlmon.terminationGracePeriodSeconds" . }}
      containers:
        - {name: model, image: "shop/model:1"}
        {{- include "mlmon.sidecar" . | nindent 8 }}
      volumes:
        {{- include "mlmon.volumes" . | nindent 8 }}
"""


def parent_chart(where: Path, mlmon_values: dict[str, Any]) -> Path:
    """A user's chart `shop` (no appVersion of its own) that depends on mlmon and includes the
    sidecar in its own Deployment, with `mlmon_values` under `mlmon:` in its values.yaml."""
    parent = where / "shop"
    (parent / "templates").mkdir(parents=True)
    shutil.copytree(CHART, parent / "charts" / "mlmon")
    (parent / "Chart.yaml").write_text(
        "apiVersion: v2\nname: shop\nversion: 1.0.0\ndependencies:\n  - {name: mlmon, version: 0.1.0}\n"
    )
    (parent / "values.yaml").write_text(yaml.safe_dump({"mlmon": mlmon_values}))
    (parent / "templates" / "deployment.yaml").write_text(PARENT_DEPLOYMENT)
    return parent


def render_parent(helm: ModuleType, parent: Path) -> list[dict[str, Any]]:
    rendered = render_files(helm, None, chart=parent)
    return [doc for path, text in rendered.items() if not path.endswith(".txt") for doc in yaml.safe_load_all(text) if doc]


def parent_deployment(objects: list[dict[str, Any]]) -> dict[str, Any]:
    return next(o for o in objects if o["kind"] == "Deployment" and o["metadata"]["name"] == "shop-model")


def mlmon_app_version() -> str:
    return str(yaml.safe_load((CHART / "Chart.yaml").read_text())["appVersion"])


def test_sidecar_template_works_from_a_parent_chart(helm: ModuleType, tmp_path: Path) -> None:
    """A user's chart depends on mlmon and includes the sidecar in its own Deployment."""
    model = {"name": "basket", "task": "regression", "reference": {"capture": 1000}, "features": [{"name": "items", "type": "numeric"}]}
    parent = parent_chart(tmp_path, {
        "exampleModel": {"enabled": False}, "exampleReferences": False, "image": {"tag": "9.9.9"},
        "sidecar": {"metricsPort": 9000}, "config": {"models": [model]},
    })
    objects = render_parent(helm, parent)
    deployment = parent_deployment(objects)
    sidecar = container(deployment, "mlmon")
    assert sidecar["image"] == "mlmon/exporter:9.9.9"
    assert sidecar["ports"][0]["containerPort"] == 9000
    assert deployment["spec"]["template"]["metadata"]["labels"]["mlmon.dev/scrape"] == "true"
    config_map = next(o for o in objects if o["kind"] == "ConfigMap" and "mlmon.yaml" in o["data"])
    assert deployment["spec"]["template"]["spec"]["volumes"][0]["configMap"]["name"] == config_map["metadata"]["name"]
    assert not [o for o in objects if o["kind"] == "Deployment" and o is not deployment]
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 30


def test_a_parent_charts_pod_waits_for_the_sidecars_drain(helm: ModuleType, tmp_path: Path) -> None:
    model = {"name": "basket", "task": "regression", "reference": {"capture": 1000}, "features": [{"name": "items", "type": "numeric"}]}
    objects = render_parent(helm, parent_chart(tmp_path, {"config": {"exporter": {"shutdown_grace": "1m"}, "models": [model]}}))
    assert parent_deployment(objects)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 62


def test_a_parent_chart_setting_only_config_runs_mlmons_own_app_version(helm: ModuleType, tmp_path: Path) -> None:
    """The parent has no appVersion: the tag must come from mlmon's Chart.yaml, never render empty."""
    model = {"name": "basket", "task": "regression", "reference": {"capture": 1000}, "features": [{"name": "items", "type": "numeric"}]}
    objects = render_parent(helm, parent_chart(tmp_path, {"config": {"models": [model]}}))
    image = container(parent_deployment(objects), "mlmon")["image"]
    assert image == f"mlmon/exporter:{mlmon_app_version()}"
    assert mlmon_app_version() != ""


def test_native_sidecar_starts_before_and_stops_after_the_model(helm: ModuleType, kubernetes_validate: ModuleType) -> None:
    """sidecar.native: an init container with restartPolicy Always (Kubernetes >= 1.29)."""
    deployment = one(render(helm, {"sidecar": {"native": True}}), "Deployment")
    spec = deployment["spec"]["template"]["spec"]
    assert "mlmon" not in {c["name"] for c in spec["containers"]}
    (sidecar,) = spec["initContainers"]
    assert sidecar["name"] == "mlmon" and sidecar["restartPolicy"] == "Always"
    assert sidecar["readinessProbe"]["httpGet"]["path"] == "/readyz"
    kubernetes_validate.validate(deployment, "1.33.0", strict=True)


def test_the_sidecar_is_an_ordinary_container_by_default(objects: list[dict[str, Any]]) -> None:
    spec = one(objects, "Deployment")["spec"]["template"]["spec"]
    assert "initContainers" not in spec and "restartPolicy" not in container(one(objects, "Deployment"), "mlmon")


# ----------------------------------------------------------------------------- scraping


def test_pod_monitor_selects_the_sidecar_pods_and_names_the_alerting_job(objects: list[dict[str, Any]]) -> None:
    monitor = one(objects, "PodMonitor")
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert monitor["spec"]["selector"]["matchLabels"].items() <= pod_labels.items()
    endpoint = monitor["spec"]["podMetricsEndpoints"][0]
    assert endpoint["port"] == "metrics" and endpoint["path"] == "/metrics"
    # The exporter-down alerts select job="<alerting.exporter.job>".
    job = yaml.safe_load((ROOT / "examples/mlmon.yaml").read_text())["alerting"]["exporter"]["job"]
    assert {"action": "replace", "targetLabel": "job", "replacement": job} in endpoint["relabelings"]


def test_service_monitor_selects_the_metrics_service(helm: ModuleType) -> None:
    objects = render(helm, {"monitor": {"kind": "ServiceMonitor"}})
    assert of_kind(objects, "PodMonitor") == []
    monitor, service = one(objects, "ServiceMonitor"), one(objects, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["endpoints"][0]["port"] in {p["name"] for p in service["spec"]["ports"]}
    pod_labels = one(objects, "Deployment")["spec"]["template"]["metadata"]["labels"]
    assert service["spec"]["selector"].items() <= pod_labels.items()


def test_monitor_can_be_turned_off(helm: ModuleType) -> None:
    objects = render(helm, {"monitor": {"enabled": False}})
    assert of_kind(objects, "PodMonitor") == of_kind(objects, "ServiceMonitor") == []


def test_release_label_reaches_every_object(helm: ModuleType) -> None:
    objects = render(helm, {"commonLabels": {"release": "kube-prometheus-stack"}, "prometheusRule": {"labels": {"role": "alert-rules"}}})
    assert all(o["metadata"]["labels"]["release"] == "kube-prometheus-stack" for o in objects)
    for rule in of_kind(objects, "PrometheusRule"):
        assert rule["metadata"]["labels"]["role"] == "alert-rules"


# ----------------------------------------------------------------------------- generated rules and dashboards


def generated_groups() -> list[dict[str, Any]] | None:
    """Recording groups then alerting groups, as generated; None before the rules exist."""
    files = [GENERATED_RULES / "mlmon_rules.yaml", GENERATED_RULES / "mlmon_alerts.yaml"]
    if not any(f.exists() for f in files):
        return None
    return [group for f in files if f.exists() for group in yaml.safe_load(f.read_text())["groups"]]


def test_prometheus_rule_equals_the_generated_rules(objects: list[dict[str, Any]]) -> None:
    expected = generated_groups()
    rules = of_kind(objects, "PrometheusRule")
    if expected is None:
        assert rules == [], "the chart embeds rules that alert_rules/generated/ no longer has: make generate"
        return
    assert len(rules) == 1, "alert_rules/generated/ has rules but the chart has none: make generate"
    groups = rules[0]["spec"]["groups"]
    assert groups == expected, "helm/mlmon/files/rules/ is stale: make generate"
    names = [g["name"] for g in groups]
    assert len(names) == len(set(names)), "the operator merges all groups of one PrometheusRule: names must be unique"


def test_prometheus_rule_equals_the_generated_prometheusrule_manifest(objects: list[dict[str, Any]]) -> None:
    manifest = GENERATED_RULES / "prometheusrule.yaml"
    if not manifest.exists():
        pytest.skip("alert_rules/generated/prometheusrule.yaml is not generated in this tree")
    assert one(objects, "PrometheusRule")["spec"] == yaml.safe_load(manifest.read_text())["spec"]


def test_prometheus_rule_can_be_turned_off(helm: ModuleType) -> None:
    assert of_kind(render(helm, {"prometheusRule": {"enabled": False}}), "PrometheusRule") == []


def test_dashboards_are_config_maps_labelled_for_grafana(objects: list[dict[str, Any]]) -> None:
    generated = {p.name: json.loads(p.read_text()) for p in sorted(GENERATED_DASHBOARDS.glob("*.json"))}
    rendered = {}
    for config_map in of_kind(objects, "ConfigMap"):
        if config_map["metadata"]["labels"].get("grafana_dashboard") == "1":
            ((name, text),) = config_map["data"].items()
            rendered[name] = json.loads(text)
            assert len(config_map["metadata"]["name"]) <= 63
    assert sorted(rendered) == sorted(generated), "helm/mlmon/files/dashboards/ is stale: make generate"
    for name, dashboard in generated.items():
        assert rendered[name] == dashboard, f"{name}: stale copy, make generate"


def test_dashboards_can_go_to_grafanas_namespace(helm: ModuleType) -> None:
    objects = render(helm, {"dashboards": {"namespace": "monitoring"}})
    dashboards = [c for c in of_kind(objects, "ConfigMap") if "grafana_dashboard" in c["metadata"]["labels"]]
    assert all(c["metadata"]["namespace"] == "monitoring" for c in dashboards)


# ----------------------------------------------------------------------------- Alertmanager and NOTES


def test_alertmanager_config_is_off_by_default(objects: list[dict[str, Any]]) -> None:
    assert of_kind(objects, "AlertmanagerConfig") == []


def test_alertmanager_config_routes_mlmon_alerts_to_its_receiver(helm: ModuleType) -> None:
    config = one(render(helm, {"alertmanagerConfig": {"enabled": True}}), "AlertmanagerConfig")
    assert config["apiVersion"] == "monitoring.coreos.com/v1alpha1"
    route = config["spec"]["route"]
    assert route["receiver"] in {r["name"] for r in config["spec"]["receivers"]}
    assert {"name": "alertname", "matchType": "=~", "value": "MLMon.*"} in route["matchers"]
    assert config["spec"]["inhibitRules"][0]["equal"] == ["alertname", "model"]


def test_alertmanager_config_inhibits_as_the_generated_alertmanager_yml_does(helm: ModuleType) -> None:
    """Same sources, targets and `equal` as alert_rules/alertmanager.py, in the operator's spelling."""
    from alert_rules.alertmanager import inhibit_rules

    def matchers(rule: list[dict[str, str]]) -> list[str]:
        return [f'{m["name"]}{m["matchType"]}"{m["value"]}"' for m in rule]

    config = one(render(helm, {"alertmanagerConfig": {"enabled": True}}), "AlertmanagerConfig")
    rendered = [(matchers(r["sourceMatch"]), matchers(r["targetMatch"]), r.get("equal")) for r in config["spec"]["inhibitRules"][1:]]
    generated = [(r["source_matchers"], r["target_matchers"], r.get("equal")) for r in inhibit_rules()[1:]]
    assert [(s, [t.replace('MLMon.+', 'MLMon.*') for t in ts], e) for s, ts, e in generated] == rendered


def test_with_the_alertmanager_config_every_alert_carries_the_release_namespace(helm: ModuleType) -> None:
    """The operator routes an AlertmanagerConfig only alerts labelled with its namespace; a fleet
    alert (sum by ...) has no namespace of its own, so the chart stamps the release's on each."""
    plain = one(render(helm), "PrometheusRule")["spec"]["groups"]
    stamped = one(render(helm, {"alertmanagerConfig": {"enabled": True}}), "PrometheusRule")["spec"]["groups"]
    alerts = [r for g in stamped for r in g["rules"] if "alert" in r]
    assert alerts and all(r["labels"]["namespace"] == "ml" for r in alerts)
    # Nothing else changes: the same groups and rules, recording rules as they were.
    for rule in (r for g in stamped for r in g["rules"] if "alert" in r):
        del rule["labels"]["namespace"]
    assert stamped == plain
    assert all("namespace" not in r.get("labels", {}) for g in plain for r in g["rules"])


def test_alertmanager_config_rejects_an_undeclared_receiver(helm: ModuleType) -> None:
    with pytest.raises(helm.HelmRenderError, match="alertmanagerConfig.receiver \"pager\" is not one of"):
        render_files(helm, {"alertmanagerConfig": {"enabled": True, "receiver": "pager"}})


def test_notes_name_only_metrics_the_exporter_exports(helm: ModuleType) -> None:
    from exporter.catalog import CATALOG

    notes = next(text for path, text in render_files(helm, None).items() if path.endswith("NOTES.txt"))
    named = set(re.findall(r"\bmlmon_[a-z_]+", notes))
    assert named, "NOTES should show a metric to grep for"
    assert named <= {m.name for m in CATALOG}, named - {m.name for m in CATALOG}


def test_notes_warn_when_kube_prometheus_stack_would_not_select_the_objects(helm: ModuleType) -> None:
    def notes(values: dict[str, Any] | None) -> str:
        return next(text for path, text in render_files(helm, values).items() if path.endswith("NOTES.txt"))

    assert "no `release` label" in notes(None)
    with_release = notes({"commonLabels": {"release": "kps"}})
    assert "no `release` label" not in with_release
    assert 'include "mlmon.sidecar"' in with_release and "docs/kubernetes.md" in with_release


# ----------------------------------------------------------------------------- shutdown, probes, admin token

CHURN = {"name": "churn", "task": "regression", "reference": "churn.json", "features": [{"name": "x", "type": "numeric"}]}


def with_exporter(exporter: dict[str, Any], **values: Any) -> dict[str, Any]:
    return {"config": {"exporter": exporter, "models": [CHURN]}, "exampleReferences": False,
            "references": {"churn.json": "{}"}, **values}


@pytest.mark.parametrize(("exporter", "seconds"), [({}, 30), ({"shutdown_grace": 28}, 30), ({"shutdown_grace": 60}, 62),
                                                   ({"shutdown_grace": "45s"}, 47), ({"shutdown_grace": "2m"}, 122)])
def test_the_pod_waits_for_the_exporters_drain_and_watchdog(helm: ModuleType, exporter: dict[str, Any], seconds: int) -> None:
    """SIGKILL comes terminationGracePeriodSeconds after SIGTERM: at least shutdown_grace + 2 s (the
    exporter's watchdog), never under Kubernetes' default 30 s."""
    deployment = one(render(helm, with_exporter(exporter)), "Deployment")
    assert deployment["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == seconds


def test_web_config_mounts_its_secret_and_probes_by_tcp(helm: ModuleType, kubernetes_validate: ModuleType) -> None:
    """A listener that requires client certificates (RequireAndVerifyClientCert) refuses the
    kubelet's httpGet handshake; a TCP connect needs no certificate."""
    objects = render(helm, {"sidecar": {"webConfig": {"secretName": "mlmon-web"}},
                            "monitor": {"endpoint": {"scheme": "https", "tlsConfig": {"insecureSkipVerify": False}}}})
    deployment = one(objects, "Deployment")
    kubernetes_validate.validate(deployment, KUBE_VERSIONS[0], strict=True)
    sidecar = container(deployment, "mlmon")
    assert sidecar["args"][-2:] == ["--web.config.file", "/etc/mlmon-web/web-config.yml"]
    for probe in ("livenessProbe", "readinessProbe"):
        assert sidecar[probe]["tcpSocket"] == {"port": "metrics"} and "httpGet" not in sidecar[probe]
        assert sidecar[probe]["periodSeconds"] > 0
    assert {"name": "mlmon-web-config", "mountPath": "/etc/mlmon-web", "readOnly": True} in sidecar["volumeMounts"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["mlmon-web-config"]["secret"]["secretName"] == "mlmon-web"
    endpoint = one(objects, "PodMonitor")["spec"]["podMetricsEndpoints"][0]
    assert endpoint["scheme"] == "https" and endpoint["port"] == "metrics"


def test_a_probe_handler_of_ones_own_wins(helm: ModuleType) -> None:
    probe = {"exec": {"command": ["true"]}, "periodSeconds": 7}
    sidecar = container(one(render(helm, {"sidecar": {"livenessProbe": probe}}), "Deployment"), "mlmon")
    assert sidecar["livenessProbe"] == {**probe, "timeoutSeconds": 2, "failureThreshold": 3}  # merged with the default timings
    assert sidecar["readinessProbe"]["httpGet"] == {"path": "/readyz", "port": "metrics"}


def test_admin_token_secret_is_mounted_read_only_and_named_by_the_config(helm: ModuleType, tmp_path: Path,
                                                                      kubernetes_validate: ModuleType) -> None:
    objects = render(helm, {"sidecar": {"adminToken": {"secretName": "mlmon-admin", "key": "admin-token"}}})
    deployment = one(objects, "Deployment")
    kubernetes_validate.validate(deployment, KUBE_VERSIONS[1], strict=True)
    sidecar = container(deployment, "mlmon")
    assert {"name": "mlmon-admin-token", "mountPath": "/var/run/secrets/mlmon-admin", "readOnly": True} in sidecar["volumeMounts"]
    volumes = {v["name"]: v for v in deployment["spec"]["template"]["spec"]["volumes"]}
    assert volumes["mlmon-admin-token"]["secret"] == {
        "secretName": "mlmon-admin", "items": [{"key": "admin-token", "path": "admin-token"}]}
    for key, text in config_map(objects)["data"].items():
        (tmp_path / key).write_text(text)
    config = load_config(tmp_path / "mlmon.yaml")
    assert config.exporter.admin_bearer_token_file == "/var/run/secrets/mlmon-admin/admin-token"
    # without the Secret the config names no token file
    assert "admin_bearer_token_file" not in yaml.safe_load(config_map(render(helm))["data"]["mlmon.yaml"])["exporter"]
