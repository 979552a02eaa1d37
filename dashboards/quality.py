"""MLMon / Quality & fairness: realised performance with Wilson bands and the business thresholds of
mlmon.yaml, estimated vs realised performance, label coverage and delay, segments and bias."""

from __future__ import annotations

from typing import Any

from exporter import catalog
from exporter.config.model import MetricBound, MlmonConfig, parse_duration
from alert_rules.naming import alert_name
from dashboards import links, variables
from dashboards.common import DashboardSpec, build
from dashboards.layout import Section
from dashboards.multiclass import estimated_section
from dashboards.panels import Panel, Query, Thresholds, stat, timeseries
from alert_rules.quality_rules import ratio_name
from dashboards.promql import increase, rate, selector, sum_by

MODEL = {"model": '"$model"'}
VERSION = {**MODEL, "model_version": '"$version"'}
WINDOW = {**VERSION, "window": '"$window"'}
LABEL_DELAY_QUANTILES = (0.5, 0.9, 0.99)
BAND = {"matcher": {"id": "byRegexp", "options": ".* (lower|upper)$"}, "properties": [
    {"id": "custom.lineStyle", "value": {"dash": [4, 4], "fill": "dash"}},
    {"id": "custom.lineWidth", "value": 1},
]}


def bound_thresholds(bound: MetricBound) -> Thresholds:
    """Red outside [min, max], green inside: the colours of the quality alert's condition."""
    if bound.min is not None and bound.max is not None:
        return Thresholds("red", ((bound.min, "green"), (bound.max, "red")))
    if bound.min is not None:
        return Thresholds("red", ((bound.min, "green"),))
    assert bound.max is not None
    return Thresholds("green", ((bound.max, "red"),))


def business_thresholds_panel(config: MlmonConfig) -> Panel:
    """Each configured (model, metric) with its own threshold colours, next to the exporter's
    mlmon_quality_threshold series (the same numbers, drawn as dashed lines)."""
    overrides = [
        {"matcher": {"id": "byName", "options": f"{model.name} {metric}"},
         "properties": [{"id": "thresholds", "value": bound_thresholds(bound).to_json()},
                        {"id": "custom.thresholdsStyle", "value": {"mode": "line+area"}}]}
        for model in config.models for metric, bound in sorted(model.quality.thresholds.items())
    ]
    overrides.append({"matcher": {"id": "byRegexp", "options": ".* (min|max)$"}, "properties": [
        {"id": "custom.lineStyle", "value": {"dash": [10, 10], "fill": "dash"}}, {"id": "color",
                                                                                  "value": {"mode": "fixed", "fixedColor": "red"}}]})
    configured = sorted({metric for m in config.models for metric in m.quality.thresholds})
    metric_matcher = f'=~"{"|".join(configured)}"' if configured else '=~".+"'
    realised = (f"{selector(catalog.QUALITY_RATIO, metric=metric_matcher, **WINDOW)} or "
                f"{selector(catalog.QUALITY_SCORE, metric=metric_matcher, **WINDOW)}")
    return timeseries(
        "Quality vs business thresholds", "Realised quality of the metrics that mlmon.yaml sets thresholds on "
        "(quality.thresholds), coloured red outside their min/max; dashed lines are the thresholds the exporter "
        "reports (mlmon_quality_threshold), the same numbers the quality alerts use.", "short",
        [Query(realised, "{{model}} {{metric}}"),
         Query(selector(catalog.QUALITY_THRESHOLD, **MODEL), "{{model}} {{metric}} {{bound}}")],
        width=24, overrides=overrides,
        links=[links.runbook_link(config.alerting.runbook_url, alert_name("ModelQualityOutOfBounds"))],
    )


