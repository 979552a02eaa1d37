"""The fleet drift verdict in PromQL: the exporter's rule ("a test AND an effect size"), on summed counts.

The exporter calls a feature drifted when N >= ``min_samples``, its test rejects (p < ``alpha``;
KS for numeric columns, chi-square for categorical ones) and its ``method`` score reaches
``min_effect``; ``warning`` and ``critical`` then grade the severity (docs/drift.md). PromQL has no
KS or chi-square distribution function, so the test is written as "statistic >= critical value":

* KS: D >= lambda(alpha) / (sqrt(n_e) + 0.12 + 0.11 / sqrt(n_e)), n_e = n m / (n + m), with
  lambda(alpha) = sqrt(-ln(alpha / 2) / 2). This inverts the exporter's p-value,
  Q_KS((sqrt(n_e) + 0.12 + 0.11/sqrt(n_e)) D), with Q_KS cut to its first term 2 exp(-2 lambda^2)
  (the next term is 2 (alpha/2)^4: nothing at any alpha anyone uses).
* chi-square: X^2 >= the (1 - alpha) quantile of chi^2 with dof = (bins non-empty in the fleet
  counts or the reference) - 1, the exporter's dof, counted in PromQL. The quantile is
  Wilson-Hilferty's dof (1 - 2/(9 dof) + z sqrt(2/(9 dof)))^3, z the normal (1 - alpha) quantile
  computed here from the config; for dof = 1 it is exact: z(1 - alpha/2)^2.

Recorded per window (names in :func:`names`): the method score on fleet counts (``drift_score``), the
statistic over its critical value (``significance``, >= 1 rejects), the grade (``drift_grade``: 0 not
drifted, 1 drifted below ``warning`` (info), 2 warning, 3 critical; absent below ``min_samples``) and
the model version's share of drifted features. The alerts and the dashboard colours read the grade.
"""

from __future__ import annotations

import math
from statistics import NormalDist
from typing import NamedTuple

from exporter import catalog as c
from exporter.config.model import MlmonConfig, ModelConfig, format_duration

from alert_rules import fleet_rules
from alert_rules.fleet_rules import FEATURES, PREDICTION, SEGMENTS, Side

NUMERIC_ONLY = frozenset({"ks", "wasserstein"})
CATEGORICAL_ONLY = frozenset({"chisquare"})
GRADES = {1: "info", 2: "warning", 3: "critical"}
COVERAGE = 0.9


def ks_lambda(alpha: float) -> float:
    """The KS critical value of sqrt(n_e) D at level alpha (first term of the Kolmogorov series)."""
    return math.sqrt(-math.log(alpha / 2) / 2)


def chi2_quantile(alpha: float, dof: float) -> float:
    """Wilson-Hilferty's (1 - alpha) quantile of chi^2(dof); exact for dof = 1. The PromQL computes the same."""
    if dof == 1:
        return NormalDist().inv_cdf(1 - alpha / 2) ** 2
    z = NormalDist().inv_cdf(1 - alpha)
    return dof * (1 - 2 / (9 * dof) + z * math.sqrt(2 / (9 * dof))) ** 3


class Names(NamedTuple):
    score: str
    significance: str
    dof: str
    grade: str


def names(side: Side, window: int | str) -> Names:
    """Recorded names over a window in seconds or as a label (`1h`, or `$window` in a dashboard)."""
    w = format_duration(window) if isinstance(window, int) else window
    return Names(f"{side.level}:{side.stem}_drift_score:{w}", f"{side.level}:{side.stem}_drift_significance:{w}",
                 f"{side.level}:{side.stem}_chisquare_dof:{w}", f"{side.level}:{side.stem}_drift_grade:{w}")


def drifted_share_name(window: int | str) -> str:
    w = format_duration(window) if isinstance(window, int) else window
    return f"model_version:{c.DRIFTED_FEATURES.name}:{w}"


