"""What every alert shares: its category, the alerts an absent exporter mutes, and the factory that
builds an alert with a runbook link, links to the model's page and dashboard (when `links:` sets
their URLs; alert_rules/page_links.py) and static labels (team, and model when known).

The alert modules (alerts, drift_alerts, quality_alerts) and the Alertmanager config build on this one.
"""

from __future__ import annotations

from exporter.config.model import MlmonConfig, ModelConfig

from alert_rules.naming import alert_name, runbook_url
from alert_rules.page_links import annotations
from alert_rules.rules import AlertRule

# Categories: routing and inhibit rules select on these instead of lists of alert names.
EXPORTER, TRAFFIC, DATA_QUALITY, DRIFT, QUALITY, BIAS = "exporter", "traffic", "data_quality", "drift", "quality", "bias"

EXPORTER_DOWN = alert_name("ExporterDown")
EXPORTER_ABSENT = alert_name("ExporterAbsent")
EXPORTER_DOWN_ALERTS = (EXPORTER_DOWN, EXPORTER_ABSENT)
# Alerts a missing exporter would cause by itself: gaps read as no traffic or shifted windows.
MUTED_BY_EXPORTER_DOWN = (DRIFT, TRAFFIC)


def pct(ratio: float) -> str:
    """0.05 -> '5%', 0.005 -> '0.5%' (thresholds as people say them)."""
    return f"{ratio * 100:g}%"


class AlertFactory:
    """Builds alerts that share a runbook base and static labels (team, and model when known)."""

    def __init__(self, config: MlmonConfig, labels: dict[str, str], model: ModelConfig | None = None) -> None:
        self.base = config.alerting.runbook_url
        self.links = config.links
        self.labels = labels
        self.model = model  # None: the exporter's own alerts

    def __call__(
        self, stem: str, expr: str, *, for_: str, severity: str, category: str, summary: str, description: str,
        labels: dict[str, str] | None = None, versioned: bool = True,
    ) -> AlertRule:
        """`versioned=False` for a model alert whose series carry no model_version (it is about the
        whole model): its page link then opens every version."""
        name = alert_name(stem)
        if not (summary[:1].isupper() and summary.endswith(".")):
            raise ValueError(f"{name}: summary must start with a capital letter and end with a period")
        labels = {**self.labels, **(labels or {})}
        links = annotations(self.links, self.model, stem, category, versioned, labels.get("window"))
        return AlertRule(name, expr, for_, severity, summary, description, runbook_url(self.base, name), category,
                         labels, links)
