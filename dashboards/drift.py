"""Drift panels (model, overview and versions dashboards).

Feature and prediction drift scores are the fleet's: the recording rules of
:mod:`alert_rules.fleet_rules` (bin counts summed over replicas, then scored), the series the
drift alerts judge, so a panel and an alert never disagree however many pods serve a model. The
exporter's own gauges are per pod; they stay for what PromQL cannot score (wasserstein), for the
p-value and verdict columns, and for the multivariate and drifted-share panels, which say "worst
pod". Scores are read for each model's own `drift.method`, the score its thresholds are written in.
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from alert_rules import fleet_rules, fleet_verdict
from alert_rules.drift_alerts import PSI_CRITICAL, PSI_WARNING
from alert_rules.naming import alert_name
from alert_rules.segment_quality import quality_segments, ratio_name, score_name
from exporter import catalog
from exporter.catalog import Metric
from exporter.config.model import MlmonConfig, ModelConfig, format_duration
from dashboards import links
from dashboards.common import shared_drift_thresholds
from dashboards.panels import (
    Panel, Query, Thresholds, heatmap, stat, table, threshold_overrides, timeseries, upper_thresholds,
)
from dashboards.promql import selector


SIDES = {catalog.FEATURE_DRIFT_SCORE: fleet_rules.FEATURES, catalog.PREDICTION_DRIFT_SCORE: fleet_rules.PREDICTION}


def alert_window(model: ModelConfig) -> str:
    """The window the drift alerts judge: the model's longest (alert_rules.drift_alerts)."""
    return format_duration(max(model.drift.windows))


def fleet_score(config: MlmonConfig, gauge: Metric, by: tuple[str, ...], window: str | None = None,
                **matchers: str) -> str:
    """`max by (by)` of the fleet drift score of each model's method, over `window` (e.g. "$window")
    or, when None, over each model's alert window: exactly what MLMonFeatureDrift/PredictionDrift
    compare with their thresholds. `gauge` names the side (feature or prediction drift score)."""
    side = SIDES[gauge]
    arms: dict[tuple[str, str], list[str]] = defaultdict(list)
    for model in config.models:
        arms[(model.drift.method, window or alert_window(model))].append(model.name)
    terms = []
    for (method, w), names in sorted(arms.items()):
        def only(series: str) -> str:  # PromQL allows a second matcher on `model`
            extra = f'model=~"{"|".join(names)}"'
            return series[:-1] + f",{extra}}}" if series.endswith("}") else series + f"{{{extra}}}"
        if method in fleet_rules.SCORES:
            terms.append(only(selector(f"{side.level}:{side.stem}_{method}:{w}", **matchers)))
        else:  # no PromQL form (wasserstein): the worst pod's gauge, as the alert falls back to
            gauge_selector = only(selector(gauge, method=f'"{method}"', window=f'"{w}"', **matchers))
            terms.append(f"max by ({side.by}) ({gauge_selector})")
    return f"max by ({', '.join(by)}) ({' or '.join(terms)})"


# The fleet verdict's grades (alert_rules.fleet_verdict): one colour each, the alerts' severities.
GRADE_MAPPINGS = [{"type": "value", "options": {
    "0": {"text": "not drifted", "color": "green", "index": 0},
    "1": {"text": "drifted (info)", "color": "blue", "index": 1},
    "2": {"text": "warning", "color": "orange", "index": 2},
    "3": {"text": "critical", "color": "red", "index": 3}}}]
GRADE_PROPERTIES = [
    {"id": "mappings", "value": GRADE_MAPPINGS},
    {"id": "thresholds", "value": Thresholds("green", ((1, "blue"), (2, "orange"), (3, "red"))).to_json()},
    {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}},
]


def grade_series(side: fleet_rules.Side, window: str) -> str:
    """The recorded fleet grade over `window` (e.g. "$window"): 0 not drifted, 1 info, 2 warning, 3 critical."""
    return fleet_verdict.names(side, window).grade


fleet_verdict_share = fleet_verdict.drifted_share_name


