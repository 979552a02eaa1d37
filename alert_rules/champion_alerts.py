"""MLMonChallengerWorse: a canary or shadow version is worse than the champion on the rollout's quality metric.

It reads the champion-vs-challenger rules (champion_rules.py) as the rollout gate's `quality`
measurement does (rollouts.py): the two-proportion z of `rollout.quality_metric` (positive when the
challenger is worse) at or above the one-sided critical z at `rollout.alpha`, and only while both
arms hold at least `rollout.min_samples` labelled predictions over `rollout.window` (below that the
gate is inconclusive and the alert silent). Binary models only: the z compares proportions.
"""

from __future__ import annotations

from statistics import NormalDist

from exporter.config.model import ModelConfig

from alert_rules import champion_rules
from alert_rules.factory import QUALITY, AlertFactory
from alert_rules.rules import AlertRule

STEM = "ChallengerWorse"


def z_critical(alpha: float) -> float:
    """One-sided, rounded as the gate writes it (rollouts.Gate.max_pass)."""
    return round(NormalDist().inv_cdf(1 - alpha), 4)


def challenger_alerts(alert: AlertFactory, model: ModelConfig) -> list[AlertRule]:
    if model.task != "binary_classification":
        return []
    rollout = model.rollout
    n = champion_rules.names(rollout.window)
    sel = f'{{model="{model.name}",metric="{rollout.quality_metric}"}}'
    critical, minimum = z_critical(rollout.alpha), rollout.min_samples
    expr = (f"{n.worse_z}{sel} >= {critical!r}\n"
            f"and on (model, model_version, variant, metric) {n.challenger_trials}{sel} >= {minimum}\n"
            f"and on (model, metric) {n.champion_trials}{sel} >= {minimum}")
    return [alert(
        STEM, expr, for_=rollout.interval, severity="warning", category=QUALITY,
        summary="A canary or shadow version is worse than the champion.",
        description="Version {{ $labels.model_version }} ({{ $labels.variant }}) of model {{ $labels.model }} has a "
        "worse {{ $labels.metric }} than the champion (its default versions) over " + rollout.window + ": "
        "two-proportion z = {{ $value | printf \"%.2f\" }} (critical " + f"{critical:g} at alpha {rollout.alpha:g}, "
        f"both arms >= {minimum} labelled predictions). The rollout gate fails it; roll it back.",
    )]
