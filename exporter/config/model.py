"""The mlmon.yaml contract: one typed model, validated on load, shared by every part.

The exporter, the dashboard generator and the rule generator all read a config through
:func:`load_config`, so a threshold written once here is the same number everywhere.

    >>> cfg = load_config("examples/mlmon.yaml")
    >>> cfg.models[0].drift.warning
    0.1

Errors are collected by :class:`ConfigError` with the exact place and a hint, e.g.
``models[0].features[1].type: 'categoric' is not one of numeric, categorical, boolean``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    field_validator,
    model_validator,
    PrivateAttr,
    WithJsonSchema,
)

from exporter.config.alerting import AlertingConfig, reference_problems
from exporter.config.attributions import AttributionsConfig
from exporter.config.errors import ConfigError, format_validation_error
from exporter.config.links import LinksConfig
from exporter.config.names import Name, repeated
from exporter.config.rollout import RolloutConfig, Variant

DURATION_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}

# Chosen outside 9100-9999, the range of Prometheus's default-port registry, which is fully
# allocated to other exporters; 8710/8711 are not used by any well-known service.
DEFAULT_METRICS_LISTEN = "0.0.0.0:8710"
DEFAULT_INGEST_LISTEN = "127.0.0.1:8711"


def parse_duration(value: Any) -> int:
    """Parse a Prometheus-style duration ("30s", "5m", "1h", "1d") into whole seconds."""
    if isinstance(value, bool):
        raise ValueError("expected a duration like 5m, 1h or 1d")
    if isinstance(value, int):
        if value <= 0:
            raise ValueError("a duration must be positive")
        return value
    match = re.fullmatch(r"(\d+)([smhdw])", str(value).strip())
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{value!r} is not a duration like 30s, 5m, 1h or 1d")
    return int(match.group(1)) * DURATION_UNITS[match.group(2)]


def format_duration(seconds: int) -> str:
    """The shortest Prometheus duration string for a number of seconds (3600 -> "1h"), in days at most.

    Never weeks: people write `7d`, and a `window="1w"` label would not match their `window="7d"` queries.
    """
    for unit, size in sorted(DURATION_UNITS.items(), key=lambda item: -item[1]):
        if unit == "w":
            continue
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    raise AssertionError("unreachable: seconds is a whole number")


# The schema says what a user may write ("5m" or seconds), not the int it becomes after parsing.
DURATION_SCHEMA = {"anyOf": [{"type": "string", "pattern": r"^[0-9]*[1-9][0-9]*[smhdw]$"}, {"type": "integer", "minimum": 1}]}
Duration = Annotated[int, BeforeValidator(parse_duration), WithJsonSchema(DURATION_SCHEMA)]


WILDCARD_HOSTS = {"0.0.0.0", "::", "[::]", ""}


def _listeners_clash(a: str, b: str) -> bool:
    """Same port and hosts that overlap (equal, or one of them listens on every address)."""
    host_a, _, port_a = a.rpartition(":")
    host_b, _, port_b = b.rpartition(":")
    if port_a != port_b or port_a == "0":  # port 0: each listener gets its own free port
        return False
    return host_a == host_b or host_a in WILDCARD_HOSTS or host_b in WILDCARD_HOSTS


def _check_listen(value: str) -> str:
    host, sep, port = value.rpartition(":")
    if not sep or not host or not port.isdigit() or not 0 < int(port) < 65536:
        raise ValueError(f"{value!r} is not HOST:PORT (e.g. 0.0.0.0:8710)")
    return value


# A pending prediction costs ~280 bytes of dict slot, tuple and floats plus its id, and its joined
# tombstone ~100 more (measured with tracemalloc; docs/ingest.md). The store may use at most half of
# the chart's 256Mi memory limit, whatever the ids look like.
PENDING_ENTRY_BYTES = 400
# Label delay buckets, seconds: a second to 90 days (a chargeback arrives weeks to months late).
DEFAULT_DELAY_BUCKETS = (1, 10, 60, 300, 900, 3600, 21600, 86400, 259200, 604800, 1209600, 2592000, 5184000, 7776000)
PENDING_MEMORY_BUDGET = 128 * 1024 * 1024


class Strict(BaseModel):
    """Base for every config section: unknown keys are errors, so typos never pass silently."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class LabelStoreConfig(Strict):
    """Where predictions wait for their labels: this process (memory) or a Redis/Valkey shared by replicas."""

    backend: Literal["memory", "redis"] = Field(
        "memory", description="memory: each replica holds its own; redis: one store for every replica (docs/quality.md)."
    )
    url: str | None = Field(None, description="redis://[:password@]host:port/db (rediss:// for TLS); backend redis only.")
    key_prefix: str = Field("mlmon:", max_length=64, description="Prefix of every Redis key; one per mlmon fleet sharing a db.")
    timeout: float = Field(
        0.25, gt=0, le=10, description="Seconds a Redis call may take before it counts as unavailable (never blocks ingest longer)."
    )
    retry_interval: float = Field(
        2.0, gt=0, le=300, description="Seconds to wait after a Redis failure before trying again (puts and labels are counted meanwhile)."
    )

    @model_validator(mode="after")
    def _url_for_redis(self) -> LabelStoreConfig:
        if self.backend == "redis" and not self.url:
            raise ValueError("label_store.backend redis needs a url, e.g. redis://redis:6379/0")
        if self.url and not re.match(r"^(redis|rediss|unix)://", self.url):
            raise ValueError(f"label_store.url {self.url!r} must start with redis://, rediss:// or unix://")
        return self


