"""PromQL building blocks: selectors and the few query shapes every dashboard repeats.

Metric names come in as :class:`exporter.catalog.Metric` objects, never as strings, so a renamed
metric breaks the build instead of leaving a dead panel behind.

    >>> from exporter import catalog
    >>> rate(catalog.PREDICTIONS, model='"$model"')
    'rate(mlmon_predictions_total{model="$model"}[$__rate_interval])'
"""

from __future__ import annotations

from exporter.catalog import Metric

RATE_INTERVAL = "$__rate_interval"

# Built-in series that Prometheus itself (or prometheus_client's default collectors) writes; they
# are not mlmon metrics, so the catalog does not define them. Named once, here.
PROMETHEUS_UP = "up"
PROMETHEUS_SCRAPE_DURATION = "scrape_duration_seconds"
PROMETHEUS_SAMPLES_SCRAPED = "scrape_samples_scraped"
PROMETHEUS_ALERTS = "ALERTS"
PROCESS_RESIDENT_MEMORY = "process_resident_memory_bytes"
PROCESS_CPU = "process_cpu_seconds_total"


def selector(metric: Metric | str, /, **matchers: str) -> str:
    """`name{label=value,...}`; values are written with their operator, e.g. model='=~"$model"'."""
    name = metric if isinstance(metric, str) else metric.name
    if not matchers:
        return name
    parts = []
    for label, value in matchers.items():
        operator = "" if value[:1] in "=!" else "="
        parts.append(f"{label}{operator}{value}")
    return f"{name}{{{','.join(parts)}}}"


def rate(metric: Metric | str, interval: str = RATE_INTERVAL, /, **matchers: str) -> str:
    return f"rate({selector(metric, **matchers)}[{interval}])"


def increase(metric: Metric | str, interval: str, /, **matchers: str) -> str:
    return f"increase({selector(metric, **matchers)}[{interval}])"


def sum_by(labels: tuple[str, ...] | list[str], expr: str) -> str:
    if not labels:
        return f"sum({expr})"
    return f"sum by ({', '.join(labels)}) ({expr})"


def share(numerator: str, denominator: str, on: tuple[str, ...] = ()) -> str:
    """numerator / denominator, matched on `on` labels (group_left when the numerator is finer)."""
    if not on:
        return f"({numerator}) / scalar({denominator})"
    return f"({numerator}) / on ({', '.join(on)}) group_left () ({denominator})"


def bin_labels(reference: Metric, by: tuple[str, ...], /, **matchers: str) -> str:
    """One series per bin carrying its `bin_label` (the edges in feature units) off the reference
    ratio gauge, value 1. When pods disagree on the reference (MLMonReferenceMismatch), `topk`
    keeps one pod's label per bin, so a join never fails on duplicates."""
    keys = ", ".join((*by, "bin"))
    return f"topk by ({keys}) (1, group by ({keys}, bin_label) ({selector(reference, **matchers)}))"


def with_bin_labels(expr: str, reference: Metric, by: tuple[str, ...], /, **matchers: str) -> str:
    """`expr` (one series per `by` + bin) with each bin's `bin_label` joined on: tables and legends
    show `[120, 250)` instead of the bin index `03`."""
    keys = ", ".join((*by, "bin"))
    return f"{expr} * on ({keys}) group_left (bin_label) {bin_labels(reference, by, **matchers)}"


def reference_share(metric: Metric, by: tuple[str, ...], /, **matchers: str) -> str:
    """Each reference bin's share, with its `bin_label`. Every pod of a version exports the same
    reference distribution, so pods are collapsed with `max` (a sum would add up to the replica
    count, not to 1)."""
    return with_bin_labels(f"max by ({', '.join((*by, 'bin'))}) ({selector(metric, **matchers)})", metric, by,
                           **matchers)


def bin_share(metric: Metric, window: str, by: tuple[str, ...], /, **matchers: str) -> str:
    """Each bin's share of the counts in `window`, per `by` group (e.g. per feature): the live
    distribution that is compared with the reference ratios bin for bin."""
    counts = increase(metric, window, **matchers)
    return share(sum_by((*by, "bin"), counts), sum_by(by, counts), on=by)
