"""The chart's `mlmon act` Deployment and Service (act.enabled): off by default, valid Kubernetes,
hardened like the sidecar, running the config's actions with its secrets mounted where the config
says, and a config the act process accepts."""

from __future__ import annotations

from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

from exporter.config.model import load_config
from tests.test_helm_chart import KUBE_VERSIONS, config_map, helm, kubernetes_validate, render, render_files  # noqa: F401

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
    assert sorted(o["kind"] for o in objects) == ["Deployment", "Service"]
    for obj in objects:
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
    ({"act": {"port": 0}}, "/act/port"), ({"act": {"replicas": 2}}, "'replicas' not allowed"),
    ({"act": {"service": {"type": "Headless"}}}, "/act/service/type"),
])
def test_the_schema_refuses_bad_act_values(helm: ModuleType, values: dict[str, Any], where: str) -> None:
    with pytest.raises(helm.HelmValuesError) as error:
        render_files(helm, values)
    assert where in str(error.value)


def test_lints_clean_with_act_enabled(helm: ModuleType) -> None:
    from tests.test_helm_chart import CHART

    report = helm.lint(str(CHART), ACT, strict=True)
    assert report["errors"] == [] and [m for m in report["messages"] if m["severity"] >= 2] == []
