"""Bring grafanalib's output up to the current Grafana dashboard schema.

grafanalib 0.7 writes schemaVersion 12, legacy keys (`rows`, `style`, `span`...), the pre-Grafana-7
bar gauge `fieldOptions`, the pre-Grafana-9 heatmap and query targets with Graphite-era fields.
Grafana would migrate most of it on load, but then the file in git is not what Grafana shows and
a re-export differs from it. Everything is rewritten here, once, after grafanalib has run.
"""

from __future__ import annotations

import json
from typing import Any

from grafanalib.core import Dashboard
from grafanalib._gen import DashboardEncoder

from dashboards.panels import DATASOURCE

# Grafana 10.4/11.x write schemaVersion 39; dashboards at this version load without migration.
SCHEMA_VERSION = 39

DASHBOARD_KEYS = (
    "annotations", "description", "editable", "graphTooltip", "id", "links", "panels", "refresh", "schemaVersion",
    "tags", "templating", "time", "timepicker", "timezone", "title", "uid", "version", "fiscalYearStartMonth",
    "liveNow", "weekStart",
)
PANEL_KEYS = (
    "datasource", "description", "fieldConfig", "gridPos", "id", "interval", "links", "maxDataPoints", "options",
    "repeat", "repeatDirection", "maxPerRow", "targets", "timeFrom", "timeShift", "title", "transformations",
    "transparent", "type", "pluginVersion",
)
TARGET_KEYS = ("datasource", "expr", "format", "instant", "legendFormat", "range", "refId", "editorMode", "interval")


def to_json(dashboard: Dashboard) -> dict[str, Any]:
    """grafanalib objects -> plain JSON data (what grafanalib's own generator writes)."""
    return json.loads(json.dumps(dashboard.to_json_data(), cls=DashboardEncoder))


def modernize(raw: dict[str, Any]) -> dict[str, Any]:
    out = {key: raw[key] for key in DASHBOARD_KEYS if key in raw}
    out["schemaVersion"] = SCHEMA_VERSION
    out.update({"fiscalYearStartMonth": 0, "liveNow": False, "weekStart": ""})
    out["panels"] = [_panel(p, i + 1) for i, p in enumerate(raw["panels"])]
    return out


def _panel(raw: dict[str, Any], panel_id: int) -> dict[str, Any]:
    if raw["type"] == "row":
        return {"collapsed": False, "gridPos": raw["gridPos"], "id": panel_id, "panels": [], "title": raw["title"],
                "type": "row"}
    panel = {key: raw[key] for key in PANEL_KEYS if raw.get(key) not in (None, "")}
    panel["id"] = panel_id
    panel["datasource"] = DATASOURCE
    panel["targets"] = [_target(t) for t in raw["targets"]]
    panel.setdefault("links", [])
    if not panel.get("repeat"):
        panel.pop("repeatDirection", None)
        panel.pop("maxPerRow", None)
    fix = {"bargauge": _bargauge, "heatmap": _heatmap, "table": _table}.get(panel["type"])
    if fix:
        fix(panel, raw)
    _drop_nulls(panel["fieldConfig"]["defaults"])
    return panel


def _target(raw: dict[str, Any]) -> dict[str, Any]:
    target = {key: raw[key] for key in TARGET_KEYS if raw.get(key) not in (None, "")}
    target["datasource"] = DATASOURCE
    target["editorMode"] = "code"
    # Current Grafana asks for range and instant explicitly; tables of "now" need only the instant.
    target["range"] = not raw.get("instant", False)
    target["instant"] = bool(raw.get("instant", False))
    return target


def _drop_nulls(defaults: dict[str, Any]) -> None:
    for key in [k for k, v in defaults.items() if v is None]:
        del defaults[key]
    custom = defaults.get("custom")
    if isinstance(custom, dict):
        for key in [k for k, v in custom.items() if v is None]:
            del custom[key]


def _bargauge(panel: dict[str, Any], raw: dict[str, Any]) -> None:
    # grafanalib writes Grafana 6's options.fieldOptions; Grafana 7+ keeps units, min/max and
    # thresholds in fieldConfig.defaults and the reducer in options.reduceOptions.
    options = raw["options"]
    field_options = options["fieldOptions"]
    panel["options"] = {
        "displayMode": options["displayMode"],
        "orientation": options["orientation"],
        "reduceOptions": {"calcs": field_options["calcs"], "fields": "", "values": False},
        "showUnfilled": True,
        "valueMode": "color",
        "namePlacement": "auto",
        "sizing": "auto",
        "minVizHeight": 16,
        "minVizWidth": 8,
        "maxVizHeight": 300,
    }


def _heatmap(panel: dict[str, Any], raw: dict[str, Any]) -> None:
    # The Grafana 9+ heatmap: values are pre-computed series (calculate: false), one row each.
    unit = panel["fieldConfig"]["defaults"].get("unit", "")
    panel["fieldConfig"]["defaults"]["custom"] = {
        "hideFrom": {"legend": False, "tooltip": False, "viz": False},
        "scaleDistribution": {"type": "linear"},
    }
    panel["options"] = {
        "calculate": False,
        "cellGap": 1,
        "cellValues": {"unit": unit},
        "color": {"mode": "scheme", "scheme": "Oranges", "exponent": 0.5, "fill": "dark-orange", "reverse": False,
                  "scale": "exponential", "steps": 64},
        "exemplars": {"color": "rgba(255,0,255,0.7)"},
        "filterValues": {"le": 1e-9},
        "legend": {"show": True},
        "rowsFrame": {"layout": "auto"},
        "showValue": "never",
        "tooltip": {"mode": "single", "showColorScale": False, "yHistogram": False},
        "yAxis": {"axisPlacement": "left", "reverse": False},
    }


def _table(panel: dict[str, Any], raw: dict[str, Any]) -> None:
    options = raw["options"]
    panel["options"] = {
        "cellHeight": "sm",
        "footer": {"countRows": False, "fields": "", "reducer": ["sum"], "show": False},
        "showHeader": options["showHeader"],
        "sortBy": options["sortBy"],
    }
    custom = panel["fieldConfig"]["defaults"].setdefault("custom", {})
    custom.pop("displayMode", None)  # replaced by cellOptions in Grafana 10
    custom.setdefault("cellOptions", {"type": "auto"})
