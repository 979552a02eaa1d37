"""Recording rules comparing two versions of one model directly: the champion and a challenger.

Every model version carries a rollout arm on ``mlmon_model_version_variant_info{variant}``
(default, canary or shadow). The champion arm of a model is the sum of its ``default`` versions; each
``canary`` or ``shadow`` version is a challenger, compared with that arm over ``rollout.window``:

* the chi-square homogeneity statistic of the two arms' prediction bins (a 2 x k table,
  ``X^2 = sum_j (b_j A - a_j B)^2 / (a_j + b_j) / (A B)``, the bins either arm filled), its degrees of
  freedom (those bins - 1) and its 95% and 99% critical values. PromQL has no chi-square CDF, so the
  critical values are computed here with ``scipy.stats.chi2.ppf`` for every dof the model's bins allow
  and written into the rule as a table of constants;
* a two-proportion z of the model's ``rollout.quality_metric`` from the confusion counters, pooled,
  signed so that a positive z means the challenger is worse (its false-negative rate higher, or its
  accuracy lower):  ``z = (p_B - p_A) / sqrt(p (1 - p) (1/n_A + 1/n_B))``.

Names (``W`` the window): ``model_version_variant:mlmon_prediction_bin:homogeneity_chisquareW`` (and
``homogeneity_dofW``, ``homogeneity_critical95_W``, ``homogeneity_critical99_W``),
``model_version_variant:mlmon_prediction_bin:increaseW`` and ``model:mlmon_prediction_bin:champion_increaseW``
(the arms' N), and for the quality side ``model_version_variant_metric:mlmon_confusion:worse_zW`` with the arms' trials
``model_version_variant_metric:mlmon_labelled_predictions:increaseW`` and
``model_metric:mlmon_labelled_predictions:champion_increaseW``. A version whose pods disagree
about its variant is left out (no arm is a mix of two).
"""

from __future__ import annotations

from typing import NamedTuple

from scipy.stats import chi2

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig, format_duration, parse_duration
from exporter.config.rollout import LOWER_IS_BETTER

from alert_rules.quality_rules import PROPORTIONS
from alert_rules.rules import RecordingRule, RuleGroup

CHALLENGERS = "canary|shadow"
CHAMPION = "default"
LEVELS = {"95": 0.95, "99": 0.99}
# A categorical prediction without configured classes has at most this many bins (top-K + __other__).
UNBOUNDED_CLASSES_DOF = 100


class Names(NamedTuple):
    """The recorded series of one window (a label such as 1h, or $window in a dashboard)."""

    arm_bins: str
    champion_bins: str
    champion_samples: str
    challenger_samples: str
    chisquare: str
    dof: str
    critical95: str
    critical99: str
    arm_outcomes: str
    champion_trials: str
    challenger_trials: str
    champion_ratio: str
    challenger_ratio: str
    worse_z: str


def names(window: str) -> Names:
    """Named after the catalog families they are computed from (the rule's operation says how)."""
    bins, q, confusion = c.PREDICTION_BIN_COUNT.family, c.LABELLED_PREDICTIONS.family, c.CONFUSION.family
    return Names(
        f"model_version_variant_bin:{bins}:increase{window}", f"model_bin:{bins}:champion_increase{window}",
        f"model:{bins}:champion_increase{window}", f"model_version_variant:{bins}:increase{window}",
        f"model_version_variant:{bins}:homogeneity_chisquare{window}",
        f"model_version_variant:{bins}:homogeneity_dof{window}",
        f"model_version_variant:{bins}:homogeneity_critical95_{window}",
        f"model_version_variant:{bins}:homogeneity_critical99_{window}",
        f"model_version_variant_outcome:{confusion}:increase{window}",
        f"model_metric:{q}:champion_increase{window}", f"model_version_variant_metric:{q}:increase{window}",
        f"model_metric:{c.QUALITY_RATIO.family}:champion{window}",
        f"model_version_variant_metric:{c.QUALITY_RATIO.family}:{window}",
        f"model_version_variant_metric:{confusion}:worse_z{window}",
    )


