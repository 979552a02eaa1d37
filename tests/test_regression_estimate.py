"""Label-free regression error (the reference's error per prediction bin): seeded windows against the realised MAE
and RMSE (3-standard-error rule), the concept drift it cannot see, and the profile/exporter round trip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from exporter.config.model import parse_config
from exporter.profiles.build import build_profile
from exporter.state.quality import QualityMath
from exporter.stats.error_model import ErrorModel, fit_error_model

SEEDS = 200
WINDOW = 2_000


def world(rng: np.random.Generator, n: int, shift: float = 0.0, noise: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
    """(predictions, labels): the model is right on average, its error grows with the prediction (car prices)."""
    x = rng.normal(shift, 1.0, n)
    prediction = 20.0 + 6.0 * x
    sd = noise * (1.0 + 0.4 * np.abs(prediction - 20.0))
    return prediction, prediction + rng.normal(0, sd)


def regression_model():
    data = {"name": "cars", "task": "regression", "reference": {"capture": 10},
            "features": [{"name": "x", "type": "numeric"}], "drift": {"windows": ["1h"]}}
    return parse_config({"models": [data]}).models[0]


def coverage(error_model: ErrorModel, shift: float, noise: float = 1.0) -> dict[str, float]:
    math = QualityMath(regression_model(), error_model)
    inside = {"mae": 0, "rmse": 0}
    for seed in range(SEEDS):
        predictions, labels = world(np.random.default_rng(seed), WINDOW, shift if seed % 2 else 0.0, noise)
        counts = math.prediction_vector(predictions, np.zeros(WINDOW, dtype=np.int64))
        mae, mae_se, rmse, rmse_se = error_model.estimate(counts)
        error = predictions - labels
        inside["mae"] += abs(np.abs(error).mean() - mae) <= 3 * mae_se
        inside["rmse"] += abs(np.sqrt((error * error).mean()) - rmse) <= 3 * rmse_se
    return {name: count / SEEDS for name, count in inside.items()}


@pytest.fixture(scope="module")
def error_model() -> ErrorModel:
    return fit_error_model(*world(np.random.default_rng(1000), 50_000))


def test_the_estimated_mae_and_rmse_are_within_3_standard_errors_of_the_realised_in_95_percent_of_windows(
        error_model: ErrorModel) -> None:
    shares = coverage(error_model, shift=0.8)  # half the windows shifted toward larger (and worse) predictions
    assert min(shares.values()) >= 0.95, shares


def test_a_covariate_shift_moves_the_estimate_with_the_realised_error(error_model: ErrorModel) -> None:
    math = QualityMath(regression_model(), error_model)
    before = error_model.estimate(math.prediction_vector(world(np.random.default_rng(1), 5_000)[0], np.zeros(5_000)))
    after = error_model.estimate(math.prediction_vector(world(np.random.default_rng(2), 5_000, 1.0)[0], np.zeros(5_000)))
    assert after[0] > before[0] + 5 * after[1]


def test_concept_drift_at_the_same_predictions_is_not_seen(error_model: ErrorModel) -> None:
    # The documented blind spot: the noise doubles for the same predictions; the estimate stays put.
    shares = coverage(error_model, shift=0.0, noise=2.0)
    assert max(shares.values()) < 0.05, shares


def test_the_error_model_is_a_weighted_mean_of_the_reference_bins_by_hand() -> None:
    model = fit_error_model(np.arange(40, dtype=float), np.arange(40, dtype=float) + np.tile([1.0, -3.0], 20), bins=20)
    assert np.allclose(model.abs_mean, 2.0) and np.allclose(model.sq_mean, 5.0)
    assert np.allclose(model.rows, 2.0)
    mae, _, rmse, _ = model.estimate(np.r_[np.zeros(19), 10.0])
    assert mae == pytest.approx(2.0) and rmse == pytest.approx(np.sqrt(5.0))


def test_a_labelled_regression_reference_gives_live_estimates(start_exporter, tmp_path: Path) -> None:
    rng = np.random.default_rng(7)
    predictions, labels = world(rng, 20_000)
    lines = ["x,price,truth"] + [f"{p / 6},{p},{y}" for p, y in zip(predictions, labels)]
    (tmp_path / "ref.csv").write_text("\n".join(lines) + "\n")
    data = {"name": "cars", "task": "regression", "reference": "cars.json",
            "features": [{"name": "x", "type": "numeric"}], "prediction": {"name": "price", "type": "numeric"},
            "drift": {"windows": ["1h"]}}
    config = parse_config({"models": [data]}, base_dir=tmp_path)
    profile = build_profile(tmp_path / "ref.csv", config.models[0], label_column="truth")
    assert profile.extras["reference_quality"]["mae"] == pytest.approx(np.abs(predictions - labels).mean())
    profile.write(tmp_path / "cars.json")
    exporter = start_exporter(parse_config({"models": [data]}, base_dir=tmp_path))
    predictions, labels = world(rng, 3_000)
    exporter.post_ok({"model": "cars", "model_version": "v1", "features": {"x": (predictions / 6).tolist()},
                      "predictions": predictions.tolist(), "labels": labels.tolist()})
    ids = {"model": "cars", "model_version": "v1", "window": "1h"}
    for name in ("mae", "rmse"):
        estimate = exporter.value("mlmon_estimated_quality_score", **ids, metric=name)
        error = exporter.value("mlmon_estimated_quality_standard_error", **ids, metric=name)
        realised = exporter.value("mlmon_quality_score", **ids, metric=name)
        assert abs(estimate - realised) <= 3 * error, (name, estimate, realised, error)
    info = [k for k in exporter.samples() if k[0] == "mlmon_model_info"]
    assert ("calibration", "binned_error") in info[0][1]
