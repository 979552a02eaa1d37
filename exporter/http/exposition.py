"""Text exposition (Prometheus 0.0.4 and OpenMetrics 1.0) written straight from numpy state.

prometheus_client builds one Python object per series; for tens of thousands of bin series that
costs seconds per scrape. Here each series' label part is rendered once (``series_prefix``) and a
scrape only formats numbers and joins strings.
"""

from __future__ import annotations

import operator
from collections.abc import Iterable, Sequence

import numpy as np

from exporter.catalog import Metric

PROMETHEUS_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
OPENMETRICS_CONTENT_TYPE = "application/openmetrics-text; version=1.0.0; charset=utf-8"


def escape_label_value(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def escape_help(text: str) -> str:
    return text.replace("\\", "\\\\").replace("\n", "\\n")


def series_prefix(name: str, labels: Sequence[str], values: Sequence[str]) -> str:
    """`name{a="x",b="y"} ` — everything of a sample line but its value."""
    if not labels:
        return f"{name} "
    pairs = ",".join(f'{k}="{escape_label_value(v)}"' for k, v in zip(labels, values))
    return f"{name}{{{pairs}}} "


def format_value(value: float | int) -> str:
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if value != value:
        return "NaN"
    if value in (float("inf"), float("-inf")):
        return "+Inf" if value > 0 else "-Inf"
    return repr(float(value))


def lines_for(prefixes: Sequence[str], values: np.ndarray) -> list[str]:
    """Sample lines for many series at once; integer arrays skip float formatting."""
    if values.dtype.kind in "iu":
        texts: Iterable[str] = map(str, values.tolist())
    else:
        texts = map(format_value, values.tolist())
    return list(map(operator.add, prefixes, texts))  # C-level concatenation: ~40% cheaper than a comprehension


class Exposition:
    """Sample lines grouped by metric family, rendered in catalog order."""

    def __init__(self) -> None:
        self.samples: dict[Metric, list[str]] = {}

    def add(self, metric: Metric, lines: Iterable[str]) -> None:
        self.samples.setdefault(metric, []).extend(lines)

    def add_one(self, metric: Metric, labels: Sequence[str], value: float | int) -> None:
        self.add(metric, [series_prefix(metric.name, metric.labels, labels) + format_value(value)])

    def render(self, openmetrics: bool) -> str:
        out: list[str] = []
        for metric, lines in self.samples.items():
            family = metric.family if openmetrics else metric.name
            out.append(f"# HELP {family} {escape_help(metric.help)}")
            out.append(f"# TYPE {family} {metric.type}")
            if openmetrics and metric.unit:
                out.append(f"# UNIT {family} {metric.unit}")
            out.extend(lines)
        return "\n".join(out) + "\n" if out else ""