def max_dof(model: ModelConfig) -> int:
    """Most degrees of freedom a 2 x k table of the model's prediction bins can have (k - 1)."""
    prediction = model.prediction
    if prediction.type == "numeric":
        return prediction.bins + 2 - 1  # equal-mass bins plus underflow and overflow
    return len(prediction.classes) if prediction.classes else UNBOUNDED_CLASSES_DOF


def critical_value(level: float, dof: int) -> float:
    """The chi-square quantile the rules write as a constant (scipy, not an approximation)."""
    return float(chi2.ppf(level, dof))


def critical_table(dof: str, level: float, top: int) -> str:
    """A lookup as arithmetic: sum over k of (dof == k) * ppf(level, k). dof outside 1..top gives 0."""
    terms = [f"(({dof}) == bool {k}) * {critical_value(level, k)!r}" for k in range(1, top + 1)]
    return "(\n    " + "\n  + ".join(terms) + "\n)"


def variant_of(select: str) -> str:
    """Each version's one variant; versions whose pods name two are left out."""
    info = f"max by (model, model_version, variant) ({c.MODEL_VERSION_VARIANT.name}{{{select}}})"
    return f"({info}\n  unless on (model, model_version) (count by (model, model_version) ({info}) > 1))"


def _select(models: list[ModelConfig]) -> str:
    return f'model=~"{"|".join(m.name for m in models)}"'


def _homogeneity_rules(n: Names, models: list[ModelConfig], w: str) -> list[RecordingRule]:
    select = _select(models)
    arm = f'{n.arm_bins}{{variant=~"{CHALLENGERS}"}}'
    # The champion's count of each bin, written on the challenger's bin series so the rest is one-to-one.
    a = f"({n.champion_bins} + on (model, bin) group_right 0 * {arm})"
    filled = f"(({arm} + {a}) > 0)"
    rules = [
        RecordingRule(n.arm_bins, f"sum by (model, model_version, bin) (increase({c.PREDICTION_BIN_COUNT.name}"
                                  f"{{{select}}}[{w}]))\n* on (model, model_version) group_left (variant)\n"
                                  f"{variant_of(select)}"),
        RecordingRule(n.champion_bins, f'sum by (model, bin) ({n.arm_bins}{{variant="{CHAMPION}"}})'),
        RecordingRule(n.champion_samples, f"sum by (model) ({n.champion_bins})"),
        RecordingRule(n.challenger_samples, f"sum by (model, model_version, variant) ({arm})"),
        RecordingRule(n.chisquare,
                      f"sum by (model, model_version, variant) (\n"
                      f"  ({arm} * on (model) group_left {n.champion_samples}\n"
                      f"   - {a} * on (model, model_version, variant) group_left {n.challenger_samples}) ^ 2\n"
                      f"  / {filled}\n)\n"
                      f"/ on (model) group_left {n.champion_samples}\n/ {n.challenger_samples}"),
        RecordingRule(n.dof, f"count by (model, model_version, variant) {filled} - 1"),
    ]
    for key, level in LEVELS.items():
        record = n.critical95 if key == "95" else n.critical99
        arms = [critical_table(f'{n.dof}{{model="{m.name}"}}', level, max_dof(m)) for m in models]
        rules.append(RecordingRule(record, "\nor\n".join(arms)))
    return rules


def _metric_sum(counts: str, outcomes: str, by: str) -> str:
    """`counts` is a selector ending in `}`: the outcome matcher joins its others."""
    return f'sum by ({by}) ({counts[:-1]},outcome=~"{outcomes}"}})'


def _labelled(expr: str, metric: str) -> str:
    return f'label_replace({expr}, "metric", "{metric}", "", "")'