class ExporterConfig(Strict):
    """The sidecar process: where it listens and the limits it enforces (each hit is counted)."""

    metrics_listen: str = Field(DEFAULT_METRICS_LISTEN, description="HOST:PORT for /metrics, scraped by Prometheus.")
    ingest_listen: str = Field(DEFAULT_INGEST_LISTEN, description="HOST:PORT for the ingest API; loopback by default.")
    max_request_bytes: int = Field(10 * 1024 * 1024, gt=0, description="Larger request bodies get 413.")
    max_records_per_request: int = Field(100_000, gt=0, description="Larger batches get 413.")
    series_budget: int = Field(
        20000, gt=0, description="`mlmon config check` warns when one exporter would export more series than this "
        "(docs/kubernetes.md: the Prometheus memory it implies).",
    )
    max_versions_per_model: int = Field(
        10, gt=0, description="Distinct model_version values held per model (see models[].versions for eviction)."
    )
    max_label_value_length: int = Field(64, gt=0, description="Longer model_version strings are rejected.")
    max_reported_rejections: int = Field(20, ge=0, description="Rejected records listed with reasons per response.")
    window_slots: int = Field(
        60, ge=2, le=1440, description="Slots per time window: a 1h window with 60 slots forgets minute by minute."
    )
    max_pending_predictions: int = Field(
        100_000, gt=0, le=10_000_000,
        description="Predictions kept by id until their label arrives; the oldest is evicted (and counted) beyond this.",
    )
    label_ttl: Duration = Field(86400, description="How long a prediction waits for its label before it is evicted.")
    label_store: LabelStoreConfig = Field(
        default_factory=LabelStoreConfig, description="The pending-prediction store: memory (default) or redis."
    )
    state_dir: str | None = Field(
        None,
        description="Folder for state snapshots (relative to this file), restored at start: windows, counters, "
        "pending predictions survive restarts. Unset: state lives in memory only. An emptyDir survives container "
        "restarts, a PVC pod restarts.",
    )
    snapshot_interval: Duration = Field(30, description="How often the state is snapshotted (and once more at shutdown).")
    # Limits checked while a body is decoded, before any state changes (docs/ingest.md#limits).
    max_string_length: int = Field(
        256, gt=0, le=65536,
        description="Longest category, class or id: a longer category is a type error, a longer id or class "
        "rejects its record (value_too_long).",
    )
    max_nesting_depth: int = Field(
        32, ge=4, le=512, description="Deepest nesting of [ and { in a body (brackets in strings count); deeper gets 400."
    )
    max_decoded_bytes: int = Field(
        96 * 1024 * 1024, gt=0,
        description="Estimated memory of a parsed body (measured on its structure before parsing); larger gets 413.",
    )
    max_abs_value: float = Field(
        1e15, gt=0, le=1e100,
        description="Predictions and labels of larger magnitude are counted as data-quality events, never summed.",
    )
    idempotency_keys: int = Field(
        1000, ge=0, le=100_000,
        description="Answers remembered by Idempotency-Key so a retried batch is not counted twice; 0 turns it off.",
    )

    type_errors: Literal["count", "parse", "reject"] = Field(
        "count",
        description="A feature value of the wrong type (\"12\" for a number): count (counted, reported in the answer, "
        "record kept), parse (numeric and true/false strings read as such; other type errors counted) or reject "
        "(its record is rejected with type_error).",
    )
    cloudevents_pending: int = Field(
        1000, ge=1, le=1_000_000,
        description="KServe logger halves (request or response) held by ce-id until the other arrives; oldest evicted.",
    )
    cloudevents_pending_bytes: int = Field(
        64 * 1024 * 1024, gt=0, description="Bytes of bodies those held halves may take; oldest evicted beyond."
    )
    cloudevents_ttl: Duration = Field(60, description="A half whose other half has not come within this expires.")

    _check_listeners = field_validator("metrics_listen", "ingest_listen")(lambda cls, v: _check_listen(v))

    # The HTTP server's own limits (docs/security.md). Each applies to each listener on its own,
    # so a flood on one port never starves the other. Every hit is counted in mlmon_limit_hits_total.
    max_connections: int = Field(
        512, gt=0, le=60_000,
        description="Open connections per listener; one more is answered 503 and closed at once (limit `connections`).",
    )
    header_timeout: Duration = Field(
        10, description="Time from connecting (or from the first byte of a keep-alive request) to the end of the "
                        "request headers; slower clients are cut off with 408 (limit `header_timeout`).",
    )
    body_timeout: Duration = Field(
        30, description="Time to receive a whole request body once its headers are in; slower bodies get 408 "
                        "(limit `body_timeout`).",
    )
    idle_timeout: Duration = Field(
        120, description="A keep-alive connection with no request for this long is closed; longer than the scrape "
                         "interval so Prometheus can reuse its connection.",
    )
    max_header_bytes: int = Field(
        65536, ge=1024, description="Request line plus headers; larger is 431 and closed (limit `header_bytes`).",
    )
    max_inflight_request_bytes: int = Field(
        64 * 1024 * 1024, gt=0,
        description="Request body bytes held at once per listener (read but not yet answered); beyond it new bodies get "
                    "503 with Retry-After (limit `inflight_request_bytes`). Bounds memory under many concurrent posters.",
    )
    ingest_threads: int = Field(
        1, ge=1, le=64, description="Worker threads for ingest requests. One is as fast as more (the GIL), holds one "
                                    "decoded body at a time and leaves the GIL to scrapes more often."
    )
    metrics_threads: int = Field(
        2, ge=1, le=64, description="Worker threads of the metrics listener, separate so ingest load never queues a scrape."
    )
    shutdown_grace: Duration = Field(
        10, description="On SIGTERM: stop accepting, let requests in flight finish for at most this long, then exit. "
                        "Keep it below the pod's terminationGracePeriodSeconds (30 s by default).",
    )
    ingest_bearer_token_file: str | None = Field(
        None, description="File holding a bearer token every ingest request must send (`Authorization: Bearer ...`); "
                          "re-read when it changes. `mlmon serve --ingest.bearer-token-file` overrides it.",
    )
    admin_bearer_token_file: str | None = Field(
        None, description="File holding a bearer token that admits the metrics listener's admin requests (reference "
                          "promote and capture reset, /-/reload; docs/reference.md); relative to this file.",
    )

    @model_validator(mode="after")
    def _listeners_differ(self) -> ExporterConfig:
        # Two listeners on one port would fail at start with "address in use" by mlmon itself.
        if _listeners_clash(self.metrics_listen, self.ingest_listen):
            raise ValueError(
                f"metrics_listen {self.metrics_listen!r} and ingest_listen {self.ingest_listen!r} use the same "
                "address; give them different ports (defaults: 0.0.0.0:8710 and 127.0.0.1:8711)"
            )
        return self

    @model_validator(mode="after")
    def _pending_fits_in_memory(self) -> ExporterConfig:
        worst = self.max_pending_predictions * (PENDING_ENTRY_BYTES + self.max_string_length)
        if self.label_store.backend == "memory" and worst > PENDING_MEMORY_BUDGET:  # redis holds them elsewhere
            most = PENDING_MEMORY_BUDGET // (PENDING_ENTRY_BYTES + self.max_string_length)
            raise ValueError(
                f"max_pending_predictions={self.max_pending_predictions} with ids up to max_string_length="
                f"{self.max_string_length} characters may take {worst >> 20} MiB; at most {most} fit in "
                f"{PENDING_MEMORY_BUDGET >> 20} MiB (lower one of them)"
            )
        return self


