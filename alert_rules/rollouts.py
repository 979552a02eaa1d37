"""Rollout gates as code: an Argo Rollouts AnalysisTemplate and Flagger MetricTemplates per model.

    mlmon rollouts build -c mlmon.yaml -o deploy/rollouts/ [--check]

Each gate is one PromQL query over the recording rules the alerts and dashboards read, returning
exactly one sample: the canary version's

* ``drift``: its worst fleet drift grade vs the reference (0 none .. 3 critical; :mod:`fleet_verdict`),
* ``homogeneity``: chi-square of its prediction bins vs the champion's over the 1 - alpha critical value
  (>= 1: the two arms' predictions differ; :mod:`champion_rules`),
* ``quality`` (binary models): the two-proportion z of ``rollout.quality_metric``, positive when the canary is worse,

or NaN while either arm holds fewer than ``rollout.min_samples`` (or the drift verdict has too few). Argo
reads NaN as Inconclusive: both conditions start with ``!isNaN(result[0])``, so both are false. Flagger
has no inconclusive: a NaN is "no values found", which halts advancement and counts as a failed check
(docs/rollouts.md sizes ``threshold`` for it). Output is deterministic, so ``--check`` compares bytes.
"""

from __future__ import annotations

from pathlib import Path
from statistics import NormalDist
from typing import Any, NamedTuple

from exporter.config.model import MlmonConfig, ModelConfig, format_duration

from alert_rules import champion_rules, fleet_verdict
from alert_rules.build import to_yaml, write_or_check
from alert_rules.naming import GENERATED_HEADER
from alert_rules.fleet_rules import FEATURES, PREDICTION

ARGO_VERSION_ARG = "canary-version"
FLAGGER_VERSION_VARIABLE = "canary_version"
VERSION = "__MLMON_CANARY_VERSION__"  # the placeholder each tool's template syntax replaces
ARGO_PLACEHOLDER = "{{args.%s}}" % ARGO_VERSION_ARG
FLAGGER_PLACEHOLDER = "{{ variables.%s }}" % FLAGGER_VERSION_VARIABLE
INCONCLUSIVE = "vector(NaN)"
HEADER = GENERATED_HEADER.replace("`mlmon rules build`", "`mlmon rollouts build`")


class Gate(NamedTuple):
    """One measurement: a query of one sample, and the largest passing value (fails above)."""

    name: str
    query: str  # with VERSION where the canary's model_version goes
    max_pass: float
    strict: bool  # True: fails at >= max_pass (a critical value); False: fails above it (a grade)
    meaning: str


def z_critical(alpha: float) -> float:
    """One-sided: the canary fails only for being worse."""
    return NormalDist().inv_cdf(1 - alpha)


def _one(expr: str) -> str:
    """Exactly one sample: the value, or NaN (inconclusive) when there is none."""
    return f"max(\n  {expr}\n) or on () {INCONCLUSIVE}"


def drift_window(model: ModelConfig) -> int:
    """The gate reads the model's longest drift window (fewest inconclusive measurements)."""
    return max(model.drift.windows)


def gates(model: ModelConfig) -> list[Gate]:
    rollout, name = model.rollout, model.name
    version = f'model="{name}",model_version="{VERSION}"'
    window = drift_window(model)
    grades = [f"{fleet_verdict.names(side, window).grade}{{{version}}}" for side in (FEATURES, PREDICTION)]
    n = champion_rules.names(rollout.window)
    minimum = rollout.min_samples
    critical = n.critical99 if rollout.alpha == 0.01 else n.critical95
    mvv = "on (model, model_version, variant)"
    homogeneity = (f"{n.chisquare}{{{version}}}\n  / {mvv} ({critical}{{{version}}} > 0)\n"
                   f"  and {mvv} {n.challenger_samples}{{{version}}} >= {minimum}\n"
                   f'  and on (model) {n.champion_samples}{{model="{name}"}} >= {minimum}')
    out = [
        Gate("drift", _one(" or ".join(grades)), float(rollout.max_drift_grade), False,
             f"worst fleet drift grade of the canary vs the reference over {format_duration(window)} "
             "(0 none, 1 info, 2 warning, 3 critical)"),
        Gate("homogeneity", _one(homogeneity), 1.0, True,
             f"chi-square of the canary's prediction bins vs the champion's over {rollout.window}, "
             f"divided by its {1 - rollout.alpha:.0%} critical value"),
    ]
    if model.task == "binary_classification":
        metric = rollout.quality_metric
        sel = f'{version},metric="{metric}"'
        quality = (f"{n.worse_z}{{{sel}}}\n"
                   f"  and on (model, model_version, variant, metric) {n.challenger_trials}{{{sel}}} >= {minimum}\n"
                   f'  and on (model, metric) {n.champion_trials}{{model="{name}",metric="{metric}"}} >= {minimum}')
        out.append(Gate("quality", _one(quality), round(z_critical(rollout.alpha), 4), True,
                        f"two-proportion z of {metric}, canary vs champion over {rollout.window}, "
                        "positive when the canary is worse"))
    return out


