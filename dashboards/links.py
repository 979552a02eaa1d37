"""Stable dashboard uids, links between the dashboards, to the alert runbooks and to the exporter's
model pages.

Grafana addresses dashboards by uid, so a uid never changes once released: bookmarks, links from
alerts and the links below all depend on it. The uids are defined with the alerts' links
(alert_rules/page_links.py), which may not import this package.

The model page lives on the exporter, at `links.exporter_url` (a URL a browser reaches, not the pod
address Prometheus scrapes); unset, no dashboard links to it.
"""

from __future__ import annotations

from typing import Any

from alert_rules.page_links import EXPORTER_UID, MODEL_UID, OVERVIEW_UID, QUALITY_UID, VERSIONS_UID
from exporter.config import alerting as alerting_config
from exporter.config.links import fill
from exporter.config.model import MlmonConfig

__all__ = ["EXPORTER_UID", "MODEL_UID", "OVERVIEW_UID", "QUALITY_UID", "VERSIONS_UID"]

TAG = "mlmon"
MODEL_PAGE_TITLE = "Model page (drift, bins in feature units)"



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



def model_page_url(config: MlmonConfig, model: str, version: str, window: str | None = None,
                   anchor: str = "") -> str | None:
    """The exporter's drift page of `model`/`version`, given as Grafana expressions (`${model}`,
    `${__data.fields.model}`); None when `links.exporter_url` is unset. The version is
    percent-encoded (a `+` in a query string reads as a space)."""
    base = config.links.exporter_url
    if base is None:
        return None
    encoded = version[:-1] + ":percentencode}" if version.endswith("}") else version
    url = f"{fill(base, model, encoded)}/models/{model}?version={encoded}"
    if window is not None:
        url += f"&window={window}"
    return url + anchor


def page_window(config: MlmonConfig) -> str | None:
    """`${window}` when every model has the same drift windows, else None: the dashboard's window
    list is the union over models, and the page answers 400 for a window its model lacks (without
    one it opens at the model's first window)."""
    return "${window}" if len({tuple(m.drift.windows) for m in config.models}) == 1 else None


def model_page_links(config: MlmonConfig, version: str = "${version}", window: bool = True, anchor: str = "",
                     title: str = MODEL_PAGE_TITLE) -> list[dict[str, Any]]:
    """A dashboard link at the top of a dashboard: the model page of the selected model and
    `version` variable, with the selected drift window when `window` (MLMon / Model)."""
    url = model_page_url(config, "${model}", version, page_window(config) if window else None, anchor)
    if url is None:
        return []
    return [{
        "asDropdown": False, "icon": "doc", "includeVars": False, "keepTime": False, "tags": [],
        "targetBlank": True, "title": title, "type": "link", "url": url,
        "tooltip": "The exporter's page of this model version: every feature's distribution over the reference with "
                   "bin edges in feature units, scores and verdicts (the view of the pod that answers).",
    }]


def model_page_data_link(config: MlmonConfig, model: str, version: str, window: str | None = None,
                         anchor: str = "") -> list[dict[str, Any]]:
    """A data link (table cell) to the model page; nothing when `links.exporter_url` is unset."""
    url = model_page_url(config, model, version, window, anchor)
    return [] if url is None else [{"title": "Open the model page", "url": url, "targetBlank": True}]
