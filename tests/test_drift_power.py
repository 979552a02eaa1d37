"""False alarms and power of the default drift rule, over many seeded trials (docs/drift.md, "Deciding drift").

Each trial is one evaluation of one feature: a window of N values, binned against a reference
profile built from 20,000 reference values, scored by the same function the exporter uses.
"""

from __future__ import annotations

import numpy as np
import pytest

from exporter.config.model import DriftConfig
from exporter.http.drift_report import Reference, score_window
from exporter.profiles.profile import Binning, categorical_binning, numeric_binning
from exporter.state.store import Layout

TRIALS = 2000
REFERENCE_ROWS = 20_000
DEFAULTS = DriftConfig()


def reference_of(binning: Binning) -> Reference:
    return Reference.of(Layout((binning, binning), np.array([0, binning.n_bins, 2 * binning.n_bins])))


def drift_rate(binning: Binning, counts: np.ndarray, config: DriftConfig = DEFAULTS) -> float:
    """Share of trials (rows of counts) with a drift verdict; the binning scores as a feature and the prediction."""
    ref = reference_of(binning)
    flat = np.concatenate([counts, counts], axis=1)
    verdicts = score_window(ref, flat, config)["verdict"][:, 0]
    assert not np.isnan(verdicts).any()
    return float(verdicts.mean())


def numeric_trials(binning: Binning, rng: np.random.Generator, n: int, shift: float) -> np.ndarray:
    values = rng.normal(shift, 1.0, size=(TRIALS, n))
    index = binning.assign(values.ravel()).reshape(TRIALS, n) + np.arange(TRIALS)[:, None] * binning.n_bins
    return np.bincount(index.ravel(), minlength=TRIALS * binning.n_bins).reshape(TRIALS, binning.n_bins)


def categorical_trials(binning: Binning, categories: list[str], probabilities: list[float], rng: np.random.Generator, n: int) -> np.ndarray:
    drawn = rng.multinomial(n, probabilities, size=TRIALS)
    counts = np.zeros((TRIALS, binning.n_bins), dtype=np.int64)
    for j, category in enumerate(categories):
        counts[:, binning.categories.index(category)] = drawn[:, j]
    return counts


COUNTRIES = ["US", "GB", "DE", "FR", "IN", "BR", "NG", "JP"]
COUNTRY_P = [0.40, 0.15, 0.12, 0.10, 0.10, 0.06, 0.02, 0.05]
COUNTRY_SWAPPED = [0.30, 0.25, 0.12, 0.10, 0.10, 0.06, 0.02, 0.05]  # 10 points from US to GB: PSI 0.08
EVEN = ["false", "true"]


def country_binning(rng: np.random.Generator) -> Binning:
    return categorical_binning("country", rng.choice(COUNTRIES, size=REFERENCE_ROWS, p=COUNTRY_P).tolist(), 20)


def even_boolean(rng: np.random.Generator) -> Binning:
    return categorical_binning("flag", rng.choice(EVEN, size=REFERENCE_ROWS).tolist(), 2, kind="boolean")


@pytest.mark.parametrize("bins", [10, 50])
@pytest.mark.parametrize("n", [DEFAULTS.min_samples, 1000])
def test_reference_data_raises_at_most_one_percent_false_drift_on_numeric_features(bins: int, n: int) -> None:
    rng = np.random.default_rng(100 + bins + n)
    binning = numeric_binning("x", rng.normal(size=REFERENCE_ROWS), bins)
    assert drift_rate(binning, numeric_trials(binning, rng, n, 0.0)) <= 0.01


@pytest.mark.parametrize("n", [DEFAULTS.min_samples, 1000])
@pytest.mark.parametrize("make", [country_binning, even_boolean], ids=["country", "boolean"])
def test_reference_data_raises_at_most_one_percent_false_drift_on_categorical_features(make, n: int) -> None:
    rng = np.random.default_rng(7 + n)
    binning = make(rng)
    categories, probabilities = (COUNTRIES, COUNTRY_P) if binning.name == "country" else (EVEN, [0.5, 0.5])
    assert drift_rate(binning, categorical_trials(binning, categories, probabilities, rng, n)) <= 0.01


@pytest.mark.parametrize("bins", [10, 50])
def test_a_half_sd_mean_shift_is_flagged_in_99_percent_of_1000_sample_windows(bins: int) -> None:
    rng = np.random.default_rng(21 + bins)
    binning = numeric_binning("x", rng.normal(size=REFERENCE_ROWS), bins)
    assert drift_rate(binning, numeric_trials(binning, rng, 1000, 0.5)) >= 0.99


def test_a_ten_point_category_swap_is_flagged_in_99_percent_of_1000_sample_windows() -> None:
    rng = np.random.default_rng(31)
    binning = country_binning(rng)
    assert drift_rate(binning, categorical_trials(binning, COUNTRIES, COUNTRY_SWAPPED, rng, 1000)) >= 0.99


def test_a_ten_point_swap_between_two_even_categories_is_flagged_in_99_percent_of_windows() -> None:
    # The hardest 10-point swap: 50/50 -> 60/40 is PSI 0.04, which a PSI >= 0.1 rule never flags.
    rng = np.random.default_rng(41)
    binning = even_boolean(rng)
    assert drift_rate(binning, categorical_trials(binning, EVEN, [0.6, 0.4], rng, 1000)) >= 0.99


def test_a_psi_threshold_alone_would_miss_the_even_swap_and_alarm_on_many_bins() -> None:
    """Why the default rule combines a test with an effect floor (the finding behind docs/drift.md)."""
    rng = np.random.default_rng(51)
    psi_only = DriftConfig(alpha=0.999999, min_effect=0.1)  # p-value ignored: PSI >= 0.1 decides
    boolean = even_boolean(rng)
    assert drift_rate(boolean, categorical_trials(boolean, EVEN, [0.6, 0.4], rng, 1000), psi_only) < 0.05
    many = numeric_binning("x", rng.normal(size=REFERENCE_ROWS), 50)
    # PSI ~ chi2(bins-1)/N under no drift: mean 51/500 = 0.1 at N = 500, so about half the windows alarm.
    assert drift_rate(many, numeric_trials(many, rng, DEFAULTS.min_samples, 0.0), psi_only) > 0.3


def test_a_trivial_shift_in_a_huge_window_is_significant_but_below_the_effect_floor() -> None:
    rng = np.random.default_rng(61)
    binning = numeric_binning("x", rng.normal(size=REFERENCE_ROWS), 10)
    counts = np.bincount(binning.assign(rng.normal(0.03, 1.0, size=1_000_000)), minlength=binning.n_bins)
    result = score_window(reference_of(binning), np.concatenate([counts, counts]), DEFAULTS)
    assert result["p_value"][0] < DEFAULTS.alpha  # the test alone would call 0.03 sd "drift"
    assert result["verdict"][0] == 0.0