def _quality_rules(n: Names, models: list[ModelConfig], w: str) -> list[RecordingRule]:
    binary = [m for m in models if m.task == "binary_classification"]
    if not binary:
        return []
    select = _select(binary)
    arm_by, champ_by = "model, model_version, variant", "model"
    trials_b, trials_a, ratio_b, ratio_a, z = [], [], [], [], []
    for m in binary:
        metric = m.rollout.quality_metric
        successes, trials = PROPORTIONS[metric]
        own_b = f'{n.arm_outcomes}{{variant=~"{CHALLENGERS}",model="{m.name}"}}'
        own_a = f'{n.arm_outcomes}{{variant="{CHAMPION}",model="{m.name}"}}'
        trials_b.append(_labelled(_metric_sum(own_b, trials, arm_by), metric))
        trials_a.append(_labelled(_metric_sum(own_a, trials, champ_by), metric))
        ratio_b.append(_labelled(f"{_metric_sum(own_b, successes, arm_by)}\n  / ({_metric_sum(own_b, trials, arm_by)} > 0)",
                                 metric))
        ratio_a.append(_labelled(f"{_metric_sum(own_a, successes, champ_by)}\n  / ({_metric_sum(own_a, trials, champ_by)} > 0)",
                                 metric))
        sign = "" if metric in LOWER_IS_BETTER else "-"
        sel = f'{{model="{m.name}",metric="{metric}"}}'
        pb, nb, pa, na = (f"{n.challenger_ratio}{sel}", f"{n.challenger_trials}{sel}",
                          f"{n.champion_ratio}{sel}", f"{n.champion_trials}{sel}")
        on = "on (model, metric) group_left ()"  # the empty list: a parenthesis after it is an operand
        pooled = f"(({pb} * {nb} + {on} ({pa} * {na})) / ({nb} + {on} {na}))"
        se = f"sqrt({pooled} * (1 - {pooled}) * (1 / {nb} + {on} (1 / {na})))"
        z.append(f"{sign}({pb} - {on} {pa})\n  / ({se} > 0)")
    return [
        RecordingRule(n.arm_outcomes, f"sum by (model, model_version, outcome) (increase({c.CONFUSION.name}"
                                      f"{{{select}}}[{w}]))\n* on (model, model_version) group_left (variant)\n"
                                      f"{variant_of(select)}"),
        RecordingRule(n.champion_trials, "\n or ".join(trials_a)),
        RecordingRule(n.challenger_trials, "\n or ".join(trials_b)),
        RecordingRule(n.champion_ratio, "\n or ".join(ratio_a)),
        RecordingRule(n.challenger_ratio, "\n or ".join(ratio_b)),
        RecordingRule(n.worse_z, "\n or ".join(z)),
    ]


def shadow_names(window: str) -> tuple[str, str, str]:
    """Pairs, agreement rate and mean |score difference| of each shadow version over a window."""
    return (f"model_version:{c.SHADOW_PAIRS.family}:increase{window}",
            f"model_version:{c.SHADOW_AGREEMENTS.family}:ratio{window}",
            f"model_version:{c.SHADOW_SCORE_DIFFERENCE.family}:mean{window}")


def _shadow_rules(models: list[ModelConfig], w: str) -> list[RecordingRule]:
    """Shadow pairing counters (state/shadow.py) summed over replicas; series exist only for shadow versions."""
    select, by = _select(models), "model, model_version"
    pairs, agreement, difference = shadow_names(w)
    return [
        RecordingRule(pairs, f"sum by ({by}) (increase({c.SHADOW_PAIRS.name}{{{select}}}[{w}]))"),
        RecordingRule(agreement, f"sum by ({by}) (increase({c.SHADOW_AGREEMENTS.name}{{{select}}}[{w}]))\n"
                                 f"/ ({pairs} > 0)"),
        RecordingRule(difference, f"sum by ({by}) (increase({c.SHADOW_SCORE_DIFFERENCE.name}{{{select}}}[{w}]))\n"
                                  f"/ ({pairs} > 0)"),
    ]


def rollout_windows(config: MlmonConfig) -> dict[int, list[ModelConfig]]:
    out: dict[int, list[ModelConfig]] = {}
    for model in config.models:
        out.setdefault(parse_duration(model.rollout.window), []).append(model)
    return dict(sorted(out.items()))


def champion_groups(config: MlmonConfig) -> list[RuleGroup]:
    """One group per rollout window; each rule reads the ones recorded before it in the same evaluation."""
    groups = []
    for window, models in rollout_windows(config).items():
        w = format_duration(window)
        n = names(w)
        groups.append(RuleGroup(f"mlmon-champion-{w}", _homogeneity_rules(n, models, w) + _quality_rules(n, models, w)
                                + _shadow_rules(models, w)))
    return groups
