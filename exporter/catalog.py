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
    "Model versions the exporter has seen, with their task, reference profile hash and score calibration "
    "(isotonic when a classifier's profile was built with labels, binned_error for a regression profile built "
    "with labels, else none: estimates read raw scores, regression has none); always 1.",
    ("model", "model_version", "task", "reference_hash", "calibration"),
)
MODEL_VERSION_VARIANT = Metric(
    "mlmon_model_version_variant_info", "gauge",
    "The rollout arm of each model version held: default (the champion), canary or shadow; from "
    "models[].versions.variants, else KServe's Ce-Endpoint, else default. One series per version; always 1.",
    ("model", "model_version", "variant"),
)
SHADOW_PAIRS = Metric(
    "mlmon_shadow_pairs_total", "counter",
    "Predictions of a shadow version paired by record id with the champion's prediction of the same request.",
    VERSION, issue="rollouts",
)
SHADOW_AGREEMENTS = Metric(
    "mlmon_shadow_agreements_total", "counter",
    "Pairs whose shadow and champion agree: the same decision at quality.decision_threshold (binary) or class.",
    VERSION, issue="rollouts",
)
SHADOW_SCORE_DIFFERENCE = Metric(
    "mlmon_shadow_score_difference_total", "counter",
    "Sum of |shadow score - champion score| over the pairs (numeric predictions); divide by the pairs for the mean.",
    VERSION, issue="rollouts",
)
SHADOW_PENDING = Metric(
    "mlmon_shadow_pending", "gauge", "Predictions held by id waiting for the other arm's prediction of the request.",
    MODEL, issue="rollouts",
)
SHADOW_OUTCOMES = Metric(
    "mlmon_shadow_outcomes_total", "counter",
    "Shadow pairing: outcome paired, duplicate (an id sent twice by one arm), expired (no partner in "
    "rollout.shadow_ttl) or evicted (rollout.shadow_pending full).",
    ("model", "outcome"), issue="rollouts",
)
PREDICTIONS = Metric(
    "mlmon_predictions_total", "counter", "Prediction records accepted.", VERSION,
)
RECORDS_REJECTED = Metric(
    "mlmon_records_rejected_total", "counter",
    "Records rejected whole, by reason (see docs/metrics.md for the reasons); model is __unknown__ when unknown.",
    ("model", "reason"),
)
FEATURE_BIN = Metric(
    "mlmon_feature_bin_total", "counter",
    "Feature values that fell in each reference bin (mergeable across replicas for fleet-wide drift).", BIN,
)
# bin_label: the bin as a person reads it ("[120, 250)", a category, "(other)"), fixed by the profile,
# so the label adds no series; dashboards join it onto the bin counters (docs/dashboards.md).
FEATURE_REFERENCE = Metric(
    "mlmon_feature_reference_ratio", "gauge",
    "Fraction of the reference profile in each bin, with the bin's edges in feature units (bin_label); "
    "pairs with mlmon_feature_bin_total.", (*BIN, "bin_label"),
)
PREDICTION_BIN_COUNT = Metric(
    "mlmon_prediction_bin_total", "counter",
    "Predictions that fell in each reference bin (scores or values binned; classes by name).", PREDICTION_BIN,
)
PREDICTION_REFERENCE = Metric(
    "mlmon_prediction_reference_ratio", "gauge",
    "Fraction of the reference predictions in each bin, with the bin's edges (bin_label); pairs with "
    "mlmon_prediction_bin_total.", (*PREDICTION_BIN, "bin_label"),
)
# Counters cannot go down, so the sum of signed values is split by sign (negatives as magnitudes);
# (positive - negative) / values over a rate window is the fleet-wide mean prediction.
PREDICTION_VALUE_SUM = Metric(
    "mlmon_prediction_value_sum_total", "counter",
    "Sum of finite numeric predictions by sign (positive|negative, negative ones as magnitudes).",
    ("model", "model_version", "sign"),
)
PREDICTION_VALUES = Metric(
    "mlmon_prediction_values_total", "counter",
    "Finite numeric predictions summed into mlmon_prediction_value_sum_total: the N of their mean.", VERSION,
)
PREDICTION_VALUES_UNSUMMED = Metric(
    "mlmon_prediction_values_unsummed_total", "counter",
    "Finite numeric predictions beyond exporter.max_abs_value: binned, but kept out of the sums (data-quality events).",
    VERSION,
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
    "Times a configured limit was hit; `limit` names it (request_bytes, records_per_request, versions_per_model, "
    "new_versions_per_minute, label_value_length, nesting_depth, decoded_bytes, string_length, and the server's "
    "connections, header_timeout, header_bytes, body_timeout, inflight_request_bytes).",
    ("limit",),
)
CLOUDEVENTS = Metric(
    "mlmon_cloudevents_total", "counter",
    "KServe logger CloudEvents at /v1/cloudevents: halves received, request/response pairs joined, duplicates, "
    "halves expired without their other half (orphans), halves evicted for room (exporter.cloudevents_*).",
    ("outcome",),
)
CLOUDEVENTS_PENDING = Metric(
    "mlmon_cloudevents_pending", "gauge", "KServe logger halves waiting for their other half.", (),
)
IDEMPOTENCY_KEYS = Metric(
    "mlmon_idempotency_keys_total", "counter",
    "Idempotency-Key outcomes: answers stored, retries replayed without ingesting, keys evicted (oldest first), "
    "requests refused while the same key was in flight.",
    ("outcome",),
)
VERSIONS_EVICTED = Metric(
    "mlmon_model_versions_evicted_total", "counter",
    "Idle model versions whose state was dropped to make room for a new one within max_versions_per_model.", MODEL,
)
SCRAPE_DURATION = Metric(
    "mlmon_scrape_duration_seconds", "gauge", "Time the previous /metrics render took.", (), unit="seconds",
)
STATE_SNAPSHOTS = Metric(
    "mlmon_state_snapshots_total", "counter",
    "State snapshots written to exporter.state_dir, by result (ok, error).", ("result",), issue="state",
)
STATE_RESTORES = Metric(
    "mlmon_state_restores_total", "counter",
    "State restores at start, by result: restored, absent, unreadable or format_mismatch (the file set aside), "
    "config_mismatch or reference_mismatch (one model started fresh).", ("result",), issue="state",
)
STATE_SNAPSHOT_DURATION = Metric(
    "mlmon_state_snapshot_duration_seconds", "gauge", "Time the last state snapshot took.", (), unit="seconds", issue="state",
)
STATE_SNAPSHOT_BYTES = Metric(
    "mlmon_state_snapshot_bytes", "gauge", "Size of the last state snapshot file.", (), unit="bytes", issue="state",
)
STATE_SNAPSHOT_TIMESTAMP = Metric(
    "mlmon_state_last_snapshot_timestamp_seconds", "gauge",
    "Unix time of the last successful state snapshot (0 before the first).", (), unit="seconds", issue="state",
)
REFERENCE_SAMPLES = Metric(
    "mlmon_reference_samples", "gauge",
    "Rows in the reference profile (or captured so far while capturing).", VERSION,
)
REFERENCE_CAPTURING = Metric(
    "mlmon_reference_capturing", "gauge",
    "1 while the reference of a version is still being captured from live traffic, else 0.", VERSION,
)
REFERENCE_SWITCHES = Metric(
    "mlmon_reference_switches_total", "counter",
    "Reference switches asked for over the admin API (docs/reference.md), by result: promoted, capture_reset, "
    "or refused (unknown version, window below min_samples, ...).", ("model", "result"), issue="reference",
)

