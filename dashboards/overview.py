"""MLMon / Overview: every model and version at a glance, with links into the model dashboard."""

from __future__ import annotations

from typing import Any

from alert_rules.fleet_verdict import drifted_share_name
from exporter import catalog
from exporter.config.model import MlmonConfig
from dashboards import links, variables
from dashboards.common import DashboardSpec, build, min_samples_thresholds, shared_drift_thresholds
from dashboards.drift import drifted_share_thresholds, methods_text, worst_drift
from dashboards.layout import Section
from dashboards.panels import Query, Thresholds, stat, table, timeseries, upper_thresholds
from dashboards.promql import PROMETHEUS_ALERTS, selector, sum_by
from dashboards.queries import predictions_rate, quality_kinds, quality_ratio, rejected_ratio
from alert_rules.naming import ALERT_PREFIX, alert_name

ALL = {"model": '=~"$model"', "model_version": '=~"$version"'}
BY_MODEL = {"model": '=~"$model"'}
FIRING = {"alertstate": '"firing"', "alertname": f'=~"{ALERT_PREFIX}.+"', "model": '=~"$model"'}


def _model_links(config: MlmonConfig) -> list[dict[str, Any]]:
    """Data links on the model/version columns of the table: open that version's dashboard, or its
    page on the exporter (when links.exporter_url is set)."""
    url = links.dashboard_url(links.MODEL_UID, "var-model=${__data.fields.model}",
                              "var-version=${__data.fields.model_version}", "var-datasource=${datasource}")
    page = links.model_page_data_link(config, "${__data.fields.model}", "${__data.fields.model_version}")
    return [{"title": "Open the model dashboard", "url": url}, *page]


def _models_table(config: MlmonConfig) -> Any:
    window = variables.window_names(config)[-1]  # the longest: the one the drift alerts judge
    samples_thresholds, _ = min_samples_thresholds(config)
    queries = [
        Query(predictions_rate(("model", "model_version"), **ALL), instant=True, table=True),
        Query(sum_by(("model", "model_version"), selector(catalog.WINDOW_SAMPLES, window=f'"{window}"', **ALL)),
              instant=True, table=True),
        Query(selector(catalog.REFERENCE_SAMPLES, **ALL), instant=True, table=True),
        Query(worst_drift(config, ("model", "model_version"), **ALL), instant=True, table=True),
        Query(f"max by (model, model_version) ({selector(drifted_share_name(window), **ALL)})",
              instant=True, table=True),
    ]
    renames = {"Value #A": "predictions/s", "Value #B": f"samples ({window})", "Value #C": "reference rows",
               "Value #D": "worst fleet drift (alert window)", "Value #E": f"drifted features ({window})"}
    drift, _ = shared_drift_thresholds(config)
    share, _ = drifted_share_thresholds(config)
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {
            "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True, "window": True},
            "indexByName": {"model": 0, "model_version": 1, **{v: i + 2 for i, v in enumerate(renames.values())}},
            "renameByName": renames,
        }},
    ]
    overrides = [
        {"matcher": {"id": "byName", "options": name}, "properties": [{"id": "links", "value": _model_links(config)}]}
        for name in ("model", "model_version")
    ] + [
        {"matcher": {"id": "byName", "options": "predictions/s"}, "properties": [{"id": "unit", "value": "cps"}]},
        {"matcher": {"id": "byName", "options": f"samples ({window})"}, "properties": [
            {"id": "thresholds", "value": samples_thresholds.to_json()},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ]},
        {"matcher": {"id": "byName", "options": "worst fleet drift (alert window)"}, "properties": [
            {"id": "thresholds", "value": drift.to_json()}, {"id": "decimals", "value": 3},
            {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}},
        ]},
        {"matcher": {"id": "byName", "options": f"drifted features ({window})"}, "properties": [
            {"id": "thresholds", "value": share.to_json()}, {"id": "unit", "value": "percentunit"},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}},
        ]},
    ]
    return table(
        "Models and versions",
        f"Every model version seen in the time range: traffic now, predictions in the {window} window (red below "
        "drift.min_samples, where no drift verdict is given; summed over pods), the size of its reference, its worst fleet "
        f"feature drift over the window its alerts judge ({methods_text(config)}, coloured by drift.warning/critical) "
        "and the worst pod's share of drifted features. Click a "
        "model to open its dashboard or its page on the exporter.",
        "short", queries, height=8, sort_by="predictions/s", overrides=overrides, transformations=transformations,
    )


