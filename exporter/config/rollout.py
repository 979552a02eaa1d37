"""`models[].rollout`: how `mlmon rollouts build` gates a canary of the model (docs/rollouts.md).

The gate compares a canary version with the model's champion (its `default` variant) and with
the reference. Versions get their variant from `models[].versions.variants`, else from KServe's
`Ce-Endpoint`, else `default`; `mlmon_model_version_variant_info` exports it.
"""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

VARIANTS = ("default", "canary", "shadow")
Variant = Literal["default", "canary", "shadow"]
# Binary-classification proportions a two-proportion z can compare (quality_math's PROPORTIONS).
GATE_METRICS = ("accuracy", "precision", "recall", "specificity", "false_positive_rate", "false_negative_rate")
LOWER_IS_BETTER = frozenset({"false_positive_rate", "false_negative_rate"})
WINDOW_PATTERN = r"^[0-9]*[1-9][0-9]*[smhdw]$"


class RolloutConfig(BaseModel):
    """The rollout gate of one model: the arms' window, the quality metric, the test level and minimum N."""

    model_config = ConfigDict(extra="forbid")

    window: str = Field("1h", pattern=WINDOW_PATTERN,
                        description="Window both arms are counted over (champion vs canary rules).")
    quality_metric: Literal[
        "accuracy", "precision", "recall", "specificity", "false_positive_rate", "false_negative_rate"
    ] = Field("false_negative_rate", description="The quality proportion the two-proportion z compares (binary models).")
    alpha: Literal[0.05, 0.01] = Field(
        0.01, description="Level of the gate's tests: one-sided z, and the chi-square critical value (95% or 99%)."
    )
    min_samples: int = Field(
        500, ge=1, description="Per arm: below this many predictions (or labelled trials) the gate is inconclusive."
    )
    max_drift_grade: int = Field(
        1, ge=0, le=2, description="Highest fleet drift grade vs the reference the canary may have (2 = warning fails).")
    interval: str = Field("5m", pattern=WINDOW_PATTERN, description="Time between two measurements of the gate.")
    count: int = Field(3, ge=1, le=100, description="Measurements per analysis (Argo `count`).")
    shadow_pending: int = Field(
        10_000, ge=1, le=10_000_000,
        description="Shadow pairing: predictions held by id until the other arm's arrives (oldest evicted, counted).",
    )
    shadow_ttl: float = Field(60.0, gt=0, description="Shadow pairing: seconds a prediction waits for its partner.")
    prometheus_address: str = Field(
        "http://prometheus-operated.monitoring.svc:9090", min_length=1,
        description="Prometheus the gate queries (an Argo template argument; Flagger's provider address).",
    )