def methods_text(config: MlmonConfig) -> str:
    methods = sorted({m.drift.method for m in config.models})
    return "/".join(m.upper() if m in ("psi", "js", "kl", "ks") else m for m in methods)


def drifted_share_thresholds(config: MlmonConfig) -> tuple[Thresholds, list[dict[str, Any]]]:
    per_model = {m.name: Thresholds("green", ((m.drift.drifted_share, "red"),)) for m in config.models}
    default = per_model[config.models[0].name]
    return default, threshold_overrides(per_model, default)


def multivariate_thresholds(config: MlmonConfig) -> tuple[Thresholds, list[dict[str, Any]]]:
    """Multivariate drift is a PSI whatever the model's method: the MultivariateDrift alert uses the
    model's own thresholds when its method is PSI, the PSI field defaults otherwise."""
    per_model = {
        m.name: upper_thresholds(m.drift.warning, m.drift.critical) if m.drift.method == "psi"
        else upper_thresholds(PSI_WARNING, PSI_CRITICAL)
        for m in config.models
    }
    default = per_model[config.models[0].name]
    return default, threshold_overrides(per_model, default)


def runbook(config: MlmonConfig, stem: str) -> list[dict[str, Any]]:
    return [links.runbook_link(config.alerting.runbook_url, alert_name(stem))]


def feature_drift_table(config: MlmonConfig, **version: str) -> Panel:
    thresholds, _ = shared_drift_thresholds(config)
    window = {**version, "window": '"$window"'}
    queries = [
        Query(fleet_score(config, catalog.FEATURE_DRIFT_SCORE, ("feature",), "$window", **version),
              instant=True, table=True),
        Query(f"min by (feature) ({selector(catalog.FEATURE_DRIFT_P_VALUE, **window)})", instant=True, table=True),
        Query(f"sum by (feature) ({selector(catalog.FEATURE_WINDOW_SAMPLES, **window)})", instant=True, table=True),
        Query(f"max by (feature) ({selector(catalog.FEATURE_DRIFT_DETECTED, **window)})", instant=True, table=True),
        Query(f"max by (feature) ({selector(grade_series(fleet_rules.FEATURES, '$window'), **version)})",
              instant=True, table=True),
    ]
    renames = {"Value #A": "score", "Value #B": "p-value", "Value #C": "samples", "Value #D": "drifted (a pod)",
               "Value #E": "verdict"}
    overrides = [
        {"matcher": {"id": "byName", "options": "score"}, "properties": [
            {"id": "custom.cellOptions", "value": {"type": "color-background", "mode": "basic"}},
            {"id": "decimals", "value": 3}]},
        {"matcher": {"id": "byName", "options": "p-value"}, "properties": [
            {"id": "unit", "value": "sci"}, {"id": "thresholds", "value": Thresholds("green").to_json()}]},
        {"matcher": {"id": "byName", "options": "samples"}, "properties": [
            {"id": "unit", "value": "short"}, {"id": "thresholds", "value": Thresholds("green").to_json()}]},
        {"matcher": {"id": "byName", "options": "verdict"}, "properties": GRADE_PROPERTIES},
        {"matcher": {"id": "byName", "options": "drifted (a pod)"}, "properties": [
            {"id": "unit", "value": "bool_yes_no"},
            {"id": "thresholds", "value": Thresholds("green", ((1, "red"),)).to_json()},
            {"id": "custom.cellOptions", "value": {"type": "color-text"}}]},
    ]
    # Each feature opens its card on the exporter's model page (with links.exporter_url set).
    page = links.model_page_data_link(config, "${model}", "${version}", links.page_window(config),
                                       "#feature-${__data.fields.feature}")
    if page:
        overrides.append({"matcher": {"id": "byName", "options": "feature"}, "properties": [{"id": "links", "value": page}]})
    transformations = [
        {"id": "merge", "options": {}},
        {"id": "organize", "options": {"excludeByName": {"Time": True},
                                       "indexByName": {"feature": 0, **{v: i + 1 for i, v in enumerate(renames.values())}},
                                       "renameByName": renames}},
    ]
    return table(
        "Feature drift", f"Every feature's fleet drift score ({methods_text(config)}, the configured drift.method; "
        "bin counts summed over every pod, the series the drift alerts judge) over the selected window, worst first, "
        "coloured by drift.warning/critical; the samples behind it (all pods); and, per pod, the lowest p-value of "
        "its test (KS numeric, chi-square categorical). verdict is the fleet verdict the alerts fire on "
        "(docs/drift.md: samples >= min_samples, the test rejects at alpha and score >= min_effect; graded "
        "drifted (info) below drift.warning, warning, critical); 'drifted (a pod)' is one pod's own verdict on its "
        "own traffic, for debugging.", "none", queries, width=12, height=10, thresholds=thresholds,
        sort_by="score", overrides=overrides, transformations=transformations, links=runbook(config, "FeatureDrift"),
    )


