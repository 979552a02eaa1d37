"""Stable dashboard uids, links between the dashboards, and links to the alert runbooks.

Grafana addresses dashboards by uid, so a uid never changes once released: bookmarks, links from
alerts and the links below all depend on it.
"""

from __future__ import annotations

from typing import Any

from exporter.config import alerting as alerting_config

OVERVIEW_UID = "mlmon-overview"
MODEL_UID = "mlmon-model"
QUALITY_UID = "mlmon-quality"
VERSIONS_UID = "mlmon-versions"
EXPORTER_UID = "mlmon-exporter"

TAG = "mlmon"



# The same link the alert's runbook_url annotation carries (alerting.runbook_url).
runbook_url = alerting_config.runbook_url


def dashboard_url(uid: str, *variables: str) -> str:
    """A URL to another mlmon dashboard that carries the time range and the given variables."""
    params = "&".join(["${__url_time_range}", *variables])
    return f"/d/{uid}?{params}"


def mlmon_dashboards_link() -> dict[str, Any]:
    """The dropdown at the top of every mlmon dashboard listing all of them (selected by tag)."""
    return {
        "asDropdown": True,
        "icon": "external link",
        "includeVars": True,
        "keepTime": True,
        "tags": [TAG],
        "targetBlank": False,
        "title": "MLMon dashboards",
        "tooltip": "",
        "type": "dashboards",
        "url": "",
    }


def runbook_link(base: str, alert: str) -> dict[str, Any]:
    return {"title": f"Runbook: {alert}", "url": runbook_url(base, alert), "targetBlank": True}

