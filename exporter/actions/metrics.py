"""The metrics of `mlmon act`, on its own /metrics, named and described by the catalog.

A handful of families whose `action` label comes from the config: prometheus_client is the right
size here (the sidecar renders its large state itself, exposition.py). Every action's series
exist from the start at 0, so `increase()` sees its first run.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics, generate_latest

from exporter import catalog as c
from exporter.catalog import Metric

RESULTS = ("success", "failed", "dry_run")
WEBHOOK_RESULTS = ("accepted", "invalid", "unknown_action", "busy", "unavailable")
DURATION_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0)


def _counter(metric: Metric, registry: CollectorRegistry) -> Counter:
    return Counter(metric.name, metric.help, metric.labels, registry=registry)


class ActMetrics:
    def __init__(self, actions: list[str]) -> None:
        disable_created_metrics()  # `_created` series double every family for nothing a rule reads
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.runs = _counter(c.ACTION_RUNS, r)
        self.duration = Histogram(c.ACTION_DURATION.name, c.ACTION_DURATION.help, c.ACTION_DURATION.labels,
                                  buckets=DURATION_BUCKETS, registry=r)
        self.deduplicated = _counter(c.ACTION_DEDUPLICATED, r)
        self.rate_limited = _counter(c.ACTION_RATE_LIMITED, r)
        self.retries = _counter(c.ACTION_RETRIES, r)
        self.resolved_ignored = _counter(c.ACTION_RESOLVED_IGNORED, r)
        self.webhooks = _counter(c.ACTION_WEBHOOKS, r)
        self.dedupe_keys = Gauge(c.ACTION_DEDUPE_KEYS.name, c.ACTION_DEDUPE_KEYS.help, registry=r)
        self.dedupe_evictions = _counter(c.ACTION_DEDUPE_EVICTIONS, r)
        self.limits = _counter(c.ACTION_LIMITS, r)
        self.records_unshared = _counter(c.ACTION_RECORDS_UNSHARED, r)
        for action in actions:
            for result in RESULTS:
                self.runs.labels(action, result)
            self.duration.labels(action)
            for family in (self.deduplicated, self.rate_limited, self.retries, self.resolved_ignored):
                family.labels(action)
        for result in WEBHOOK_RESULTS:
            self.webhooks.labels(result)

    def render(self) -> bytes:
        return generate_latest(self.registry)
