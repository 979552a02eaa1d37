"""Placing panels on Grafana's 24-column grid: sections (rows) of panels flowing left to right."""

from __future__ import annotations

from dataclasses import dataclass

import attr
from grafanalib import core as g

from dashboards.panels import Panel

GRID_WIDTH = 24


@dataclass
class Section:
    title: str
    panels: list[Panel]


def place(sections: list[Section]) -> list[object]:
    """A row header per section, then its panels left to right, wrapping at 24 columns.

    Rows start at the lowest y reached so far, so no two panels can overlap.
    """
    placed: list[object] = []
    y = 0
    for section in sections:
        placed.append(g.RowPanel(title=section.title, gridPos=g.GridPos(h=1, w=GRID_WIDTH, x=0, y=y)))
        y += 1
        x, line_height = 0, 0
        for panel in section.panels:
            if panel.width > GRID_WIDTH:
                raise ValueError(f"panel {panel.body.title!r} is wider than the grid")
            if x + panel.width > GRID_WIDTH:
                y, x, line_height = y + line_height, 0, 0
            placed.append(attr.evolve(panel.body, gridPos=g.GridPos(h=panel.height, w=panel.width, x=x, y=y)))
            x += panel.width
            line_height = max(line_height, panel.height)
        y += line_height
    return placed
