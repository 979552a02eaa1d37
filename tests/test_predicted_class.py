"""Predictions as models emit them: per-class ties broken by the config's class order, and the model's own
predicted class carried next to its score (it overrides decision_threshold and the argmax)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from exporter.ingest.decode import check_prediction


def multiclass(classes: list[str]) -> Any:
    return SimpleNamespace(name="m", task="multiclass_classification",
                           prediction=SimpleNamespace(type="categorical", classes=classes),
                           quality_classes=tuple(classes))


@pytest.mark.parametrize("scores", [
    {"fox": 0.4, "dog": 0.4, "cat": 0.2},
    {"cat": 0.2, "dog": 0.4, "fox": 0.4},
    {"dog": 0.4, "cat": 0.2, "fox": 0.4},
])
def test_a_tie_in_class_scores_goes_to_the_class_listed_first_in_the_config_whatever_the_key_order(
        scores: dict[str, float]) -> None:
    assert check_prediction(multiclass(["cat", "dog", "fox"]), scores) == "dog"


def test_a_tie_in_a_predict_proba_row_goes_to_the_first_class_in_the_config() -> None:
    assert check_prediction(multiclass(["cat", "dog", "fox"]), [0.2, 0.4, 0.4]) == "dog"
    assert check_prediction(multiclass(["fox", "dog", "cat"]), [0.4, 0.4, 0.2]) == "fox"


def test_a_configured_class_wins_a_tie_against_a_class_the_config_does_not_list() -> None:
    assert check_prediction(multiclass(["cat", "dog"]), {"emu": 0.5, "dog": 0.5}) == "dog"


def test_a_tie_between_unlisted_classes_goes_to_the_smallest_text_whatever_the_key_order() -> None:
    model = multiclass(["cat", "dog"])
    assert check_prediction(model, {"yak": 0.5, "emu": 0.5, "cat": 0.1}) == "emu"
    assert check_prediction(model, {"emu": 0.5, "yak": 0.5, "cat": 0.1}) == "emu"