def bias_panel(config: MlmonConfig) -> Panel:
    """Differences are fine within ±max_difference; the disparate impact ratio from its minimum
    up (the four-fifths rule by default): the bounds of the BiasOutOfBounds alert."""
    bias = config.alerting.bias
    differences = Thresholds("red", ((-bias.max_difference, "green"), (bias.max_difference, "red")))
    impact = Thresholds("red", ((bias.disparate_impact_min, "green"),))
    overrides = [{"matcher": {"id": "byRegexp", "options": ".* disparate_impact_ratio$"},
                  "properties": [{"id": "thresholds", "value": impact.to_json()}]}]
    has_segments = any(m.segments for m in config.models)
    return timeseries(
        "Bias measures", "Per attribute: demographic parity, equal opportunity and equalized odds differences (0 is "
        f"parity; red beyond ±{bias.max_difference:g}) and the disparate impact ratio (red below "
        f"{bias.disparate_impact_min:g}, the four-fifths rule): the bounds of the BiasOutOfBounds alert.", "short",
        [Query(selector(catalog.BIAS_RATIO, **WINDOW), "{{attribute}} {{metric}}")],
        thresholds=differences, show_thresholds=True, overrides=overrides,
        links=[links.runbook_link(config.alerting.runbook_url, alert_name("BiasOutOfBounds"))] if has_segments else None,
    )


def fleet_ratio(gauge: catalog.Metric, **matchers: str) -> str:
    """The fleet's ratio from the quality recording rules (counts summed over pods, then divided:
    alert_rules.quality_rules), or for what they do not record (f1, roc_auc, multiclass) the
    highest pod's gauge."""
    fleet = selector(ratio_name(gauge, "$window"), **VERSION, **matchers)
    pods = f"max by (model, model_version, metric) ({selector(gauge, **WINDOW, **matchers)})"
    return f"{fleet} or {pods}"


