"""Drift alerts: feature, prediction and multivariate drift, and the share of drifted features.

Feature and prediction drift fire on the fleet verdict recorded by :mod:`alert_rules.fleet_verdict`
(bin counts summed over replicas, then the exporter's rule: N >= `min_samples`, the KS or chi-square
test rejects at `alpha`, the method score >= `min_effect`), with the grade as severity: info
(drifted, below `warning`), warning, critical. Inhibit rules let the highest grade speak. Only the
longest configured window is judged: it is the most stable, and one window means one alert.
The share of drifted features is the same verdict's share. Multivariate drift fires on the pod's
verdict (`mlmon_multivariate_drift_detected`, the same rule on the reconstruction-error histogram),
graded by its PSI; the fleet's verdict over summed error counters is recorded beside it
(:mod:`alert_rules.fleet_multivariate`).
"""

from __future__ import annotations

from exporter import catalog as c
from alert_rules import fleet_class_drift, fleet_rules, fleet_verdict
from exporter.config.model import ModelConfig, format_duration

from alert_rules.factory import DRIFT, AlertFactory
from alert_rules.naming import matcher, selector
from alert_rules.rules import AlertRule

# Multivariate drift is a PSI of reconstruction errors; its bounds are the PSI field defaults
# unless the model's own method is PSI.
PSI_WARNING, PSI_CRITICAL = 0.1, 0.25


def drift_alerts(alert: AlertFactory, model: ModelConfig, for_: str) -> list[AlertRule]:
    drift = model.drift
    seconds = max(drift.windows)
    window = format_duration(seconds)
    labels = {"window": window}
    out = []
    verdict = (
        ("FeatureDrift", fleet_rules.FEATURES, "A feature's distribution drifted from its reference.",
         "Feature {{ $labels.feature }} of model {{ $labels.model }} version {{ $labels.model_version }}"),
        ("PredictionDrift", fleet_rules.PREDICTION, "The model's predictions drifted from their reference.",
         "Predictions of model {{ $labels.model }} version {{ $labels.model_version }}"),
    )
    rule = (f"drifted: KS or chi-square p < {drift.alpha:g} and {drift.method} >= {drift.effect_floor:g} "
            f"with N >= {drift.min_samples}; warning at {drift.warning:g}, critical at {drift.critical:g}")
    for stem, side, summary, subject in verdict:
        n = fleet_verdict.names(side, seconds)
        sel = selector(model=model.name)
        for grade, severity in fleet_verdict.GRADES.items():
            out.append(alert(
                stem, f"{n.score}{sel}\nand on ({side.by})\n{n.grade}{sel} >= {grade}",
                for_=for_, severity=severity, category=DRIFT, labels=labels, summary=summary,
                description=f"{subject}: {drift.method} {{{{ $value | printf \"%.3g\" }}}} against the "
                f"reference over the last {window}, fleet-wide ({rule}).",
            ))
    if fleet_class_drift.class_models([model]):  # each class's probability, multiclass rows with per-class scores
        n, by = fleet_class_drift.verdict_names(seconds), fleet_rules.CLASSES.by
        sel = selector(model=model.name)
        for grade, severity in fleet_verdict.GRADES.items():
            out.append(alert(
                "ClassProbabilityDrift", f"{n.score}{sel}\nand on ({by})\n{n.grade}{sel} >= {grade}",
                for_=for_, severity=severity, category=DRIFT, labels=labels,
                summary="The predicted probability of one class drifted from its reference.",
                description="The probability of class {{ $labels.class }} predicted by model {{ $labels.model }} "
                f"version {{{{ $labels.model_version }}}}: {drift.method} {{{{ $value | printf \"%.3g\" }}}} against "
                f"the reference over the last {window}, fleet-wide ({rule.replace('KS or chi-square', 'KS')}). "
                "The predicted class may not have moved.",
            ))
    psi = drift.method == "psi"
    for severity, threshold in (("warning", drift.warning if psi else PSI_WARNING),
                                ("critical", drift.critical if psi else PSI_CRITICAL)):
        sel = selector(model=model.name, window=window)
        out.append(alert(
            "MultivariateDrift",
            f"{c.MULTIVARIATE_DRIFT_SCORE.name}{sel} >= {threshold:g}\n"
            f"and\n{c.MULTIVARIATE_DRIFT_DETECTED.name}{sel} == 1",
            for_=for_, severity=severity, category=DRIFT,
            summary="The joint distribution of the features drifted.",
            description="The PCA reconstruction error of model {{ $labels.model }} version {{ $labels.model_version }} "
            "drifted over the last {{ $labels.window }}: PSI {{ $value | printf \"%.3g\" }} against the reference "
            f"(verdict: KS p < {drift.alpha:g} and PSI >= the floor with N >= {drift.min_samples}; "
            f"warning at {drift.warning if psi else PSI_WARNING:g}, critical at {drift.critical if psi else PSI_CRITICAL:g}): "
            "features moved together in a way no single feature shows.",
        ))
    out.append(alert(
        "ReferenceMismatch", fleet_rules.reference_mismatch(matcher("model", model.name)),
        for_=for_, severity="warning", category=DRIFT,
        summary="Replicas of a model version judge drift against different references.",
        description="The pods serving model {{ $labels.model }} version {{ $labels.model_version }} export "
        "{{ $value }} different reference profiles (reference_hash on mlmon_model_info), so their bin counts "
        "cannot be summed: the fleet drift scores and alerts of this version are off until they agree. "
        "Build one profile with `mlmon profile build` instead of capturing per pod.",
    ))
    out.append(alert(
        "DriftedFeatureShare",
        f"{fleet_verdict.drifted_share_name(seconds)}{selector(model=model.name)} >= {drift.drifted_share:g}",
        for_=for_, severity="warning", category=DRIFT, labels=labels,
        summary="Many features of a model drifted at once.",
        description="{{ $value | humanizePercentage }} of the features of model {{ $labels.model }} version "
        "{{ $labels.model_version }} drifted over the last " f"{window}, fleet-wide "
        f"(dataset drift at {drift.drifted_share:.0%}).",
    ))
    return out