# ---- Model quality: labels, performance, estimates without labels, bias (issue 4; docs/quality.md) ----
WINDOWED = ("model", "model_version", "window")
SEGMENT = ("model", "model_version", "attribute", "segment")

LABELLED_PREDICTIONS = Metric(
    "mlmon_labelled_predictions_total", "counter",
    "Predictions scored against a label (joined late or inline); the N of every quality sum.", VERSION, issue="quality",
)
LABEL_OUTCOMES = Metric(
    "mlmon_label_outcomes_total", "counter",
    "Labels by outcome: joined, inline, unknown_id, duplicate, invalid, unavailable (the Redis label store could "
    "not be reached: not joined, send again). model is __unknown__ when not known.",
    ("model", "outcome"), issue="quality",
)
LABEL_STORE_PENDING = Metric(
    "mlmon_label_store_pending", "gauge", "Predictions kept by id, waiting for their label.", MODEL, issue="quality",
)
LABEL_STORE_EVICTIONS = Metric(
    "mlmon_label_store_evictions_total", "counter",
    "Pending predictions dropped unlabelled, by reason (capacity: max_pending_predictions; expired: label_ttl; "
    "unavailable: never stored, the Redis label store could not be reached).",
    ("model", "reason"), issue="quality",
)
LABEL_STORE_DUPLICATE_IDS = Metric(
    "mlmon_label_store_duplicate_ids_total", "counter",
    "Predictions whose id was already pending; the newer prediction replaced the older.", MODEL, issue="quality",
)
LABELLED_RATIO = Metric(
    "mlmon_labelled_ratio", "gauge", "Fraction of this version's predictions scored against a label so far.",
    VERSION, issue="quality",
)
LABEL_DELAY = Metric(
    "mlmon_label_delay_seconds", "histogram", "Seconds from a prediction to the arrival of its label.",
    VERSION, unit="seconds", issue="quality",
)
CONFUSION = Metric(
    "mlmon_confusion_total", "counter",
    "Binary confusion matrix at the configured decision threshold: outcome is tp, fp, tn or fn.",
    ("model", "model_version", "outcome"), issue="quality",
)
BRIER_LOSS = Metric(
    "mlmon_brier_loss_total", "counter",
    "Sum of (score - label)^2 over labelled predictions; divided by the labelled count it is the Brier score.",
    VERSION, issue="quality",
)
LOG_LOSS = Metric(
    "mlmon_log_loss_total", "counter",
    "Sum of -log(probability given to the true class); divided by the labelled count it is the log loss.",
    VERSION, issue="quality",
)
CLASS_CONFUSION = Metric(
    "mlmon_class_confusion_total", "counter",
    "Multiclass confusion matrix by actual and predicted class (configured classes plus __other__).",
    ("model", "model_version", "actual", "predicted"), issue="quality",
)
REGRESSION_ERROR = Metric(
    "mlmon_regression_error_total", "counter",
    "Sum of prediction - label by direction: over (positive errors) and under (negative errors, as magnitudes).",
    ("model", "model_version", "direction"), issue="quality",
)
REGRESSION_SQUARED_ERROR = Metric(
    "mlmon_regression_squared_error_total", "counter", "Sum of squared errors (prediction - label)^2.", VERSION,
    issue="quality",
)
REGRESSION_PERCENTAGE_ERROR = Metric(
    "mlmon_regression_absolute_percentage_error_total", "counter",
    "Sum of |prediction - label| / |label| over labels that are not 0 (MAPE as a fraction).", VERSION, issue="quality",
)
REGRESSION_NONZERO_LABELS = Metric(
    "mlmon_regression_nonzero_labels_total", "counter", "Labels that are not 0: the N of MAPE.", VERSION,
    issue="quality",
)
REGRESSION_LABEL = Metric(
    "mlmon_regression_label_total", "counter",
    "Sum of labels by sign (negative ones as magnitudes); with the squared sum it gives R2's total variance.",
    ("model", "model_version", "sign"), issue="quality",
)
REGRESSION_LABEL_SQUARED = Metric(
    "mlmon_regression_label_squared_total", "counter", "Sum of squared labels.", VERSION, issue="quality",
)
REGRESSION_SQUARED_LOG_ERROR = Metric(
    "mlmon_regression_squared_log_error_total", "counter",
    "Sum of (log1p(prediction) - log1p(label))^2 over labelled pairs whose prediction and label are both >= 0 "
    "(MSLE = this / mlmon_regression_log_pairs_total).", VERSION, issue="quality",
)
REGRESSION_LOG_PAIRS = Metric(
    "mlmon_regression_log_pairs_total", "counter",
    "Labelled pairs in the squared log error (both values >= 0); labelled - this = pairs left out of MSLE for a "
    "negative value.", VERSION, issue="quality",
)
QUALITY_SAMPLES = Metric(
    "mlmon_quality_window_samples", "gauge", "Labelled predictions in the window (by label arrival).",
    WINDOWED, issue="quality",
)
QUALITY_RATIO = Metric(
    "mlmon_quality_ratio", "gauge",
    "Realised quality over the window: accuracy, precision, recall, f1, specificity, false_positive_rate, "
    "false_negative_rate, roc_auc (binary); accuracy, macro_precision, macro_recall, macro_f1, macro_specificity, "
    "macro_roc_auc (one-vs-rest, from per-class scores), micro_f1 (multiclass).",
    ("model", "model_version", "window", "metric"), issue="quality",
)
QUALITY_LOWER = Metric(
    "mlmon_quality_lower_ratio", "gauge", "Lower bound of the Wilson 95% interval of a quality ratio.",
    ("model", "model_version", "window", "metric"), issue="quality",
)
QUALITY_UPPER = Metric(
    "mlmon_quality_upper_ratio", "gauge", "Upper bound of the Wilson 95% interval of a quality ratio.",
    ("model", "model_version", "window", "metric"), issue="quality",
)
QUALITY_SCORE = Metric(
    "mlmon_quality_score", "gauge",
    "Realised quality over the window that is not a 0-1 ratio: brier, log_loss, expected_cost (binary); "
    "mae, rmse, mape, bias, r2, msle, rmsle (regression).",
    ("model", "model_version", "window", "metric"), issue="quality",
)
CLASS_QUALITY = Metric(
    "mlmon_class_quality_ratio", "gauge",
    "Per-class precision, recall, f1, specificity and roc_auc (one-vs-rest) over the window (multiclass).",
    ("model", "model_version", "window", "class", "metric"), issue="quality",
)
QUALITY_THRESHOLD = Metric(
    "mlmon_quality_threshold", "gauge",
    "The configured business threshold of a quality metric; bound is min or max.", ("model", "metric", "bound"),
    issue="quality",
)
ESTIMATED_CONFUSION = Metric(
    "mlmon_estimated_confusion_total", "counter",
    "Expected confusion matrix from calibrated scores of every prediction (no labels needed): outcome tp, fp, tn, fn.",
    ("model", "model_version", "outcome"), issue="quality",
)
ESTIMATED_QUALITY = Metric(
    "mlmon_estimated_quality_ratio", "gauge",
    "Estimated (not realised) accuracy, precision, recall, f1 and roc_auc (binary) or accuracy and macro_precision, "
    "macro_recall, macro_f1, macro_specificity, macro_roc_auc (multiclass) over the window, from calibrated scores.",
    ("model", "model_version", "window", "metric"), issue="quality",
)
ESTIMATED_QUALITY_SE = Metric(
    "mlmon_estimated_quality_standard_error", "gauge",
    "Standard error of each estimated metric over the window: how far the realised value may be from the estimate "
    "when the (calibrated) scores are right; realised within 3 standard errors in >= 95% of windows.",
    ("model", "model_version", "window", "metric"), issue="quality",
)
ESTIMATED_QUALITY_SCORE = Metric(
    "mlmon_estimated_quality_score", "gauge",
    "Estimated (not realised) mae and rmse over the window (regression), from the reference's error per "
    "prediction bin (profile built with --label-column); blind to concept drift.",
    ("model", "model_version", "window", "metric"), issue="quality",
)
ESTIMATED_CLASS_QUALITY = Metric(
    "mlmon_estimated_class_quality_ratio", "gauge",
    "Estimated (not realised) per-class precision, recall, f1, specificity and roc_auc over the window "
    "(multiclass, one-vs-rest, from calibrated per-class scores).",
    ("model", "model_version", "window", "class", "metric"), issue="quality",
)
ESTIMATED_CLASS_QUALITY_SE = Metric(
    "mlmon_estimated_class_quality_standard_error", "gauge",
    "Standard error of each estimated per-class metric over the window (multiclass).",
    ("model", "model_version", "window", "class", "metric"), issue="quality",
)
ESTIMATED_COST = Metric(
    "mlmon_estimated_cost_per_prediction", "gauge",
    "Estimated business cost per prediction over the window, from the expected confusion matrix and the cost model.",
    WINDOWED, issue="quality",
)
SEGMENT_PREDICTIONS = Metric(
    "mlmon_segment_predictions_total", "counter",
    "Predictions per segment of a sensitive attribute by predicted class (positive|negative).",
    (*SEGMENT, "predicted"), issue="quality",
)
SEGMENT_CONFUSION = Metric(
    "mlmon_segment_confusion_total", "counter", "Binary confusion matrix per segment: outcome tp, fp, tn, fn.",
    (*SEGMENT, "outcome"), issue="quality",
)
SEGMENT_QUALITY = Metric(
    "mlmon_segment_quality_ratio", "gauge",
    "Per segment over the window: selection_rate (all predictions), tpr, fpr, precision (labelled; binary); "
    "accuracy, macro_f1 (multiclass, segments with quality: true).",
    ("model", "model_version", "window", "attribute", "segment", "metric"), issue="quality",
)
SEGMENT_SAMPLES = Metric(
    "mlmon_segment_window_samples", "gauge",
    "Per segment predictions (binary) and labelled predictions in the window.",
    ("model", "model_version", "window", "attribute", "segment", "kind"), issue="quality",
)
SEGMENT_CLASS_CONFUSION = Metric(
    "mlmon_segment_class_confusion_total", "counter",
    "Multiclass confusion matrix per segment value (segments with quality: true): actual and predicted class "
    "(configured classes plus __other__).",
    (*SEGMENT, "actual", "predicted"), issue="quality",
)
SEGMENT_REGRESSION_PAIRS = Metric(
    "mlmon_segment_regression_pairs_total", "counter",
    "Labelled predictions per segment value (regression, segments with quality: true): the N of its error sums.",
    SEGMENT, issue="quality",
)
SEGMENT_REGRESSION_ERROR = Metric(
    "mlmon_segment_regression_error_total", "counter",
    "Sum of prediction - label per segment value by direction: over (positive errors) and under (negative "
    "errors, as magnitudes); MAE = (over + under) / pairs.",
    (*SEGMENT, "direction"), issue="quality",
)
SEGMENT_REGRESSION_SQUARED_ERROR = Metric(
    "mlmon_segment_regression_squared_error_total", "counter",
    "Sum of squared errors per segment value (RMSE = sqrt(this / pairs)).", SEGMENT, issue="quality",
)
SEGMENT_REGRESSION_SQUARED_LOG_ERROR = Metric(
    "mlmon_segment_regression_squared_log_error_total", "counter",
    "Sum of (log1p(prediction) - log1p(label))^2 per segment value over the pairs both >= 0.", SEGMENT,
    issue="quality",
)
SEGMENT_REGRESSION_LOG_PAIRS = Metric(
    "mlmon_segment_regression_log_pairs_total", "counter",
    "Labelled pairs per segment value in the squared log error (both values >= 0).", SEGMENT, issue="quality",
)
SEGMENT_QUALITY_SCORE = Metric(
    "mlmon_segment_quality_score", "gauge",
    "Per segment value over the window (regression, segments with quality: true): mae, rmse, bias (mean of "
    "prediction - label), rmsle.",
    ("model", "model_version", "window", "attribute", "segment", "metric"), issue="quality",
)
BIAS_RATIO = Metric(
    "mlmon_bias_ratio", "gauge",
    "Per attribute over the window: demographic_parity_difference, disparate_impact_ratio (four-fifths rule: "
    "< 0.8), equal_opportunity_difference, equalized_odds_difference.",
    ("model", "model_version", "window", "attribute", "metric"), issue="quality",
)
BIAS_SAMPLES = Metric(
    "mlmon_bias_min_segment_samples", "gauge",
    "Smallest segment sample count behind a bias measure (predictions, positives or negatives as it needs).",
    ("model", "model_version", "window", "attribute", "metric"), issue="quality",
)

