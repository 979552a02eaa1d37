"""Calibrated label-free estimation: with the reference's isotonic map, estimates of miscalibrated
models land within 3 standard errors of the realised quality; without it they do not.

The simulation: true probabilities p, labels y ~ Bernoulli(p), and a model whose scores are a
monotone distortion of p (over-confident p^2, under-confident sqrt(p), squashed toward 0.5). The
map is fitted on a labelled reference; then an undrifted and a covariate-shifted window go
through the exporter's own quality accumulator (ModelQuality) and the collector's formulas.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.isotonic import IsotonicRegression

from conftest import EXAMPLES, build_config, example_config_data
from exporter.cli import main
from exporter.profiles.profile import Profile
from exporter.state.quality import ModelQuality
from exporter.state.store import calibration_of
from exporter.stats.calibration import Calibration, exact_auc, fit_isotonic
from exporter.stats.estimation import ESTIMATED_METRICS, estimated_metrics, estimated_standard_errors
from exporter.stats.quality_math import auc_from_histograms, binary_ratios

DISTORTIONS = {
    "over-confident p^2": lambda p: p**2,
    "under-confident sqrt(p)": np.sqrt,
    "squashed toward 0.5": lambda p: 0.5 + (p - 0.5) * 0.4,
}
REFERENCE_ROWS, WINDOW_ROWS, SEEDS = 50_000, 5_000, 210
NOW = 1_700_000_000.0


def fraud_model():
    return build_config(example_config_data()).model("fraud")


def window_metrics(model, calibration: Calibration | None, scores: np.ndarray, labels: np.ndarray):
    """(realised, estimated, standard errors) of one window, the way the exporter computes them."""
    quality = ModelQuality(model, 60, calibration)
    codes = np.zeros(len(scores), dtype=np.int64)
    quality.observe_predictions(scores, codes, NOW)
    quality.observe_labels(scores, labels.astype(np.float64), codes, None, NOW)
    labelled, _, predicted, _ = quality.window(model.quality_windows[0], NOW)
    layout = quality.layout
    realised = binary_ratios(*labelled[:4].tolist())
    realised["roc_auc"] = auc_from_histograms(labelled[layout.positive_hist()], labelled[layout.negative_hist()])
    etp, efp, etn, efn = predicted[:4].tolist()
    estimated = estimated_metrics(etp, efp, etn, efn, predicted[layout.count_hist()], predicted[layout.score_sum_hist()])
    spread = predicted[layout.bernoulli_variance()]
    errors = estimated_standard_errors(etp, efp, etn, efn, float(spread[0]), float(spread[1]), estimated["roc_auc"])
    return realised, estimated, errors


def coverage(calibrated: bool) -> dict[str, float]:
    """Share of windows (undrifted and drifted, every seed) whose realised metric is within 3 SE of the estimate."""
    model = fraud_model()
    hits = {name: 0 for name in ESTIMATED_METRICS}
    windows = 0
    for seed in range(SEEDS):
        rng = np.random.default_rng(seed)
        distort = list(DISTORTIONS.values())[seed % len(DISTORTIONS)]
        p_ref = rng.beta(2, 5, REFERENCE_ROWS)
        y_ref = rng.random(REFERENCE_ROWS) < p_ref
        calibration = fit_isotonic(distort(p_ref), y_ref) if calibrated else None
        for a, b in ((2, 5), (3, 3)):  # the reference's distribution, then a covariate shift to more positives
            p = rng.beta(a, b, WINDOW_ROWS)
            y = rng.random(WINDOW_ROWS) < p
            realised, estimated, errors = window_metrics(model, calibration, distort(p), y)
            windows += 1
            for name in ESTIMATED_METRICS:
                hits[name] += abs(realised[name] - estimated[name]) <= 3 * errors[name]
    return {name: hit / windows for name, hit in hits.items()}


def test_calibrated_estimates_land_within_three_standard_errors_in_95_percent_of_windows() -> None:
    rates = coverage(calibrated=True)
    print(f"share of windows within 3 standard errors, calibrated: {rates}")
    assert all(rate >= 0.95 for rate in rates.values()), rates


def test_without_calibration_the_same_check_shows_the_bias() -> None:
    rates = coverage(calibrated=False)
    print(f"share of windows within 3 standard errors, raw scores: {rates}")
    assert min(rates.values()) < 0.5, rates  # the test above can fail: raw scores are far off


def test_the_map_equals_scikit_learns_isotonic_regression_within_the_stored_tolerance() -> None:
    rng = np.random.default_rng(1)
    p = rng.beta(2, 5, 50_000)
    scores, labels = np.sqrt(p), rng.random(50_000) < p
    reference = IsotonicRegression(out_of_bounds="clip", y_min=0.0, y_max=1.0).fit(scores, labels)
    for max_knots in (200, 20):  # 20 knots forces compression, and a non-zero tolerance
        calibration = fit_isotonic(scores, labels, max_knots=max_knots)
        assert len(calibration.x) <= max_knots
        grid = np.linspace(0, 1, 2001)
        difference = np.abs(calibration(np.r_[scores, grid]) - reference.predict(np.r_[scores, grid]))
        assert difference[: len(scores)].max() <= calibration.tolerance + 1e-12
        assert (np.diff(calibration.y) >= 0).all() and (np.diff(calibration.x) >= 0).all()


def test_a_hand_worked_map() -> None:
    # PAV on y = 0, 1, 0, 1 at x = .1 .. .4: the violating pair (1, 0) pools to 0.5.
    calibration = fit_isotonic(np.array([0.4, 0.1, 0.3, 0.2]), np.array([1, 0, 0, 1]))
    assert calibration.x.tolist() == [0.1, 0.2, 0.3, 0.4] and calibration.y.tolist() == [0.0, 0.5, 0.5, 1.0]
    assert calibration(np.array([0.0, 0.15, 1.0])) == pytest.approx([0.0, 0.25, 1.0])


def test_exact_auc_equals_the_rank_definition() -> None:
    scores, labels = np.array([0.1, 0.4, 0.35, 0.8]), np.array([0, 0, 1, 1])
    assert exact_auc(scores, labels) == pytest.approx(0.75)  # 3 of the 4 positive-negative pairs ordered right


def test_profile_build_with_a_label_column_stores_the_map_and_the_reference_quality(tmp_path: Path) -> None:
    out = tmp_path / "fraud.json"
    data = EXAMPLES / "data" / "fraud_reference.csv"
    assert "label" in data.read_text().splitlines()[0].split(",")
    code = main(["profile", "build", "-c", str(EXAMPLES / "mlmon.yaml"), "--model", "fraud", str(data), "-o", str(out),
                 "--label-column", "label"])
    assert code == 0
    profile = Profile.read(out)
    calibration = calibration_of(profile)
    assert calibration is not None and calibration.rows > 1000 and len(calibration.x) <= 200
    quality = json.loads(out.read_text())["extras"]["reference_quality"]
    assert set(quality) == {"accuracy", "precision", "recall", "f1", "roc_auc"}
    assert 0.5 < quality["roc_auc"] <= 1.0


def test_a_profile_without_labels_keeps_raw_estimates() -> None:
    profile = Profile.read(EXAMPLES / "reference" / "fraud.json")
    assert calibration_of(profile) is None
