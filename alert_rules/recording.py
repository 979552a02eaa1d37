"""Recording rules: fleet-wide rates and ratios summed over replicas, and week-long anomaly bands.

Per-pod counters are summed `by` the labels that matter before dividing, so the ratios are
fleet truth however many exporter replicas serve a model. Alerts read these series only, which
keeps alert expressions short and lets promtool check every ratio against hand-worked numbers.
"""

from __future__ import annotations

from typing import Callable

from exporter import catalog as c
from exporter.config.model import MlmonConfig
from alert_rules.champion_rules import champion_groups
from alert_rules.fleet_rules import fleet_recording_rules
from alert_rules.fleet_multivariate import multivariate_groups_for
from alert_rules.fleet_class_drift import class_groups_for
from alert_rules.attribution_rules import attribution_groups
from alert_rules.fleet_verdict import verdict_groups_for
from alert_rules.quality_rules import fleet_quality_groups
from alert_rules.segment_quality import segment_quality_groups

from alert_rules.naming import by, level_for, matcher, record_name
from alert_rules.rules import RecordingRule, RuleGroup

MODEL = ("model",)
VERSION = ("model", "model_version")
FEATURE = ("model", "model_version", "feature")
REASON = ("model", "reason")
# The GitLab pattern: compare the current rate with its own mean and spread over a week.
ANOMALY_RANGE = "1w"
TRAFFIC_RATE = "5m"

# Data-quality counters and the threshold field that bounds their ratio, in alert order.
DATA_QUALITY = {
    "missing": (c.FEATURE_MISSING, c.FEATURE_NULL),
    "nonfinite": (c.FEATURE_NONFINITE,),
    "out_of_range": (c.FEATURE_OUT_OF_RANGE,),
    "unseen_category": (c.FEATURE_UNSEEN_CATEGORY,),
    "type_errors": (c.FEATURE_TYPE_ERRORS,),
}


def rate_sum(metric: c.Metric, labels: tuple[str, ...], window: str) -> str:
    return f"sum {by(labels)} (rate({metric.name}[{window}]))"


def predictions_rate(level: tuple[str, ...] = VERSION) -> str:
    return record_name(level_for(level), c.PREDICTIONS, f"rate{TRAFFIC_RATE}")


def rejected_rate() -> str:
    return record_name(level_for(REASON), c.RECORDS_REJECTED, f"rate{TRAFFIC_RATE}")


def quality_ratio(kind: str, window: str) -> str:
    """Name of the per-feature data-quality ratio, e.g. model_version_feature:mlmon_feature_missing:ratio_rate10m."""
    return record_name(level_for(FEATURE), DATA_QUALITY[kind][0], f"ratio_rate{window}")


def rejected_ratio(window: str) -> str:
    return record_name(level_for(REASON), c.RECORDS_REJECTED, f"ratio_rate{window}")


def anomaly_record(operation: str) -> str:
    """model:mlmon_predictions:rate5m_{avg,stddev,zscore}_1w."""
    return record_name(MODEL, c.PREDICTIONS, f"rate{TRAFFIC_RATE}_{operation}_{ANOMALY_RANGE}")


def mean_anomaly_record(operation: str) -> str:
    """model:mlmon_prediction_value_sum:mean_rate5m_{avg,stddev,zscore}_1w."""
    return record_name(MODEL, c.PREDICTION_VALUE_SUM, f"{mean_operation()}_{operation}_{ANOMALY_RANGE}")


def mean_operation() -> str:
    return f"mean_rate{TRAFFIC_RATE}"


def prediction_mean() -> str:
    """model:mlmon_prediction_value_sum:mean_rate5m, the fleet-wide mean numeric prediction."""
    return record_name(MODEL, c.PREDICTION_VALUE_SUM, mean_operation())


def prediction_mean_expr() -> str:
    # The counters hold sums by sign; positive minus negative magnitudes is the signed sum. A
    # window without values has no mean (rather than 0/0 = NaN), hence the `> 0` filter.
    signed = " - ".join(
        f"sum {by(MODEL)} (rate({c.PREDICTION_VALUE_SUM.name}{{{matcher('sign', sign)}}}[{TRAFFIC_RATE}]))"
        for sign in ("positive", "negative")
    )
    return f"({signed})\n/ on (model)\n({rate_sum(c.PREDICTION_VALUES, MODEL, TRAFFIC_RATE)} > 0)"