def drift_section_panels(config: MlmonConfig, **version: str) -> list[Panel]:
    thresholds, overrides = shared_drift_thresholds(config)
    share, share_overrides = drifted_share_thresholds(config)
    multivariate, multivariate_overrides = multivariate_thresholds(config)
    window = {**version, "window": '"$window"'}
    return [
        stat("Drifted features", "Fleet-wide share of the features (with enough samples for a verdict) whose fleet "
             "verdict is drifted in the window (any grade); red from drift.drifted_share, where the whole dataset "
             "counts as drifted (what MLMonDriftedFeatureShare judges).", "percentunit",
             [Query(f"max by (model) ({selector(fleet_verdict_share('$window'), **version)})", "{{model}}")],
             thresholds=share, overrides=share_overrides, links=runbook(config, "DriftedFeatureShare")),
        stat("Prediction drift", "Fleet drift of the model's predictions against the reference predictions "
             f"({methods_text(config)}, bins summed over every pod: what MLMonPredictionDrift judges); colours are "
             "drift.warning/critical.", "none",
             [Query(fleet_score(config, catalog.PREDICTION_DRIFT_SCORE, ("model",), "$window", **version),
                    "{{model}}")], thresholds=thresholds, overrides=overrides, decimals=3,
             links=runbook(config, "PredictionDrift")),
        stat("Multivariate drift", "Worst pod: PSI of the PCA reconstruction error against the reference's, the "
             "highest over the pods: joint drift that no single feature shows (numeric features only); colours are "
             "the MultivariateDrift alert thresholds.",
             "none", [Query(f"max by (model) ({selector(catalog.MULTIVARIATE_DRIFT_SCORE, **window)})", "{{model}}")],
             decimals=3, thresholds=multivariate, overrides=multivariate_overrides,
             links=runbook(config, "MultivariateDrift")),
        stat("Dataset drift", "Worst pod: yes when any pod's drifted share reached drift.drifted_share in the "
             "window.", "bool_yes_no",
             [Query(f"max by (model) ({selector(catalog.DATASET_DRIFT, **window)})", "{{model}}")],
             thresholds=Thresholds("green", ((1, "red"),)), graph=False),
        feature_drift_table(config, **version),
        heatmap("Feature drift over time", "Fleet drift score of every feature over time (rows: features); hot rows "
                "are drifting features.", "none",
                [Query(fleet_score(config, catalog.FEATURE_DRIFT_SCORE, ("feature",), "$window", **version),
                       "{{feature}}")], width=12, height=10,
                links=runbook(config, "FeatureDrift")),
        timeseries("Feature drift score", "Fleet drift score per feature over the selected window (bins summed over "
                   "every pod); the bands are drift.warning and drift.critical, the alert thresholds, and at the "
                   "longest window this is the series MLMonFeatureDrift judges.", "none",
                   [Query(fleet_score(config, catalog.FEATURE_DRIFT_SCORE, ("model", "feature"), "$window", **version),
                          "{{model}} {{feature}}")],
                   thresholds=thresholds, overrides=overrides, show_thresholds=True, minimum=0,
                   links=runbook(config, "FeatureDrift")),
        timeseries("Multivariate drift", "Worst pod: joint drift score over time (left axis) and the records with "
                   "every numeric feature present behind it (right axis), the highest over the pods.", "none",
                   [Query(f"max by (model) ({selector(catalog.MULTIVARIATE_DRIFT_SCORE, **window)})", "{{model}} score"),
                    Query(f"max by (model) ({selector(catalog.MULTIVARIATE_WINDOW_SAMPLES, **window)})",
                          "{{model}} samples")],
                   minimum=0, thresholds=multivariate, show_thresholds=True, links=runbook(config, "MultivariateDrift"),
                   overrides=[*multivariate_overrides,
                              {"matcher": {"id": "byRegexp", "options": ".* samples$"}, "properties": [
                                  {"id": "unit", "value": "short"}, {"id": "custom.axisPlacement", "value": "right"},
                                  {"id": "custom.thresholdsStyle", "value": {"mode": "off"}}]}]),
    ]


