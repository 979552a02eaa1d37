"""Bias measures per segment and per attribute, against hand computations."""

from __future__ import annotations

import math

import numpy as np
import pytest

from exporter.stats.bias import OTHER, SegmentCodec, attribute_bias, segment_rates
from exporter.config.model import parse_config
from exporter.config.errors import ConfigError
from exporter.state.quality import ModelQuality

# Two groups, hand-made:
#   A: 100 predictions, 50 predicted positive; labelled: tp 30, fp 10, tn 40, fn 20
#   B: 100 predictions, 30 predicted positive; labelled: tp 20, fp 10, tn 50, fn 20
PREDICTIONS = np.array([100.0, 100.0])
POSITIVE = np.array([50.0, 30.0])
CONFUSION = np.array([[30, 10, 40, 20], [20, 10, 50, 20]], dtype=float)


def test_segment_rates_by_hand() -> None:
    rates = segment_rates(PREDICTIONS, POSITIVE, CONFUSION)
    assert rates["selection_rate"].tolist() == [0.5, 0.3]
    assert rates["tpr"].tolist() == [30 / 50, 20 / 40]
    assert rates["fpr"].tolist() == [10 / 50, 10 / 60]
    assert rates["precision"].tolist() == [30 / 40, 20 / 30]


def test_attribute_measures_by_hand() -> None:
    bias = attribute_bias(PREDICTIONS, POSITIVE, CONFUSION)
    assert bias["demographic_parity_difference"] == (pytest.approx(0.2), 100)
    assert bias["disparate_impact_ratio"] == (pytest.approx(0.6), 100)  # fails the four-fifths rule
    assert bias["equal_opportunity_difference"] == (pytest.approx(0.1), 40)  # 0.6 - 0.5, B has 40 positives
    # FPR range 0.2 - 1/6 = 0.0333 < TPR range 0.1, so equalised odds is the TPR gap; fewest: 40 positives.
    assert bias["equalized_odds_difference"] == (pytest.approx(0.1), 40)


def test_equalized_odds_takes_the_fpr_gap_when_it_is_larger() -> None:
    confusion = np.array([[30, 40, 10, 20], [20, 10, 50, 20]], dtype=float)  # FPR 0.8 vs 1/6
    assert attribute_bias(PREDICTIONS, POSITIVE, confusion)["equalized_odds_difference"][0] == pytest.approx(0.8 - 1 / 6)


def test_parity_is_zero_difference_and_unit_ratio() -> None:
    bias = attribute_bias(np.array([10.0, 40.0]), np.array([2.0, 8.0]), np.zeros((2, 4)))
    assert bias["demographic_parity_difference"][0] == 0 and bias["disparate_impact_ratio"][0] == 1
    assert math.isnan(bias["equal_opportunity_difference"][0])  # no labels: undefined, not 0


def test_segments_without_data_are_left_out_and_one_segment_is_undefined() -> None:
    bias = attribute_bias(np.array([100.0, 0.0, 50.0]), np.array([50.0, 0.0, 10.0]), np.zeros((3, 4)))
    assert bias["disparate_impact_ratio"] == (pytest.approx(0.4), 50)
    alone = attribute_bias(np.array([100.0, 0.0]), np.array([50.0, 0.0]), np.zeros((2, 4)))
    assert math.isnan(alone["demographic_parity_difference"][0])


def test_codec_folds_unlisted_missing_and_non_string_values_into_other() -> None:
    codec = SegmentCodec([("country", ("US", "NG")), ("channel", ("web", "app"))])
    codes = codec.encode([{"country": "US", "channel": "app"}, {"country": "FR"}, {"country": 7}, None, "x"])
    decoded = codec.decode(codes)
    assert decoded.tolist() == [[0, 1], [2, 2], [2, 2], [2, 2], [2, 2]]
    assert codec.values[0] == ("US", "NG", OTHER) and codec.width == 6


def test_accumulates_segment_counts_from_predictions_and_labels() -> None:
    config = parse_config({"models": [{
        "name": "m", "task": "binary_classification", "reference": {"capture": 10},
        "features": [{"name": "x", "type": "numeric"}], "drift": {"windows": ["1h"]},
        "segments": [{"attribute": "group", "values": ["a", "b"]}],
    }]})
    quality = ModelQuality(config.models[0], slots=4)
    codec = quality.layout.codec
    segments = [{"group": "a"}] * 4 + [{"group": "b"}] * 4 + [{"group": "zzz"}] * 2
    codes = codec.encode(segments)
    scores = np.array([0.9, 0.9, 0.1, 0.1, 0.9, 0.1, 0.1, 0.1, 0.9, 0.9])
    quality.observe_predictions(scores, codes, now=0.0)
    labels = np.array([1, 0, 1, 0, 1, 1, 0, 0, 1, 1], dtype=float)
    quality.observe_labels(scores, labels, codes, None, now=0.0)
    selection = quality.predicted[quality.layout.segment_selection()].reshape(-1, 2)
    assert selection.tolist() == [[4, 2], [4, 1], [2, 2]]  # [predictions, predicted positive] for a, b, __other__
    confusion = quality.labelled[quality.layout.segment_confusion()].reshape(-1, 4)
    assert confusion.tolist() == [[1, 1, 1, 1], [1, 0, 2, 1], [2, 0, 0, 0]]


def test_config_rejects_segments_on_a_regression_model() -> None:
    with pytest.raises(ConfigError, match="binary_classification only"):
        parse_config({"models": [{
            "name": "m", "task": "regression", "reference": {"capture": 10},
            "features": [{"name": "x", "type": "numeric"}], "segments": [{"attribute": "g", "values": ["a"]}],
        }]})
