"""Value objects for generated rules, and their rendering to Prometheus rule-file dicts."""

from __future__ import annotations

from typing import Any, NamedTuple


class RecordingRule(NamedTuple):
    record: str
    expr: str

    def to_dict(self) -> dict[str, Any]:
        return {"record": self.record, "expr": self.expr}


class AlertRule(NamedTuple):
    """One alerting rule. `category` groups alerts for routing and inhibition."""

    alert: str
    expr: str
    for_: str
    severity: str
    summary: str
    description: str
    runbook_url: str
    category: str
    labels: dict[str, str]
    links: tuple[tuple[str, str], ...] = ()  # page_url, dashboard_url (alert_rules.page_links)

    def to_dict(self) -> dict[str, Any]:
        labels = {"severity": self.severity, "category": self.category, **self.labels}
        rule: dict[str, Any] = {"alert": self.alert, "expr": self.expr}
        if self.for_ != "0s":
            rule["for"] = self.for_
        rule["labels"] = labels
        rule["annotations"] = {
            "summary": self.summary,
            "description": self.description,
            "runbook_url": self.runbook_url,
            **dict(self.links),
        }
        return rule


class RuleGroup(NamedTuple):
    name: str
    rules: list[RecordingRule] | list[AlertRule]
    interval: str | None = None

    def to_dict(self) -> dict[str, Any]:
        group: dict[str, Any] = {"name": self.name}
        if self.interval:
            group["interval"] = self.interval
        group["rules"] = [rule.to_dict() for rule in self.rules]
        return group
