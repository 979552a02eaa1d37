"""`command`: an argv without a shell; the alert is in environment variables, never in the arguments.

    MLMON_ACTION, MLMON_STATUS, MLMON_GROUP_KEY, MLMON_STARTS_AT, MLMON_ALERT_COUNT,
    MLMON_RECEIVER, MLMON_EXTERNAL_URL
    MLMON_LABEL_<NAME>       each label common to the matched alerts (name upper-cased)
    MLMON_ANNOTATION_<NAME>  each common annotation
    MLMON_ALERTS_JSON        the matched alerts as a JSON list

Label names are [A-Za-z_][A-Za-z0-9_]* in Prometheus, so they are valid variable names; values
are cut at 8 KiB and NUL bytes (which no environment can hold) are dropped.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from exporter.actions.kinds.calls import CommandCall
from exporter.config.actions import CommandAction

MAX_VALUE = 8192
MAX_ALERTS_JSON = 65536


def _value(text: Any, limit: int = MAX_VALUE) -> str:
    return str(text).replace("\x00", "")[:limit]


def _name(prefix: str, key: str) -> str | None:
    return f"{prefix}{key.upper()}" if re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) else None


def build(spec: CommandAction, context: dict[str, Any]) -> CommandCall:
    env = dict(spec.env)
    for key in ("action", "status", "group_key", "starts_at", "alert_count", "receiver", "external_url"):
        env[f"MLMON_{key.upper()}"] = _value(context[key])
    for prefix, mapping in (("MLMON_LABEL_", context["labels"]), ("MLMON_ANNOTATION_", context["annotations"])):
        for key, value in mapping.items():
            name = _name(prefix, key)
            if name is not None:
                env[name] = _value(value)
    env["MLMON_ALERTS_JSON"] = _value(orjson.dumps(context["alerts"]).decode(), MAX_ALERTS_JSON)
    return CommandCall(tuple(spec.argv), env)
