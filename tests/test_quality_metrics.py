"""Quality metrics from accumulated counts, checked against scikit-learn, scipy and hand-worked numbers."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn import metrics as sk

from exporter.config.model import parse_config
from exporter.state.quality import REGRESSION_SUMS, ModelQuality, score_edges
from exporter.stats.quality_math import (
    auc_from_histograms, binary_intervals, binary_ratios, expected_cost, multiclass_metrics, regression_metrics,
    wilson_interval,
)


def model(task: str, **quality: Any):
    data = {
        "name": "m", "task": task, "reference": {"capture": 10}, "features": [{"name": "x", "type": "numeric"}],
        "quality": quality, "drift": {"windows": ["1h"]},
    }
    return parse_config({"models": [data]}).models[0]


def test_hand_worked_confusion_matrix() -> None:
    # 10 labelled predictions: 3 TP, 1 FP, 5 TN, 1 FN.
    r = binary_ratios(tp=3, fp=1, tn=5, fn=1)
    assert r["accuracy"] == 0.8
    assert r["precision"] == 0.75 and r["recall"] == 0.75 and r["f1"] == 0.75
    assert r["specificity"] == 5 / 6 and r["false_positive_rate"] == 1 / 6 and r["false_negative_rate"] == 0.25
    assert expected_cost(fn=1, fp=1, n=10, cost_fn=100, cost_fp=5) == 10.5


def test_undefined_ratios_are_nan_not_zero() -> None:
    r = binary_ratios(tp=0, fp=0, tn=7, fn=0)
    assert math.isnan(r["precision"]) and math.isnan(r["recall"]) and math.isnan(r["f1"])
    assert r["specificity"] == 1.0


@pytest.mark.parametrize("k, n", [(0, 5), (1, 10), (8, 10), (50, 50), (37, 1000), (9_990, 10_000)])
def test_wilson_interval_matches_scipy(k: int, n: int) -> None:
    expected = binomtest(k, n).proportion_ci(confidence_level=0.95, method="wilson")
    low, high = wilson_interval(k, n)
    assert low == pytest.approx(expected.low, abs=1e-12)
    assert high == pytest.approx(expected.high, abs=1e-12)


def test_interval_bounds_bracket_every_proportion() -> None:
    ratios = binary_ratios(30, 10, 50, 10)
    for name, (low, high) in binary_intervals(30, 10, 50, 10).items():
        assert low < ratios[name] < high


def test_auc_from_histograms_equals_sklearn_when_each_bin_holds_one_score() -> None:
    rng = np.random.default_rng(1)
    bins = 100
    edges = np.concatenate([[0.0], score_edges(bins), [1.0]])
    centres = (edges[:-1] + edges[1:]) / 2
    b = rng.integers(0, bins, size=5_000)
    scores = centres[b]
    labels = rng.random(5_000) < scores  # ties everywhere: the case where binning loses nothing
    auc = auc_from_histograms(np.bincount(b[labels], minlength=bins), np.bincount(b[~labels], minlength=bins))
    assert auc == pytest.approx(sk.roc_auc_score(labels, scores), abs=1e-12)


def test_auc_of_continuous_scores_is_within_the_binning_error() -> None:
    rng = np.random.default_rng(2)
    scores = 1 / (1 + np.exp(-rng.normal(-2, 1.5, size=20_000)))
    labels = rng.random(20_000) < scores
    quality = ModelQuality(model("binary_classification"), slots=4)
    quality.observe_labels(scores, labels.astype(float), np.zeros(20_000, dtype=np.int64), None, now=0.0)
    layout = quality.layout
    auc = auc_from_histograms(quality.labelled[layout.positive_hist()], quality.labelled[layout.negative_hist()])
    assert auc == pytest.approx(sk.roc_auc_score(labels, scores), abs=0.003)


def test_binary_accumulator_matches_sklearn_at_the_configured_threshold() -> None:
    rng = np.random.default_rng(3)
    scores = rng.beta(1, 4, size=3_000)
    labels = (rng.random(3_000) < scores).astype(float)
    quality = ModelQuality(model("binary_classification", decision_threshold=0.3), slots=4)
    for part in np.array_split(np.arange(3_000), 7):  # batches add up like one
        quality.observe_labels(scores[part], labels[part], np.zeros(len(part), dtype=np.int64), None, now=0.0)
    tp, fp, tn, fn = quality.labelled[:4]
    predicted = scores >= 0.3
    (sk_tn, sk_fp), (sk_fn, sk_tp) = sk.confusion_matrix(labels, predicted)
    assert (tp, fp, tn, fn) == (sk_tp, sk_fp, sk_tn, sk_fn)
    r = binary_ratios(tp, fp, tn, fn)
    assert r["accuracy"] == pytest.approx(sk.accuracy_score(labels, predicted))
    assert r["precision"] == pytest.approx(sk.precision_score(labels, predicted))
    assert r["recall"] == pytest.approx(sk.recall_score(labels, predicted))
    assert r["f1"] == pytest.approx(sk.f1_score(labels, predicted))
    assert quality.labelled[4] / 3_000 == pytest.approx(sk.brier_score_loss(labels, scores))
    assert quality.labelled[5] / 3_000 == pytest.approx(sk.log_loss(labels, scores))


def test_multiclass_per_class_and_averages_match_sklearn() -> None:
    rng = np.random.default_rng(4)
    classes = ["cat", "dog", "bird"]
    actual = rng.choice(classes + ["fish"], size=2_000, p=[0.5, 0.3, 0.15, 0.05])
    predicted = np.where(rng.random(2_000) < 0.7, actual, rng.choice(classes, size=2_000))
    quality = ModelQuality(model("multiclass_classification", classes=classes), slots=4)
    quality.observe_labels(predicted, actual, np.zeros(2_000, dtype=np.int64), None, now=0.0)
    per_class, averages = multiclass_metrics(quality.labelled[:16].reshape(4, 4), classes=3)
    p, r, f, _ = sk.precision_recall_fscore_support(actual, predicted, labels=classes, zero_division=0)
    np.testing.assert_allclose(per_class["precision"], p)
    np.testing.assert_allclose(per_class["recall"], r)
    np.testing.assert_allclose(per_class["f1"], f)
    assert averages["accuracy"] == pytest.approx(sk.accuracy_score(actual, predicted))  # fish is always wrong
    assert averages["macro_f1"] == pytest.approx(sk.f1_score(actual, predicted, labels=classes, average="macro"))
    assert averages["micro_f1"] == pytest.approx(sk.f1_score(actual, predicted, labels=classes, average="micro"))
    assert averages["macro_precision"] == pytest.approx(sk.precision_score(actual, predicted, labels=classes,
                                                                           average="macro"))


def test_multiclass_averages_skip_classes_absent_from_the_window() -> None:
    confusion = np.zeros((4, 4))
    confusion[0, 0], confusion[0, 1], confusion[1, 1] = 3, 1, 4  # bird (class 2) never seen
    per_class, averages = multiclass_metrics(confusion, classes=3)
    assert math.isnan(per_class["recall"][2])
    assert averages["macro_recall"] == pytest.approx((0.75 + 1.0) / 2)


def test_regression_sums_give_sklearn_mae_rmse_mape_r2_and_the_mean_error() -> None:
    rng = np.random.default_rng(5)
    labels = rng.normal(30, 10, size=4_000)
    predictions = labels + rng.normal(1.5, 4, size=4_000)
    quality = ModelQuality(model("regression"), slots=4)
    quality.observe_labels(predictions, labels, np.zeros(4_000, dtype=np.int64), None, now=0.0)
    got = regression_metrics(dict(zip(REGRESSION_SUMS, quality.labelled.tolist())), 4_000)
    assert got["mae"] == pytest.approx(sk.mean_absolute_error(labels, predictions))
    assert got["rmse"] == pytest.approx(math.sqrt(sk.mean_squared_error(labels, predictions)))
    assert got["mape"] == pytest.approx(sk.mean_absolute_percentage_error(labels, predictions))
    assert got["r2"] == pytest.approx(sk.r2_score(labels, predictions), rel=1e-9)
    assert got["bias"] == pytest.approx(np.mean(predictions - labels))


def test_regression_hand_worked_with_a_zero_and_a_negative_label() -> None:
    # errors (prediction - label): +2, -1, +1; labels 0, -2, 4 -> MAPE skips the 0.
    quality = ModelQuality(model("regression"), slots=4)
    quality.observe_labels(np.array([2.0, -3.0, 5.0]), np.array([0.0, -2.0, 4.0]), np.zeros(3, dtype=np.int64),
                           None, now=0.0)
    got = regression_metrics(dict(zip(REGRESSION_SUMS, quality.labelled.tolist())), 3)
    assert got["mae"] == pytest.approx(4 / 3)
    assert got["bias"] == pytest.approx(2 / 3)
    assert got["rmse"] == pytest.approx(math.sqrt(6 / 3))
    assert got["mape"] == pytest.approx((1 / 2 + 1 / 4) / 2)
    mean = 2 / 3
    assert got["r2"] == pytest.approx(1 - 6 / sum((y - mean) ** 2 for y in (0, -2, 4)))


def test_labels_leave_the_window_but_stay_in_the_cumulative_counters() -> None:
    quality = ModelQuality(model("binary_classification"), slots=4)  # 1h window in 15 min slots
    ones = np.ones(5)
    quality.observe_labels(ones * 0.9, ones, np.zeros(5, dtype=np.int64), None, now=0.0)
    quality.observe_labels(ones * 0.1, ones, np.zeros(5, dtype=np.int64), None, now=3_000.0)
    labelled, n, _, _ = quality.window(3600, now=4_000.0)
    assert n == 5 and labelled[3] == 5  # the t=0 slot has left: only the five misses (fn) remain
    assert quality.labelled_count == 10 and quality.labelled[0] == 5 and quality.labelled[3] == 5


def test_counters_of_two_replicas_add_up_to_one_over_all_the_data() -> None:
    rng = np.random.default_rng(6)
    scores, labels = rng.random(1_000), (rng.random(1_000) < 0.3).astype(float)
    zeros = np.zeros(500, dtype=np.int64)
    replicas = [ModelQuality(model("binary_classification"), slots=4) for _ in range(2)]
    replicas[0].observe_labels(scores[:500], labels[:500], zeros, None, 0.0)
    replicas[1].observe_labels(scores[500:], labels[500:], zeros, None, 0.0)
    whole = ModelQuality(model("binary_classification"), slots=4)
    whole.observe_labels(scores, labels, np.zeros(1_000, dtype=np.int64), None, 0.0)
    np.testing.assert_allclose(replicas[0].labelled + replicas[1].labelled, whole.labelled)


def test_clean_labels_accepts_only_values_of_the_task() -> None:
    binary = ModelQuality(model("binary_classification"), slots=4)
    values, ok = binary.clean_labels([1, 0, True, 0.0, 2, "1", None])
    assert values.tolist() == [1.0, 0.0, 1.0, 0.0] and ok.tolist() == [True] * 4 + [False] * 3
    regression = ModelQuality(model("regression"), slots=4)
    assert regression.clean_labels([1.5, float("nan"), "x", 3])[1].tolist() == [True, False, False, True]


def test_regression_msle_and_rmsle_match_sklearn_on_non_negative_values() -> None:
    rng = np.random.default_rng(15)
    labels = rng.gamma(2.0, 10.0, size=3_000)
    predictions = np.clip(labels * rng.lognormal(0, 0.3, size=3_000), 0, None)
    quality = ModelQuality(model("regression"), slots=4)
    quality.observe_labels(predictions, labels, np.zeros(3_000, dtype=np.int64), None, now=0.0)
    got = regression_metrics(dict(zip(REGRESSION_SUMS, quality.labelled.tolist())), 3_000)
    assert got["msle"] == pytest.approx(sk.mean_squared_log_error(labels, predictions), rel=1e-9)
    assert got["rmsle"] == pytest.approx(sk.root_mean_squared_log_error(labels, predictions), rel=1e-9)


def test_pairs_with_a_negative_value_are_left_out_of_msle_and_counted() -> None:
    labels = np.array([1.0, 3.0, -0.5, 2.0, 0.0])
    predictions = np.array([2.0, 3.0, 1.0, -0.2, 0.0])
    quality = ModelQuality(model("regression"), slots=4)
    quality.observe_labels(predictions, labels, np.zeros(5, dtype=np.int64), None, now=0.0)
    sums = dict(zip(REGRESSION_SUMS, quality.labelled.tolist()))
    assert sums["log_pairs"] == 3  # rows 3 (label -0.5) and 4 (prediction -0.2) are left out
    kept = [0, 1, 4]
    got = regression_metrics(sums, 5)
    assert got["msle"] == pytest.approx(sk.mean_squared_log_error(labels[kept], predictions[kept]))
    assert got["msle"] == pytest.approx((math.log(3) - math.log(2)) ** 2 / 3)  # by hand: one error, three pairs
    assert got["mae"] == pytest.approx(np.abs(predictions - labels).mean())  # the other metrics keep every pair