def traffic_group() -> RuleGroup:
    return RuleGroup("mlmon.traffic.rules", [
        RecordingRule(predictions_rate(VERSION), rate_sum(c.PREDICTIONS, VERSION, TRAFFIC_RATE)),
        RecordingRule(predictions_rate(MODEL), rate_sum(c.PREDICTIONS, MODEL, TRAFFIC_RATE)),
        RecordingRule(rejected_rate(), rate_sum(c.RECORDS_REJECTED, REASON, TRAFFIC_RATE)),
        RecordingRule(prediction_mean(), prediction_mean_expr()),
    ])


def data_quality_group(window: str) -> RuleGroup:
    per_version = rate_sum(c.PREDICTIONS, VERSION, window)
    rules = []
    for kind, metrics in DATA_QUALITY.items():
        numerator = " + ".join(rate_sum(m, FEATURE, window) for m in metrics)
        if len(metrics) > 1:
            numerator = f"({numerator})"
        # Values per accepted prediction of the same model version, summed over replicas.
        expr = f"{numerator}\n/ on (model, model_version) group_left\n{per_version}"
        rules.append(RecordingRule(quality_ratio(kind, window), expr))
    rejected = rate_sum(c.RECORDS_REJECTED, REASON, window)
    rejected_by_model = rate_sum(c.RECORDS_REJECTED, MODEL, window)
    # Rejected per record received (accepted + rejected). Records of unknown models have no
    # accepted predictions at all, hence the `or ... * 0` that stands in a zero for them. The
    # empty `group_left ()` keeps PromQL from reading the parenthesis below as its label list.
    received = f"({rejected_by_model} + ({rate_sum(c.PREDICTIONS, MODEL, window)} or {rejected_by_model} * 0))"
    rules.append(RecordingRule(rejected_ratio(window), f"{rejected}\n/ on (model) group_left ()\n{received}"))
    return RuleGroup("mlmon.data_quality.rules", rules)


def zscore_band(current: str, record: Callable[[str], str]) -> list[RecordingRule]:
    """Mean, spread and z-score of a recorded series against its own past week."""
    avg, stddev = record("avg"), record("stddev")
    return [
        RecordingRule(avg, f"avg_over_time({current}[{ANOMALY_RANGE}])"),
        RecordingRule(stddev, f"stddev_over_time({current}[{ANOMALY_RANGE}])"),
        # A flat history has no spread; dividing by it would give +Inf, so such models get no z-score.
        RecordingRule(record("zscore"), f"({current} - on (model) {avg})\n/ on (model) ({stddev} > 0)"),
    ]


def anomaly_group() -> RuleGroup:
    """Week-long bands of prediction volume and of the mean numeric prediction."""
    return RuleGroup(
        "mlmon.anomaly.rules",
        zscore_band(predictions_rate(MODEL), anomaly_record) + zscore_band(prediction_mean(), mean_anomaly_record),
    )


def recording_groups(config: MlmonConfig) -> list[RuleGroup]:
    """Every recording rule group, in file order."""
    groups = [traffic_group(), data_quality_group(config.alerting.data_quality.rate_window), anomaly_group()]
    groups += fleet_drift_groups(config)
    groups += fleet_quality_groups(config)
    groups += champion_groups(config)  # champion vs challenger (docs/rollouts.md)
    groups += segment_quality_groups(config)
    groups += attribution_groups(config)  # explainability (alert_rules/attribution_rules.py)
    return groups


def fleet_drift_groups(config: MlmonConfig) -> list[RuleGroup]:
    """Fleet-wide drift scores over summed bin counts, as the exporter's drift module defines them,
    then the fleet verdict (test AND effect, graded) of :mod:`alert_rules.fleet_verdict` over them."""
    verdicts, multivariate = verdict_groups_for(config), multivariate_groups_for(config)
    classes = class_groups_for(config)  # per-class probability drift (alert_rules/fleet_class_drift.py)
    return [
        RuleGroup(group["name"], [RecordingRule(rule["record"], rule["expr"])
                                  for rule in group["rules"] + verdicts[window] + multivariate[window] + classes[window]])
        for group, window in zip(fleet_recording_rules(config), verdicts, strict=True)
    ]
