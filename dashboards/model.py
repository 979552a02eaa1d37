"""MLMon / Model: one model version in depth: traffic, prediction and feature distributions
against the reference, drift, and data quality per feature."""

from __future__ import annotations

from typing import Any

from alert_rules.naming import alert_name
from exporter import catalog
from exporter.config.model import MlmonConfig
from dashboards import links, variables
from dashboards.common import DashboardSpec, build, min_samples_thresholds
from dashboards.drift import drift_section_panels, segment_panels
from dashboards.attributions import attributions_section
from dashboards.multiclass import class_drift_sections
from dashboards.layout import Section
from dashboards.panels import Panel, Query, Thresholds, heatmap, stat, table, timeseries, upper_thresholds
from dashboards.promql import bin_share, rate, reference_share, selector, sum_by, with_bin_labels
from dashboards.queries import predictions_rate, quality_kinds, quality_ratio

VERSION = {"model": '"$model"', "model_version": '"$version"'}
FEATURE = {**VERSION, "feature": '=~"$feature"'}


def distribution_table(title: str, description: str, now: str, reference: str, by: tuple[str, ...],
                       repeat: str | None = None) -> Panel:
    """Bins as rows in bin order, named by their `bin_label` (edges in feature units, as on the model
    page), the live share and the reference share side by side, and their difference. Both queries
    carry `bin_label` (promql.with_bin_labels), so the merge joins them row for row."""
    renames = {"Value #A": "now", "Value #B": "reference", "bin_label": "bin"}
    transformations = [
        {"id": "merge", "options": {}},
        # Sort on the bin index (00 underflow .. last overflow) before it is hidden: labels do not sort.
        {"id": "sortBy", "options": {"fields": {}, "sort": [{"field": "bin", "desc": False}]}},
        {"id": "organize", "options": {
            "excludeByName": {"Time": True, "__name__": True, "job": True, "instance": True, "model": True,
                              "model_version": True, "bin": True},
            "indexByName": {"feature": 0, "bin_label": 1, "Value #A": 2, "Value #B": 3},
            "renameByName": renames,
        }},
        {"id": "calculateField", "options": {
            "alias": "now - reference", "mode": "binary",
            "binary": {"left": "now", "operator": "-", "right": "reference"}, "replaceFields": False,
        }},
    ]
    gauge = {"id": "custom.cellOptions", "value": {"type": "gauge", "mode": "basic", "valueDisplayMode": "text"}}
    overrides = [{"matcher": {"id": "byName", "options": name}, "properties": [gauge, {"id": "max", "value": 1}]}
                 for name in ("now", "reference")]
    panel = table(title, description, "percentunit",
                  [Query(now, instant=True, table=True), Query(reference, instant=True, table=True)],
                  width=12, height=10, overrides=overrides, transformations=transformations)
    if repeat:
        panel.body.extraJson.update({"repeat": repeat, "repeatDirection": "h", "maxPerRow": 2})
    return panel


def traffic_section(config: MlmonConfig) -> Section:
    samples, sample_overrides = min_samples_thresholds(config)
    window_samples = selector(catalog.WINDOW_SAMPLES, window='"$window"', **VERSION)
    return Section("Traffic", [
        stat("Predictions per second", "Accepted predictions per second of this version.", "cps",
             [Query(predictions_rate((), **VERSION))]),
        stat("Samples in window", "Predictions in the selected window; below drift.min_samples (red) the "
             "exporter gives no drift verdict and no drift alert fires.", "short",
             [Query(f"sum({window_samples})", "{{model}}")], thresholds=samples, overrides=sample_overrides),
        stat("Reference rows", "Rows in the reference profile this version is compared with (or captured so far "
             "while capturing from live traffic).", "short",
             [Query(f"sum({selector(catalog.REFERENCE_SAMPLES, **VERSION)})")], graph=False),
        stat("Reference capturing", "Yes while the reference is still being captured from the first live samples "
             "of this version; drift is measured only once it is complete.", "bool_yes_no",
             [Query(f"max({selector(catalog.REFERENCE_CAPTURING, **VERSION)})")], graph=False),
        stat("Reference profiles in use", "Distinct reference profiles (reference_hash) the pods of this version "
             "judge drift against. Above 1 (red) the pods disagree, typically capture mode with replicas: the "
             "fleet drift rules then record nothing for this version and MLMonReferenceMismatch fires.", "short",
             [Query(f"count(count by (reference_hash) ({selector(catalog.MODEL_INFO, **VERSION)}))")],
             thresholds=Thresholds("green", ((2, "red"),)), graph=False,
             links=[links.runbook_link(config.alerting.runbook_url, alert_name("ReferenceMismatch"))]),
        timeseries("Predictions per second", "Accepted predictions per second, and feature keys per second that "
                   "mlmon.yaml does not declare (a sign that the model's input schema changed).", "cps",
                   [Query(predictions_rate((), **VERSION), "predictions"),
                    Query(sum_by((), rate(catalog.UNKNOWN_FEATURES, **VERSION)), "unknown feature keys")],
                   links=[links.runbook_link(config.alerting.runbook_url, alert_name("NoPredictions"))]),
        timeseries("Samples in window", "Predictions in the selected window over time; the line is "
                   "drift.min_samples.", "short", [Query(f"sum({window_samples})", "{{model}}")],
                   thresholds=samples, overrides=sample_overrides, show_thresholds=True, minimum=0),
    ])