def _columns(model: ModelConfig, side: Side) -> tuple[list[str], list[str]]:
    """Numeric and categorical column names of a model on this side."""
    if fleet_rules.is_feature_side(side):
        chosen = [f.name for f in model.features] if side is FEATURES else fleet_rules.segment_features(model)
        return ([f.name for f in model.features if f.type == "numeric" and f.name in chosen],
                [f.name for f in model.features if f.type != "numeric" and f.name in chosen])
    numeric = model.prediction.type == "numeric"
    return ([model.prediction.name], []) if numeric else ([], [model.prediction.name])


def _sel(model: ModelConfig, side: Side, columns: list[str] | None = None) -> str:
    out = f'model="{model.name}"'
    if fleet_rules.is_feature_side(side) and columns is not None:
        out += f',feature=~"{"|".join(columns)}"'
    return out


def _score(model: ModelConfig, side: Side, window: int) -> str:
    """The model's method score on fleet counts; PSI where the method does not apply (as the exporter)."""
    method, w = model.drift.method, format_duration(window)
    numeric, categorical = _columns(model, side)
    psi = f"{fleet_rules.rule_name(side, 'psi', window)}{{{_sel(model, side)}}}"
    if method == "wasserstein":  # no PromQL form: the worst pod's gauge, as the alerts always did
        gauge = c.FEATURE_DRIFT_SCORE if side is FEATURES else c.PREDICTION_DRIFT_SCORE
        method_label = ',method="wasserstein"'
        if side.level == SEGMENTS.level:  # the per-segment gauge is the decision score, without a method label
            gauge, method_label = c.SEGMENT_FEATURE_DRIFT_SCORE, ""
        own = f'max by ({side.by}) ({gauge.name}{{{_sel(model, side)},window="{w}"{method_label}}})'
    else:
        cols = categorical if method in CATEGORICAL_ONLY else numeric if method in NUMERIC_ONLY else None
        if cols == []:
            return psi
        own = f"{fleet_rules.rule_name(side, method, window)}{{{_sel(model, side, cols)}}}"
    return own if method not in NUMERIC_ONLY | CATEGORICAL_ONLY else f"{own}\n  or {psi}"


def _significance(model: ModelConfig, side: Side, window: int, dof: str) -> list[str]:
    """Statistic / critical value per column (>= 1: the test rejects at the model's alpha)."""
    alpha = model.drift.alpha
    numeric, categorical = _columns(model, side)
    total = f"{side.level}:{side.stem}_bin:increase{format_duration(window)}"
    on = f"on ({side.by})"
    terms = []
    if numeric:
        n = f"{total}{{{_sel(model, side, numeric)}}}"
        m = f"max by ({side.by}) ({side.samples}{{{_sel(model, side, numeric)}}})"
        ne = f"({n} * {on} {m} / {on} ({n} + {on} {m}))"
        critical = f"({ks_lambda(alpha)!r} / (sqrt({ne}) + 0.12 + 0.11 / sqrt({ne})))"
        terms.append(f"{fleet_rules.rule_name(side, 'ks', window)}{{{_sel(model, side, numeric)}}}\n"
                     f"  / {on} {critical}")
    if categorical:
        d = f"{dof}{{{_sel(model, side, categorical)}}}"
        z, z1 = NormalDist().inv_cdf(1 - alpha), NormalDist().inv_cdf(1 - alpha / 2) ** 2
        critical = (f"(({d} * (1 - 2 / (9 * {d}) + {z!r} * sqrt(2 / (9 * {d}))) ^ 3 and {d} > 1)"
                    f" or ({d} * 0 + {z1!r} and {d} == 1))")
        terms.append(f"{fleet_rules.rule_name(side, 'chisquare', window)}{{{_sel(model, side, categorical)}}}\n"
                     f"  / {on} {critical}")
    return terms


