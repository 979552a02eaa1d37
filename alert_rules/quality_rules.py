"""Recording rules for fleet-wide binary quality: confusion counters summed over replicas, then
the ratios and their Wilson 95% bounds, as :mod:`exporter.stats.quality_math` defines them.

Each exporter's `mlmon_quality_ratio` is its own pod's quality; an average of pods' accuracies
is not the fleet's accuracy. The fleet's is the ratio of summed counts:

    accuracy = sum over pods of (tp + tn) / sum over pods of (tp + fp + tn + fn)

over each configured quality window. Realised quality reads `mlmon_confusion_total` (labelled
predictions), estimated quality `mlmon_estimated_confusion_total` (calibrated scores of every
prediction); both become series with a `metric` label, like the exporter's gauges:

* ``model_version_outcome:mlmon_confusion:increase1h``: fleet counts per outcome,
* ``model_version_metric:mlmon_labelled_predictions:increase1h``: the labelled predictions each
  ratio divides by (its trials),
* ``model_version_metric:mlmon_quality_ratio:1h``, ``mlmon_quality_lower_ratio``, ``mlmon_quality_upper_ratio``
  and ``mlmon_estimated_quality_ratio``: named after the exporter gauges they stand for.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import MlmonConfig, format_duration
from exporter.stats.quality_math import Z_95

from alert_rules.rules import RecordingRule, RuleGroup

BY = "model, model_version"
# metric -> (outcomes counted as successes, outcomes counted as trials): quality_math.PROPORTIONS.
PROPORTIONS = {
    "accuracy": ("tp|tn", "tp|fp|tn|fn"),
    "precision": ("tp", "tp|fp"),
    "recall": ("tp", "tp|fn"),
    "specificity": ("tn", "tn|fp"),
    "false_positive_rate": ("fp", "fp|tn"),
    "false_negative_rate": ("fn", "fn|tp"),
}
# Estimated quality: the exporter estimates these (ESTIMATED_QUALITY's help), roc_auc aside.
ESTIMATED = ("accuracy", "precision", "recall")


def counts_name(counter: c.Metric, window: str) -> str:
    return f"model_version_outcome:{counter.family}:increase{window}"


def ratio_name(gauge: c.Metric, window: str) -> str:
    """The fleet series standing for a per-pod gauge: model_version_metric:mlmon_quality_ratio:1h."""
    return f"model_version_metric:{gauge.family}:{window}"


def trials_name(window: str) -> str:
    return f"model_version_metric:{c.LABELLED_PREDICTIONS.family}:increase{window}"


def _labelled(expr: str, metric: str) -> str:
    return f'label_replace({expr}, "metric", "{metric}", "", "")'


def _sum(counts: str, outcomes: str) -> str:
    return f'sum by ({BY}) ({counts}{{outcome=~"{outcomes}"}})'


def _ratios(counts: str, metrics: tuple[str, ...]) -> str:
    """Every metric's ratio as one vector with a `metric` label; a zero denominator gives no sample."""
    arms = [_labelled(f"{_sum(counts, PROPORTIONS[m][0])}\n  / ({_sum(counts, PROPORTIONS[m][1])} > 0)", m)
            for m in metrics]
    return "\n or ".join(arms)


def _wilson(p: str, n: str, side: str) -> str:
    """Wilson score bound (quality_math.wilson_interval), clamped to [0, 1] as the exporter clamps."""
    z2 = f"{Z_95 * Z_95!r}"
    centre = f"({p} + {z2} / (2 * {n})) / (1 + {z2} / {n})"
    half = f"{Z_95!r} / (1 + {z2} / {n}) * sqrt({p} * (1 - {p}) / {n} + {z2} / (4 * {n} * {n}))"
    bound = f"({centre}) {'-' if side == 'lower' else '+'} ({half})"
    return f"clamp_min({bound}, 0)" if side == "lower" else f"clamp_max({bound}, 1)"


def _window_rules(window: int, models: list[str]) -> list[RecordingRule]:
    w = format_duration(window)
    select = f'model=~"{"|".join(models)}"'
    realised, estimated = counts_name(c.CONFUSION, w), counts_name(c.ESTIMATED_CONFUSION, w)
    p, n = ratio_name(c.QUALITY_RATIO, w), trials_name(w)
    metrics = tuple(PROPORTIONS)
    trials = "\n or ".join(_labelled(_sum(realised, PROPORTIONS[m][1]), m) for m in metrics)
    return [
        RecordingRule(realised, f"sum by ({BY}, outcome) (increase({c.CONFUSION.name}{{{select}}}[{w}]))"),
        RecordingRule(n, trials),
        RecordingRule(p, _ratios(realised, metrics)),
        RecordingRule(ratio_name(c.QUALITY_LOWER, w), _wilson(p, f"({n} > 0)", "lower")),
        RecordingRule(ratio_name(c.QUALITY_UPPER, w), _wilson(p, f"({n} > 0)", "upper")),
        RecordingRule(estimated, f"sum by ({BY}, outcome) (increase({c.ESTIMATED_CONFUSION.name}{{{select}}}[{w}]))"),
        RecordingRule(ratio_name(c.ESTIMATED_QUALITY, w), _ratios(estimated, ESTIMATED)),
    ]


def quality_windows(config: MlmonConfig) -> dict[int, list[str]]:
    """Quality window (seconds) -> the binary models that use it."""
    out: dict[int, list[str]] = {}
    for model in config.models:
        if model.task == "binary_classification":
            for window in model.quality_windows:
                out.setdefault(window, []).append(model.name)
    return dict(sorted(out.items()))


def fleet_quality_groups(config: MlmonConfig) -> list[RuleGroup]:
    """One group per quality window, so each ratio reads the counts recorded in the same evaluation."""
    return [RuleGroup(f"mlmon-fleet-quality-{format_duration(w)}", _window_rules(w, models))
            for w, models in quality_windows(config).items()]