# ---- Drift: scores from window bin counts at scrape time (issue 3; docs/drift.md) ----
DRIFT_SCORE_LABELS = ("model", "model_version", "feature", "window", "method")
PREDICTION_DRIFT_LABELS = ("model", "model_version", "window", "method")
WINDOW_FEATURE = ("model", "model_version", "feature", "window")

FEATURE_DRIFT_SCORE = Metric(
    "mlmon_feature_drift_score", "gauge",
    "Drift of a feature over the window vs the reference; method is psi, js, kl, hellinger, chisquare (statistic), "
    "ks (D) or wasserstein (over the reference std). Read with mlmon_feature_window_samples.",
    DRIFT_SCORE_LABELS, issue="drift",
)
FEATURE_DRIFT_P_VALUE = Metric(
    "mlmon_feature_drift_p_value", "gauge",
    "p-value of the drift test (ks for numeric, chisquare for categorical/boolean); tiny at large N for trivial drift.",
    DRIFT_SCORE_LABELS, issue="drift",
)
FEATURE_WINDOW_SAMPLES = Metric(
    "mlmon_feature_window_samples", "gauge", "Binned values of the feature in the window: the N behind its scores.",
    WINDOW_FEATURE, issue="drift",
)
FEATURE_DRIFT_DETECTED = Metric(
    "mlmon_feature_drift_detected", "gauge",
    "This pod's verdict on its own traffic (debugging; alerts use the fleet verdict): 1 when N >= min_samples, "
    "the test p-value < alpha and the method score >= min_effect; absent below min_samples.",
    WINDOW_FEATURE, issue="drift",
)
FEATURE_REFERENCE_SAMPLES = Metric(
    "mlmon_feature_reference_samples", "gauge",
    "Reference values of the feature (its N in the reference); the fleet chi-square rule needs it.", FEATURE,
    issue="drift",
)
PREDICTION_DRIFT_SCORE = Metric(
    "mlmon_prediction_drift_score", "gauge", "Drift of the model's predictions over the window (methods as for features).",
    PREDICTION_DRIFT_LABELS, issue="drift",
)
PREDICTION_DRIFT_P_VALUE = Metric(
    "mlmon_prediction_drift_p_value", "gauge", "p-value of the prediction drift test (ks numeric, chisquare classes).",
    PREDICTION_DRIFT_LABELS, issue="drift",
)
PREDICTION_WINDOW_SAMPLES = Metric(
    "mlmon_prediction_window_samples", "gauge", "Binned predictions in the window: the N behind prediction drift.",
    ("model", "model_version", "window"), issue="drift",
)
PREDICTION_DRIFT_DETECTED = Metric(
    "mlmon_prediction_drift_detected", "gauge", "This pod's verdict on its predictions (debugging; alerts use the fleet verdict), the same rule as a feature's.",
    ("model", "model_version", "window"), issue="drift",
)
PREDICTION_REFERENCE_SAMPLES = Metric(
    "mlmon_prediction_reference_samples", "gauge", "Reference predictions (their N in the reference).", VERSION,
    issue="drift",
)
DRIFTED_FEATURES = Metric(
    "mlmon_drifted_features_ratio", "gauge",
    "This pod's share of features with a drift verdict that drifted (debugging; alerts use the fleet share); "
    "absent while no feature has min_samples values.",
    ("model", "model_version", "window"), issue="drift",
)
DATASET_DRIFT = Metric(
    "mlmon_dataset_drift_detected", "gauge", "1 when the drifted share of features reaches drift.drifted_share.",
    ("model", "model_version", "window"), issue="drift",
)
MULTIVARIATE_DRIFT_SCORE = Metric(
    "mlmon_multivariate_drift_score", "gauge",
    "PSI of the PCA reconstruction-error histogram vs the reference's: joint drift no single feature shows.",
    ("model", "model_version", "window"), issue="drift",
)
MULTIVARIATE_DRIFT_P_VALUE = Metric(
    "mlmon_multivariate_drift_p_value", "gauge", "KS p-value of the reconstruction-error distribution vs the reference.",
    ("model", "model_version", "window"), issue="drift",
)
MULTIVARIATE_WINDOW_SAMPLES = Metric(
    "mlmon_multivariate_window_samples", "gauge",
    "Records in the window with any PCA-encoded feature present (the N of multivariate drift; missing values imputed).",
    ("model", "model_version", "window"), issue="drift",
)
CLASS_PROBABILITY_DRIFT_SCORE = Metric(
    "mlmon_class_probability_drift_score", "gauge",
    "Drift of one class's predicted probability over the window vs the reference (multiclass rows sent with "
    "per-class scores, a profile with class_scores); method is the model's drift.method.",
    ("model", "model_version", "window", "class", "method"), issue="drift",
)
CLASS_PROBABILITY_DRIFT_P_VALUE = Metric(
    "mlmon_class_probability_drift_p_value", "gauge", "KS p-value of one class's probability drift.",
    ("model", "model_version", "window", "class"), issue="drift",
)
CLASS_PROBABILITY_DRIFT_DETECTED = Metric(
    "mlmon_class_probability_drift_detected", "gauge",
    "1 when one class's probability drifted (the prediction's rule: test AND effect); absent below min_samples.",
    ("model", "model_version", "window", "class"), issue="drift",
)
# The per-class bins as counters (and the reference beside them): what the fleet rules sum over pods
# (alert_rules/fleet_class_drift.py). `class` is bounded by the config's classes.
CLASS_PROBABILITY_BIN = Metric(
    "mlmon_class_probability_bin_total", "counter",
    "Rows with per-class scores whose score of this class fell in each reference bin (mergeable across replicas).",
    ("model", "model_version", "class", "bin"), issue="drift",
)
CLASS_PROBABILITY_REFERENCE = Metric(
    "mlmon_class_probability_reference_ratio", "gauge",
    "Fraction of the reference's scores of this class in each bin, with the bin's edges (bin_label); pairs with "
    "mlmon_class_probability_bin_total.", ("model", "model_version", "class", "bin", "bin_label"), issue="drift",
)
CLASS_PROBABILITY_REFERENCE_SAMPLES = Metric(
    "mlmon_class_probability_reference_samples", "gauge",
    "Reference scores of this class (their N in the fleet KS test).", ("model", "model_version", "class"),
    issue="drift",
)
CLASS_PROBABILITY_WINDOW_SAMPLES = Metric(
    "mlmon_class_probability_window_samples", "gauge",
    "Rows with per-class scores in the window: the N behind per-class probability drift.",
    ("model", "model_version", "window"), issue="drift",
)
MULTIVARIATE_DRIFT_DETECTED = Metric(
    "mlmon_multivariate_drift_detected", "gauge",
    "1 when the reconstruction-error histogram drifted (KS p < alpha and PSI >= min_effect); absent below min_samples.",
    ("model", "model_version", "window"), issue="drift",
)
MULTIVARIATE_ERROR_MEAN = Metric(
    "mlmon_multivariate_reconstruction_error_mean", "gauge",
    "Mean PCA reconstruction error (squared standardised distance) of the window's records.",
    ("model", "model_version", "window"), issue="drift",
)
MULTIVARIATE_ERROR_BAND_LOWER = Metric(
    "mlmon_multivariate_reconstruction_error_band_lower", "gauge",
    "Reference mean reconstruction error minus 3 reference standard deviations / sqrt(window N).",
    ("model", "model_version", "window"), issue="drift",
)
MULTIVARIATE_ERROR_BAND_UPPER = Metric(
    "mlmon_multivariate_reconstruction_error_band_upper", "gauge",
    "Reference mean reconstruction error plus 3 reference standard deviations / sqrt(window N).",
    ("model", "model_version", "window"), issue="drift",
)