class FeatureConfig(Strict):
    """One model input. Numeric features are binned at reference quantiles; categorical keep top-K values."""

    name: Name = Field(description="The key of this feature in a record's `features`.")
    type: Literal["numeric", "categorical", "boolean"] = Field(description="How values are checked and binned.")
    bins: int = Field(10, ge=2, le=50, description="Equal-mass bins inside the reference range (numeric only).")
    max_categories: int = Field(
        20, ge=1, le=500, description="Top-K reference categories kept; the rest fold into __other__."
    )
    importance: float | None = Field(
        None, ge=0, le=1e12, description="Reference global importance (e.g. mean |SHAP|); weighs this feature's drift "
        "in the drift-impact ranking (docs/explainability.md). Overrides the profile's.")


class PredictionConfig(Strict):
    """The model output: a score or value (numeric) or a class (categorical)."""

    name: Name = Field("prediction", description="Column name in reference data; label value of prediction series.")
    type: Literal["numeric", "categorical"] = Field("numeric", description="numeric: a score or value; categorical: a class.")
    bins: int = Field(10, ge=2, le=50, description="Equal-mass bins for a numeric prediction.")
    classes: list[Name] | None = Field(None, description="Known classes (multiclass); others fold into __other__.")


class ServingConfig(Strict):
    """How serving platforms' bodies (OIP v2, KServe v1, the KServe logger) map onto this model (docs/ingest.md)."""

    names: list[str] = Field(
        default_factory=list, max_length=20,
        description="InferenceService or served-model names that mean this model (besides its own name).",
    )
    columns: list[Name] | None = Field(
        None, description="The feature of each column of a 2-D input or a list instance (default: features in order).",
    )


