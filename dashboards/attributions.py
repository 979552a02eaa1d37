"""The "What drives the model" row of MLMon / Model: importance now vs reference, share drift, nDCG,
and the drift impact ranking (docs/explainability.md). Fleet panels read alert_rules/attribution_rules.py;
nDCG and the top driver are per replica (a ranking needs a sort PromQL does not have)."""

from __future__ import annotations

from exporter import catalog
from exporter.config.attributions import AttributionsConfig
from exporter.config.model import MlmonConfig

from alert_rules.attribution_rules import impact_name, name
from alert_rules.naming import alert_name
from dashboards import links
from dashboards.layout import Section
from dashboards.panels import Query, Thresholds, bargauge, lower_thresholds, stat, timeseries, upper_thresholds
from dashboards.promql import selector

VERSION = {"model": '"$model"', "model_version": '"$version"'}
WINDOW = 3600  # a placeholder: "1h" in recorded names is replaced by $window below


def _windowed(record: str) -> str:
    """A recorded name with its window suffix as the $window variable (e.g. ...:share$window)."""
    return record.removesuffix("1h") + "$window"


def _settings(config: MlmonConfig) -> AttributionsConfig:
    """The thresholds to draw: the first model that counts attributions, else the defaults."""
    return next((m.attributions for m in config.models if m.attributions.enabled), AttributionsConfig())


def attributions_section(config: MlmonConfig) -> Section:
    settings = _settings(config)
    runbook = [links.runbook_link(config.alerting.runbook_url, alert_name("AttributionDrift"))]
    share = selector(_windowed(name("model_version_feature", "share", WINDOW)), **VERSION)
    reference = f"max by (feature) ({selector(catalog.FEATURE_IMPORTANCE_REFERENCE_SHARE, **VERSION)})"
    tv = selector(_windowed(name("model_version", "share_tv", WINDOW)), **VERSION)
    impact = selector(_windowed(impact_name(WINDOW)), **VERSION)
    ndcg = selector(catalog.ATTRIBUTION_NDCG, window='"$window"', **VERSION)
    top = selector(catalog.ATTRIBUTION_TOP_DRIVER_CHANGED, window='"$window"', **VERSION)
    return Section("What drives the model", [
        bargauge("Importance share: now vs reference",
                 "Each feature's share of the global importance (mean |attribution|) over the selected window, summed "
                 "over replicas, next to its share in the reference. Needs attributions with each record "
                 "(models[].attributions.enabled).", "percentunit",
                 [Query(f"sum by (feature) ({share})", "{{feature}} now"), Query(reference, "{{feature}} reference")],
                 maximum=1, width=12, height=10),
        bargauge("Drift impact ranking", "Reference importance share x drift score of each feature over the selected "
                 "window: the drift that matters most on top. Works without attributions when the reference importance "
                 "comes from the profile or the config (features[].importance).", "short",
                 [Query(f"sort_desc(sum by (feature) ({impact}))", "{{feature}}")], width=12, height=10),
        timeseries("Share drift (total variation)", "Total-variation distance of the live importance shares from the "
                   f"reference's; the line is attributions.share_tv_threshold ({settings.share_tv_threshold:g}) of "
                   "MLMonAttributionDrift.", "percentunit", [Query(f"max({tv})", "TV")],
                   thresholds=upper_thresholds(settings.share_tv_threshold, 1.0), show_thresholds=True,
                   minimum=0, maximum=1, links=runbook, width=8),
        timeseries("Importance ranking nDCG per replica", "nDCG of each replica's importance ranking against the "
                   "reference ranking, gains = reference importance (SageMaker Clarify's definition); below "
                   f"attributions.ndcg_threshold ({settings.ndcg_threshold:g}) the ranking moved.", "percentunit",
                   [Query(ndcg, "{{instance}}")], thresholds=lower_thresholds(settings.ndcg_threshold),
                   show_thresholds=True, minimum=0, maximum=1, links=runbook, width=8),
        stat("Top driver changed", "Yes when any replica's most important feature over the window is not the "
             "reference's.", "bool_yes_no", [Query(f"max({top})")],
             thresholds=Thresholds("green", ((1, "orange"),)), width=8, height=8, graph=False),
    ])
