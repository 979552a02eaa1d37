"""MLMon / Exporter: the sidecar's own health: scrapes, ingest, rejections, limits, resources."""

from __future__ import annotations

from typing import Any

from alert_rules.naming import alert_name
from exporter import catalog
from exporter.config.model import MlmonConfig
from dashboards import links, variables
from dashboards.common import DashboardSpec, build
from dashboards.layout import Section
from dashboards.panels import Query, Thresholds, bargauge, stat, timeseries, upper_thresholds
from dashboards.promql import (
    PROCESS_CPU, PROCESS_RESIDENT_MEMORY, PROMETHEUS_SAMPLES_SCRAPED, PROMETHEUS_SCRAPE_DURATION, PROMETHEUS_UP,
    increase, rate, selector, sum_by,
)

# Per pod by nature: every query follows the cluster, namespace and pod pickers ("All" by default).
JOB = {"job": '=~"$job"', "cluster": '=~"$cluster"', "namespace": '=~"$namespace"', "instance": '=~"$instance"'}


def exporter_health(config: MlmonConfig) -> dict[str, Any]:
    cfg = config.alerting.exporter
    base = config.alerting.runbook_url
    slow = upper_thresholds(cfg.scrape_duration_warning_seconds * 0.5, cfg.scrape_duration_warning_seconds)
    scrapes = Section("Scrapes", [
        stat("Targets up", "Exporter targets Prometheus scraped successfully at the last scrape, out of all "
             "targets of the job.", "none", [Query(f"sum({selector(PROMETHEUS_UP, **JOB)})", "up"),
                                             Query(f"count({selector(PROMETHEUS_UP, **JOB)})", "targets")],
             graph=False, links=[links.runbook_link(base, alert_name("ExporterDown"))]),
        stat("Render time", "Time the exporter took to render /metrics (the previous scrape), worst target. "
             f"Red at the ExporterScrapeSlow threshold ({cfg.scrape_duration_warning_seconds:g}s).", "s",
             [Query(f"max({selector(catalog.SCRAPE_DURATION, **JOB)})")], thresholds=slow,
             links=[links.runbook_link(base, alert_name("ExporterScrapeSlow"))]),
        stat("Series per scrape", "Samples each scrape returns, summed over targets: the exporter's cardinality.",
             "short", [Query(f"sum({selector(PROMETHEUS_SAMPLES_SCRAPED, **JOB)})")]),
        stat("Resident memory", "Resident memory of the exporter processes (largest); state is bounded by models x "
             "versions x features x bins x window slots, so it should stay flat under traffic.", "bytes",
             [Query(f"max({selector(PROCESS_RESIDENT_MEMORY, **JOB)})")]),
        timeseries("Scrape and render duration", "Prometheus's scrape duration per target and the exporter's own "
                   "render time; the line is the ExporterScrapeSlow threshold.", "s",
                   [Query(selector(PROMETHEUS_SCRAPE_DURATION, **JOB), "scrape {{instance}}"),
                    Query(selector(catalog.SCRAPE_DURATION, **JOB), "render {{instance}}")],
                   thresholds=slow, show_thresholds=True, minimum=0),
        timeseries("CPU", "CPU seconds per second used by each exporter process.", "percentunit",
                   [Query(rate(PROCESS_CPU, **JOB), "{{instance}}")], minimum=0),
    ])
    ingest = Section("Ingest", [
        timeseries("Ingest requests by status", "Ingest API requests per second by endpoint and HTTP status "
                   "(413: a limit was hit; 422: every record of the request was rejected).", "reqps",
                   [Query(sum_by(("endpoint", "code"), rate(catalog.INGEST_REQUESTS, **JOB)),
                          "{{endpoint}} {{code}}")], stacked=True),
        timeseries("Ingest bytes", "Request body bytes received per second.", "Bps",
                   [Query(sum_by(("endpoint",), rate(catalog.INGEST_BYTES, **JOB)), "{{endpoint}}")]),
        timeseries("Rejected records by reason", "Records rejected whole per second, by model and reason; model '' "
                   "is a record naming no model or an undeclared one.", "cps",
                   [Query(sum_by(("model", "reason"), rate(catalog.RECORDS_REJECTED, **JOB)) + " > 0",
                          "{{model}} {{reason}}"),
                    Query(sum_by((), rate(catalog.RECORDS_REJECTED, **JOB)), "all")],
                   stacked=False, links=[links.runbook_link(base, alert_name("RecordsRejected"))]),
        timeseries("Limits hit", "Times per second a configured limit was hit, by limit: requests over "
                   "max_request_bytes or max_records_per_request, versions evicted, model_version too long.", "cps",
                   [Query(sum_by(("limit",), rate(catalog.LIMIT_HITS, **JOB)), "{{limit}}")],
                   thresholds=Thresholds("green", ((1e-9, "red"),)),
                   links=[links.runbook_link(base, alert_name("LimitHit"))]),
        bargauge("Limits hit in the time range", "How often each configured limit was hit over the dashboard's time "
                 "range; any hit means data was rejected or evicted (the LimitHit alert).", "short",
                 [Query(sum_by(("limit",), increase(catalog.LIMIT_HITS, "$__range", **JOB)), "{{limit}}",
                        instant=True)], width=12, height=6, thresholds=Thresholds("green", ((1, "red"),)),
                 links=[links.runbook_link(base, alert_name("LimitHit"))]),
        stat("Versions evicted in the time range", "Model versions whose state was dropped to stay within "
             f"max_versions_per_model ({config.exporter.max_versions_per_model}); their drift history restarts.",
             "short", [Query(sum_by((), increase(catalog.VERSIONS_EVICTED, "$__range", **JOB)), instant=True)],
             width=12, height=6, thresholds=Thresholds("green", ((1, "orange"),)), graph=False,
             links=[links.runbook_link(base, alert_name("ModelVersionsEvicted"))]),
    ])
    return build(DashboardSpec(
        uid=links.EXPORTER_UID, title="Exporter",
        description="The mlmon sidecar's own health: scrapes, render time, ingest, rejections and limits.",
        sections=[scrapes, ingest],
        variables=[variables.datasource(), variables.job(), *variables.targets()],
    ))