# `mlmon act` (exporter/actions/, docs/remediation.md) serves these on its own /metrics, not the sidecar's.
# `action` is a name from the config's alerting.actions; `result` is success|failed|dry_run.
ACTION_RUNS = Metric(
    "mlmon_action_runs_total", "counter",
    "Action runs by result: success, failed (after its retries) or dry_run (recorded, nothing called).",
    ("action", "result"), issue="actions",
)
ACTION_DURATION = Metric(
    "mlmon_action_duration_seconds", "histogram",
    "Seconds from the webhook's arrival to the run's result (queue, every try and the waits between them).",
    ("action",), unit="seconds", issue="actions",
)
ACTION_DEDUPLICATED = Metric(
    "mlmon_action_deduplicated_total", "counter",
    "Deliveries of an alert group and start time that already ran the action (Alertmanager redelivers).",
    ("action",), issue="actions",
)
ACTION_RATE_LIMITED = Metric(
    "mlmon_action_rate_limited_total", "counter", "Runs skipped because the action's rate_limit was used up.",
    ("action",), issue="actions",
)
ACTION_RETRIES = Metric(
    "mlmon_action_retries_total", "counter", "Tries after the first of a run (a failing endpoint or command).",
    ("action",), issue="actions",
)
ACTION_RESOLVED_IGNORED = Metric(
    "mlmon_action_resolved_ignored_total", "counter",
    "Deliveries whose matched alerts had all resolved, for an action without on_resolved.", ("action",), issue="actions",
)
ACTION_WEBHOOKS = Metric(
    "mlmon_action_webhooks_total", "counter",
    "Webhooks received by result: accepted, invalid (400), unknown_action (404), busy (503, the run queue was full), "
    "unavailable (503, the shared Redis of alerting.act.redis did not answer).",
    ("result",), issue="actions",
)
ACTION_DEDUPE_KEYS = Metric(
    "mlmon_action_dedupe_keys", "gauge",
    "Alert group and start-time keys the dedupe record holds (with alerting.act.redis: the fleet's shared record).",
    (), issue="actions",
)
ACTION_DEDUPE_EVICTIONS = Metric(
    "mlmon_action_dedupe_evictions_total", "counter",
    "Keys dropped from the full dedupe record, oldest first (alerting.act.dedupe_entries); with alerting.act.redis, "
    "counted by the replica whose claim dropped them.", (), issue="actions",
)
ACTION_RECORDS_UNSHARED = Metric(
    "mlmon_action_records_unshared_total", "counter",
    "Run records that could not be written to the shared list in Redis (alerting.act.redis): GET /actions on "
    "another replica misses them; this replica still lists them while Redis is away.", (), issue="actions",
)
ACTION_LIMITS = Metric(
    "mlmon_action_limit_hits_total", "counter",
    "Requests to `mlmon act` refused by a server limit (connections, header_bytes, request_bytes, timeouts).",
    ("limit",), issue="actions",
)

