"""The client's counters on the model server's own /metrics, through prometheus_client.

    from prometheus_client import REGISTRY
    from mlmon_client.prometheus import ClientCollector

    REGISTRY.register(ClientCollector(mlmon))

Read at scrape time from ``Client.stats()``: nothing is added to the logging path. Import this
module only where prometheus_client is installed.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from mlmon_client.client import Client

RECORD_OUTCOMES = ("sent", "rejected", "invalid", "unconfirmed", "dropped_queue_full", "dropped_unreachable", "dropped_closed")
LABEL_OUTCOMES = ("joined", "unmatched", "rejected", "dropped", "unconfirmed")


class ClientCollector:
    """``mlmon_client_records_total{outcome}``, ``mlmon_client_labels_total{outcome}``,
    ``mlmon_client_requests_total``, ``mlmon_client_retries_total``, ``mlmon_client_queued_records``."""

    def __init__(self, client: Client) -> None:
        self.client = client

    def collect(self) -> Iterator[Any]:
        stats = self.client.stats()
        records = CounterMetricFamily(
            "mlmon_client_records", "Records given to the mlmon client, by what became of them.", labels=["outcome"])
        for outcome in RECORD_OUTCOMES:
            records.add_metric([outcome], getattr(stats, outcome))
        yield records
        labels = CounterMetricFamily(
            "mlmon_client_labels", "Labels given to the mlmon client, by what became of them.", labels=["outcome"])
        for outcome in LABEL_OUTCOMES:
            labels.add_metric([outcome], getattr(stats, f"labels_{outcome}"))
        yield labels
        yield CounterMetricFamily("mlmon_client_requests", "HTTP requests the mlmon client made.", value=stats.requests)
        yield CounterMetricFamily(
            "mlmon_client_retries", "Requests the mlmon client sent again after a safe-to-retry failure.", value=stats.retried)
        yield GaugeMetricFamily(
            "mlmon_client_queued_records", "Records held by the mlmon client: buffered or in flight.", value=stats.queued)
