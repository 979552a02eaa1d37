"""Panel builders with mlmon's defaults: every panel gets a unit, a description and the
`${datasource}` datasource; thresholds are passed in (from the config), never typed here.

The builders return grafanalib objects; :mod:`dashboards.schema` brings grafanalib's JSON up to
the current Grafana schema afterwards (grafanalib 0.7 still writes some pre-Grafana-9 shapes).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from grafanalib import core as g

DATASOURCE: dict[str, str] = {"type": "prometheus", "uid": "${datasource}"}


@dataclass(frozen=True)
class Thresholds:
    """Threshold steps in Grafana's shape: a base colour, then (value, colour) in ascending order."""

    base: str = "green"
    steps: tuple[tuple[float, str], ...] = ()

    def to_json(self) -> dict[str, Any]:
        steps: list[dict[str, Any]] = [{"color": self.base, "value": None}]
        steps += [{"color": color, "value": value} for value, color in self.steps]
        return {"mode": "absolute", "steps": steps}


def upper_thresholds(warning: float, critical: float) -> Thresholds:
    """Bad when high (drift scores): green below warning, orange from warning, red from critical."""
    return Thresholds("green", ((warning, "orange"), (critical, "red")))


def lower_thresholds(minimum: float) -> Thresholds:
    """Bad when low (sample counts, accuracy): red below the minimum, green from it."""
    return Thresholds("red", ((minimum, "green"),))


NEUTRAL = Thresholds("green")


@dataclass
class Query:
    expr: str
    legend: str = ""
    instant: bool = False
    table: bool = False  # format=table: one row per series, labels as columns

    def target(self, ref_id: str) -> g.Target:
        return g.Target(
            expr=self.expr,
            legendFormat=self.legend,
            refId=ref_id,
            instant=self.instant,
            format="table" if self.table else "time_series",
            datasource=DATASOURCE,
        )


@dataclass
class Panel:
    """A grafanalib panel plus the size it wants; :func:`dashboards.layout.place` gives it a place."""

    body: Any
    width: int
    height: int
    overrides: list[dict[str, Any]] = field(default_factory=list)


def _targets(queries: list[Query]) -> list[g.Target]:
    return [q.target(chr(ord("A") + i)) for i, q in enumerate(queries)]


def _field_defaults(unit: str, thresholds: Thresholds, minimum: float | None, maximum: float | None,
                    decimals: int | None = None) -> dict[str, Any]:
    defaults: dict[str, Any] = {"unit": unit, "thresholds": thresholds.to_json()}
    if minimum is not None:
        defaults["min"] = minimum
    if maximum is not None:
        defaults["max"] = maximum
    if decimals is not None:
        defaults["decimals"] = decimals
    return defaults


def _extra(defaults: dict[str, Any], overrides: list[dict[str, Any]], links: list[dict[str, Any]] | None,
           repeat: str | None = None, **more: Any) -> dict[str, Any]:
    extra: dict[str, Any] = {"fieldConfig": {"defaults": defaults, "overrides": overrides}, **more}
    if links:
        extra["links"] = links
    if repeat:
        extra.update({"repeat": repeat, "repeatDirection": "h", "maxPerRow": 4})
    return extra


def timeseries(
    title: str, description: str, unit: str, queries: list[Query], *, width: int = 12, height: int = 8,
    thresholds: Thresholds = NEUTRAL, show_thresholds: bool = False, stacked: bool = False,
    minimum: float | None = None, maximum: float | None = None, overrides: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None, bars: bool = False,
) -> Panel:
    defaults = _field_defaults(unit, thresholds, minimum, maximum)
    body = g.TimeSeries(
        title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries), unit=unit,
        stacking={"mode": "normal", "group": "A"} if stacked else {"mode": "none", "group": "A"},
        fillOpacity=30 if stacked or bars else 10, drawStyle="bars" if bars else "line",
        thresholdsStyleMode="line+area" if show_thresholds else "off", legendDisplayMode="list",
        tooltipMode="multi", tooltipSort="desc",
        extraJson=_extra(defaults, overrides or [], links),
    )
    return Panel(body, width, height)


