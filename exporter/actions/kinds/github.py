"""`github_dispatch`: POST /repos/{owner}/{repo}/dispatches, which starts the workflows whose
`on: repository_dispatch: types:` list the event_type (GitHub answers 204).

https://docs.github.com/en/rest/repos/repos#create-a-repository-dispatch-event: event_type is at
most 100 characters, client_payload at most 10 top-level keys.
"""

from __future__ import annotations

from typing import Any

from exporter.actions.kinds.calls import HttpCall
from exporter.actions.kinds.payload import default_payload
from exporter.config.action_templates import render_text, render_value
from exporter.config.actions import GithubDispatch

EVENT_TYPE_MAX = 100


def build(spec: GithubDispatch, context: dict[str, Any]) -> HttpCall:
    payload = default_payload(context) if spec.client_payload is None else render_value(spec.client_payload, context)
    return HttpCall(
        "POST", f"{spec.api_url}/repos/{spec.repository}/dispatches",
        {"event_type": render_text(spec.event_type, context)[:EVENT_TYPE_MAX], "client_payload": payload},
        headers={"Accept": "application/vnd.github+json", "X-GitHub-Api-Version": "2022-11-28"},
        token_file=spec.token_file,
    )
