"""Recording rules for fleet-wide quality per segment value (binary): segment confusion counters summed over pods.

Every binary model with `segments:` already counts its labelled predictions per segment value and outcome
(``mlmon_segment_confusion_total{attribute,segment,outcome}``, bounded by the config's values plus
``__other__``). Summed over replicas first, then divided, they give the fleet's quality of each segment
value, so "the model degraded for country=NG" is one query:

    model_version_attribute_segment_metric:mlmon_segment_quality_ratio:1h{segment="NG", metric="recall"}

Per quality window: ``model_version_attribute_segment_outcome:mlmon_segment_confusion:increase1h`` (the
fleet counts) and ``model_version_attribute_segment_metric:mlmon_segment_quality_ratio:1h`` with metric
accuracy, precision, recall, f1 (2 tp / (2 tp + fp + fn)) and false_positive_rate; a zero denominator
gives no sample. Regression and multiclass models keep no per-segment accumulators (docs/quality.md).
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import MlmonConfig, format_duration

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


def segment_quality_groups(config: MlmonConfig) -> list[RuleGroup]:
    """One group per quality window of the binary models with segments."""
    windows: dict[int, list[str]] = {}
    for model in config.models:
        if model.task == "binary_classification" and model.segments:
            for window in model.quality_windows:
                windows.setdefault(window, []).append(model.name)
    groups = []
    for window, models in sorted(windows.items()):
        counts = counts_name(window)
        select = f'model=~"{"|".join(models)}"'
        groups.append(RuleGroup(f"mlmon-fleet-segment-quality-{format_duration(window)}", [
            RecordingRule(counts, f"sum by ({BY}, outcome) (increase({c.SEGMENT_CONFUSION.name}{{{select}}}"
                                  f"[{format_duration(window)}]))"),
            RecordingRule(ratio_name(window), "\n or ".join(_ratio(counts, m) for m in RATIOS)),
        ]))
    return groups