def _conditions(gate: Gate) -> tuple[str, str]:
    value, limit = "result[0]", repr(gate.max_pass)
    passes, fails = (f"{value} < {limit}", f"{value} >= {limit}") if gate.strict else \
        (f"{value} <= {limit}", f"{value} > {limit}")
    return f"!isNaN({value}) && {passes}", f"!isNaN({value}) && {fails}"


def analysis_template(model: ModelConfig) -> dict[str, Any]:
    """argoproj.io/v1alpha1 AnalysisTemplate: one metric per gate, the canary version as an argument."""
    rollout = model.rollout
    metrics = []
    for gate in gates(model):
        success, failure = _conditions(gate)
        metrics.append({
            "name": gate.name,
            "interval": rollout.interval,
            "count": rollout.count,
            # Below the minimum N a measurement is Inconclusive; all `count` of them pause the rollout.
            "inconclusiveLimit": rollout.count - 1,
            "failureLimit": 0,
            "successCondition": success,
            "failureCondition": failure,
            "provider": {"prometheus": {
                "address": "{{args.prometheus-address}}",
                "query": gate.query.replace(VERSION, ARGO_PLACEHOLDER),
            }},
        })
    return {
        "apiVersion": "argoproj.io/v1alpha1",
        "kind": "AnalysisTemplate",
        "metadata": {"name": f"mlmon-{model.name.replace('_', '-')}", "labels": {"app.kubernetes.io/part-of": "mlmon"}},
        "spec": {
            "args": [{"name": ARGO_VERSION_ARG}, {"name": "prometheus-address", "value": rollout.prometheus_address}],
            "metrics": metrics,
        },
    }


def metric_templates(model: ModelConfig) -> list[dict[str, Any]]:
    """flagger.app/v1beta1 MetricTemplates (one query each); the Canary sets thresholdRange.max (docs/rollouts.md)."""
    return [{
        "apiVersion": "flagger.app/v1beta1",
        "kind": "MetricTemplate",
        "metadata": {"name": f"mlmon-{model.name.replace('_', '-')}-{gate.name}",
                     "labels": {"app.kubernetes.io/part-of": "mlmon"},
                     "annotations": {"mlmon.io/threshold-range-max": repr(gate.max_pass), "mlmon.io/meaning": gate.meaning}},
        "spec": {
            "provider": {"type": "prometheus", "address": model.rollout.prometheus_address},
            "query": gate.query.replace(VERSION, FLAGGER_PLACEHOLDER),
        },
    } for gate in gates(model)]


def _yaml(document: dict[str, Any]) -> str:
    return to_yaml(document).removeprefix(GENERATED_HEADER)


def render(config: MlmonConfig) -> dict[str, str]:
    """File name -> content: per model an AnalysisTemplate and a file of MetricTemplates."""
    files = {}
    for model in config.models:
        files[f"{model.name}-analysistemplate.yaml"] = HEADER + _yaml(analysis_template(model))
        docs = [_yaml(t) for t in metric_templates(model)]
        files[f"{model.name}-metrictemplates.yaml"] = HEADER + "---\n".join(docs)
    return files


def build(config: MlmonConfig, out: Path, check: bool = False, fix: str = "make generate") -> int:
    """Write the files, or with `check` name the stale ones and return 1."""
    files = render(config)
    code = write_or_check(files, out, check, fix)
    if not check:
        for name in files:
            print(out / name)
    return code