def _also(series: str, extra: str) -> str:
    """A selector with one more matcher (PromQL allows a second one on `model`)."""
    return series[:-1] + f",{extra}}}" if series.endswith("}") else series + f"{{{extra}}}"


def segment_score(config: MlmonConfig, **matchers: str) -> str:
    """The fleet drift score per segment value of each model's method, at the window its segment rules are
    recorded for (the longest); the worst pod's gauge where PromQL cannot score (wasserstein)."""
    side, terms = fleet_rules.SEGMENTS, []
    for model in (m for m in config.models if any(s.drift for s in m.segments)):
        method, w, only = model.drift.method, alert_window(model), f'model="{model.name}"'
        if method in fleet_rules.SCORES:
            terms.append(_also(selector(f"{side.level}:{side.stem}_{method}:{w}", **matchers), only))
        else:
            gauge = _also(selector(catalog.SEGMENT_FEATURE_DRIFT_SCORE, window=f'"{w}"', **matchers), only)
            terms.append(f"max by ({side.by}) ({gauge})")
    return " or ".join(terms) or "vector(0) unless vector(0)"


def segment_panels(config: MlmonConfig, **version: str) -> list[Panel]:
    """Drift and quality per segment value ($segment), fleet-wide: "the model degraded for country=NG"."""
    thresholds, overrides = shared_drift_thresholds(config)
    chosen = {**version, "segment": '=~"$segment"'}
    quality = [_also(selector((score_name if m.task == "regression" else ratio_name)(
        format_duration(max(m.quality_windows))), **chosen), f'model="{m.name}"') for m in config.models if quality_segments(m)]
    return [
        timeseries("Feature drift per segment", "Fleet drift score of each watched feature within each segment value "
                   "($segment; segments with drift: true, docs/drift.md \"Drift per segment\"): bin counts of that "
                   "value summed over every pod, scored against the whole model's reference at the longest window. "
                   "Bands are drift.warning and drift.critical.", "none",
                   [Query(f"max by (attribute, segment, feature) ({segment_score(config, **chosen)})",
                          "{{attribute}}={{segment}} {{feature}}")],
                   thresholds=thresholds, overrides=overrides, show_thresholds=True, minimum=0,
                   links=runbook(config, "FeatureDrift")),
        timeseries("Quality per segment", "Fleet realised quality of each segment value ($segment), from the "
                   "per-segment counters summed over every pod at the longest quality window (docs/quality.md, "
                   "\"Quality per segment value\"): binary models with segments: accuracy, precision, recall, F1 and "
                   "false-positive rate (0-1); multiclass (segments with quality: true): accuracy and macro F1 (0-1); "
                   "regression (quality: true): MAE, RMSE, bias and RMSLE in the label's unit.", "none",
                   [Query(f"max by (attribute, segment, metric) ({' or '.join(quality) or 'vector(0) unless vector(0)'})",
                          "{{attribute}}={{segment}} {{metric}}")]),
    ]


def worst_drift(config: MlmonConfig, by: tuple[str, ...], window: str | None = None, **matchers: str) -> str:
    """The highest fleet feature drift score per `by` group, over `window` or each model's alert window."""
    return fleet_score(config, catalog.FEATURE_DRIFT_SCORE, by, window, **matchers)