DriftMethod = Literal["psi", "js", "kl", "hellinger", "chisquare", "ks", "wasserstein"]


class DriftConfig(Strict):
    """Which score decides drift, its thresholds, and the windows it is computed over."""

    method: DriftMethod = Field("psi", description="The score that decides drift (see docs/drift.md).")
    warning: float = Field(0.1, gt=0, description="Score at or above which a feature counts as drifted (warning).")
    critical: float = Field(0.25, gt=0, description="Score at or above which drift is critical.")
    min_samples: int = Field(500, ge=1, description="No drift verdict (and no alert) below this many samples.")
    windows: list[Duration] = Field(
        default_factory=lambda: [3600], min_length=1, max_length=5, description="Time windows scores are computed over."
    )
    drifted_share: float = Field(0.5, gt=0, le=1, description="Share of drifted features that flags the dataset.")
    # A feature is drifted when N >= min_samples, its test (KS numeric, chi-square categorical)
    # gives p < alpha, and its `method` score >= min_effect. docs/drift.md shows why: a PSI
    # threshold alone misses a 10-point swap between two even categories (PSI 0.04) and
    # flags noise on many-bin features (PSI ~ chi2(bins-1)/N); a p-value alone flags trivia at large N.
    alpha: float = Field(0.001, gt=0, lt=1, description="Test p-value below which the window differs from the reference.")
    min_effect: float | None = Field(
        None, gt=0, description="Smallest `method` score that counts as drift once significant (default: warning / 10)."
    )
    export: list[DriftMethod] = Field(
        default_factory=lambda: ["psi", "ks", "chisquare", "wasserstein"],
        description="Scores exported per feature and window (each costs series); `method` is always exported.",
    )

    @property
    def effect_floor(self) -> float:
        return self.min_effect if self.min_effect is not None else self.warning / 10

    @model_validator(mode="after")
    def _ordered(self) -> DriftConfig:
        if self.critical < self.warning:
            raise ValueError(f"critical ({self.critical}) must be >= warning ({self.warning})")
        if len(set(self.windows)) != len(self.windows):
            raise ValueError("windows must be distinct")
        return self


