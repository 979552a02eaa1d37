"""Which alerts of a delivery an action runs on, the keys that make it run once, and its template values."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from exporter.actions.alerts import Alert, Delivery
from exporter.config.actions import Action
from exporter.config.matchers import matches_all


@dataclass(frozen=True)
class Selection:
    """The alerts of one delivery that one action runs on."""

    action: Action
    delivery: Delivery
    alerts: tuple[Alert, ...]  # matched and of a status the action runs on
    resolved_only: bool  # matched alerts exist, but all resolved and the action runs on firing only

    @property
    def status(self) -> str:
        return "firing" if any(a.status == "firing" for a in self.alerts) else "resolved"

    @property
    def group_prefix(self) -> str:
        """What every key of this action's group starts with."""
        return f"{self.action.name}\x1f{self.delivery.group_key}\x1f"

    def keys(self) -> list[str]:
        """One key per (action, group, start time, status) of the matched alerts.

        A delivery runs the action only when none of its keys was seen (dedupe.py): a redelivery
        repeats them all, and an alert that joins a firing group (a second feature drifting)
        arrives with the alerts already seen, so one group episode runs the action once. When every
        alert of the group has resolved, the next firing has new start times: a new run.
        """
        return sorted({f"{self.group_prefix}{a.starts_at}\x1f{a.status}" for a in self.alerts})

    def context(self) -> dict[str, Any]:
        """The values `${...}` placeholders read (config/action_templates.py)."""
        return {
            "status": self.status, "action": self.action.name, "group_key": self.delivery.group_key,
            "receiver": self.delivery.receiver, "external_url": self.delivery.external_url,
            "starts_at": min(a.starts_at for a in self.alerts), "alert_count": len(self.alerts),
            "labels": common([a.labels for a in self.alerts]),
            "annotations": common([a.annotations for a in self.alerts]),
            "alerts": [a.as_json() for a in self.alerts],
        }


def common(mappings: list[dict[str, str]]) -> dict[str, str]:
    """Pairs every mapping has with the same value (Alertmanager's CommonLabels over these alerts)."""
    if not mappings:
        return {}
    first, rest = mappings[0], mappings[1:]
    return {k: v for k, v in sorted(first.items()) if all(m.get(k) == v for m in rest)}


def select(action: Action, delivery: Delivery) -> Selection | None:
    """None when no alert of the delivery matches the action's matchers.

    While any matched alert fires, the run is about the firing ones (an alert of the group that
    resolved meanwhile is left out and leaves no key). Once all have resolved, the resolution is
    a run of its own for an action with `on_resolved`, and nothing for the others.
    """
    matchers = action.parsed_matchers()
    matched = [a for a in delivery.alerts if matches_all(matchers, a.labels)]
    if not matched:
        return None
    firing = tuple(a for a in matched if a.status == "firing")
    if firing:
        return Selection(action, delivery, firing, resolved_only=False)
    if action.on_resolved:
        return Selection(action, delivery, tuple(matched), resolved_only=False)
    return Selection(action, delivery, (), resolved_only=True)
