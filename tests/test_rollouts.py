"""`mlmon rollouts build`: the generated Argo Rollouts and Flagger objects against the upstream CRD schemas.

The schemas are pinned in tests/fixtures/crds/ (each file names its source commit). Kubernetes prunes
fields a structural schema does not declare instead of refusing them, so besides validating, the
test walks every generated field and fails on one the schema does not know (a typo would be dropped
silently by the API server).
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from alert_rules.rollouts import ARGO_PLACEHOLDER, FLAGGER_PLACEHOLDER, analysis_template, gates, metric_templates
from exporter.cli import main
from tests.conftest import build_config, example_config_data
from tests.support.processes import require_binary

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests/fixtures/crds"


def crd(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


def unknown_fields(value: Any, schema: dict[str, Any], path: str = "") -> list[str]:
    """Paths of fields the structural schema does not declare (what the API server would prune)."""
    out: list[str] = []
    if isinstance(value, dict):
        if schema.get("x-kubernetes-preserve-unknown-fields") or path in ("/metadata",):
            return out
        props = schema.get("properties")
        extra = schema.get("additionalProperties")
        for key, item in value.items():
            if props is not None and key in props:
                out += unknown_fields(item, props[key], f"{path}/{key}")
            elif isinstance(extra, dict):
                out += unknown_fields(item, extra, f"{path}/{key}")
            else:
                out.append(f"{path}/{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            out += unknown_fields(item, schema.get("items", {}), f"{path}/{i}")
    return out


@pytest.fixture(scope="module")
def config():
    return build_config(example_config_data())


def test_every_analysis_template_validates_against_argo_rollouts_crd(config) -> None:
    pinned = crd("argo-rollouts-analysistemplate.json")
    for model in config.models:
        template = analysis_template(model)
        assert (template["apiVersion"], template["kind"]) == (f"{pinned['group']}/{pinned['version']}", pinned["kind"])
        jsonschema.validate(template, pinned["openAPIV3Schema"])
        assert unknown_fields(template, pinned["openAPIV3Schema"]) == []


def test_every_metric_template_validates_against_flaggers_crd(config) -> None:
    pinned = crd("flagger-metrictemplate.json")
    for model in config.models:
        for template in metric_templates(model):
            assert (template["apiVersion"], template["kind"]) == (f"{pinned['group']}/{pinned['version']}",
                                                                  pinned["kind"])
            jsonschema.validate(template, pinned["openAPIV3Schema"])
            assert unknown_fields(template, pinned["openAPIV3Schema"]) == []


def test_a_field_the_crd_does_not_know_is_caught(config) -> None:
    pinned = crd("argo-rollouts-analysistemplate.json")
    template = analysis_template(config.model("fraud"))
    template["spec"]["metrics"][0]["succesCondition"] = "typo"
    assert unknown_fields(template, pinned["openAPIV3Schema"]) == ["/spec/metrics/0/succesCondition"]
    template["spec"]["metrics"][0]["provider"]["prometheus"]["query"] = ["not", "a", "string"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(template, pinned["openAPIV3Schema"])


def test_binary_models_get_a_quality_gate_and_regression_models_do_not(config) -> None:
    assert [g.name for g in gates(config.model("fraud"))] == ["drift", "homogeneity", "quality"]
    assert [g.name for g in gates(config.model("delivery_time"))] == ["drift", "homogeneity"]


def test_argo_reads_nan_as_inconclusive_both_conditions_false(config) -> None:
    for metric in analysis_template(config.model("fraud"))["spec"]["metrics"]:
        assert metric["successCondition"].startswith("!isNaN(result[0]) && ")
        assert metric["failureCondition"].startswith("!isNaN(result[0]) && ")
        assert ARGO_PLACEHOLDER in metric["provider"]["prometheus"]["query"]
        assert metric["provider"]["prometheus"]["query"].endswith("or on () vector(NaN)")


def test_argo_and_flagger_ask_the_same_query(config) -> None:
    argo = analysis_template(config.model("fraud"))["spec"]["metrics"]
    flagger = metric_templates(config.model("fraud"))
    for a, f in zip(argo, flagger, strict=True):
        assert a["provider"]["prometheus"]["query"].replace(ARGO_PLACEHOLDER, "X") == \
            f["spec"]["query"].replace(FLAGGER_PLACEHOLDER, "X")


def test_promtool_accepts_every_query(tmp_path: Path, config) -> None:
    promtool = require_binary("promtool")
    rules = [{"record": f"test:gate_{m.name}:{g.name}", "expr": g.query.replace("__MLMON_CANARY_VERSION__", "v2")}
             for m in config.models for g in gates(m)]
    path = tmp_path / "gates.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "gates", "rules": rules}]}, width=100_000))
    result = subprocess.run([promtool, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr


def test_cli_writes_then_check_passes_and_a_stale_file_fails(tmp_path: Path, capsys) -> None:
    config = str(ROOT / "examples/mlmon.yaml")
    assert main(["rollouts", "build", "-c", config, "-o", str(tmp_path)]) == 0
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names == ["delivery_time-analysistemplate.yaml", "delivery_time-metrictemplates.yaml",
                     "fraud-analysistemplate.yaml", "fraud-metrictemplates.yaml"]
    assert main(["rollouts", "build", "-c", config, "-o", str(tmp_path), "--check"]) == 0
    (tmp_path / "fraud-analysistemplate.yaml").write_text("stale")
    capsys.readouterr()
    assert main(["rollouts", "build", "-c", config, "--out", str(tmp_path), "--check"]) == 1
    assert "fraud-analysistemplate.yaml is stale: run `mlmon rollouts build" in capsys.readouterr().err
    docs = list(yaml.safe_load_all((tmp_path / "fraud-metrictemplates.yaml").read_text()))
    assert [d["metadata"]["name"] for d in docs] == ["mlmon-fraud-drift", "mlmon-fraud-homogeneity", "mlmon-fraud-quality"]


def _cloudevent(live, event_id: str, half: str, endpoint: str, body: dict) -> None:
    import requests

    headers = {"Content-Type": "application/json", "Ce-Specversion": "1.0", "Ce-Id": event_id,
               "Ce-Type": f"org.kubeflow.serving.inference.{half}", "Ce-Source": "http://localhost:9081/",
               "Ce-Inferenceservicename": "delivery_time", "Ce-Endpoint": endpoint}
    response = requests.post(f"{live.ingest_url}/v1/cloudevents", json=body, headers=headers, timeout=10)
    assert response.status_code == 200, response.text


def test_the_variant_comes_from_the_config_else_kserves_endpoint_else_default(start_exporter) -> None:
    from tests.conftest import series

    data = example_config_data()
    data["models"][1]["versions"] = {"variants": {"v9": "shadow"}}
    live = start_exporter(build_config(data))
    request = {"instances": [[3.2, 2, 12, "rain"]]}
    _cloudevent(live, "e1", "request", "canary", request)
    _cloudevent(live, "e1", "response", "canary", {"model_version": "v3", "predictions": [24.5]})
    _cloudevent(live, "e2", "request", "canary", request)
    _cloudevent(live, "e2", "response", "canary", {"model_version": "v9", "predictions": [20.0]})  # config wins
    _cloudevent(live, "e3", "request", "experimental", request)  # not a KServe endpoint name: ignored
    _cloudevent(live, "e3", "response", "experimental", {"model_version": "v4", "predictions": [20.0]})
    live.post_ok([{"model": "delivery_time", "model_version": "v1", "prediction": 30.0,
                   "features": {"distance_km": 3.0, "items": 2, "hour": 12, "weather": "rain"}}])
    variants = series(live.samples(), "mlmon_model_version_variant_info", model="delivery_time")
    got = {dict(labels)["model_version"]: dict(labels)["variant"] for labels in variants}
    assert got == {"v1": "default", "v3": "canary", "v4": "default", "v9": "shadow"}
    assert set(variants.values()) == {1.0}
