"""Panels for multiclass and regression models beyond the binary ones (issue 13 item 4).

* MLMon / Model, row "Per-class probabilities": each class's probability drift, fleet-wide (the recorded
  scores of alert_rules/fleet_class_drift.py over summed counters), with the lines of MLMonClassProbabilityDrift.
* MLMon / Quality, row "Estimated quality (multiclass, regression)": the label-free per-class estimates and
  their standard errors, and the regression's estimated MAE/RMSE next to the realised ones, with the bounds
  of the EstimatedQualityOutOfBounds / QualityOutOfBounds alerts.

Thresholds come from the first model of the right task in the config (the dashboards serve every model through
the $model variable, and a panel draws one set of lines); without one, the config defaults.
"""

from __future__ import annotations

from exporter import catalog
from exporter.config.model import MetricBound, MlmonConfig, ModelConfig

from alert_rules.fleet_class_drift import class_models, verdict_names
from alert_rules.naming import alert_name
from dashboards import links
from dashboards.layout import Section
from dashboards.panels import NEUTRAL, Query, Thresholds, timeseries, upper_thresholds
from dashboards.promql import selector

VERSION = {"model": '"$model"', "model_version": '"$version"'}
WINDOW = {**VERSION, "window": '"$window"'}
MACRO = ("macro_precision", "macro_recall", "macro_f1", "macro_specificity", "macro_roc_auc")
ERRORS = ("mae", "rmse")


def _first(config: MlmonConfig, task: str) -> ModelConfig | None:
    return next((m for m in config.models if m.task == task), None)


def class_drift_sections(config: MlmonConfig) -> list[Section]:
    """MLMon / Model: the fleet's per-class probability drift score, with the alert's warning and critical lines.
    Only for a config with a multiclass model: the rules record the scores for those models only."""
    models = class_models(config.models)
    if not models:
        return []
    drift = models[0].drift
    score = selector(verdict_names("$window").score, **VERSION)
    runbook = [links.runbook_link(config.alerting.runbook_url, alert_name("ClassProbabilityDrift"))]
    return [Section("Per-class probabilities", [
        timeseries("Per-class probability drift (fleet)", "Drift of each class's predicted probability over the "
                   "selected window, on the per-class score bins summed over every pod (multiclass rows sent with "
                   "per-class scores, a profile with class scores); the model's drift.method. The lines are "
                   f"MLMonClassProbabilityDrift's warning ({drift.warning:g}) and critical ({drift.critical:g}); it "
                   f"fires when the KS test also rejects at alpha {drift.alpha:g} with N >= {drift.min_samples}. The "
                   "predicted class may not move at all.", "short",
                   [Query(f"max by (class) ({score})", "{{class}}")],
                   thresholds=upper_thresholds(drift.warning, drift.critical), show_thresholds=True, minimum=0,
                   links=runbook, width=24),
    ])]


def _lower(bound: MetricBound | None) -> Thresholds:
    """Red below the configured minimum (bad when low), neutral without one."""
    return Thresholds("red", ((bound.min, "green"),)) if bound is not None and bound.min is not None else NEUTRAL


def _upper(bound: MetricBound | None) -> Thresholds:
    """Red from the configured maximum (bad when high), neutral without one."""
    return Thresholds("green", ((bound.max, "red"),)) if bound is not None and bound.max is not None else NEUTRAL


def estimated_section(config: MlmonConfig) -> Section:
    """MLMon / Quality: per-class estimates and standard errors (multiclass), estimated vs realised error (regression)."""
    multiclass, regression = _first(config, "multiclass_classification"), _first(config, "regression")
    bounds = multiclass.quality.thresholds if multiclass else {}
    bound_name = next((m for m in MACRO if m in bounds), None)
    error_bounds = regression.quality.thresholds if regression else {}
    error_name = next((m for m in ERRORS if m in error_bounds), None)
    base = config.alerting.runbook_url
    macro_est = selector(catalog.ESTIMATED_QUALITY, metric=f'=~"{"|".join(MACRO)}"', **WINDOW)
    realised = selector(catalog.QUALITY_SCORE, metric=f'=~"{"|".join(ERRORS)}"', **WINDOW)
    return Section("Estimated quality (multiclass, regression)", [
        timeseries("Estimated per-class quality", "Label-free one-vs-rest precision, recall, F1, specificity and ROC "
                   "AUC of each class over the selected window (multiclass rows sent with per-class scores, "
                   "calibrated per class when the profile has a calibration), highest pod; the macro estimates "
                   "the alerts judge dashed." + (f" The line is the {bound_name} bound of "
                   "MLMonEstimatedQualityOutOfBounds." if bound_name else ""), "percentunit",
                   [Query(f"max by (class, metric) ({selector(catalog.ESTIMATED_CLASS_QUALITY, **WINDOW)})",
                          "{{class}} {{metric}}"),
                    Query(f"max by (metric) ({macro_est})",
                          "{{metric}} estimated")],
                   thresholds=_lower(bounds.get(bound_name) if bound_name else None), show_thresholds=bool(bound_name),
                   minimum=0, maximum=1,
                   links=[links.runbook_link(base, alert_name("EstimatedQualityOutOfBounds"))] if bound_name else None),
        timeseries("Estimated per-class quality: standard error", "Standard error of each per-class estimate: the "
                   "realised value lies within 3 standard errors of the estimate in >= 95% of windows when the "
                   "calibrated scores are right (docs/quality.md); wide when a class is rare in the window.",
                   "percentunit",
                   [Query(f"max by (class, metric) ({selector(catalog.ESTIMATED_CLASS_QUALITY_SE, **WINDOW)})",
                          "{{class}} {{metric}}")], minimum=0),
        timeseries("Regression: estimated vs realised error", "Label-free MAE and RMSE from the reference's error "
                   "per prediction bin (a profile built with --label-column; blind to concept drift) next to the "
                   "realised ones from labels." + (f" The line is the {error_name} bound of the quality alerts."
                                                    if error_name else ""), "short",
                   [Query(f"max by (metric) ({selector(catalog.ESTIMATED_QUALITY_SCORE, **WINDOW)})",
                          "{{metric}} estimated"),
                    Query(f"max by (metric) ({realised})",
                          "{{metric}} realised")],
                   thresholds=_upper(error_bounds.get(error_name) if error_name else None),
                   show_thresholds=bool(error_name), minimum=0, width=24),
    ])
