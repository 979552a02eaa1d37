"""The small template language of `alerting.actions` bodies: `${labels.model}`, never code.

An action's body, GitHub client_payload, Argo payload or Kubeflow parameters are written in YAML;
every string in them may hold placeholders that are filled from the alert group, and the result
is serialised as JSON by mlmon, so an alert's text can never break out of its string (no JSON or
shell injection) and nothing is evaluated (no Jinja, no format specs, no attribute access).

    ${status}        firing or resolved
    ${action}        the action's name
    ${group_key}     Alertmanager's group key
    ${receiver}      the Alertmanager receiver that sent the group
    ${starts_at}     the earliest startsAt of the group's matched alerts (RFC 3339)
    ${alert_count}   how many of the group's alerts matched the action
    ${external_url}  Alertmanager's external URL
    ${labels.NAME}   a label common to every matched alert ("" when they differ or it is absent)
    ${annotations.NAME}  likewise for annotations
    $$               a literal $

A string that is exactly `${labels}`, `${annotations}` or `${alerts}` is replaced by the whole
mapping (or the list of matched alerts) rather than by text.
"""

from __future__ import annotations

import re
from typing import Any

SCALARS = ("status", "action", "group_key", "receiver", "starts_at", "alert_count", "external_url")
MAPPINGS = ("labels", "annotations")
STRUCTURED = ("labels", "annotations", "alerts")
_TOKEN = re.compile(r"\$(?:\$|\{([^}]*)\}|)")
_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def _check_name(name: str, where: str) -> None:
    head, dot, tail = name.partition(".")
    if not dot and head in SCALARS:
        return
    if dot and head in MAPPINGS and _NAME.fullmatch(tail):
        return
    known = ", ".join([*SCALARS, "labels.NAME", "annotations.NAME"])
    raise ValueError(f"{where}: unknown placeholder ${{{name}}}; known: {known} (write $$ for a literal $)")


def check_template(value: Any, where: str = "template") -> None:
    """Every string leaf parses and names only known placeholders (checked when the config loads)."""
    if isinstance(value, dict):
        for key, item in value.items():
            check_template(item, f"{where}.{key}")
    elif isinstance(value, list):
        for i, item in enumerate(value):
            check_template(item, f"{where}[{i}]")
    elif isinstance(value, str):
        if value in (f"${{{n}}}" for n in STRUCTURED):
            return
        for found in _TOKEN.finditer(value):
            token = found.group(0)
            if token == "$$":
                continue
            if token == "$":
                raise ValueError(f"{where}: a lone $ in {value!r}; write $$ for a literal $ or ${{name}} for a value")
            _check_name(found.group(1), where)


def render_text(text: str, context: dict[str, Any]) -> str:
    def fill(found: re.Match[str]) -> str:
        if found.group(0) == "$$":
            return "$"
        head, dot, tail = (found.group(1) or "").partition(".")
        if dot:
            return str(context.get(head, {}).get(tail, ""))
        return str(context.get(head, ""))

    return _TOKEN.sub(fill, text)


def render_value(value: Any, context: dict[str, Any]) -> Any:
    """The value with every string filled in; mappings and lists keep their shape."""
    if isinstance(value, dict):
        return {key: render_value(item, context) for key, item in value.items()}
    if isinstance(value, list):
        return [render_value(item, context) for item in value]
    if isinstance(value, str):
        for name in STRUCTURED:
            if value == f"${{{name}}}":
                return context.get(name)
        return render_text(value, context)
    return value