def predictions_section() -> Section:
    now = with_bin_labels(bin_share(catalog.PREDICTION_BIN_COUNT, "$window", (), **VERSION),
                          catalog.PREDICTION_REFERENCE, (), **VERSION)
    reference = reference_share(catalog.PREDICTION_REFERENCE, (), **VERSION)
    return Section("Predictions", [
        distribution_table(
            "Prediction distribution: now vs reference",
            "Share of predictions in each reference bin over the selected window, next to the reference share. "
            "Bins are named by their edges, as on the model page: the first (< min) is below the reference "
            "minimum, the last (> max) above its maximum.", now, reference, ()),
        heatmap("Prediction bins over time", "Predictions per second falling in each reference bin (index and "
                "edges): a moving band is a shifting prediction distribution.", "cps",
                [Query(with_bin_labels(sum_by(("bin",), rate(catalog.PREDICTION_BIN_COUNT, **VERSION)),
                                       catalog.PREDICTION_REFERENCE, (), **VERSION), "{{bin}} {{bin_label}}")],
                width=12, height=10),
        timeseries("Mean prediction", "Mean of the numeric predictions (score or value) over the rate interval, "
                   "summed over replicas: a jump that the bins blur is what MLMonPredictionMeanAnomaly watches "
                   "against its own week. Empty for models that predict a class.", "short",
                   [Query(_mean_prediction(), "mean")], width=24, height=6),
    ])


def _mean_prediction() -> str:
    """(sum of positive - sum of negative magnitudes) / count, all as rates so replicas add up."""
    positive = sum_by((), rate(catalog.PREDICTION_VALUE_SUM, sign='"positive"', **VERSION))
    negative = sum_by((), rate(catalog.PREDICTION_VALUE_SUM, sign='"negative"', **VERSION))
    count = sum_by((), rate(catalog.PREDICTION_VALUES, **VERSION))
    return f"({positive} - ({negative} or vector(0))) / {count}"


def features_section() -> Section:
    now = with_bin_labels(bin_share(catalog.FEATURE_BIN, "$window", ("feature",), **FEATURE),
                          catalog.FEATURE_REFERENCE, ("feature",), **FEATURE)
    reference = reference_share(catalog.FEATURE_REFERENCE, ("feature",), **FEATURE)
    return Section("Feature distributions", [
        distribution_table(
            "$feature: now vs reference",
            "Share of this feature's values in each reference bin over the selected window, next to the reference "
            "share. Numeric bins are equal-mass reference quantiles, named by their edges in the feature's units "
            "([120, 250), as on the model page; < min underflow, > max overflow); categorical bins are the "
            "reference's top categories plus (other).", now, reference, ("feature",),
            repeat="feature"),
    ])


def data_quality_section(config: MlmonConfig) -> Section:
    base = config.alerting.runbook_url
    types = {f.type for m in config.models for f in m.features}
    panels = []
    for kind in quality_kinds(config):
        if kind.feature_types is not None and not kind.feature_types & types:
            continue
        panels.append(timeseries(
            f"Feature values: {kind.what}", f"Feature values {kind.what} per accepted prediction, by feature. The line is "
            f"the {kind.alert} alert threshold (alerting.data_quality, {kind.threshold:g}).", "percentunit",
            [Query(quality_ratio(kind, ("model", "model_version", "feature"), **VERSION), "{{feature}}")],
            width=8, thresholds=upper_thresholds(kind.threshold, kind.threshold * 5), show_thresholds=True,
            minimum=0, links=[links.runbook_link(base, kind.alert)],
        ))
    return Section("Data quality", panels)


def model(config: MlmonConfig) -> dict[str, Any]:
    return build(DashboardSpec(
        uid=links.MODEL_UID, title="Model",
        description="One model version in depth: traffic, prediction and feature distributions against the "
        "reference, drift and data quality.",
        sections=[traffic_section(config), Section("Drift", drift_section_panels(config, **VERSION)),
                  Section("Segments", segment_panels(config, **VERSION)),
                  attributions_section(config), predictions_section(), *class_drift_sections(config), features_section(),
                  data_quality_section(config)],
        variables=[variables.datasource(), variables.model(), variables.version(), variables.window(config),
                   variables.feature(), variables.segment()],
        links=links.model_page_links(config),
    ))
