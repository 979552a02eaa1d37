"""The fleet's per-class probability drift in PromQL: each class's score drift and verdict, on summed counters.

Every pod with per-class score rows exports each class's score bins as counters
(``mlmon_class_probability_bin_total{class, bin}``), the reference's ratios
(``mlmon_class_probability_reference_ratio``) and N (``mlmon_class_probability_reference_samples``).
:mod:`alert_rules.fleet_rules` records the fleet histogram per class and its PSI, JS, KL, Hellinger and binned
KS D over them as the side ``CLASSES`` (level ``model_version_class``), the way it does for a numeric
prediction; this module adds the verdict, per window, with the exporter's rule for a class
(exporter/http/class_drift_report.py, which scores every class column as numeric):

* ``model_version_class:mlmon_class_probability_drift_score:1h``: the model's ``drift.method`` on fleet
  counts; PSI for ``chisquare`` (a class's score is numeric), the worst pod's gauge for ``wasserstein``
  (it has no PromQL form), as :mod:`alert_rules.fleet_verdict` does;
* ``..._drift_significance:1h``: D over the KS critical value at ``alpha`` (>= 1 rejects);
* ``..._drift_grade:1h``: 0 not drifted, 1 drifted below ``warning``, 2 warning, 3 critical; absent
  while the fleet holds fewer than ``min_samples`` rows with class scores in the window, or while the
  summed counters cover less than ``COVERAGE`` of them (young counters skew ``increase()``).

Only multiclass models get these rules; a model whose profile has no class scores exports no counters,
so its rules record nothing.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig, format_duration

from alert_rules import fleet_rules
from alert_rules.fleet_rules import CLASSES
from alert_rules.fleet_verdict import COVERAGE, Names, ks_lambda, names

BY = CLASSES.by
PSI_FAMILY = ("psi", "js", "kl", "hellinger", "ks")  # recorded on fleet counts
VERSION_BY = "model, model_version"


def class_models(models: list[ModelConfig]) -> list[ModelConfig]:
    """Models whose per-class probabilities can drift: multiclass ones (with their classes configured)."""
    return [m for m in models if m.task == "multiclass_classification" and m.quality_classes]


def verdict_names(window: int | str) -> Names:
    return names(CLASSES, window)


def _sel(model: ModelConfig) -> str:
    return f'model="{model.name}"'


def _score(model: ModelConfig, window: int) -> str:
    method, sel = model.drift.method, _sel(model)
    if method == "wasserstein":
        return (f"max by ({BY}) ({c.CLASS_PROBABILITY_DRIFT_SCORE.name}"
                f'{{{sel},window="{format_duration(window)}",method="wasserstein"}})')
    recorded = method if method in PSI_FAMILY else "psi"
    return f"{fleet_rules.rule_name(CLASSES, recorded, window)}{{{sel}}}"


def _significance(model: ModelConfig, window: int) -> str:
    sel, on = _sel(model), f"on ({BY})"
    n = f"{CLASSES.level}:{CLASSES.stem}_bin:increase{format_duration(window)}{{{sel}}}"
    m = f"max by ({BY}) ({CLASSES.samples}{{{sel}}})"
    ne = f"({n} * {on} {m} / {on} ({n} + {on} {m}))"
    critical = f"({ks_lambda(model.drift.alpha)!r} / (sqrt({ne}) + 0.12 + 0.11 / sqrt({ne})))"
    return f"{fleet_rules.rule_name(CLASSES, 'ks', window)}{{{sel}}}\n  / {on} {critical}"


def _grade(model: ModelConfig, window: int, n: Names) -> str:
    drift, on, sel, w = model.drift, f"on ({BY})", _sel(model), format_duration(window)
    s, sig = f"{n.score}{{{sel}}}", f"{n.significance}{{{sel}}}"
    # The window's N has no class label: every row with class scores has a score for each class.
    held = f'sum by ({VERSION_BY}) ({c.CLASS_PROBABILITY_WINDOW_SAMPLES.name}{{{sel},window="{w}"}})'
    total = f"{CLASSES.level}:{CLASSES.stem}_bin:increase{w}{{{sel}}}"
    enough = (f"{total} >= on ({VERSION_BY}) group_left () ({COVERAGE} * {held})\n"
              f"and on ({VERSION_BY}) ({held} >= {drift.min_samples})")
    drifted = (f"(1 + ({s} >= bool {drift.warning!r}) + ({s} >= bool {drift.critical!r}))\n"
               f"    and {on} ({sig} >= 1) and {on} ({s} >= {drift.effect_floor!r})")
    return f"(\n  {drifted}\n  or {on} 0 * {sig}\n)\nand {on} (\n{enough}\n)"


def class_rules(window: int, models: list[ModelConfig]) -> list[dict[str, str]]:
    """The per-class histograms and scores, then the verdict; appended to the window's fleet group."""
    chosen = class_models(models)
    if not chosen:
        return []
    n = verdict_names(window)
    return fleet_rules.side_rules(CLASSES, window, chosen, scores=PSI_FAMILY) + [
        {"record": n.score, "expr": "\n or ".join(_score(m, window) for m in chosen)},
        {"record": n.significance, "expr": "\n or ".join(_significance(m, window) for m in chosen)},
        {"record": n.grade, "expr": "\n or ".join(_grade(m, window, n) for m in chosen)},
    ]


def class_groups_for(config: MlmonConfig) -> dict[int, list[dict[str, str]]]:
    windows = sorted({w for m in config.models for w in m.drift.windows})
    return {w: class_rules(w, [m for m in config.models if w in m.drift.windows]) for w in windows}
