"""The body an action sends when its config gives none: the alert group in ten top-level keys
(GitHub's client_payload allows no more)."""

from __future__ import annotations

from typing import Any

MAX_ALERTS = 20  # the first ones; alert_count says how many matched


def default_payload(context: dict[str, Any]) -> dict[str, Any]:
    keys = ("action", "status", "group_key", "starts_at", "alert_count", "labels", "annotations", "receiver",
            "external_url")
    return {**{k: context[k] for k in keys}, "alerts": context["alerts"][:MAX_ALERTS]}