# Fleet-mergeable multivariate state: the per-bin counters of the reconstruction error and their sum, so
# recording rules can score the summed fleet histogram and its mean (alert_rules/fleet_rules.py).
MULTIVARIATE_ERROR_BIN = Metric(
    "mlmon_multivariate_error_bin_total", "counter",
    "Records whose PCA reconstruction error fell in each reference error bin (mergeable across replicas).",
    PREDICTION_BIN, issue="drift",
)
MULTIVARIATE_ERROR_REFERENCE = Metric(
    "mlmon_multivariate_error_reference_ratio", "gauge",
    "Fraction of the reference's reconstruction errors in each bin; pairs with mlmon_multivariate_error_bin_total.",
    PREDICTION_BIN, issue="drift",
)
MULTIVARIATE_ERROR_SUM = Metric(
    "mlmon_multivariate_reconstruction_error_sum_total", "counter",
    "Sum of the binned records' reconstruction errors (each capped at 1e12): over the bin counters' sum, the mean.",
    VERSION, issue="drift",
)
MULTIVARIATE_REFERENCE_SAMPLES = Metric(
    "mlmon_multivariate_reference_samples", "gauge", "Reference records behind the error histogram (its N in the KS test).",
    VERSION, issue="drift",
)

# Drift per segment value (models[].segments with drift: true; docs/drift.md "Drift per segment"). Values are the
# config's (others fold into __other__), so the cost is bounded: bins x features x (values + 1) per attribute.
SEGMENT_FEATURE = ("model", "model_version", "attribute", "segment", "feature")
SEGMENT_FEATURE_BIN = Metric(
    "mlmon_segment_feature_bin_total", "counter",
    "Feature values of one segment value that fell in each reference bin (pairs with mlmon_feature_reference_ratio; "
    "mergeable across replicas).",
    (*SEGMENT_FEATURE, "bin"), issue="drift",
)
SEGMENT_FEATURE_DRIFT_SCORE = Metric(
    "mlmon_segment_feature_drift_score", "gauge",
    "This pod's drift.method score of a feature within one segment value over the window (PSI where the method "
    "does not apply to the feature's kind, as the verdict); absent without values in the window.",
    (*SEGMENT_FEATURE, "window"), issue="drift",
)
SEGMENT_FEATURE_WINDOW_SAMPLES = Metric(
    "mlmon_segment_feature_window_samples", "gauge",
    "Binned values of a feature within one segment value in the window: the N behind its score and verdict.",
    (*SEGMENT_FEATURE, "window"), issue="drift",
)
SEGMENT_FEATURE_DRIFT_DETECTED = Metric(
    "mlmon_segment_feature_drift_detected", "gauge",
    "This pod's verdict on a feature within one segment value (the feature rule: N >= min_samples, p < alpha, "
    "score >= min_effect); absent below min_samples.",
    (*SEGMENT_FEATURE, "window"), issue="drift",
)