class CaptureReference(Strict):
    """Build the reference from the first N live samples of each model version."""

    capture: int = Field(gt=0, le=1_000_000, description="Samples per model version to build the reference from.")


# Model-quality metrics a config can set thresholds on, per task (see docs/quality.md).
BINARY_METRICS = (
    "accuracy", "precision", "recall", "f1", "specificity", "false_positive_rate", "false_negative_rate",
    "roc_auc", "brier", "log_loss", "expected_cost",
)
MULTICLASS_METRICS = ("accuracy", "macro_precision", "macro_recall", "macro_f1", "micro_f1", "macro_specificity",
                      "macro_roc_auc")
REGRESSION_METRICS = ("mae", "rmse", "mape", "bias", "r2", "msle", "rmsle")
QUALITY_METRICS = {
    "binary_classification": BINARY_METRICS,
    "multiclass_classification": MULTICLASS_METRICS,
    "regression": REGRESSION_METRICS,
}
# Segment values end up as label values; the same safe alphabet as model_version, digits first allowed.
SegmentValue = Annotated[str, Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,63}$")]


class MetricBound(Strict):
    """Where a quality metric stops being acceptable: below `min` or above `max` (either or both)."""

    min: float | None = Field(None, description="The metric must stay at or above this.")
    max: float | None = Field(None, description="The metric must stay at or below this.")

    @model_validator(mode="after")
    def _some_bound(self) -> MetricBound:
        if self.min is None and self.max is None:
            raise ValueError("give `min`, `max` or both")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class CostModel(Strict):
    """What an error costs the business; exported as the expected cost per prediction."""

    false_negative: float = Field(ge=0, description="Cost of one missed positive (e.g. an undetected fraud).")
    false_positive: float = Field(ge=0, description="Cost of one false alarm (e.g. a blocked good customer).")


