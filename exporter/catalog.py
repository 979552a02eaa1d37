"""Every metric mlmon exports, defined once.

The exporter renders from these definitions, docs/metrics.md is generated from them, and the
dashboard and rule generators import the names from here, so no metric name is typed twice.
Naming follows https://prometheus.io/docs/practices/naming/: the `mlmon_` prefix, base units,
`_total` on counters, `_ratio` on 0-1 ratios, and no `:` (reserved for recording rules).
"""

from __future__ import annotations

from typing import Literal, NamedTuple

MetricType = Literal["counter", "gauge", "histogram", "info"]


class Metric(NamedTuple):
    """A metric family: what it is called, what kind it is, what it means and how it is sliced."""

    name: str
    type: MetricType
    help: str
    labels: tuple[str, ...]
    unit: str = ""
    issue: str = "core"  # which part of mlmon fills it; docs group by this

    @property
    def family(self) -> str:
        """The OpenMetrics family name: counters drop their `_total` suffix."""
        return self.name.removesuffix("_total") if self.type == "counter" else self.name


MODEL = ("model",)
VERSION = ("model", "model_version")
FEATURE = ("model", "model_version", "feature")
BIN = ("model", "model_version", "feature", "bin")
PREDICTION_BIN = ("model", "model_version", "bin")

MODEL_INFO = Metric(
    "mlmon_model_info", "gauge",
    "Model versions the exporter has seen, with their task and reference profile hash; always 1.",
    ("model", "model_version", "task", "reference_hash"),
)
PREDICTIONS = Metric(
    "mlmon_predictions_total", "counter", "Prediction records accepted.", VERSION,
)
RECORDS_REJECTED = Metric(
    "mlmon_records_rejected_total", "counter",
    "Records rejected whole, by reason (see docs/metrics.md for the reasons). model is '' when unknown.",
    ("model", "reason"),
)
FEATURE_BIN = Metric(
    "mlmon_feature_bin_total", "counter",
    "Feature values that fell in each reference bin (mergeable across replicas for fleet-wide drift).", BIN,
)
FEATURE_REFERENCE = Metric(
    "mlmon_feature_reference_ratio", "gauge",
    "Fraction of the reference profile in each bin; pairs with mlmon_feature_bin_total.", BIN,
)
PREDICTION_BIN_COUNT = Metric(
    "mlmon_prediction_bin_total", "counter",
    "Predictions that fell in each reference bin (scores or values binned; classes by name).", PREDICTION_BIN,
)
PREDICTION_REFERENCE = Metric(
    "mlmon_prediction_reference_ratio", "gauge",
    "Fraction of the reference predictions in each bin; pairs with mlmon_prediction_bin_total.", PREDICTION_BIN,
)
FEATURE_MISSING = Metric(
    "mlmon_feature_missing_total", "counter", "Records whose features lacked this feature.", FEATURE,
)
FEATURE_NULL = Metric(
    "mlmon_feature_null_total", "counter", "Feature values that were null.", FEATURE,
)
FEATURE_NONFINITE = Metric(
    "mlmon_feature_nonfinite_total", "counter", "Numeric feature values that were NaN or infinite.", FEATURE,
)
FEATURE_TYPE_ERRORS = Metric(
    "mlmon_feature_type_errors_total", "counter",
    "Feature values of the wrong type (e.g. a string for a numeric feature); not binned.", FEATURE,
)
FEATURE_OUT_OF_RANGE = Metric(
    "mlmon_feature_out_of_range_total", "counter",
    "Numeric feature values outside the reference [min, max], by side (below|above).",
    ("model", "model_version", "feature", "side"),
)
FEATURE_UNSEEN_CATEGORY = Metric(
    "mlmon_feature_unseen_category_total", "counter",
    "Categorical values not among the reference profile's categories (binned as __other__).", FEATURE,
)
UNKNOWN_FEATURES = Metric(
    "mlmon_unknown_features_total", "counter",
    "Feature keys not declared in the config; their names are not exported (unbounded).", VERSION,
)
WINDOW_SAMPLES = Metric(
    "mlmon_window_samples", "gauge",
    "Predictions in the current time window; drift verdicts need at least min_samples.",
    ("model", "model_version", "window"),
)
INGEST_REQUESTS = Metric(
    "mlmon_ingest_requests_total", "counter", "Ingest API requests by endpoint and HTTP status code.",
    ("endpoint", "code"),
)
INGEST_BYTES = Metric(
    "mlmon_ingest_received_bytes_total", "counter", "Request body bytes received by the ingest API.", ("endpoint",),
    unit="bytes",
)
LIMIT_HITS = Metric(
    "mlmon_limit_hits_total", "counter",
    "Times a configured limit was hit (request_bytes, records_per_request, versions_per_model, label_value_length).",
    ("limit",),
)
VERSIONS_EVICTED = Metric(
    "mlmon_model_versions_evicted_total", "counter",
    "Model versions whose state was dropped to stay within max_versions_per_model.", MODEL,
)
SCRAPE_DURATION = Metric(
    "mlmon_scrape_duration_seconds", "gauge", "Time the previous /metrics render took.", (), unit="seconds",
)
REFERENCE_SAMPLES = Metric(
    "mlmon_reference_samples", "gauge",
    "Rows in the reference profile (or captured so far while capturing).", VERSION,
)
REFERENCE_CAPTURING = Metric(
    "mlmon_reference_capturing", "gauge",
    "1 while the reference of a version is still being captured from live traffic, else 0.", VERSION,
)

CATALOG: tuple[Metric, ...] = tuple(m for m in list(globals().values()) if isinstance(m, Metric))


def by_name(name: str) -> Metric:
    """Look a metric up by its exported name."""
    for metric in CATALOG:
        if metric.name == name:
            return metric
    raise KeyError(name)
