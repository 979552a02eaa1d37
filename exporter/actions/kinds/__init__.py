"""The action kinds: each turns an alert group into one call (an HTTP request or a command)."""

from __future__ import annotations

from typing import Any, Callable

from exporter.actions.kinds import argo, command, github, http_post, kubeflow
from exporter.actions.kinds.calls import CommandCall, HttpCall

BUILDERS: dict[str, Callable[[Any, dict[str, Any]], HttpCall | CommandCall]] = {
    "command": command.build,
    "github_dispatch": github.build,
    "argo_event": argo.build,
    "kubeflow_run": kubeflow.build,
    "http_post": http_post.build,
}
