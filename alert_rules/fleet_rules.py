"""Prometheus recording rules for fleet-wide drift, as a function of the config.

Each exporter scores only its own traffic. The fleet's score needs the bin counts of every
replica summed first, which Prometheus can do from the exported per-bin counters
(``mlmon_feature_bin_total``) and reference fractions (``mlmon_feature_reference_ratio``):

    q_i = sum over replicas of increase(bin_i[W]) / sum over replicas and bins of increase(...[W])

and then the same formulas as :mod:`exporter.stats.drift` (same epsilon, same clamps), so a rule gives
what Python gives on the summed counts. Returned as plain dicts; the alert-rules generator writes
them to YAML with the other rules. Names follow ``level:metric:operation``:

* ``model_version_feature_bin:mlmon_feature_bin:increase1h``: fleet counts per bin (the intermediate every score uses),
* ``model_version_feature:mlmon_feature_psi:1h`` (and ``_js``, ``_kl``, ``_hellinger``, ``_chisquare``, ``_ks``),
* ``model_version:mlmon_prediction_psi:1h`` ... for the prediction.

KS needs running sums over the ordered bins, and PromQL has no cumulative sum along a label. With
zero-padded bin labels and the bin count known from the config, the k-th running sum is a sum
over ``bin=~"00|01|...|k"``; one such term per bin, joined with ``or``, is a cumulative
distribution (O(bins^2) sample reads, on recorded series of a few hundred samples). This costs
no extra exported series, unlike exporting cumulative ("le"-style) counters would.

Replicas of one model version must share a reference profile (same ``reference_hash`` on
``mlmon_model_info``); the reference side is de-duplicated with ``max by``. When they do not (a
`reference: {capture: N}` model with replicas: each pod captures its own first N samples), summed
counts would be scored against a reference that is no pod's: the fleet rules refuse, recording no
counts for that version (`unless` the hashes agree), and MLMonReferenceMismatch says why.
"""

from __future__ import annotations

from typing import Any, Callable, NamedTuple

from exporter import catalog as c
from exporter.stats import drift
from exporter.config.model import MlmonConfig, ModelConfig, format_duration
from exporter.profiles.pca import ERROR_BINS

EPS = repr(drift.EPSILON)
TINY = repr(drift.TINY)
SCORES = ("psi", "js", "kl", "hellinger", "chisquare", "ks")


class Side(NamedTuple):
    """Features or the prediction: which series to read, and what the rules are called."""

    level: str  # grouping labels, e.g. model_version_feature
    by: str  # the same, as a PromQL label list
    stem: str  # mlmon_feature / mlmon_prediction
    counter: str
    ratio: str
    samples: str


def _stem(bin_counter: c.Metric) -> str:
    """The bin counter's name less `_bin_total`: recorded scores are named after the counters they read."""
    return bin_counter.name.removesuffix("_bin_total")


FEATURES = Side("model_version_feature", "model, model_version, feature", _stem(c.FEATURE_BIN),
                c.FEATURE_BIN.name, c.FEATURE_REFERENCE.name, c.FEATURE_REFERENCE_SAMPLES.name)
PREDICTION = Side("model_version", "model, model_version", _stem(c.PREDICTION_BIN_COUNT),
                  c.PREDICTION_BIN_COUNT.name, c.PREDICTION_REFERENCE.name, c.PREDICTION_REFERENCE_SAMPLES.name)
# The PCA reconstruction error of multivariate drift: one ordered histogram per version (alert_rules/fleet_multivariate.py).
MULTIVARIATE = Side("model_version", "model, model_version", _stem(c.MULTIVARIATE_ERROR_BIN),
                    c.MULTIVARIATE_ERROR_BIN.name, c.MULTIVARIATE_ERROR_REFERENCE.name,
                    c.MULTIVARIATE_REFERENCE_SAMPLES.name)

# Each class's predicted probability of a multiclass model (alert_rules/fleet_class_drift.py): every class numeric.
CLASSES = Side("model_version_class", "model, model_version, class", _stem(c.CLASS_PROBABILITY_BIN),
               c.CLASS_PROBABILITY_BIN.name, c.CLASS_PROBABILITY_REFERENCE.name,
               c.CLASS_PROBABILITY_REFERENCE_SAMPLES.name)

# Drift per segment value (models[].segments with drift: true): the same scores per attribute, segment and feature.
# The reference side has no segment labels; a recorded copy per segment gives it them (segment_reference_rules).
SEGMENTS = Side("model_version_attribute_segment_feature", "model, model_version, attribute, segment, feature",
                _stem(c.SEGMENT_FEATURE_BIN), c.SEGMENT_FEATURE_BIN.name,
                f"model_version_attribute_segment_feature_bin:{c.FEATURE_REFERENCE.name}:segment",
                f"model_version_attribute_segment_feature:{c.FEATURE_REFERENCE_SAMPLES.name}:segment")