class QualityConfig(Strict):
    """How predictions are scored once labels arrive, and which metrics matter for the business."""

    decision_threshold: float = Field(
        0.5, gt=0, lt=1, description="Binary: a score at or above this is a positive prediction."
    )
    classes: list[Name] | None = Field(
        None, max_length=50, description="Multiclass: the classes scored (default prediction.classes); others are __other__."
    )
    thresholds: dict[str, MetricBound] = Field(
        default_factory=dict, description="Business thresholds {metric: {min, max}}; see docs/quality.md for names."
    )
    cost: CostModel | None = Field(None, description="Binary: cost per false negative / false positive.")
    windows: list[Duration] | None = Field(
        None, max_length=5, description="Windows (by label arrival) for quality gauges; default drift.windows."
    )
    score_bins: int = Field(
        100, ge=10, le=1000, description="Score histogram bins (logit-spaced) behind ROC AUC and estimates; multiclass: "
        "per class, capped at 2000 / classes."
    )
    label_delay_buckets: list[Duration] = Field(
        default_factory=lambda: list(DEFAULT_DELAY_BUCKETS), min_length=1, max_length=30,
        description="Upper bounds of mlmon_label_delay_seconds buckets (default 1s to 90d); raise label_ttl to match.",
    )

    @field_validator("label_delay_buckets")
    @classmethod
    def _increasing(cls, value: list[int]) -> list[int]:
        if any(b <= a for a, b in zip(value, value[1:])):
            raise ValueError("label_delay_buckets must be strictly increasing, e.g. [1m, 1h, 1d, 7d, 30d, 90d]")
        return value


class SegmentConfig(Strict):
    """A sensitive attribute read from a record's `segments`; values outside `values` fold into __other__."""

    attribute: Name = Field(description="The key in a record's `segments` object, e.g. country.")
    values: list[SegmentValue] = Field(min_length=1, max_length=50, description="Values tracked one by one.")
    drift: bool = Field(
        False, description="Also keep bin counters per value (values + __other__) of `features`: drift per segment "
        "(docs/drift.md, \"Drift per segment\"); any task.",
    )
    quality: bool = Field(
        False, description="Regression and multiclass: also keep the labelled sums per value (values + __other__): "
        "quality per segment (docs/quality.md, \"Quality per segment value\"). Binary models always have it (the bias "
        "counters).",
    )
    features: list[Name] | None = Field(
        None, max_length=500, description="With drift: the features watched per segment value (default all; "
        "each costs its bins x (values + 1) counters).",
    )

    @model_validator(mode="after")
    def _distinct(self) -> SegmentConfig:
        if len(set(self.values)) != len(self.values):
            raise ValueError(f"segment {self.attribute!r}: values must be distinct")
        return self


def check_quality(model: ModelConfig) -> None:
    """Cross-field rules of `quality:` and `segments:` that depend on the task."""
    allowed = QUALITY_METRICS[model.task]
    unknown = sorted(set(model.quality.thresholds) - set(allowed))
    if unknown:
        raise ValueError(f"quality.thresholds: {', '.join(unknown)} not a {model.task} metric ({', '.join(allowed)})")
    if model.task == "multiclass_classification" and not model.quality_classes:
        raise ValueError("multiclass_classification needs quality.classes or prediction.classes (bounded class labels)")
    if model.quality.cost is not None and model.task != "binary_classification":
        raise ValueError("quality.cost applies to binary_classification only")
    if any(not (s.drift or s.quality) for s in model.segments) and model.task != "binary_classification":
        raise ValueError("segments without `drift: true` or `quality: true` (bias measures) apply to "
                         "binary_classification only")
    attributes = [s.attribute for s in model.segments]
    if len(set(attributes)) != len(attributes):
        raise ValueError("segments: attributes must be distinct")
    names = {f.name for f in model.features}
    for segment in model.segments:
        unknown = sorted(set(segment.features or ()) - names)
        if unknown:
            raise ValueError(f"segment {segment.attribute!r}: features {', '.join(unknown)} are not features of the model")
        if segment.features is not None and not segment.drift:
            raise ValueError(f"segment {segment.attribute!r}: `features` needs `drift: true`")
    windows = model.quality.windows
    if windows is not None and len(set(windows)) != len(windows):
        raise ValueError("quality.windows must be distinct")


# A model_version as the ingest API accepts it: a label value of the safe alphabet (docs/ingest.md).
VersionName = Annotated[str, Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.:+-]{0,63}$")]


