"""Fleet-wide explainability as recording rules: attribution counters summed over replicas first.

For every window W of a model with attributions.enabled, by (model, model_version, feature):

* ``model_version_feature:mlmon_attribution_value_sum:mean<W>``      (sum phi+ - sum phi-) / N
* ``model_version_feature:mlmon_attribution_value_sum:mean_abs<W>``  (sum phi+ + sum phi-) / N = mean |phi|
* ``model_version_feature:mlmon_attribution_value_sum:share<W>``     importance / sum over features of importance
* ``model_version:mlmon_attribution_value_sum:share_tv<W>``          1/2 sum |share - reference share|
* ``model_version_feature:mlmon_attribution_bin:psi<W>`` and ``js<W>``: phi bins vs the reference phi bins,
  the formulas of exporter/stats/drift.py (as alert_rules/fleet_rules.py writes them for features)

and for every model whose reference importance is known (exported as
``mlmon_feature_importance_reference_share_ratio``):
``model_version_feature:mlmon_feature_drift_impact:<W>`` = reference share x the fleet drift score of
the model's method. The rank signals (nDCG, top driver) need a sort PromQL does not have: each
exporter exports them per replica, and the JSON report computes them from merged counters.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig, format_duration

from alert_rules.fleet_rules import EPS, FEATURES, SCORES, TINY, reference_mismatch, rule_name
from alert_rules.rules import RecordingRule, RuleGroup

BY = "model, model_version, feature"
STEM = c.ATTRIBUTION_RECORDS.family.removesuffix("_records")  # mlmon_attribution, from the catalog


# Recorded names follow level:metric:operation with the catalog family they are computed from.
OPERATIONS = {
    "mean": (c.ATTRIBUTION_VALUE_SUM, "mean"),
    "importance": (c.ATTRIBUTION_VALUE_SUM, "mean_abs"),
    "share": (c.ATTRIBUTION_VALUE_SUM, "share"),
    "share_tv": (c.ATTRIBUTION_VALUE_SUM, "share_tv"),
    "psi": (c.ATTRIBUTION_BIN, "psi"),
    "js": (c.ATTRIBUTION_BIN, "js"),
}


def name(level: str, what: str, window: int) -> str:
    """e.g. name("model_version_feature", "share", 3600) = model_version_feature:mlmon_attribution_value_sum:share1h."""
    metric, operation = OPERATIONS[what]
    return f"{level}:{metric.family}:{operation}{format_duration(window)}"


def samples_name(window: int) -> str:
    """Records with attributions over the window, fleet-wide: the N of the attribution verdict."""
    return f"model_version:{STEM}_records:increase{format_duration(window)}"


def impact_name(window: int) -> str:
    return f"model_version_feature:{c.FEATURE_DRIFT_IMPACT.name}:{format_duration(window)}"


def reference_share(select: str) -> str:
    return f"max by ({BY}) ({c.FEATURE_IMPORTANCE_REFERENCE_SHARE.name}{{{select}}})"


def _regex(models: list[ModelConfig]) -> str:
    return "|".join(m.name for m in models)


def attribution_rules(window: int, models: list[ModelConfig]) -> list[RecordingRule]:
    """The attribution rules of one window for models that count attributions."""
    w = format_duration(window)
    select = f'model=~"{_regex(models)}"'
    guard = f"\nunless on (model, model_version) ({reference_mismatch(select)})"

    def increase(metric: c.Metric, extra: str = "") -> str:
        return f"sum by ({BY}) (increase({metric.name}{{{select}{extra}}}[{w}]))"

    n = f"model_version_feature:{STEM}_samples:increase{w}"
    positive = f'model_version_feature:{STEM}_value_sum:increase{w}_positive'
    negative = f'model_version_feature:{STEM}_value_sum:increase{w}_negative'
    importance, share = name("model_version_feature", "importance", window), name("model_version_feature", "share", window)
    counts = f"model_version_feature_bin:{STEM}_bin:increase{w}"
    total = f"model_version_feature:{STEM}_bin:increase{w}"
    q = f"model_version_feature_bin:{STEM}_bin:share{w}"
    p = f"max by ({BY}, bin) ({c.ATTRIBUTION_REFERENCE.name}{{{select}}})"
    q_eps, p_eps = f"clamp_min({q}, {EPS})", f"clamp_min({p}, {EPS})"
    mid = f"(({q} + {p}) / 2)"
    return [
        RecordingRule(samples_name(window), f"sum by (model, model_version) (increase({c.ATTRIBUTION_RECORDS.name}{{{select}}}[{w}]))"),
        RecordingRule(n, increase(c.ATTRIBUTION_SAMPLES)),
        RecordingRule(positive, increase(c.ATTRIBUTION_VALUE_SUM, ',sign="positive"')),
        RecordingRule(negative, increase(c.ATTRIBUTION_VALUE_SUM, ',sign="negative"')),
        # A feature without attributions in the window has no mean (not 0/0 = NaN), hence `> 0`.
        RecordingRule(name("model_version_feature", "mean", window), f"({positive} - {negative}) / ({n} > 0)"),
        RecordingRule(importance, f"({positive} + {negative}) / ({n} > 0)"),
        RecordingRule(share, f"{importance}\n/ on (model, model_version) group_left ()\n"
                             f"(sum by (model, model_version) ({importance}) > 0)"),
        RecordingRule(name("model_version", "share_tv", window),
                      # A reference feature without live attributions has live share 0, not no share.
                      f"sum by (model, model_version) (abs(({share} or {reference_share(select)} * 0)"
                      f" - on ({BY}) {reference_share(select)})) / 2"),
        RecordingRule(counts, f"sum by ({BY}, bin) (increase({c.ATTRIBUTION_BIN.name}{{{select}}}[{w}])){guard}"),
        RecordingRule(total, f"sum by ({BY}) ({counts})"),
        RecordingRule(q, f"{counts} / on ({BY}) group_left () ({total} > 0)"),
        RecordingRule(name("model_version_feature", "psi", window),
                      f"sum by ({BY}) (({q_eps} - {p_eps}) * ln({q_eps} / {p_eps}))"),
        RecordingRule(name("model_version_feature", "js", window),
                      f"sqrt(clamp_min(sum by ({BY}) ("
                      f"{p} * ln(clamp_min({p}, {TINY}) / clamp_min({mid}, {TINY}))"
                      f" + {q} * ln(clamp_min({q}, {TINY}) / clamp_min({mid}, {TINY}))) / 2, 0))"),
    ]


def impact_rule(window: int, models: list[ModelConfig]) -> RecordingRule:
    """Reference importance share x the fleet drift score of each model's method (PSI where the
    method has no fleet form); models without a known reference importance record nothing."""
    by_method: dict[str, list[ModelConfig]] = {}
    for model in models:
        method = model.drift.method if model.drift.method in SCORES else "psi"
        by_method.setdefault(method, []).append(model)
    terms = []
    for method, group in sorted(by_method.items()):
        select = f'model=~"{_regex(group)}"'
        terms.append(f"{rule_name(FEATURES, method, window)}{{{select}}}\n* on ({BY}) {reference_share(select)}")
    return RecordingRule(impact_name(window), "\nor\n".join(terms))


def attribution_groups(config: MlmonConfig) -> list[RuleGroup]:
    """One group per window; after the fleet drift groups (drift impact reads their scores)."""
    windows = sorted({w for m in config.models for w in m.drift.windows})
    groups = []
    for window in windows:
        models = [m for m in config.models if window in m.drift.windows]
        explained = [m for m in models if m.attributions.enabled]
        rules = (attribution_rules(window, explained) if explained else []) + [impact_rule(window, models)]
        groups.append(RuleGroup(f"mlmon-fleet-attributions-{format_duration(window)}", rules))
    return groups