def is_feature_side(side: Side) -> bool:
    """Whether the side's series carry a `feature` label (features, and features per segment)."""
    return side.by.endswith("feature")


def segment_features(model: ModelConfig) -> list[str]:
    """Features watched per segment value by any attribute of the model, in config order."""
    chosen = {n for s in model.segments if s.drift for n in (s.features or [f.name for f in model.features])}
    return [f.name for f in model.features if f.name in chosen]


def segment_models(models: list[ModelConfig], window: int) -> list[ModelConfig]:
    """Models with drift per segment, in the window their fleet rules are recorded for: the longest (as the
    drift alerts judge), since a segment holds a fraction of the traffic and each window costs as much again."""
    return [m for m in models if any(s.drift for s in m.segments) and window == max(m.drift.windows)]


def segment_reference_rules(window: int, models: list[ModelConfig]) -> list[dict[str, str]]:
    """The reference ratio and N of each feature, copied onto every (attribute, segment) its counters have."""
    select = f'model=~"{_regex([m.name for m in models])}"'
    w = format_duration(window)
    keys = "model, model_version, feature"
    seen = f"max by ({SEGMENTS.by}, bin) (0 * {SEGMENTS.counter}{{{select}}})"
    return [
        {"record": f"{SEGMENTS.ratio}{w}",
         "expr": f"{seen}\n+ on ({keys}, bin) group_left\nmax by ({keys}, bin) ({c.FEATURE_REFERENCE.name}{{{select}}})"},
        {"record": f"{SEGMENTS.samples}{w}",
         "expr": f"max by ({SEGMENTS.by}) ({seen})\n+ on ({keys}) group_left\n"
                 f"max by ({keys}) ({c.FEATURE_REFERENCE_SAMPLES.name}{{{select}}})"},
    ]


def windowed(side: Side, window: int) -> Side:
    """The segment side reads the reference copies recorded in its own window's group."""
    if side is not SEGMENTS:
        return side
    w = format_duration(window)
    return side._replace(ratio=f"{side.ratio}{w}", samples=f"{side.samples}{w}")


def rule_name(side: Side, score: str, window: int) -> str:
    """The recorded name of a fleet score, e.g. model_version_feature:mlmon_feature_psi:1h."""
    return f"{side.level}:{side.stem}_{score}:{format_duration(window)}"


def bins_name(side: Side, window: int) -> str:
    return f"{side.level}_bin:{side.stem}_bin:increase{format_duration(window)}"


def _regex(values: list[str]) -> str:
    return "|".join(values)


def _numeric_columns(model: ModelConfig, side: Side) -> tuple[list[str], int]:
    """Names of the numeric columns of a model on this side, and their largest bin count (with under/overflow)."""
    if side is FEATURES:
        numeric = [f for f in model.features if f.type == "numeric"]
        return [f.name for f in numeric], max((f.bins + 2 for f in numeric), default=0)
    if side is MULTIVARIATE:  # the error bins are fixed by the profile builder, not the config
        return ["error"], ERROR_BINS + 2
    if side is CLASSES:  # one binning per class, built with the prediction's bins (profiles/class_scores.py)
        return list(model.quality_classes), (model.prediction.bins or 10) + 2
    if is_feature_side(side):  # features per segment value
        chosen = set(segment_features(model))
        numeric = [f for f in model.features if f.type == "numeric" and f.name in chosen]
        return [f.name for f in numeric], max((f.bins + 2 for f in numeric), default=0)
    if model.prediction.type == "numeric":
        return [model.prediction.name], model.prediction.bins + 2
    return [], 0


def _cumulative(source: Callable[[str], str], by: str, bins: int, selector: str) -> str:
    """Running sums over zero-padded bins 00..bins-1: one term per bin, joined with `or`."""
    labels = [f"{i:02d}" for i in range(bins)]
    terms = []
    for k, label in enumerate(labels):
        inner = source(f'{selector},bin=~"{_regex(labels[: k + 1])}"')
        terms.append(f'label_replace(sum by ({by}) ({inner}), "bin", "{label}", "", "")')
    return "\n  or ".join(terms)


def reference_mismatch(select: str) -> str:
    """Model versions whose pods export more than one reference_hash."""
    hashes = f"count by (model, model_version, reference_hash) ({c.MODEL_INFO.name}{{{select}}})"
    return f"count by (model, model_version) ({hashes}) > 1"


