"""Read generated dashboards back: every query they run, with Grafana's variables substituted.

The checks use this (promtool, and the end-to-end run against a real Prometheus): a query Grafana
would send is only known once `$model`, `$__rate_interval` and friends have values.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any, NamedTuple

LABEL_VALUES = re.compile(r"^label_values\((?P<selector>.+),\s*(?P<label>\w+)\)$")
VARIABLE = re.compile(r"\$(\{(?P<braced>\w+)(?::\w+)?\}|(?P<plain>\w+))")


class DashboardQuery(NamedTuple):
    dashboard: str  # uid
    where: str      # "panel 7 'Rejected records' A", "variable version", "annotation Version first seen"
    expr: str       # PromQL with Grafana variables still in it


def panels(dashboard: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for panel in dashboard["panels"]:
        yield panel
        yield from panel.get("panels", [])


def queries(dashboard: dict[str, Any]) -> Iterator[DashboardQuery]:
    uid = dashboard["uid"]
    for panel in panels(dashboard):
        for target in panel.get("targets", []):
            yield DashboardQuery(uid, f"panel {panel['id']} {panel['title']!r} {target['refId']}", target["expr"])
    for variable in dashboard["templating"]["list"]:
        if variable["type"] == "query":
            match = LABEL_VALUES.match(variable["definition"])
            # label_values(selector, label) asks for the series of `selector`: that is the PromQL part.
            expr = match.group("selector") if match else variable["definition"]
            yield DashboardQuery(uid, f"variable {variable['name']}", expr)
    for annotation in dashboard["annotations"]["list"]:
        if "expr" in annotation:
            yield DashboardQuery(uid, f"annotation {annotation['name']}", annotation["expr"])


def substitute(expr: str, values: dict[str, str]) -> str:
    """Replace $name and ${name} as Grafana does; an unknown variable is an error, not a guess."""
    def replace(match: re.Match[str]) -> str:
        name = match.group("braced") or match.group("plain")
        if name not in values:
            raise KeyError(f"no value for ${name} in {expr!r}")
        return values[name]

    return VARIABLE.sub(replace, expr)