def _dof(model: ModelConfig, side: Side, window: int) -> str | None:
    _, categorical = _columns(model, side)
    if not categorical:
        return None
    sel = _sel(model, side, categorical)
    counts = fleet_rules.bins_name(side, window)
    return (f"count by ({side.by}) ({counts}{{{sel}}} > 0\n"
            f"  or max by ({side.by}, bin) ({side.ratio}{{{sel}}}) > 0) - 1")


def _grade(model: ModelConfig, side: Side, window: int, n: Names) -> str:
    drift, on = model.drift, f"on ({side.by})"
    s, sig = f"{n.score}{{{_sel(model, side)}}}", f"{n.significance}{{{_sel(model, side)}}}"
    samples = {FEATURES.level: c.FEATURE_WINDOW_SAMPLES, PREDICTION.level: c.PREDICTION_WINDOW_SAMPLES,
               SEGMENTS.level: c.SEGMENT_FEATURE_WINDOW_SAMPLES}[side.level]
    held = f'sum by ({side.by}) ({samples.name}{{{_sel(model, side)},window="{format_duration(window)}"}})'
    total = f"{side.level}:{side.stem}_bin:increase{format_duration(window)}{{{_sel(model, side)}}}"
    # The fleet counts must cover the window: while a pod's counters are younger than the window,
    # increase() extrapolates each bin by its own first value and skews the shares (seen as PSI 0.03
    # on undrifted traffic), so no verdict until they hold >= COVERAGE of what the pods hold.
    enough = f"{held} >= {drift.min_samples}\n  and on ({side.by}) {total} >= {on} ({COVERAGE} * {held})"
    drifted = (f"(1 + ({s} >= bool {drift.warning!r}) + ({s} >= bool {drift.critical!r}))\n"
               f"    and {on} ({sig} >= 1) and {on} ({s} >= {drift.effect_floor!r})")
    return f"(\n  {drifted}\n  or {on} 0 * {sig}\n)\nand {on} ({enough})"


def verdict_rules(window: int, models: list[ModelConfig]) -> list[dict[str, str]]:
    """Rules appended to the window's fleet group (after the scores they read)."""
    rules: list[dict[str, str]] = []
    for side in (FEATURES, PREDICTION):
        n = names(side, window)
        arms = [(m, d) for m in models if (d := _dof(m, side, window))]
        if arms:
            rules.append({"record": n.dof, "expr": "\n or ".join(d for _, d in arms)})
        rules.append({"record": n.score, "expr": "\n or ".join(_score(m, side, window) for m in models)})
        sig = [t for m in models for t in _significance(m, side, window, n.dof)]
        rules.append({"record": n.significance, "expr": "\n or ".join(sig)})
        rules.append({"record": n.grade, "expr": "\n or ".join(_grade(m, side, window, n) for m in models)})
    grade = names(FEATURES, window).grade
    rules.append({"record": drifted_share_name(window),
                  "expr": f"sum by (model, model_version) ({grade} >= bool 1)\n"
                          f"/ count by (model, model_version) ({grade})"})
    segmented = fleet_rules.segment_models(models, window)
    if segmented:  # per segment value: the same verdict, graded, on the segment's fleet counts
        side, n = fleet_rules.windowed(SEGMENTS, window), names(SEGMENTS, window)
        arms = [d for m in segmented if (d := _dof(m, side, window))]
        if arms:
            rules.append({"record": n.dof, "expr": "\n or ".join(arms)})
        rules.append({"record": n.score, "expr": "\n or ".join(_score(m, side, window) for m in segmented)})
        sig = [t for m in segmented for t in _significance(m, side, window, n.dof)]
        rules.append({"record": n.significance, "expr": "\n or ".join(sig)})
        rules.append({"record": n.grade, "expr": "\n or ".join(_grade(m, side, window, n) for m in segmented)})
    return rules


def verdict_groups_for(config: MlmonConfig) -> dict[int, list[dict[str, str]]]:
    windows = sorted({w for m in config.models for w in m.drift.windows})
    return {w: verdict_rules(w, [m for m in config.models if w in m.drift.windows]) for w in windows}
