"""Confidence-based performance estimation against realised metrics on synthetic fraud traffic.

The synthetic fraud model's scores are calibrated by construction: each label is drawn with
probability equal to its score. The realised metrics are then random around the expected ones,
so the tolerance is stated in binomial standard errors of the realised proportion (3 SE), and
0.02 absolute for F1 and ROC AUC (not proportions; AUC also carries the histogram's binning).
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn import metrics as sk

from exporter.tooling import synthetic
from exporter.stats.estimation import estimated_metrics, expected_confusion
from exporter.state.quality import score_edges

THRESHOLD = 0.02
N = 50_000


def estimate(scores: np.ndarray) -> dict[str, float]:
    bins = np.searchsorted(score_edges(100), scores, side="right")
    counts = np.bincount(bins, minlength=100)
    sums = np.bincount(bins, weights=scores, minlength=100)
    return estimated_metrics(*expected_confusion(scores, THRESHOLD), counts, sums)


def realised(scores: np.ndarray, labels: np.ndarray, threshold: float = THRESHOLD) -> dict[str, float]:
    predicted = scores >= threshold
    return {
        "accuracy": sk.accuracy_score(labels, predicted),
        "precision": sk.precision_score(labels, predicted),
        "recall": sk.recall_score(labels, predicted),
        "f1": sk.f1_score(labels, predicted),
        "roc_auc": sk.roc_auc_score(labels, scores),
    }


def fraud(seed: int) -> tuple[np.ndarray, np.ndarray]:
    data = synthetic.columns("fraud", N, np.random.default_rng(seed))
    return np.asarray(data["predictions"]), np.asarray(data["labels"])


def standard_error(p: float, n: float) -> float:
    return math.sqrt(p * (1 - p) / n)


def test_hand_worked_expected_confusion() -> None:
    # 0.9 and 0.6 are predicted positive: E[TP] = 1.5, E[FP] = 0.5; 0.2 is negative: E[FN] = 0.2, E[TN] = 0.8.
    assert expected_confusion(np.array([0.9, 0.6, 0.2]), 0.5) == pytest.approx((1.5, 0.5, 0.8, 0.2))
    est = estimated_metrics(1.5, 0.5, 0.8, 0.2, np.array([1, 2]), np.array([0.2, 1.5]))
    assert est["accuracy"] == pytest.approx(2.3 / 3)
    assert est["precision"] == pytest.approx(0.75) and est["recall"] == pytest.approx(1.5 / 1.7)
    # AUC: bin 1 holds 1.5 positives / 0.5 negatives, bin 0 holds 0.2 / 0.8.
    assert est["roc_auc"] == pytest.approx((1.5 * (0.8 + 0.25) + 0.2 * 0.4) / (1.7 * 1.3))


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_estimates_from_calibrated_scores_track_the_realised_metrics(seed: int) -> None:
    scores, labels = fraud(seed)
    est, real = estimate(scores), realised(scores, labels)
    etp, efp, etn, efn = expected_confusion(scores, THRESHOLD)
    denominators = {"accuracy": N, "precision": etp + efp, "recall": etp + efn}
    for metric, n in denominators.items():
        assert abs(est[metric] - real[metric]) < 3 * standard_error(est[metric], n), metric
    assert est["f1"] == pytest.approx(real["f1"], abs=0.02)
    assert est["roc_auc"] == pytest.approx(real["roc_auc"], abs=0.02)


def test_estimates_follow_a_covariate_shift_that_keeps_calibration() -> None:
    # Drift moves amounts, ages and countries; the score still is P(fraud | inputs), so the estimate moves with it.
    data = synthetic.columns("fraud", N, np.random.default_rng(21), drift=1.0)
    scores, labels = np.asarray(data["predictions"]), np.asarray(data["labels"])
    before = estimate(fraud(21)[0])
    est, real = estimate(scores), realised(scores, labels)
    assert abs(est["precision"] - before["precision"]) > 0.02  # performance did change
    etp, efp, _, _ = expected_confusion(scores, THRESHOLD)
    assert abs(est["precision"] - real["precision"]) < 3 * standard_error(est["precision"], etp + efp)


def test_overconfident_scores_bias_the_estimates_upwards() -> None:
    scores, labels = fraud(31)
    inflated = np.clip(2 * scores, 0, 1)  # the model claims twice the fraud risk it has
    est, real = estimate(inflated), realised(inflated, labels)
    etp, efp, _, _ = expected_confusion(inflated, THRESHOLD)
    gap = est["precision"] - real["precision"]
    assert gap > 10 * standard_error(real["precision"], etp + efp)  # far outside sampling noise
    assert est["precision"] == pytest.approx(2 * real["precision"], rel=0.15)  # and by the factor of miscalibration


def test_underconfident_scores_bias_precision_downwards() -> None:
    scores, labels = fraud(32)
    deflated = scores / 2
    est, real = estimate(deflated), realised(deflated, labels)
    assert est["precision"] < real["precision"] / 1.5
