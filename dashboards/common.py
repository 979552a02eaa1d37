"""What every mlmon dashboard shares: assembly (uid, tag, title, links, variables, annotations),
and the thresholds read from the config so panel colours equal the alert thresholds."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from grafanalib import core as g

from exporter.config.model import MlmonConfig, ModelConfig
from dashboards import links
from dashboards.layout import Section, place
from dashboards.panels import DATASOURCE, Thresholds, lower_thresholds, threshold_overrides, upper_thresholds
from dashboards.schema import modernize, to_json

TITLE_PREFIX = "MLMon / "


@dataclass(frozen=True)
class DashboardSpec:
    uid: str
    title: str  # without the "MLMon / " prefix
    description: str
    sections: list[Section]
    variables: list[dict[str, Any]]
    annotations: list[dict[str, Any]] | None = None
    time_from: str = "now-1h"
    links: list[dict[str, Any]] | None = None  # beyond the MLMon dashboards dropdown (e.g. the model page)


def built_in_annotations() -> dict[str, Any]:
    return {
        "builtIn": 1,
        "datasource": {"type": "grafana", "uid": "-- Grafana --"},
        "enable": True,
        "hide": True,
        "iconColor": "rgba(0, 211, 255, 1)",
        "name": "Annotations & Alerts",
        "type": "dashboard",
    }


def prometheus_annotation(name: str, expr: str, title: str, text: str, color: str = "blue") -> dict[str, Any]:
    return {
        "datasource": DATASOURCE,
        "enable": True,
        "expr": expr,
        "hide": False,
        "iconColor": color,
        "name": name,
        "step": "60s",
        "textFormat": text,
        "titleFormat": title,
        "useValueForTime": False,
    }


def build(spec: DashboardSpec) -> dict[str, Any]:
    """grafanalib Dashboard -> JSON, modernized to the current schema."""
    dashboard = g.Dashboard(
        title=TITLE_PREFIX + spec.title,
        uid=spec.uid,
        description=spec.description,
        tags=[links.TAG],
        timezone="browser",
        graphTooltip=g.GRAPH_TOOLTIP_MODE_SHARED_CROSSHAIR,
        refresh="30s",
        time=g.Time(spec.time_from, "now"),
        editable=True,
        panels=place(spec.sections),
        links=[links.mlmon_dashboards_link(), *(spec.links or [])],
        templating=g.Templating(list=spec.variables),
        annotations=g.Annotations(list=[built_in_annotations(), *(spec.annotations or [])]),
    )
    return modernize(to_json(dashboard))


def drift_thresholds(model: ModelConfig) -> Thresholds:
    return upper_thresholds(model.drift.warning, model.drift.critical)


def shared_drift_thresholds(config: MlmonConfig) -> tuple[Thresholds, list[dict[str, Any]]]:
    """The first model's drift thresholds as the panel default, plus per-model overrides for the
    models that differ (matched on series names that start with the model name)."""
    per_model = {m.name: drift_thresholds(m) for m in config.models}
    default = per_model[config.models[0].name]
    return default, threshold_overrides(per_model, default)


def min_samples_thresholds(config: MlmonConfig) -> tuple[Thresholds, list[dict[str, Any]]]:
    """Window sample counts: red below the drift min_samples, where no drift verdict is given."""
    per_model = {m.name: lower_thresholds(float(m.drift.min_samples)) for m in config.models}
    default = per_model[config.models[0].name]
    return default, threshold_overrides(per_model, default)
