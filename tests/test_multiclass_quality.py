"""Multiclass quality from per-class scores: one-vs-rest ROC AUC and specificity, checked against scikit-learn and a
hand computation; the label-free estimates (CBPE multiclass) against realised values in seeded windows."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from sklearn import metrics as sk

from exporter.config.model import parse_config
from exporter.state.quality import ModelQuality
from exporter.stats.quality_math import multiclass_metrics, ovr_auc

CLASSES = ["cat", "dog", "fox"]


def model(**quality: Any):
    data = {"name": "m", "task": "multiclass_classification", "reference": {"capture": 10},
            "features": [{"name": "x", "type": "numeric"}], "prediction": {"name": "animal", "type": "categorical",
                                                                             "classes": CLASSES},
            "quality": quality, "drift": {"windows": ["1h"]}}
    return parse_config({"models": [data]}).models[0]


def softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def sample(rng: np.random.Generator, n: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Calibrated scores and labels drawn from them: (scores n x 3, label indices)."""
    logits = rng.normal(0, 1.5, size=(n, 3)) + np.array([0.4 + shift, 0.0, -0.3])
    scores = softmax(logits)
    labels = (rng.random(n)[:, None] > np.cumsum(scores, axis=1)).sum(axis=1)
    return scores, np.minimum(labels, 2)


def observed(scores: np.ndarray, labels: np.ndarray, **quality: Any) -> ModelQuality:
    quality_state = ModelQuality(model(**quality), slots=4)
    predicted = np.array(CLASSES, dtype=object)[scores.argmax(axis=1)]
    actual = np.array(CLASSES, dtype=object)[labels]
    quality_state.observe_labels(predicted, actual, np.zeros(len(labels), dtype=np.int64), None, 0.0, scores)
    return quality_state


def test_one_vs_rest_macro_auc_matches_sklearn_within_the_binning_error() -> None:
    rng = np.random.default_rng(11)
    scores, labels = sample(rng, 20_000)
    quality = observed(scores, labels)
    layout = quality.layout
    per_class, macro = ovr_auc(quality.labelled[layout.class_positive_hist()].reshape(3, layout.bins),
                               quality.labelled[layout.class_negative_hist()].reshape(3, layout.bins))
    assert macro == pytest.approx(sk.roc_auc_score(labels, scores, multi_class="ovr", average="macro"), abs=0.003)
    for c in range(3):
        assert per_class[c] == pytest.approx(sk.roc_auc_score(labels == c, scores[:, c]), abs=0.003)


def test_specificity_per_class_and_macro_equal_a_hand_computation() -> None:
    rng = np.random.default_rng(12)
    scores, labels = sample(rng, 5_000)
    quality = observed(scores, labels)
    per_class, averages = multiclass_metrics(quality.labelled[:16].reshape(4, 4), classes=3)
    predicted = scores.argmax(axis=1)
    expected = []
    for c in range(3):
        negatives = labels != c
        expected.append(((predicted != c) & negatives).sum() / negatives.sum())  # TN / (TN + FP)
    np.testing.assert_allclose(per_class["specificity"], expected)
    assert averages["macro_specificity"] == pytest.approx(np.mean(expected))


def test_a_hand_worked_three_class_specificity() -> None:
    # rows actual, columns predicted (cat, dog, fox, __other__): 10 rows.
    confusion = np.array([[3, 1, 0, 0], [0, 2, 1, 0], [1, 0, 1, 0], [0, 1, 0, 0]], dtype=float)
    per_class, averages = multiclass_metrics(confusion, classes=3)
    # cat: negatives 6 (dog 3, fox 2, other 1), predicted cat among them 1 -> 5/6;
    # dog: negatives 7, predicted dog among them 2 (cat->dog, other->dog) -> 5/7; fox: negatives 8, 1 -> 7/8.
    np.testing.assert_allclose(per_class["specificity"], [5 / 6, 5 / 7, 7 / 8])
    assert averages["macro_specificity"] == pytest.approx((5 / 6 + 5 / 7 + 7 / 8) / 3)


def test_rows_sent_as_a_class_without_scores_count_in_the_matrix_but_not_in_the_auc() -> None:
    rng = np.random.default_rng(13)
    scores, labels = sample(rng, 1_000)
    extras = scores.copy()
    extras[:400] = np.nan
    quality = ModelQuality(model(), slots=4)
    predicted = np.array(CLASSES, dtype=object)[scores.argmax(axis=1)]
    quality.observe_labels(predicted, np.array(CLASSES, dtype=object)[labels], np.zeros(1_000, dtype=np.int64),
                           None, 0.0, extras)
    layout = quality.layout
    assert quality.labelled[:16].sum() == 1_000
    assert quality.labelled[layout.class_positive_hist()].sum() + \
        quality.labelled[layout.class_negative_hist()].sum() == 600 * 3