# Explainability (docs/explainability.md): per-record attributions of models with attributions.enabled,
# and the reference importance that weighs drift into drift impact.
ATTRIBUTION_SAMPLES = Metric(
    "mlmon_attribution_samples_total", "counter",
    "Attribution values (phi) counted per feature: the N of the attribution mean and importance.", FEATURE,
    issue="explain",
)
ATTRIBUTION_VALUE_SUM = Metric(
    "mlmon_attribution_value_sum_total", "counter",
    "Sum of phi by sign (positive|negative, negative ones as magnitudes): positive - negative is sum(phi), "
    "positive + negative is sum(|phi|).", ("model", "model_version", "feature", "sign"), issue="explain",
)
ATTRIBUTION_SQUARED_SUM = Metric(
    "mlmon_attribution_squared_sum_total", "counter", "Sum of phi^2 per feature (the spread of attributions).",
    FEATURE, issue="explain",
)
ATTRIBUTION_BIN = Metric(
    "mlmon_attribution_bin_total", "counter",
    "Attribution values that fell in each reference phi bin (for fleet attribution PSI/JS).", BIN, issue="explain",
)
ATTRIBUTION_REFERENCE = Metric(
    "mlmon_attribution_reference_ratio", "gauge",
    "Fraction of the reference attributions in each phi bin; pairs with mlmon_attribution_bin_total.", BIN,
    issue="explain",
)
ATTRIBUTION_RECORDS = Metric(
    "mlmon_attribution_records_total", "counter", "Records that carried attributions.", VERSION, issue="explain",
)
ATTRIBUTIONS_DROPPED = Metric(
    "mlmon_attributions_dropped_total", "counter",
    "Attribution values not counted, by reason (unknown_feature: a key that is no configured feature; "
    "invalid_value: null, non-finite, not a number or beyond exporter.max_abs_value).",
    ("model", "model_version", "reason"), issue="explain",
)
FEATURE_IMPORTANCE_REFERENCE = Metric(
    "mlmon_feature_importance_reference", "gauge",
    "Reference global importance of a feature (mean |phi| of the reference attributions, or the config's importance).",
    FEATURE, issue="explain",
)
FEATURE_IMPORTANCE_REFERENCE_SHARE = Metric(
    "mlmon_feature_importance_reference_share_ratio", "gauge",
    "The feature's share of the reference importance (shares of a model version sum to 1).", FEATURE, issue="explain",
)
FEATURE_DRIFT_IMPACT = Metric(
    "mlmon_feature_drift_impact", "gauge",
    "Reference importance share x drift score (the model's drift method) over the window: which drift matters.",
    WINDOW_FEATURE, issue="explain",
)
ATTRIBUTION_WINDOW_SAMPLES = Metric(
    "mlmon_attribution_window_samples", "gauge", "Records with attributions in the window (the N of the rank signals).",
    WINDOWED, issue="explain",
)
ATTRIBUTION_NDCG = Metric(
    "mlmon_attribution_ndcg_ratio", "gauge",
    "nDCG of the window's importance ranking against the reference's, gains = reference importance "
    "(SageMaker Clarify's definition; 1 = same ranking).", WINDOWED, issue="explain",
)
ATTRIBUTION_SHARE_TV = Metric(
    "mlmon_attribution_share_tv_ratio", "gauge",
    "Total-variation distance of the window's importance shares from the reference shares (0 same, 1 disjoint).",
    WINDOWED, issue="explain",
)
ATTRIBUTION_TOP_DRIVER_CHANGED = Metric(
    "mlmon_attribution_top_driver_changed", "gauge",
    "1 when the window's most important feature is not the reference's, else 0.", WINDOWED, issue="explain",
)
ATTRIBUTION_DRIFT_DETECTED = Metric(
    "mlmon_attribution_drift_detected", "gauge",
    "1 when nDCG < attributions.ndcg_threshold or share TV >= attributions.share_tv_threshold; absent below "
    "attributions.min_samples.", WINDOWED, issue="explain",
)

CATALOG: tuple[Metric, ...] = tuple(m for m in list(globals().values()) if isinstance(m, Metric))


def by_name(name: str) -> Metric:
    """Look a metric up by its exported name."""
    for metric in CATALOG:
        if metric.name == name:
            return metric
    raise KeyError(name)