def stat(
    title: str, description: str, unit: str, queries: list[Query], *, width: int = 6, height: int = 4,
    thresholds: Thresholds = NEUTRAL, reduce: str = "lastNotNull", decimals: int | None = None,
    overrides: list[dict[str, Any]] | None = None, links: list[dict[str, Any]] | None = None,
    color_mode: str = "value", graph: bool = True,
) -> Panel:
    defaults = _field_defaults(unit, thresholds, None, None, decimals)
    defaults["color"] = {"mode": "thresholds"}
    defaults["noValue"] = "no data"
    body = g.Stat(
        title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries), format=unit,
        reduceCalc=reduce, colorMode=color_mode, graphMode="area" if graph else "none", textMode="auto",
        extraJson=_extra(defaults, overrides or [], links),
    )
    return Panel(body, width, height)


def table(
    title: str, description: str, unit: str, queries: list[Query], *, width: int = 24, height: int = 8,
    thresholds: Thresholds = NEUTRAL, sort_by: str | None = None, descending: bool = True,
    overrides: list[dict[str, Any]] | None = None, transformations: list[dict[str, Any]] | None = None,
    links: list[dict[str, Any]] | None = None, color_cells: bool = False,
) -> Panel:
    defaults = _field_defaults(unit, thresholds, None, None)
    defaults["custom"] = {"align": "auto", "cellOptions": {"type": "color-text" if color_cells else "auto"},
                          "filterable": True}
    defaults["color"] = {"mode": "thresholds"}
    sort = [g.TableSortByField(displayName=sort_by, desc=descending)] if sort_by else []
    body = g.Table(
        title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries), unit=unit,
        sortBy=sort, transformations=transformations or [],
        extraJson=_extra(defaults, overrides or [], links),
    )
    return Panel(body, width, height)


def bargauge(
    title: str, description: str, unit: str, queries: list[Query], *, width: int = 12, height: int = 8,
    thresholds: Thresholds = NEUTRAL, minimum: float | None = 0, maximum: float | None = None,
    overrides: list[dict[str, Any]] | None = None, links: list[dict[str, Any]] | None = None,
    repeat: str | None = None, orientation: str = "horizontal",
) -> Panel:
    defaults = _field_defaults(unit, thresholds, minimum, maximum)
    defaults["color"] = {"mode": "thresholds"}
    body = g.BarGauge(
        title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries), format=unit,
        displayMode=g.GAUGE_DISPLAY_MODE_GRADIENT, orientation=orientation, calc="lastNotNull",
        extraJson=_extra(defaults, overrides or [], links, repeat),
    )
    return Panel(body, width, height)


def heatmap(
    title: str, description: str, unit: str, queries: list[Query], *, width: int = 12, height: int = 8,
    thresholds: Thresholds = NEUTRAL, links: list[dict[str, Any]] | None = None,
) -> Panel:
    """A heatmap of already-computed values (one row per series), e.g. drift score per feature."""
    defaults = _field_defaults(unit, thresholds, None, None)
    body = g.Heatmap(
        title=title, description=description, dataSource=DATASOURCE, targets=_targets(queries),
        extraJson=_extra(defaults, [], links),
    )
    return Panel(body, width, height)


def threshold_overrides(per_model: dict[str, Thresholds], default: Thresholds) -> list[dict[str, Any]]:
    """Grafana thresholds cannot follow a variable, so models whose thresholds differ from the
    dashboard default get an override matched on the series name (legends start with the model)."""
    return [
        {
            "matcher": {"id": "byRegexp", "options": f"^{model}( .*)?$"},
            "properties": [{"id": "thresholds", "value": thresholds.to_json()}],
        }
        for model, thresholds in sorted(per_model.items())
        if thresholds != default
    ]
