"""Recording rules for fleet-wide quality per segment value: per-segment counters summed over pods, then divided.

Every binary model with `segments:` already counts its labelled predictions per segment value and outcome
(``mlmon_segment_confusion_total{attribute,segment,outcome}``, bounded by the config's values plus
``__other__``). Summed over replicas first, then divided, they give the fleet's quality of each segment
value, so "the model degraded for country=NG" is one query:

    model_version_attribute_segment_metric:mlmon_segment_quality_ratio:1h{segment="NG", metric="recall"}

Per quality window: ``model_version_attribute_segment_outcome:mlmon_segment_confusion:increase1h`` (the
fleet counts) and ``model_version_attribute_segment_metric:mlmon_segment_quality_ratio:1h`` with metric
accuracy, precision, recall, f1 (2 tp / (2 tp + fp + fn)) and false_positive_rate; a zero denominator
gives no sample.

Regression and multiclass models count per value of the attributes with ``quality: true``
(exporter/http/segment_quality.py). Multiclass: ``..._actual_predicted:mlmon_segment_class_confusion:increase1h``
(the fleet matrix per value) and, in the same ratio series as binary, accuracy (the diagonal over all) and
macro_f1 (the mean over the configured classes present, as actual or predicted, of 2 TP_c / (predicted_c +
actual_c); the diagonal is spelt out per class, as PromQL cannot compare two labels). Regression:
``model_version_attribute_segment_sum:mlmon_segment_regression_error:increase1h`` (sum count, over, under, squared,
squared_log, log_pairs) and ``model_version_attribute_segment_metric:mlmon_segment_quality_score:1h`` with metric
mae, rmse, bias and rmsle.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig, format_duration

from alert_rules.rules import RecordingRule, RuleGroup

BY = "model, model_version, attribute, segment"
# metric -> (numerator, denominator) as sums of outcomes; f1 counts tp twice.
RATIOS = {
    "accuracy": ("tp|tn", "tp|fp|tn|fn"),
    "precision": ("tp", "tp|fp"),
    "recall": ("tp", "tp|fn"),
    "f1": ("tp", "tp|fp|fn"),
    "false_positive_rate": ("fp", "fp|tn"),
}


def counts_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version_attribute_segment_outcome:{c.SEGMENT_CONFUSION.family}:increase{w}"


def ratio_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version_attribute_segment_metric:{c.SEGMENT_QUALITY.family}:{w}"


def _sum(counts: str, outcomes: str) -> str:
    return f'sum by ({BY}) ({counts}{{outcome=~"{outcomes}"}})'


def _ratio(counts: str, metric: str) -> str:
    top, bottom = RATIOS[metric]
    numerator = f"2 * {_sum(counts, top)}" if metric == "f1" else _sum(counts, top)
    denominator = f"({_sum(counts, 'tp')} + {_sum(counts, bottom)})" if metric == "f1" else _sum(counts, bottom)
    return f'label_replace({numerator}\n  / ({denominator} > 0), "metric", "{metric}", "", "")'


def class_counts_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version_attribute_segment_actual_predicted:{c.SEGMENT_CLASS_CONFUSION.family}:increase{w}"


def regression_counts_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version_attribute_segment_sum:{c.SEGMENT_REGRESSION_ERROR.family}:increase{w}"


def score_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version_attribute_segment_metric:{c.SEGMENT_QUALITY_SCORE.family}:{w}"


def quality_segments(model: ModelConfig) -> bool:
    """Whether the model counts labelled sums per segment value: binary with segments, others with quality: true."""
    if model.task == "binary_classification":
        return bool(model.segments)
    return any(s.quality for s in model.segments)


def _binary_rules(window: int, models: list[str]) -> list[RecordingRule]:
    counts = counts_name(window)
    select = f'model=~"{"|".join(models)}"'
    return [
        RecordingRule(counts, f"sum by ({BY}, outcome) (increase({c.SEGMENT_CONFUSION.name}{{{select}}}"
                              f"[{format_duration(window)}]))"),
        RecordingRule(ratio_name(window), "\n or ".join(_ratio(counts, m) for m in RATIOS)),
    ]


def _multiclass_rules(window: int, models: list[ModelConfig]) -> list[RecordingRule]:
    counts = class_counts_name(window)
    select = f'model=~"{"|".join(m.name for m in models)}"'

    def diagonal(configured_only: bool) -> str:
        cells = [f'{counts}{{model="{m.name}",actual="{k}",predicted="{k}"}}' for m in models
                 for k in (*m.quality_classes, *(() if configured_only else ("__other__",)))]
        return "(" + " or ".join(cells) + ")"

    def per_class(side: str, series: str) -> str:
        return f'sum by ({BY}, class) (label_replace({series}, "class", "$1", "{side}", "(.*)"))'

    tp = per_class("actual", diagonal(True))
    predicted = per_class("predicted", f'{counts}{{{select},predicted!="__other__"}}')
    actual = per_class("actual", f'{counts}{{{select},actual!="__other__"}}')
    accuracy = f"sum by ({BY}) {diagonal(False)}\n  / (sum by ({BY}) ({counts}{{{select}}}) > 0)"
    macro_f1 = f"avg by ({BY}) (2 * {tp}\n  / ({predicted}\n  + {actual} > 0))"
    return [
        RecordingRule(counts, f"sum by ({BY}, actual, predicted) (increase({c.SEGMENT_CLASS_CONFUSION.name}"
                              f"{{{select}}}[{format_duration(window)}]))"),
        RecordingRule(ratio_name(window), f'label_replace({accuracy}, "metric", "accuracy", "", "")\n or '
                                          f'label_replace({macro_f1}, "metric", "macro_f1", "", "")'),
    ]


# The regression sums as (sum label, counter, extra matcher).
REGRESSION_COUNTERS = (
    ("count", c.SEGMENT_REGRESSION_PAIRS, ""),
    ("over", c.SEGMENT_REGRESSION_ERROR, ',direction="over"'),
    ("under", c.SEGMENT_REGRESSION_ERROR, ',direction="under"'),
    ("squared", c.SEGMENT_REGRESSION_SQUARED_ERROR, ""),
    ("squared_log", c.SEGMENT_REGRESSION_SQUARED_LOG_ERROR, ""),
    ("log_pairs", c.SEGMENT_REGRESSION_LOG_PAIRS, ""),
)
# metric -> PromQL over S(sum) = the fleet sum of one regression sum per segment value.
REGRESSION_SCORES = {
    "mae": "({over} + {under}) / ({count} > 0)",
    "rmse": "sqrt({squared} / ({count} > 0))",
    "bias": "({over} - {under}) / ({count} > 0)",
    "rmsle": "sqrt({squared_log} / ({log_pairs} > 0))",
}


def _regression_rules(window: int, models: list[str]) -> list[RecordingRule]:
    counts = regression_counts_name(window)
    select = f'model=~"{"|".join(models)}"'
    w = format_duration(window)
    sums = "\n or ".join(f'label_replace(sum by ({BY}) (increase({metric.name}{{{select}{extra}}}[{w}])), '
                         f'"sum", "{name}", "", "")' for name, metric, extra in REGRESSION_COUNTERS)
    terms = {name: f'sum by ({BY}) ({counts}{{{select},sum="{name}"}})' for name, _, _ in REGRESSION_COUNTERS}
    scores = "\n or ".join(f'label_replace({expr.format(**terms)}, "metric", "{metric}", "", "")'
                           for metric, expr in REGRESSION_SCORES.items())
    return [RecordingRule(counts, sums), RecordingRule(score_name(window), scores)]


def segment_quality_groups(config: MlmonConfig) -> list[RuleGroup]:
    """One group per quality window of the models with quality per segment value."""
    windows: dict[int, list[ModelConfig]] = {}
    for model in config.models:
        if quality_segments(model):
            for window in model.quality_windows:
                windows.setdefault(window, []).append(model)
    groups = []
    for window, models in sorted(windows.items()):
        rules = []
        binary = [m.name for m in models if m.task == "binary_classification"]
        multiclass = [m for m in models if m.task == "multiclass_classification"]
        regression = [m.name for m in models if m.task == "regression"]
        if binary:
            rules += _binary_rules(window, binary)
        if multiclass:
            rules += _multiclass_rules(window, multiclass)
        if regression:
            rules += _regression_rules(window, regression)
        groups.append(RuleGroup(f"mlmon-fleet-segment-quality-{format_duration(window)}", rules))
    return groups
