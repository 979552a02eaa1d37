"""The `attributions:` section of a model: per-record feature attributions (SHAP-like phi values).

Kept in its own module so exporter/config/model.py only gains one field. What is computed from
these settings is described in docs/explainability.md.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class AttributionsConfig(BaseModel):
    """Explainability signals: counters of each record's `attributions` and the attribution-drift verdict."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    enabled: bool = Field(
        False, description="Count each record's `attributions: {feature: phi}` (per feature: N, sums by sign, "
        "squares, bins); off: a record's attributions are ignored and cost nothing.")
    bins: int = Field(10, ge=2, le=50, description="Equal-mass phi bins per feature, built by `mlmon profile build`.")
    prefix: str = Field(
        "attr_", min_length=1, max_length=32,
        description="Reference data columns `<prefix><feature>` hold that feature's reference attribution.")
    ndcg_threshold: float = Field(
        0.9, gt=0, le=1, description="nDCG of the live importance ranking below this is attribution drift "
        "(SageMaker Clarify's default).")
    share_tv_threshold: float = Field(
        0.2, gt=0, le=1, description="Total-variation distance of the live importance shares from the "
        "reference's at or above this is attribution drift.")
    min_samples: int = Field(500, ge=1, description="No attribution verdict (and no alert) below this many attributed records.")
    output: str = Field(
        "attributions", min_length=1, max_length=64,
        description="KServe/OIP: the response output of this name carries the attributions (one row per "
        "instance, columns in serving order).")
