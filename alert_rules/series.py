"""How many series the generated recording rules add to Prometheus, per model version served.

Each rule's result has one series per value of its level (`model_version_feature` -> one per feature
of each version), restricted to the models its expression selects; KS and cumulative-share rules keep
only numeric columns, the chi-square degrees of freedom only categorical ones, and a rule that builds
one series per quality metric (`label_replace` arms) has that many per version. Rejection reasons
count every reason (a ceiling: Prometheus records only those seen). Used by `mlmon config check`.
"""

from __future__ import annotations

import re

from exporter.config.model import MlmonConfig
from exporter.ingest.decode import REJECTION_REASONS
from exporter.state.quality import CONFUSION
from exporter.tooling.series_budget import Column

from alert_rules.recording import recording_groups

_MODELS = re.compile(r'\bmodel=~?"([^"]+)"')


def recorded_series(config: MlmonConfig, columns: dict[str, list[Column]], versions: int = 1) -> int:
    """Series of every recording rule, with `versions` live versions per model."""
    names = [m.name for m in config.models]
    total = 0
    for group in recording_groups(config):
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
                if level == "model":
                    total += 1
                elif level == "model_reason":
                    total += len(REJECTION_REASONS)
                elif level == "model_version_feature":
                    total += versions * len(feats)
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