class VersionsConfig(Strict):
    """Which `model_version` values a model accepts: each one becomes a label value of every series of the model,
    so an unbounded or client-invented set of versions is unbounded series in Prometheus (docs/ingest.md)."""

    allow: list[VersionName] = Field(
        default_factory=list, max_length=1000, description="Exact versions accepted (with `pattern`: either matches)."
    )
    pattern: str | None = Field(
        None, description="Regular expression a version must match, anchored at both ends like a relabel `regex`."
    )
    max_new_per_minute: int = Field(
        5, ge=1, le=100_000, description="New versions admitted per minute (a burst of this many, then refilled evenly)."
    )
    evict_idle_after: Duration = Field(
        600, description="At max_versions_per_model, a new version may evict one only when it has been idle this long."
    )
    variants: dict[VersionName, Variant] = Field(
        default_factory=dict, max_length=100,
        description="Version -> default, canary or shadow (else KServe's Ce-Endpoint, else default; docs/rollouts.md).",
    )

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        if value is not None:
            try:
                re.compile(value)
            except re.error as error:
                raise ValueError(f"pattern {value!r} is not a regular expression ({error})") from None
        return value

    def admits(self, version: str) -> bool:
        """Whether the version may be held at all; with neither `allow` nor `pattern`, every version may."""
        if not self.allow and self.pattern is None:
            return True
        return version in self.allow or (self.pattern is not None and re.fullmatch(self.pattern, version) is not None)


class ModelConfig(Strict):
    """One monitored model: its inputs, its output, its reference and its drift thresholds."""

    name: Name = Field(description="The `model` of a record; a label value on every series of this model.")
    task: Literal["binary_classification", "multiclass_classification", "regression"] = Field(
        description="Decides which quality metrics apply."
    )
    reference: str | CaptureReference = Field(description="Path to a profile (relative to this file) or {capture: N}.")
    features: list[FeatureConfig] = Field(min_length=1, max_length=500, description="The model inputs to watch.")
    prediction: PredictionConfig = Field(default_factory=PredictionConfig, description="The model output.")
    drift: DriftConfig = Field(default_factory=DriftConfig, description="Drift method, thresholds and windows.")
    team: Name | None = Field(None, description="Owner; becomes the `team` label on alerts.")
    quality: QualityConfig = Field(
        default_factory=QualityConfig, description="Label-based quality: decision threshold, business thresholds, cost."
    )
    segments: list[SegmentConfig] = Field(
        default_factory=list, max_length=10,
        description="Segment attributes: bias and quality measures (binary); with `drift: true` drift, with "
        "`quality: true` (regression, multiclass) quality per segment value.",
    )
    versions: VersionsConfig = Field(
        default_factory=VersionsConfig, description="Accepted model versions, new versions per minute, eviction."
    )
    serving: ServingConfig = Field(
        default_factory=ServingConfig, description="Feature order and names for KServe/OIP bodies (docs/ingest.md)."
    )
    rollout: RolloutConfig = Field(
        default_factory=RolloutConfig, description="The canary gate of `mlmon rollouts build` (docs/rollouts.md)."
    )
    attributions: AttributionsConfig = Field(
        default_factory=AttributionsConfig, description="Per-record feature attributions (docs/explainability.md)."
    )

    @model_validator(mode="after")
    def _names_unique(self) -> ModelConfig:
        names = [f.name for f in self.features]
        duplicates = repeated(names)
        if duplicates:
            raise ValueError(f"feature names must be unique; repeated: {', '.join(duplicates)}")
        if self.prediction.name in names:
            raise ValueError(f"prediction.name {self.prediction.name!r} clashes with a feature of the same name")
        return self

    @model_validator(mode="after")
    def _serving_columns_are_features(self) -> ModelConfig:
        columns = self.serving.columns or []
        unknown = [c for c in columns if c not in {f.name for f in self.features}]
        if unknown or len(set(columns)) != len(columns):
            raise ValueError(f"serving.columns must name this model's features, each once; not features: {unknown}")
        return self

    @model_validator(mode="after")
    def _quality_rules(self) -> ModelConfig:
        check_quality(self)
        return self

    def feature(self, name: str) -> FeatureConfig:
        return next(f for f in self.features if f.name == name)

    @property
    def quality_classes(self) -> tuple[str, ...]:
        """Multiclass labels scored one by one (bounded by the config); others count as __other__."""
        return tuple(self.quality.classes or self.prediction.classes or ())

    @property
    def quality_windows(self) -> tuple[int, ...]:
        return tuple(self.quality.windows or self.drift.windows)