def _side_rules(side: Side, window: int, models: list[ModelConfig],
                scores: tuple[str, ...] = SCORES) -> list[dict[str, str]]:
    w = format_duration(window)
    on = f"on({side.by})"
    select = f'model=~"{_regex([m.name for m in models])}"'
    counts = bins_name(side, window)
    total = f"{side.level}:{side.stem}_bin:increase{w}"
    share = f"{side.level}_bin:{side.stem}_bin:share{w}"
    ref = f"max by ({side.by}, bin) ({side.ratio}{{{select}}})"
    ref_n = f"max by ({side.by}) ({side.samples}{{{select}}})"
    q_eps, p_eps = f"clamp_min({share}, {EPS})", f"clamp_min({ref}, {EPS})"
    mid = f"(({share} + {ref}) / 2)"
    rules = [
        {"record": counts, "expr": f"sum by ({side.by}, bin) (increase({side.counter}{{{select}}}[{w}]))\n"
                                   f"unless on (model, model_version) ({reference_mismatch(select)})"},
        {"record": total, "expr": f"sum by ({side.by}) ({counts})"},
        {"record": share, "expr": f"{counts} / {on} group_left {total}"},
        {"record": rule_name(side, "psi", window),
         "expr": f"sum by ({side.by}) (({q_eps} - {p_eps}) * ln({q_eps} / {p_eps}))"},
        {"record": rule_name(side, "kl", window), "expr": f"sum by ({side.by}) ({share} * ln({q_eps} / {p_eps}))"},
        {"record": rule_name(side, "js", window),
         "expr": f"sqrt(clamp_min(sum by ({side.by}) ("
                 f"{ref} * ln(clamp_min({ref}, {TINY}) / clamp_min({mid}, {TINY}))"
                 f" + {share} * ln(clamp_min({share}, {TINY}) / clamp_min({mid}, {TINY}))) / 2, 0))"},
        {"record": rule_name(side, "hellinger", window),
         "expr": f"sqrt(clamp_min(1 - sum by ({side.by}) (sqrt({share} * {ref})), 0))"},
        # Two-sample chi-square in fractions: R N sum (p - q)^2 / (R p + N q), R = reference N.
        {"record": rule_name(side, "chisquare", window),
         "expr": f"sum by ({side.by}) (({ref} - {share}) ^ 2 / clamp_min("
                 f"{ref} * {on} group_left {ref_n} + {share} * {on} group_left {total}, {TINY}))"
                 f" * {on} {ref_n} * {on} {total}"},
    ]
    skipped = {rule_name(side, score, window) for score in SCORES if score not in scores}
    rules = [rule for rule in rules if rule["record"] not in skipped]
    ks_terms_q, ks_terms_p = [], []
    for model in models if "ks" in scores else []:
        names, bins = _numeric_columns(model, side)
        if not names:
            continue
        selector = f'model="{model.name}"' + (f',feature=~"{_regex(names)}"' if is_feature_side(side) else "")
        ks_terms_q.append(_cumulative(lambda m: f"{share}{{{m}}}", side.by, bins, selector))
        ks_terms_p.append(_cumulative(lambda m: f"max by ({side.by}, bin) ({side.ratio}{{{m}}})", side.by, bins, selector))
    if ks_terms_q:
        cumulative_q = f"{side.level}_bin:{side.stem}_bin:cumulative_share{w}"
        cumulative_p = f"{side.level}_bin:{side.stem}_reference:cumulative_ratio{w}"
        rules += [
            {"record": cumulative_q, "expr": "\n  or ".join(ks_terms_q)},
            {"record": cumulative_p, "expr": "\n  or ".join(ks_terms_p)},
            {"record": rule_name(side, "ks", window),
             "expr": f"max by ({side.by}) (abs({cumulative_q} - {cumulative_p}))"},
        ]
    return rules


side_rules = _side_rules  # for the modules that add a side's rules after their own (fleet_class_drift.py)


def fleet_recording_rules(config: MlmonConfig) -> list[dict[str, Any]]:
    """One rule group per configured window: fleet PSI, JS, KL, Hellinger, chi-square and KS-D.

    Each group evaluates in order, so every score reads the per-bin fleet counts recorded at the
    same evaluation. Group names start with ``mlmon-fleet-drift-``.
    """
    windows = sorted({w for m in config.models for w in m.drift.windows})
    groups = []
    for window in windows:
        models = [m for m in config.models if window in m.drift.windows]
        rules = _side_rules(FEATURES, window, models) + _side_rules(PREDICTION, window, models)
        rules += _side_rules(MULTIVARIATE, window, models, scores=("psi", "ks"))
        segmented = segment_models(models, window)
        if segmented:
            rules += segment_reference_rules(window, segmented) + _side_rules(windowed(SEGMENTS, window), window, segmented)
        groups.append({"name": f"mlmon-fleet-drift-{format_duration(window)}", "rules": rules})
    return groups
