"""How many series the generated recording rules add to Prometheus, per model version served.

Each rule's result has one series per value of its level (`model_version_feature` -> one per feature
of each version), restricted to the models its expression selects; KS and cumulative-share rules keep
only numeric columns, the chi-square degrees of freedom only categorical ones, and a rule that builds
one series per quality metric (`label_replace` arms) has that many per version. Rejection reasons
count every reason (a ceiling: Prometheus records only those seen). Used by `mlmon config check`.
"""

from __future__ import annotations

import re

from exporter.config.model import MlmonConfig, ModelConfig
from exporter.ingest.decode import REJECTION_REASONS
from exporter.profiles.pca import ERROR_BINS
from exporter.state.quality import CONFUSION, SEGMENT_REGRESSION_SUMS
from exporter.tooling.series_budget import Column, segment_drift_columns

from alert_rules.recording import recording_groups
from alert_rules.segment_quality import RATIOS, REGRESSION_SCORES
from alert_rules.rules import RuleGroup

_MODELS = re.compile(r'\bmodel=~?"([^"]+)"')


def _segment_series(model: ModelConfig, cols: list[Column], bins: bool, kind: str | None) -> int:
    """Series of a per-segment rule in one version: per attribute with drift, (values + 1) x its features' bins
    (or features), restricted to numeric or categorical features where the rule is."""
    total = 0
    for values, chosen in segment_drift_columns(model, cols):
        if kind is not None:
            chosen = [c for c in chosen if c.numeric == (kind == "numeric")]
        total += values * (sum(c.bins for c in chosen) if bins else len(chosen))
    return total


def _segment_quality_series(model: ModelConfig, level: str, expr: str) -> int:
    """Series of a quality-per-segment rule in one version: (values + 1) of each attribute that counts quality per
    value (binary: every one; others: quality: true) x the cells or metrics of the rule. A rule reads one task's
    counters (the binary ratios select no model: they read the binary counts only)."""
    task = "binary_classification" if "segment_confusion" in expr else \
        "multiclass_classification" if "segment_class_confusion" in expr else "regression"
    if model.task != task:
        return 0
    binary = model.task == "binary_classification"
    values = sum(len(s.values) + 1 for s in model.segments if binary or s.quality)
    if level.endswith("_outcome"):
        return values * len(CONFUSION)
    if level.endswith("_actual_predicted"):
        return values * (len(model.quality_classes) + 1) ** 2
    if level.endswith("_sum"):
        return values * len(SEGMENT_REGRESSION_SUMS)
    per = len(RATIOS) if binary else 2 if model.task == "multiclass_classification" else len(REGRESSION_SCORES)
    return values * per


def recorded_series(config: MlmonConfig, columns: dict[str, list[Column]], versions: int = 1,
                    explained: dict[str, tuple[bool, int]] | None = None, groups: list[RuleGroup] | None = None) -> int:
    """Series of every recording rule, with `versions` live versions per model; `explained` is each model's
    (reference importance known, phi bins) (exporter.tooling.series_budget.explained; default: neither)."""
    names = [m.name for m in config.models]
    models = {m.name: m for m in config.models}
    total = 0
    for group in recording_groups(config) if groups is None else groups:
        for rule in group.rules:
            level = rule.record.split(":")[0]
            selected = {n for match in _MODELS.findall(rule.expr) for n in match.split("|")} & set(names) or set(names)
            for model in selected:
                cols = columns[model]
                features, prediction = cols[:-1], cols[-1]
                numeric_only = "_ks:" in rule.record or "cumulative" in rule.record
                if "chisquare_dof" in rule.record:
                    feats = [c for c in features if not c.numeric]
                    pred_ok = not prediction.numeric
                elif numeric_only:
                    feats = [c for c in features if c.numeric]
                    pred_ok = prediction.numeric
                else:
                    feats, pred_ok = features, True
                if level.startswith("model_version_attribute_segment_feature"):  # drift per segment value
                    kind = "categorical" if "chisquare_dof" in rule.record else "numeric" if numeric_only else None
                    total += versions * _segment_series(models[model], cols, level.endswith("_bin"), kind)
                elif level.startswith("model_version_attribute_segment_"):  # quality per segment value
                    total += versions * _segment_quality_series(models[model], level, rule.expr)
                elif level.startswith("model_version_class"):  # per-class probability drift (multiclass models)
                    classes = len(models[model].quality_classes)
                    bins = (models[model].prediction.bins or 10) + 2  # a ceiling: a binning may collapse edges
                    total += versions * classes * (bins if level.endswith("_bin") else 1)
                elif "multivariate" in rule.record:  # one error histogram per version (a ceiling: models with a PCA basis)
                    total += versions * (ERROR_BINS + 2 if level.endswith("_bin") else 1)
                elif level == "model":
                    total += 1
                elif level == "model_reason":
                    total += len(REJECTION_REASONS)
                elif level == "model_version_feature":
                    total += versions * len(feats)
                elif level == "model_version_feature_bin" and "attribution" in rule.record:
                    total += versions * (explained or {}).get(model, (False, 0))[1]
                elif "drift_impact" in rule.record:  # only models with a reference importance record it
                    total += versions * len(features) * (explained or {}).get(model, (False, 0))[0]
                elif level == "model_version_feature_bin":
                    total += versions * sum(c.bins for c in feats)
                elif level == "model_version_bin":
                    total += versions * prediction.bins * pred_ok
                elif level == "model_version_variant_bin":  # champion vs challenger (champion_rules.py)
                    total += versions * prediction.bins
                elif level == "model_bin":
                    total += prediction.bins
                elif level == "model_version_variant_outcome":
                    total += versions * len(CONFUSION)
                elif level == "model_metric":
                    total += 1
                elif level == "model_version_outcome":
                    total += versions * len(CONFUSION)
                elif level == "model_version_metric":
                    total += versions * max(1, rule.expr.count("label_replace("))
                else:  # model_version and other per-version levels
                    total += versions * (pred_ok if level == "model_version" and "prediction" in rule.record else 1)
    return total
