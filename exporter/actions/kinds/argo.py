"""`argo_event`: POST /api/v1/events/{namespace}/{discriminator} of an Argo Server; a
WorkflowEventBinding in that namespace selecting the discriminator submits its workflow
(https://argo-workflows.readthedocs.io/en/latest/events/)."""

from __future__ import annotations

from typing import Any

from exporter.actions.kinds.calls import HttpCall
from exporter.actions.kinds.payload import default_payload
from exporter.config.action_templates import render_value
from exporter.config.actions import ArgoEvent


def build(spec: ArgoEvent, context: dict[str, Any]) -> HttpCall:
    body = default_payload(context) if spec.payload is None else render_value(spec.payload, context)
    return HttpCall("POST", f"{spec.url}/api/v1/events/{spec.namespace}/{spec.discriminator}", body,
                    token_file=spec.token_file)
