"""Alerts on model quality (labels), estimated quality (no labels yet), labels themselves, and bias.

Thresholds come from each model's `quality.thresholds` and the `alerting.quality` / `alerting.bias`
sections. Every verdict needs a minimum sample size in its window, as p-values and ratios from a
handful of labels flag noise. Quality gauges are per exporter pod, so alerts carry `instance`.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.stats.bias import BIAS_METRICS
from exporter.config.model import MlmonConfig, ModelConfig, format_duration, parse_duration
from exporter.stats.estimation import ESTIMATED_METRICS
from exporter.stats.quality_math import PROPORTIONS

from alert_rules.factory import BIAS, EXPORTER, QUALITY, AlertFactory
from alert_rules.naming import selector
from alert_rules.rules import AlertRule

# Quality metrics exported on mlmon_quality_score (not 0-1 ratios; see its HELP in the catalog).
SCORE_METRICS = frozenset({"brier", "log_loss", "expected_cost", "mae", "rmse", "mape", "bias", "r2", "msle", "rmsle"})
# Metrics the exporter estimates without labels, per task, and the gauge that holds each estimate.
ESTIMATED_BY_TASK = {
    "binary_classification": {m: c.ESTIMATED_QUALITY for m in ESTIMATED_METRICS},
    "multiclass_classification": {m: c.ESTIMATED_QUALITY for m in (
        "accuracy", "macro_precision", "macro_recall", "macro_f1", "macro_specificity", "macro_roc_auc")},
    "regression": {"mae": c.ESTIMATED_QUALITY_SCORE, "rmse": c.ESTIMATED_QUALITY_SCORE},
}
DELAY_QUANTILE = 0.9


def quality_window(model: ModelConfig) -> str:
    """Alerts judge the longest quality window: the most labels, the least noise."""
    return format_duration(max(model.quality_windows))


def quality_alerts(alert: AlertFactory, config: MlmonConfig, model: ModelConfig) -> list[AlertRule]:
    qa = config.alerting.quality
    window = quality_window(model)
    samples = f"{c.QUALITY_SAMPLES.name}{selector(model=model.name, window=window)} >= {qa.min_samples}"
    out = []
    for metric, bound in sorted(model.quality.thresholds.items()):
        family = c.QUALITY_SCORE if metric in SCORE_METRICS else c.QUALITY_RATIO
        sel = selector(model=model.name, window=window, metric=metric)
        for limit, op, side, interval in ((bound.min, "<", "at or above", c.QUALITY_UPPER),
                                          (bound.max, ">", "at or below", c.QUALITY_LOWER)):
            if limit is None:
                continue
            guard = f"\nand ignoring (metric)\n{samples}"
            out.append(alert(
                "ModelQualityOutOfBounds", f"{family.name}{sel} {op} {limit:g}{guard}",
                for_=qa.for_, severity="warning", category=QUALITY, labels={"metric": metric},
                summary="Model quality is outside its configured bounds.",
                description="{{ $labels.metric }} of model {{ $labels.model }} version {{ $labels.model_version }} "
                "is {{ $value | printf \"%.3g\" }} over the last {{ $labels.window }} "
                f"(it must stay {side} {limit:g}).",
            ))
            if metric in PROPORTIONS:
                # Critical only when the whole Wilson 95% interval is past the bound: not noise.
                out.append(alert(
                    "ModelQualityOutOfBounds", f"{interval.name}{sel} {op} {limit:g}{guard}",
                    for_=qa.for_, severity="critical", category=QUALITY, labels={"metric": metric},
                    summary="Model quality is outside its configured bounds.",
                    description="Even the 95% interval of {{ $labels.metric }} of model {{ $labels.model }} version "
                    "{{ $labels.model_version }} over the last {{ $labels.window }} is past the bound: "
                    f"its nearest end is {{{{ $value | printf \"%.3g\" }}}} (it must stay {side} {limit:g}).",
                ))
            estimated = ESTIMATED_BY_TASK[model.task].get(metric)
            if estimated is not None:
                predicted = (f"sum by (model, model_version) (increase({c.PREDICTIONS.name}"
                             f"{selector(model=model.name)}[{window}])) >= {model.drift.min_samples}")
                source = "the reference's error per prediction range" if model.task == "regression" else \
                    "calibrated scores"
                out.append(alert(
                    "EstimatedQualityOutOfBounds",
                    f"{estimated.name}{sel} {op} {limit:g}\nand on (model, model_version)\n{predicted}",
                    for_=qa.for_, severity="warning", category=QUALITY, labels={"metric": metric},
                    summary="Estimated model quality is outside its configured bounds.",
                    description=f"Estimated from {source} (no labels needed), {{{{ $labels.metric }}}} of model "
                    "{{ $labels.model }} version {{ $labels.model_version }} is {{ $value | printf \"%.3g\" }} over "
                    f"the last {{{{ $labels.window }}}} (it must stay {side} {limit:g}).",
                ))
    out += label_alerts(alert, config, model)
    out += bias_alerts(alert, config, model)
    return out


def label_alerts(alert: AlertFactory, config: MlmonConfig, model: ModelConfig) -> list[AlertRule]:
    qa = config.alerting.quality
    m = selector(model=model.name)
    out = [alert(
        "LabelStoreEvictions",
        f"sum by (model, reason) (increase({c.LABEL_STORE_EVICTIONS.name}{m}[1h])) > 0",
        for_="15m", severity="warning", category=EXPORTER, versioned=False,
        summary="Predictions waiting for labels are being dropped.",
        description="{{ $value | humanize }} pending predictions of model {{ $labels.model }} were dropped "
        "unlabelled in the last hour (reason {{ $labels.reason }}); quality is measured on fewer labels.",
    )]
    if qa.min_labelled_ratio is not None:
        out.append(alert(
            "LabelledRatioLow", f"{c.LABELLED_RATIO.name}{m} < {qa.min_labelled_ratio:g}",
            for_="1h", severity="warning", category=QUALITY,
            summary="Too few predictions receive a label.",
            description="Only {{ $value | humanizePercentage }} of the predictions of model {{ $labels.model }} "
            f"version {{{{ $labels.model_version }}}} have a label (expected at least {qa.min_labelled_ratio:.0%}).",
        ))
    if qa.max_label_delay is not None:
        bucket = f"{c.LABEL_DELAY.name}_bucket"
        out.append(alert(
            "LabelDelayHigh",
            f"histogram_quantile({DELAY_QUANTILE:g}, sum by (model, model_version, le) (rate({bucket}{m}[1h])))"
            f" > {parse_duration(qa.max_label_delay)}",
            for_="1h", severity="warning", category=QUALITY,
            summary="Labels arrive later than expected.",
            description=f"{DELAY_QUANTILE:.0%} of the labels of model {{{{ $labels.model }}}} version "
            "{{ $labels.model_version }} arrive within {{ $value | humanizeDuration }} of their prediction "
            f"(expected within {qa.max_label_delay}).",
        ))
    return out


def bias_alerts(alert: AlertFactory, config: MlmonConfig, model: ModelConfig) -> list[AlertRule]:
    if not model.segments or model.task != "binary_classification":  # bias measures are binary-only
        return []
    ba = config.alerting.bias
    window = quality_window(model)
    out = []
    for metric in BIAS_METRICS:
        sel = selector(model=model.name, window=window, metric=metric)
        if metric == "disparate_impact_ratio":
            condition, bound = f"{c.BIAS_RATIO.name}{sel} < {ba.disparate_impact_min:g}", f"at or above {ba.disparate_impact_min:g}"
        else:
            condition, bound = f"abs({c.BIAS_RATIO.name}{sel}) > {ba.max_difference:g}", f"within ±{ba.max_difference:g}"
        out.append(alert(
            "BiasOutOfBounds", f"{condition}\nand\n{c.BIAS_SAMPLES.name}{sel} >= {ba.min_segment_samples}",
            for_=ba.for_, severity="warning", category=BIAS, labels={"metric": metric},
            summary="A bias measure is outside its bounds.",
            description="{{ $labels.metric }} across {{ $labels.attribute }} segments of model {{ $labels.model }} "
            "version {{ $labels.model_version }} is {{ $value | printf \"%.3g\" }} over the last "
            f"{{{{ $labels.window }}}} (it must stay {bound}).",
        ))
    return out
