"""An Alertmanager webhook body (version 4) as typed values, checked before anything acts on it.

https://prometheus.io/docs/alerting/latest/configuration/#webhook_config describes the payload.
A body that is not one is refused with a 400 naming the first problem; nothing here runs anything.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

STATUSES = ("firing", "resolved")


class BadPayload(ValueError):
    """The body is not an Alertmanager webhook payload; the message names where."""


@dataclass(frozen=True)
class Alert:
    status: str
    labels: dict[str, str]
    annotations: dict[str, str]
    starts_at: str
    ends_at: str
    fingerprint: str
    generator_url: str

    def as_json(self) -> dict[str, Any]:
        return {"status": self.status, "labels": self.labels, "annotations": self.annotations,
                "startsAt": self.starts_at, "endsAt": self.ends_at, "fingerprint": self.fingerprint,
                "generatorURL": self.generator_url}


@dataclass(frozen=True)
class Delivery:
    """One notification of one alert group."""

    group_key: str
    receiver: str
    status: str
    external_url: str
    alerts: tuple[Alert, ...]


def _strings(value: Any, where: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise BadPayload(f"{where} must be an object of strings")
    return value


def _text(data: dict[str, Any], key: str, where: str, required: bool = True) -> str:
    value = data.get(key, None if required else "")
    if not isinstance(value, str) or (required and not value):
        raise BadPayload(f"{where}.{key} must be a non-empty string" if required else f"{where}.{key} must be a string")
    return value


def parse_delivery(body: bytes) -> Delivery:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError as error:
        raise BadPayload(f"the body is not JSON ({error})") from None
    if not isinstance(data, dict):
        raise BadPayload("the body must be a JSON object (an Alertmanager webhook payload)")
    raw_alerts = data.get("alerts")
    if not isinstance(raw_alerts, list):
        raise BadPayload("alerts must be a list")
    alerts = []
    for i, raw in enumerate(raw_alerts):
        where = f"alerts[{i}]"
        if not isinstance(raw, dict):
            raise BadPayload(f"{where} must be an object")
        status = _text(raw, "status", where)
        if status not in STATUSES:
            raise BadPayload(f"{where}.status must be firing or resolved, not {status!r}")
        alerts.append(Alert(
            status=status, labels=_strings(raw.get("labels"), f"{where}.labels"),
            annotations=_strings(raw.get("annotations"), f"{where}.annotations"),
            starts_at=_text(raw, "startsAt", where), ends_at=_text(raw, "endsAt", where, required=False),
            fingerprint=_text(raw, "fingerprint", where, required=False),
            generator_url=_text(raw, "generatorURL", where, required=False),
        ))
    status = _text(data, "status", "payload")
    if status not in STATUSES:
        raise BadPayload(f"payload.status must be firing or resolved, not {status!r}")
    return Delivery(
        group_key=_text(data, "groupKey", "payload"), receiver=_text(data, "receiver", "payload", required=False),
        status=status, external_url=_text(data, "externalURL", "payload", required=False), alerts=tuple(alerts),
    )
