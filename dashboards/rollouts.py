"""MLMon / Rollouts: the champion vs challenger comparison a rollout gate reads, and reference switches.

Every panel of the "Champion vs challenger" row plots one input of the gates `mlmon rollouts build`
writes (alert_rules/rollouts.py) from the same recording rules (alert_rules/champion_rules.py,
fleet_verdict.py), with the gate's threshold as the panel threshold (taken from `gates()`, so the
red line is where the gate fails), without the gate's minimum-N guard: the arm sizes panel shows N
against `rollout.min_samples`, below which the gate answers "inconclusive". The "Reference" row
counts `mlmon reference promote` / `capture --reset` (docs/reference.md); an annotation marks each
switch on every panel.
"""

from __future__ import annotations

from typing import Any

from alert_rules import champion_rules, fleet_verdict, rollouts
from alert_rules.fleet_rules import FEATURES, PREDICTION
from alert_rules.naming import alert_name
from exporter import catalog
from exporter.config.model import MlmonConfig, ModelConfig
from dashboards import links, variables
from dashboards.common import DashboardSpec, build, prometheus_annotation
from dashboards.layout import Section
from dashboards.panels import Panel, Query, Thresholds, lower_thresholds, stat, threshold_overrides, timeseries
from dashboards.promql import increase, selector, sum_by

UID = "mlmon-rollouts"  # kept here, not in links.py: the dashboard list link finds it by its tag
CHALLENGER_ALERT = "ChallengerWorse"
LEGEND = "{{model}} {{model_version}}"
# Only the challenger arms: the variable may hold .* (All) and the drift grades exist for every version.
ARMS = selector(catalog.MODEL_VERSION_VARIANT, variant=f'~"{champion_rules.CHALLENGERS}"')


def _sel(model: ModelConfig, **more: str) -> str:
    """One model's challenger series: the model, narrowed by the dashboard's variables."""
    pairs = {"model": f'"{model.name}"', **more}
    inner = ",".join(f"{k}={v}" for k, v in pairs.items())
    return f'{{{inner},model=~"$model",model_version=~"$challenger"}}'


def _gate_threshold(model: ModelConfig, name: str) -> float:
    """Where the generated gate fails (rollouts.gates): the panels' red line is the same number."""
    return next(g.max_pass for g in rollouts.gates(model) if g.name == name)


def _red_from(per_model: dict[str, float]) -> tuple[Thresholds, list[dict[str, Any]]]:
    """Green below each model's gate threshold, red from it (overrides for models that differ)."""
    thresholds = {m: Thresholds("green", ((value, "red"),)) for m, value in per_model.items()}
    default = next(iter(thresholds.values()))
    return default, threshold_overrides(thresholds, default)


def _drift_grade(config: MlmonConfig) -> Panel:
    queries = []
    for m in config.models:
        window = rollouts.drift_window(m)
        grades = " or ".join(f"{fleet_verdict.names(side, window).grade}{_sel(m)}" for side in (FEATURES, PREDICTION))
        queries.append(f"max by (model, model_version) ({grades})")
    expr = f"({' or '.join(queries)})\nand on (model, model_version) {ARMS}"
    # The gate fails above rollout.max_drift_grade; grades are whole numbers, so red from the next one.
    thresholds, overrides = _red_from({m.name: _gate_threshold(m, "drift") + 1.0 for m in config.models})
    return timeseries(
        "Challenger drift grade vs the reference",
        "Worst fleet drift grade of each canary/shadow version vs the reference over the model's longest drift window "
        "(0 none, 1 info, 2 warning, 3 critical): the rollout gate's `drift` measurement. Red: above "
        "rollout.max_drift_grade, where the gate fails.", "none", [Query(expr, LEGEND)],
        thresholds=thresholds, overrides=overrides, show_thresholds=True, minimum=0, maximum=3)


def _homogeneity(config: MlmonConfig) -> Panel:
    queries = []
    for m in config.models:
        n = champion_rules.names(m.rollout.window)
        critical = n.critical99 if m.rollout.alpha == 0.01 else n.critical95
        queries.append(f"{n.chisquare}{_sel(m)}\n  / on (model, model_version, variant) ({critical}{_sel(m)} > 0)")
    thresholds, overrides = _red_from({m.name: _gate_threshold(m, "homogeneity") for m in config.models})
    return timeseries(
        "Prediction homogeneity: chi-square / critical value",
        "Chi-square homogeneity statistic of each challenger's prediction bins vs the champion's (its default versions) "
        "over rollout.window, divided by the chi-square critical value at 1 - rollout.alpha for its degrees of freedom: "
        "the gate's `homogeneity` measurement. From 1 (red) the two arms' predictions differ.", "none",
        [Query(" or ".join(queries), "{{model}} {{model_version}} ({{variant}})")],
        thresholds=thresholds, overrides=overrides, show_thresholds=True, minimum=0)