def overview(config: MlmonConfig) -> dict[str, Any]:
    dq = config.alerting.data_quality
    base = config.alerting.runbook_url
    rejected = upper_thresholds(dq.rejected_ratio, dq.rejected_ratio * 5)
    summary = Section("Fleet", [
        stat("Models reporting", "Models with at least one version exporting metrics.", "none",
             [Query(f"count(count by (model) ({selector(catalog.MODEL_INFO, **ALL)}))")], graph=False),
        stat("Versions reporting", "Model versions exporting metrics (each exporter keeps at most "
             f"{config.exporter.max_versions_per_model} per model).", "none",
             [Query(f"count({selector(catalog.MODEL_INFO, **ALL)})")], graph=False),
        stat("Predictions per second", "Accepted prediction records per second, all selected models.", "cps",
             [Query(predictions_rate((), **ALL))]),
        stat("Firing alerts", "MLMon alerts firing now for the selected models (Prometheus ALERTS series).",
             "none", [Query(f"count({selector(PROMETHEUS_ALERTS, **FIRING)}) or vector(0)")],
             thresholds=Thresholds("green", ((1, "red"),)), graph=False),
    ])
    models = Section("Models", [
        _models_table(config),
        timeseries("Predictions per second by version", "Accepted predictions per second of each model version.",
                   "cps", [Query(predictions_rate(("model", "model_version"), **ALL), "{{model}} {{model_version}}")]),
        timeseries("Rejected records", "Records rejected whole per record received, by model and reason; the "
                   f"threshold line is the RecordsRejected alert threshold ({dq.rejected_ratio:g}).", "percentunit",
                   [Query(rejected_ratio(("model", "reason"), **BY_MODEL), "{{model}} {{reason}}")],
                   thresholds=rejected, show_thresholds=True, minimum=0,
                   links=[links.runbook_link(base, alert_name("RecordsRejected"))]),
    ])
    drift, drift_overrides = shared_drift_thresholds(config)
    share, share_overrides = drifted_share_thresholds(config)
    window = variables.window_names(config)[-1]  # the longest: the one the drift alerts judge
    drift_section = Section("Drift", [
        timeseries("Worst feature drift (alert window)", "The highest fleet feature drift score of each model version "
                   f"({methods_text(config)}; bin counts summed over every pod) over the window its drift alerts judge "
                   "(each model's longest drift window); the bands are each model's drift.warning and "
                   "drift.critical, the alert thresholds.", "none",
                   [Query(worst_drift(config, ("model", "model_version"), **ALL),
                          "{{model}} {{model_version}}")],
                   thresholds=drift, overrides=drift_overrides, show_thresholds=True, minimum=0,
                   links=[links.runbook_link(base, alert_name("FeatureDrift"))]),
        timeseries(f"Drifted features ({window})", "Fleet-wide share of each model version's features (with a "
                   "verdict) whose fleet verdict is drifted (any grade: what MLMonDriftedFeatureShare judges); the "
                   "band starts at drift.drifted_share, where the dataset counts as drifted.",
                   "percentunit",
                   [Query(f"max by (model, model_version) ({selector(drifted_share_name(window), **ALL)})",
                          "{{model}} {{model_version}}")],
                   thresholds=share, overrides=share_overrides, show_thresholds=True, minimum=0, maximum=1,
                   links=[links.runbook_link(base, alert_name("DriftedFeatureShare"))]),
    ])
    kinds = quality_kinds(config)
    quality = Section("Data quality", [
        timeseries(
            f"Feature values: {kind.what}", f"Worst feature per model version: values {kind.what} per accepted "
            f"prediction. The threshold line is the {kind.alert} alert threshold ({kind.threshold:g}).",
            "percentunit",
            [Query(f"max by (model, model_version) ({quality_ratio(kind, ('model', 'model_version', 'feature'), **ALL)})",
                   "{{model}} {{model_version}}")],
            width=8, thresholds=upper_thresholds(kind.threshold, kind.threshold * 5),
            show_thresholds=True, minimum=0, links=[links.runbook_link(base, kind.alert)],
        )
        for kind in kinds
    ])
    alerts = Section("Alerts", [
        table("Firing MLMon alerts", "Alerts firing now, from Prometheus's ALERTS series; empty when all is well.",
              "none", [Query(f"sum by (alertname, severity, model, model_version, feature) "
                             f"({selector(PROMETHEUS_ALERTS, **FIRING)})", instant=True, table=True)],
              transformations=[{"id": "organize", "options": {"excludeByName": {"Time": True, "Value": True}}}]),
    ])
    return build(DashboardSpec(
        uid=links.OVERVIEW_UID, title="Overview",
        description="Every monitored model and version: traffic, rejections, data quality and firing alerts.",
        sections=[summary, models, drift_section, quality, alerts],
        variables=[variables.datasource(), variables.model(multi=True), variables.version(multi=True)],
    ))
