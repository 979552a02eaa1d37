"""`kubeflow_run`: POST /apis/v2beta1/runs of the Kubeflow Pipelines API (v2beta1Run):
a run of an uploaded pipeline version with runtime parameters."""

from __future__ import annotations

from typing import Any

from exporter.actions.kinds.calls import HttpCall
from exporter.config.action_templates import render_text, render_value
from exporter.config.actions import KubeflowRun


def build(spec: KubeflowRun, context: dict[str, Any]) -> HttpCall:
    body: dict[str, Any] = {
        "display_name": render_text(spec.display_name, context),
        "description": f"started by mlmon act (action {context['action']}, group {context['group_key']})",
        "pipeline_version_reference": {"pipeline_id": spec.pipeline_id, "pipeline_version_id": spec.pipeline_version_id},
        "runtime_config": {"parameters": render_value(spec.parameters, context)},
    }
    if spec.experiment_id:
        body["experiment_id"] = spec.experiment_id
    return HttpCall("POST", f"{spec.url}/apis/v2beta1/runs", body, token_file=spec.token_file)
