"""`http_post`: a templated JSON body to any URL (a chat bridge, a ticket API, an internal service)."""

from __future__ import annotations

from typing import Any

from exporter.actions.kinds.calls import HttpCall
from exporter.actions.kinds.payload import default_payload
from exporter.config.action_templates import render_value
from exporter.config.actions import HttpPost


def build(spec: HttpPost, context: dict[str, Any]) -> HttpCall:
    body = default_payload(context) if spec.body is None else render_value(spec.body, context)
    return HttpCall(spec.method, spec.url, body, headers=dict(spec.headers), token_file=spec.bearer_token_file)
