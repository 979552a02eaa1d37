"""MLMon / Versions: two versions of one model side by side, with annotations where a version
first appeared (a rollout, a canary, a rollback)."""

from __future__ import annotations

from typing import Any

from alert_rules.naming import alert_name
from exporter import catalog
from exporter.config.model import MlmonConfig
from dashboards import links, variables
from dashboards.common import DashboardSpec, build, prometheus_annotation, shared_drift_thresholds
from dashboards.drift import methods_text, worst_drift
from dashboards.layout import Section
from dashboards.model import distribution_table
from dashboards.panels import Panel, Query, stat, timeseries, upper_thresholds
from dashboards.promql import bin_share, rate, reference_share, selector, sum_by, with_bin_labels
from dashboards.queries import predictions_rate, quality_kinds, quality_ratio

MODEL = {"model": '"$model"'}
SIDES = (("A", "version_a"), ("B", "version_b"))
# How long after a version's first series the "first seen" annotation region lasts.
FIRST_SEEN = "2m"


def _side(config: MlmonConfig, name: str, variable: str) -> list[Panel]:
    version = {**MODEL, "model_version": f'"${variable}"'}
    missing = quality_kinds(config)[0]
    drift, drift_overrides = shared_drift_thresholds(config)
    return [
        stat(f"Version {name}: ${variable} predictions per second", f"Accepted predictions per second of version "
             f"{name}.", "cps", [Query(predictions_rate((), **version))], width=12),
        distribution_table(
            f"Version {name}: prediction distribution vs reference",
            f"Share of version {name}'s predictions in each reference bin over the selected window, next to the "
            "reference share; bins named by their edges.",
            with_bin_labels(bin_share(catalog.PREDICTION_BIN_COUNT, "$window", (), **version),
                            catalog.PREDICTION_REFERENCE, (), **version),
            reference_share(catalog.PREDICTION_REFERENCE, (), **version), ()),
        timeseries(f"Version {name}: worst feature drift", f"Highest fleet feature drift score of version {name} over the "
                   f"selected window ({methods_text(config)}); bands: drift.warning and drift.critical.", "none",
                   [Query(worst_drift(config, ("model",), "$window", **version), "{{model}}")],
                   thresholds=drift, overrides=drift_overrides, show_thresholds=True, minimum=0,
                   links=[links.runbook_link(config.alerting.runbook_url, alert_name("FeatureDrift"))]),
        timeseries(f"Version {name}: feature values {missing.what}", f"Worst feature of version {name}: values "
                   f"{missing.what} per prediction (line: the {missing.alert} threshold).", "percentunit",
                   [Query(f"max({quality_ratio(missing, ('model', 'model_version', 'feature'), **version)})",
                          "worst feature")],
                   thresholds=upper_thresholds(missing.threshold, missing.threshold * 5), show_thresholds=True,
                   minimum=0, links=[links.runbook_link(config.alerting.runbook_url, missing.alert)]),
    ]


def versions(config: MlmonConfig) -> dict[str, Any]:
    share = (f"{predictions_rate(('model_version',), **MODEL)} / scalar({predictions_rate((), **MODEL)})")
    split = Section("Traffic split", [
        timeseries("Traffic share by version", "Share of the model's accepted predictions served by each version "
                   "(stacked): a canary or a rollout shows as a moving split.", "percentunit",
                   [Query(share, "{{model_version}}")], stacked=True, minimum=0, maximum=1, width=16),
        timeseries("Evicted versions", "Versions dropped per second to stay within "
                   f"max_versions_per_model ({config.exporter.max_versions_per_model}).", "cps",
                   [Query(sum_by(("model",), rate(catalog.VERSIONS_EVICTED, **MODEL)), "{{model}}")], width=8,
                   links=[links.runbook_link(config.alerting.runbook_url, alert_name("ModelVersionsEvicted"))]),
    ])
    panels_a, panels_b = (_side(config, name, variable) for name, variable in SIDES)
    # Interleave so each grid line holds version A on the left and version B on the right.
    side_by_side = [panel for pair in zip(panels_a, panels_b) for panel in pair]
    info = selector(catalog.MODEL_INFO, **MODEL)
    first_seen = prometheus_annotation(
        "Version first seen", f"{info} unless {info} offset {FIRST_SEEN}", "Version {{model_version}} first seen",
        "Model {{model}} version {{model_version}} started reporting (reference {{reference_hash}}).",
    )
    return build(DashboardSpec(
        uid=links.VERSIONS_UID, title="Versions",
        description="Two versions of one model side by side: traffic split, prediction distributions, drift and "
        "data quality, with annotations where a version first appeared.",
        sections=[split, Section("Version A | Version B", side_by_side)],
        variables=[variables.datasource(), variables.model(),
                   variables.version("version_a", "Version A"), variables.version("version_b", "Version B"),
                   variables.window(config)],
        annotations=[first_seen],
        links=[*links.model_page_links(config, "${version_a}", title="Model page: version A"),
               *links.model_page_links(config, "${version_b}", title="Model page: version B")],
    ))
