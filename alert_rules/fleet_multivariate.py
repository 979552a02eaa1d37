"""The fleet's multivariate drift in PromQL: the mean reconstruction error and the verdict, on summed counters.

Every pod exports its reconstruction-error histogram as counters (``mlmon_multivariate_error_bin_total``,
bins of the profile's equal-mass error binning), the sum of the errors (``..._error_sum_total``) and the
reference's side (``mlmon_multivariate_error_reference_ratio``, ``mlmon_multivariate_reference_samples``).
:mod:`alert_rules.fleet_rules` records the fleet histogram, its PSI and its binned KS D over them like any
ordered column; this module adds, per window:

* ``model_version:mlmon_multivariate_reconstruction_error_mean:1h``: summed error / summed records, the
  mean of the union stream (a mean of pod means would weigh a quiet pod like a busy one);
* ``model_version:mlmon_multivariate_drift_detected:1h``: the exporter's rule on the fleet counts:
  N >= ``min_samples``, the KS test rejects at ``alpha`` (written as D >= its critical value, as in
  :mod:`alert_rules.fleet_verdict`) and PSI >= the multivariate floor (the model's ``min_effect`` when
  its method is PSI, else 0.01); 1 drifted, 0 not, absent below ``min_samples``.

The reference band of the mean (mean_ref -+ 3 sd_ref / sqrt(N)) is not recorded: its reference mean and
spread live only in the profile; the pods' band gauges carry it for the dashboard.
"""

from __future__ import annotations

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig, format_duration
from exporter.http.drift_report import multivariate_floor

from alert_rules import fleet_rules
from alert_rules.fleet_rules import MULTIVARIATE
from alert_rules.fleet_verdict import COVERAGE, ks_lambda

BY = MULTIVARIATE.by


def mean_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version:{c.MULTIVARIATE_ERROR_MEAN.name}:{w}"


def verdict_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version:{c.MULTIVARIATE_DRIFT_DETECTED.name}:{w}"


def _verdict(model: ModelConfig, window: int) -> str:
    drift, w, on = model.drift, format_duration(window), f"on ({BY})"
    sel = f'model="{model.name}"'
    total = f"{MULTIVARIATE.level}:{MULTIVARIATE.stem}_bin:increase{w}{{{sel}}}"
    ref_n = f"max by ({BY}) ({MULTIVARIATE.samples}{{{sel}}})"
    ne = f"({total} * {on} {ref_n} / {on} ({total} + {on} {ref_n}))"
    critical = f"({ks_lambda(drift.alpha)!r} / (sqrt({ne}) + 0.12 + 0.11 / sqrt({ne})))"
    ks = f"{fleet_rules.rule_name(MULTIVARIATE, 'ks', window)}{{{sel}}}"
    psi = f"{fleet_rules.rule_name(MULTIVARIATE, 'psi', window)}{{{sel}}}"
    held = f'sum by ({BY}) ({c.MULTIVARIATE_WINDOW_SAMPLES.name}{{{sel},window="{w}"}})'
    # As for features: no verdict until the fleet counts cover what the pods hold (young counters skew increase()).
    enough = f"{held} >= {drift.min_samples}\n  and {on} {total} >= {on} ({COVERAGE} * {held})"
    return (f"(\n  ({ks} / {on} {critical} >= bool 1)\n  * {on} ({psi} >= bool {multivariate_floor(drift)!r})\n)\n"
            f"and {on} ({enough})")


def multivariate_rules(window: int, models: list[ModelConfig]) -> list[dict[str, str]]:
    """Rules appended to the window's fleet group, after the histogram scores they read."""
    if not models:
        return []
    w = format_duration(window)
    select = f'model=~"{"|".join(m.name for m in models)}"'
    total = f"{MULTIVARIATE.level}:{MULTIVARIATE.stem}_bin:increase{w}"
    errors = f"sum by ({BY}) (increase({c.MULTIVARIATE_ERROR_SUM.name}{{{select}}}[{w}]))"
    return [
        {"record": mean_name(window), "expr": f"{errors}\n/ on ({BY}) ({total} > 0)"},
        {"record": verdict_name(window), "expr": "\n or ".join(_verdict(m, window) for m in models)},
    ]


def multivariate_groups_for(config: MlmonConfig) -> dict[int, list[dict[str, str]]]:
    windows = sorted({w for m in config.models for w in m.drift.windows})
    return {w: multivariate_rules(w, [m for m in config.models if w in m.drift.windows]) for w in windows}
