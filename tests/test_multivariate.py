"""Multivariate drift: PCA reconstruction error catches a broken correlation no single feature shows."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import yaml

from exporter.stats import drift
from exporter.config.model import parse_config
from exporter.profiles.pca import basis_of, fit_pca
from exporter.state.multivariate import MultivariateState
from exporter.stats.multivariate import multivariate_scores
from exporter.profiles.profile import Profile, numeric_binning
from exporter.profiles.build import build_profile

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"



def reference_of(basis):
    return basis.error_binning.reference_ratio, basis.error_binning.reference_total

def correlated(rng: np.random.Generator, n: int, sign: float = 1.0) -> np.ndarray:
    x = rng.normal(size=n)
    return np.column_stack([x, sign * x + 0.3 * rng.normal(size=n), rng.normal(size=n)])


def histogram(basis, matrix: np.ndarray) -> np.ndarray:
    b = basis.error_binning
    return np.bincount(b.assign(basis.errors(matrix)), minlength=b.n_bins)


def psi_of_column(reference: np.ndarray, current: np.ndarray) -> float:
    binning = numeric_binning("c", reference, 10)
    seg = drift.Segments.of_sizes([binning.n_bins])
    q = drift.fractions(np.bincount(binning.assign(current), minlength=binning.n_bins), seg)[0]
    return float(drift.psi(binning.reference_ratio, q, seg)[0])


def test_flags_a_broken_correlation_that_no_single_feature_shows() -> None:
    rng = np.random.default_rng(4)
    reference, current = correlated(rng, 20_000), correlated(rng, 2000, sign=-1.0)
    basis = fit_pca(reference, ("a", "b", "c"))
    assert basis is not None
    for column in range(3):  # every marginal is unchanged
        assert psi_of_column(reference[:, column], current[:, column]) < 0.05
    score, p_value, n = multivariate_scores(*reference_of(basis), histogram(basis, current))
    assert score > 0.25 and p_value < 1e-6 and n == 2000


def test_data_like_the_reference_scores_low() -> None:
    rng = np.random.default_rng(5)
    basis = fit_pca(correlated(rng, 20_000), ("a", "b", "c"))
    score, p_value, _ = multivariate_scores(*reference_of(basis), histogram(basis, correlated(rng, 2000)))
    assert score < 0.05 and p_value > 0.001


def test_needs_two_numeric_features_and_enough_complete_rows() -> None:
    rng = np.random.default_rng(6)
    assert fit_pca(rng.normal(size=(500, 1)), ("a",)) is None
    assert fit_pca(rng.normal(size=(20, 3)), ("a", "b", "c")) is None


def test_state_bins_only_records_with_every_numeric_feature_present() -> None:
    rng = np.random.default_rng(7)
    basis = fit_pca(correlated(rng, 5000), ("a", "b", "c"))
    profile = Profile("m", 5000, {}, numeric_binning("p", np.arange(10.0), 2), extras={"pca": basis.to_json()})
    state = MultivariateState.of(profile, [60], 6)
    raw = {"a": [1.0, 2.0, None, 0.5], "b": [1.0, "x", 3.0, 0.4], "c": [0.0, 0.0, 0.0, float("nan")]}
    state.add(raw, now=10.0)
    assert state.window_counts(60, now=10.0).sum() == 1  # rows 1-3 each lack a usable value


def test_profile_build_stores_a_basis_that_survives_the_json_round_trip(tmp_path: Path) -> None:
    data = yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text())
    data.pop("alerting", None)
    model = parse_config(data, base_dir=EXAMPLES).model("delivery_time")
    profile = build_profile(EXAMPLES / "data" / "delivery_time_reference.csv", model, sample_rows=5000)
    basis = basis_of(profile)
    assert basis is not None and basis.features == ("distance_km", "items", "hour")
    assert basis.error_binning.reference_total == 5000
    profile.write(tmp_path / "p.json")
    again = Profile.read(tmp_path / "p.json")
    assert again.content_hash == profile.content_hash
    assert np.allclose(basis_of(again).components, basis.components)
    assert json.loads((tmp_path / "p.json").read_text())["extras"]["pca"]["features"] == ["distance_km", "items", "hour"]