class MlmonConfig(Strict):
    """The whole mlmon.yaml."""

    exporter: ExporterConfig = Field(default_factory=ExporterConfig, description="The sidecar process.")
    models: list[ModelConfig] = Field(min_length=1, description="The models this exporter watches.")
    alerting: AlertingConfig = Field(
        default_factory=AlertingConfig, description="Alert thresholds, receivers and routes (`mlmon rules build`)."
    )
    links: LinksConfig = Field(
        default_factory=LinksConfig, description="Where a browser reaches the exporter's pages and Grafana: alert "
        "annotations and dashboard links point there (docs/pages.md#links-to-the-pages).",
    )
    # Where the file was read from; relative reference paths resolve against it.
    _base_dir: Path = PrivateAttr(default=Path("."))

    @model_validator(mode="after")
    def _models_unique(self) -> MlmonConfig:
        duplicates = repeated(m.name for m in self.models)
        if duplicates:
            raise ValueError(f"model names must be unique; repeated: {', '.join(duplicates)}")
        return self

    @property
    def base_dir(self) -> Path:
        """The folder the config was read from; relative reference paths resolve against it."""
        return self._base_dir

    def model(self, name: str) -> ModelConfig | None:
        return next((m for m in self.models if m.name == name), None)

    def state_dir(self) -> Path | None:
        """exporter.state_dir resolved against the config file's folder, or None (state in memory only)."""
        if self.exporter.state_dir is None:
            return None
        return (self._base_dir / self.exporter.state_dir).resolve()

    def reference_path(self, model: ModelConfig) -> Path | None:
        if isinstance(model.reference, CaptureReference):
            return None
        # abspath, not resolve(): resolve() raises on a symlink loop (the loader reports it as ELOOP),
        # and a Kubernetes ConfigMap's `..data` symlinks need no resolving to be read.
        return Path(os.path.abspath(self._base_dir / model.reference))


def parse_config(data: Any, base_dir: Path = Path("."), source: str = "config") -> MlmonConfig:
    """Validate an already-parsed YAML/JSON document; raises ConfigError naming every bad place."""
    if not isinstance(data, dict):
        raise ConfigError(source, [f"the top level must be a mapping with a `models:` list, not {type(data).__name__}"])
    try:
        config = MlmonConfig.model_validate(data)
    except ValidationError as error:
        raise ConfigError(source, format_validation_error(error, MlmonConfig)) from None
    # Routes name receivers, models and teams declared elsewhere in the file.
    problems = reference_problems(config.alerting, {m.name: m.team for m in config.models})
    if problems:
        raise ConfigError(source, problems)
    config._base_dir = base_dir
    return config


def load_config(path: str | Path) -> MlmonConfig:
    """Read and validate mlmon.yaml; raises ConfigError with every problem found."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as error:
        raise ConfigError(str(path), [f"cannot read the file: {error.strerror}"]) from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise ConfigError(str(path), [f"{where}not valid YAML ({getattr(error, 'problem', error)})"]) from None
    return parse_config(data, base_dir=path.parent, source=str(path))


def config_json_schema() -> dict[str, Any]:
    """The JSON Schema of mlmon.yaml, for editors (yaml-language-server) and CI."""
    schema = MlmonConfig.model_json_schema()
    schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
    schema["title"] = "mlmon.yaml"
    return schema
