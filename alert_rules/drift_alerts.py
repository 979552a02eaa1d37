"""Drift alerts: feature, prediction and multivariate drift, and the share of drifted features.

Feature and prediction drift read the fleet-wide scores recorded by :mod:`alert_rules.fleet_rules`
(bin counts summed over replicas, then scored), so N replicas give one verdict. A verdict needs
at least the model's `drift.min_samples` in the window, summed over replicas from the
`mlmon_*window_samples` gauges; below that a distance is noise and no alert fires. Only the
longest configured window is judged: it is the most stable, and one window means one alert.
The method the fleet rules cannot compute (wasserstein) falls back to the per-pod gauges.
"""

from __future__ import annotations

from exporter import catalog as c
from alert_rules import fleet_rules
from exporter.config.model import ModelConfig, format_duration

from alert_rules.factory import DRIFT, AlertFactory
from alert_rules.naming import matcher, selector
from alert_rules.rules import AlertRule

# Multivariate drift is a PSI of reconstruction errors; its bounds are the PSI field defaults
# unless the model's own method is PSI.
PSI_WARNING, PSI_CRITICAL = 0.1, 0.25


def _enough(samples: c.Metric, by: str, model: ModelConfig, window: str) -> str:
    return f"sum by ({by}) ({samples.name}{selector(model=model.name, window=window)}) >= {model.drift.min_samples}"


def _score(side: fleet_rules.Side, gauge: c.Metric, model: ModelConfig, window_seconds: int) -> str:
    """The fleet score of the model's method, or the per-pod gauge when no fleet rule computes it."""
    method = model.drift.method
    if method in fleet_rules.SCORES:
        return f"{fleet_rules.rule_name(side, method, window_seconds)}{selector(model=model.name)}"
    window = format_duration(window_seconds)
    return f"max without (instance, method) ({gauge.name}{selector(model=model.name, window=window, method=method)})"


def drift_alerts(alert: AlertFactory, model: ModelConfig, for_: str) -> list[AlertRule]:
    drift = model.drift
    seconds = max(drift.windows)
    window = format_duration(seconds)
    bounds = f"(warning at {drift.warning:g}, critical at {drift.critical:g})"
    labels = {"window": window}
    out = []
    feature = _score(fleet_rules.FEATURES, c.FEATURE_DRIFT_SCORE, model, seconds)
    prediction = _score(fleet_rules.PREDICTION, c.PREDICTION_DRIFT_SCORE, model, seconds)
    for severity, threshold in (("warning", drift.warning), ("critical", drift.critical)):
        out.append(alert(
            "FeatureDrift",
            f"{feature} >= {threshold:g}\nand on (model, model_version, feature)\n"
            f"{_enough(c.FEATURE_WINDOW_SAMPLES, 'model, model_version, feature', model, window)}",
            for_=for_, severity=severity, category=DRIFT, labels=labels,
            summary="A feature's distribution drifted from its reference.",
            description="Feature {{ $labels.feature }} of model {{ $labels.model }} version {{ $labels.model_version }} "
            f"has {drift.method} {{{{ $value | printf \"%.3g\" }}}} against its reference over the last {window} {bounds}.",
        ))
        out.append(alert(
            "PredictionDrift",
            f"{prediction} >= {threshold:g}\nand on (model, model_version)\n"
            f"{_enough(c.PREDICTION_WINDOW_SAMPLES, 'model, model_version', model, window)}",
            for_=for_, severity=severity, category=DRIFT, labels=labels,
            summary="The model's predictions drifted from their reference.",
            description="Predictions of model {{ $labels.model }} version {{ $labels.model_version }} have "
            f"{drift.method} {{{{ $value | printf \"%.3g\" }}}} against the reference over the last {window} {bounds}.",
        ))
    psi = drift.method == "psi"
    for severity, threshold in (("warning", drift.warning if psi else PSI_WARNING),
                                ("critical", drift.critical if psi else PSI_CRITICAL)):
        sel = selector(model=model.name, window=window)
        out.append(alert(
            "MultivariateDrift",
            f"{c.MULTIVARIATE_DRIFT_SCORE.name}{sel} >= {threshold:g}\n"
            f"and\n{c.MULTIVARIATE_WINDOW_SAMPLES.name}{sel} >= {drift.min_samples}",
            for_=for_, severity=severity, category=DRIFT,
            summary="The joint distribution of the features drifted.",
            description="The PCA reconstruction error of model {{ $labels.model }} version {{ $labels.model_version }} "
            "has PSI {{ $value | printf \"%.3g\" }} against the reference over the last {{ $labels.window }} "
            f"(warning at {drift.warning if psi else PSI_WARNING:g}, critical at {drift.critical if psi else PSI_CRITICAL:g}): "
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
    sel = selector(model=model.name, window=window)
    out.append(alert(
        "DriftedFeatureShare",
        f"{c.DRIFTED_FEATURES.name}{sel} >= {drift.drifted_share:g}\n"
        f"and\n{c.WINDOW_SAMPLES.name}{sel} >= {drift.min_samples}",
        for_=for_, severity="warning", category=DRIFT,
        summary="Many features of a model drifted at once.",
        description="{{ $value | humanizePercentage }} of the features of model {{ $labels.model }} version "
        "{{ $labels.model_version }} drifted over the last {{ $labels.window }} "
        f"(dataset drift at {drift.drifted_share:.0%}).",
    ))
    return out