def _quality_z(config: MlmonConfig) -> Panel | None:
    binary = [m for m in config.models if m.task == "binary_classification"]
    if not binary:
        return None
    queries = [f"{champion_rules.names(m.rollout.window).worse_z}{_sel(m, metric=_quoted(m.rollout.quality_metric))}"
               for m in binary]
    thresholds, overrides = _red_from({m.name: _gate_threshold(m, "quality") for m in binary})
    return timeseries(
        "Challenger quality: two-proportion z (positive = worse)",
        "Two-proportion z of rollout.quality_metric, challenger vs champion over rollout.window, signed so that a "
        "positive z means the challenger is worse: the gate's `quality` measurement and what "
        f"{alert_name(CHALLENGER_ALERT)} fires on. Red from the one-sided critical z at rollout.alpha.", "none",
        [Query(" or ".join(queries), "{{model}} {{model_version}} {{metric}}")],
        thresholds=thresholds, overrides=overrides, show_thresholds=True,
        links=[links.runbook_link(config.alerting.runbook_url, alert_name(CHALLENGER_ALERT))])


def _quoted(value: str) -> str:
    return f'"{value}"'


def _arm_sizes(config: MlmonConfig) -> Panel:
    challenger, champion, challenger_labelled, champion_labelled = [], [], [], []
    for m in config.models:
        n = champion_rules.names(m.rollout.window)
        challenger.append(f"{n.challenger_samples}{_sel(m)}")
        champion.append(f'{n.champion_samples}{{model="{m.name}",model=~"$model"}}')
        if m.task == "binary_classification":
            metric = _quoted(m.rollout.quality_metric)
            challenger_labelled.append(f"{n.challenger_trials}{_sel(m, metric=metric)}")
            champion_labelled.append(f'{n.champion_trials}{{model="{m.name}",model=~"$model",metric={metric}}}')
    queries = [Query(" or ".join(challenger), "{{model}} {{model_version}} predictions"),
               Query(" or ".join(champion), "{{model}} champion predictions")]
    if challenger_labelled:
        queries += [Query(" or ".join(challenger_labelled), "{{model}} {{model_version}} labelled"),
                    Query(" or ".join(champion_labelled), "{{model}} champion labelled")]
    per_model = {m.name: lower_thresholds(float(m.rollout.min_samples)) for m in config.models}
    default = next(iter(per_model.values()))
    return timeseries(
        "Arm sizes", "Predictions (and labelled predictions, binary models) of each arm over rollout.window. Red: "
        "below rollout.min_samples, where every gate measurement is inconclusive.", "short",
        queries, thresholds=default, overrides=threshold_overrides(per_model, default), show_thresholds=True, minimum=0)


def _shadow(config: MlmonConfig) -> list[Panel]:
    agreement, difference = [], []
    for m in config.models:
        _, agree, diff = champion_rules.shadow_names(m.rollout.window)
        agreement.append(f"{agree}{_sel(m)}")
        difference.append(f"{diff}{_sel(m)}")
    return [
        timeseries("Shadow agreement rate", "Share of paired requests (same id in the champion and the shadow) on which "
                   "the shadow decides as the champion does, over rollout.window (binary: the same side of "
                   "quality.decision_threshold; categorical: the same class; regression has no decision: 0).",
                   "percentunit", [Query(" or ".join(agreement), LEGEND)], minimum=0, maximum=1),
        timeseries("Shadow mean |score difference|", "Mean |shadow score - champion score| over the paired requests "
                   "of rollout.window (numeric predictions).", "none", [Query(" or ".join(difference), LEGEND)],
                   minimum=0),
    ]


def rollouts_dashboard(config: MlmonConfig) -> dict[str, Any]:
    champion = [_drift_grade(config), _homogeneity(config)]
    quality = _quality_z(config)
    champion += ([quality] if quality else []) + [_arm_sizes(config)] + _shadow(config)
    switches = sum_by(("model", "result"), increase(catalog.REFERENCE_SWITCHES, "$__range", model='~"$model"'))
    reference = Section("Reference", [
        stat("Reference switches", "Reference switches over the time range by result: promoted (a vetted window "
             "became the reference), capture_reset (a capture restarted), refused (unknown version, empty window, "
             "...). Each one also marks the panels above (annotation).", "short",
             [Query(switches, "{{model}} {{result}}")], width=24, decimals=0),
    ])
    switched = prometheus_annotation(
        "Reference switch", f"{sum_by(('model', 'result'), increase(catalog.REFERENCE_SWITCHES, '2m'))} > 0",
        "Reference {{result}}: {{model}}",
        "mlmon reference promote / capture --reset of model {{model}}: {{result}} (docs/reference.md).", color="purple")
    return build(DashboardSpec(
        uid=UID, title="Rollouts",
        description="Champion vs challenger: what the rollout gates read (drift grade, prediction homogeneity, "
        "quality z, arm sizes) and the shadow agreement, per canary or shadow version; reference switches.",
        sections=[Section("Champion vs challenger", champion), reference],
        variables=[variables.datasource(), variables.model(), _challenger()],
        annotations=[switched],
    ))


def _challenger() -> dict[str, Any]:
    """The model's canary and shadow versions (mlmon_model_version_variant_info), All by default."""
    variable = variables.version("challenger", "Challenger", multi=True)
    arms = selector(catalog.MODEL_VERSION_VARIANT, model='"$model"', variant=f'~"{champion_rules.CHALLENGERS}"')
    query = f"label_values({arms}, model_version)"
    variable["definition"] = query
    variable["query"] = {"query": query, "refId": "challenger-variable"}
    return variable