def quality(config: MlmonConfig) -> dict[str, Any]:
    qa = config.alerting.quality
    base = config.alerting.runbook_url
    labelled_thresholds = (Thresholds("red", ((qa.min_labelled_ratio, "green"),)) if qa.min_labelled_ratio
                           else Thresholds("green"))
    delay_thresholds = (Thresholds("green", ((float(parse_duration(qa.max_label_delay)), "red"),)) if qa.max_label_delay
                        else Thresholds("green"))
    delay_buckets = f"{catalog.LABEL_DELAY.name}_bucket"  # histogram series: <name>_bucket
    labels = Section("Labels", [
        stat("Labelled share", "Share of this version's predictions scored against a label so far. Quality "
             "panels stay empty until labels arrive.", "percentunit",
             [Query(f"max({selector(catalog.LABELLED_RATIO, **VERSION)})")], thresholds=labelled_thresholds,
             links=[links.runbook_link(base, alert_name("LabelledRatioLow"))] if qa.min_labelled_ratio else None),
        stat("Labelled in window", "Labelled predictions in the selected window (by label arrival): the N "
             "behind every quality number below.", "short",
             [Query(f"sum({selector(catalog.QUALITY_SAMPLES, **WINDOW)})")]),
        stat("Waiting for labels", "Predictions kept by id until their label arrives (bounded by "
             f"exporter.max_pending_predictions = {config.exporter.max_pending_predictions}).", "short",
             [Query(f"sum({selector(catalog.LABEL_STORE_PENDING, **MODEL)})")]),
        stat("Evicted unlabelled", "Predictions dropped before their label arrived, in the time range (capacity "
             "or label_ttl); their labels will count as unknown_id.", "short",
             [Query(f"sum({increase(catalog.LABEL_STORE_EVICTIONS, '$__range', **MODEL)})")],
             thresholds=Thresholds("green", ((1, "orange"),)),
             links=[links.runbook_link(base, alert_name("LabelStoreEvictions"))]),
        timeseries("Label outcomes", "Labels per second by outcome: joined to a pending prediction, inline with "
                   "the prediction, unknown id, duplicate or invalid.", "cps",
                   [Query(sum_by(("outcome",), rate(catalog.LABEL_OUTCOMES, **MODEL)), "{{outcome}}")]),
        timeseries("Label delay", "Time from a prediction to its label, quantiles over labels arriving in the "
                   "rate interval.", "s",
                   [Query(f"histogram_quantile({q}, {sum_by(('le',), rate(delay_buckets, **VERSION))})", f"p{q * 100:g}")
                    for q in LABEL_DELAY_QUANTILES], thresholds=delay_thresholds,
                   show_thresholds=qa.max_label_delay is not None,
                   links=[links.runbook_link(base, alert_name("LabelDelayHigh"))] if qa.max_label_delay else None),
    ])
    performance = Section("Performance", [
        timeseries("Quality ratios with 95% Wilson intervals", "Realised 0-1 quality metrics of the whole fleet "
                   "over the selected window (confusion counts summed over every pod, then divided: accuracy, "
                   "precision, recall, ...), with the lower and upper bounds of their Wilson intervals dashed: a wide "
                   "band means too few labels to conclude. Metrics the fleet rules do not record (f1, roc_auc, "
                   "multiclass) show the highest pod.", "percentunit",
                   [Query(fleet_ratio(catalog.QUALITY_RATIO), "{{metric}}"),
                    Query(fleet_ratio(catalog.QUALITY_LOWER), "{{metric}} lower"),
                    Query(fleet_ratio(catalog.QUALITY_UPPER), "{{metric}} upper")],
                   minimum=0, maximum=1, overrides=[BAND]),
        timeseries("Quality scores", "Realised quality that is not a 0-1 ratio over the selected window: Brier "
                   "score and log loss (binary), MAE, RMSE, MAPE, bias and R2 (regression), expected cost.", "short",
                   [Query(selector(catalog.QUALITY_SCORE, **WINDOW), "{{metric}}")]),
        *([business_thresholds_panel(config)] if any(m.quality.thresholds for m in config.models) else []),
        timeseries("Estimated vs realised", "Performance estimated from calibrated scores of every prediction (no "
                   "labels needed) against the realised performance of the labelled ones: estimates lead when "
                   "labels come late; a gap means the scores are no longer calibrated.", "percentunit",
                   [Query(fleet_ratio(catalog.ESTIMATED_QUALITY), "{{metric}} estimated"),
                    Query(fleet_ratio(catalog.QUALITY_RATIO, metric='=~"accuracy|precision|recall|f1|roc_auc"'),
                          "{{metric}} realised")], minimum=0, maximum=1),
        timeseries("Confusion matrix", "Labelled predictions per second by outcome at the decision threshold "
                   "(binary): tp, fp, tn, fn.", "cps",
                   [Query(sum_by(("outcome",), rate(catalog.CONFUSION, **VERSION)), "{{outcome}}")], stacked=True),
    ])
    fairness = Section("Fairness", [
        timeseries("Rates per segment", "Per segment of each sensitive attribute (segments in mlmon.yaml): selection "
                   "rate over all predictions, true/false positive rate and precision over labelled ones.",
                   "percentunit",
                   [Query(selector(catalog.SEGMENT_QUALITY, **WINDOW), "{{attribute}}={{segment}} {{metric}}")],
                   minimum=0, maximum=1),
        bias_panel(config),
        timeseries("Smallest segment behind each bias measure", "Samples in the smallest segment a bias measure "
                   "rests on: below a few hundred, differences are mostly noise.", "short",
                   [Query(selector(catalog.BIAS_SAMPLES, **WINDOW), "{{attribute}} {{metric}}")]),
    ])
    return build(DashboardSpec(
        uid=links.QUALITY_UID, title="Quality & fairness",
        description="Model quality once labels arrive: realised performance with Wilson intervals and business "
        "thresholds, estimated vs realised performance, label coverage and delay, per-segment rates and bias.",
        sections=[labels, performance, estimated_section(config), fairness],
        variables=[variables.datasource(), variables.model(), variables.version(),
                   variables.window(config, "quality")],
        # The page's quality section (its window variable is a quality window, not a drift window).
        links=links.model_page_links(config, window=False, anchor="#quality"),
    ))
