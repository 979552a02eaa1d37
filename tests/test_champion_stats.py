"""Champion vs challenger statistics: checked against scipy, and the rollout gate's decision rule simulated.

The gate fails a canary when the two-proportion z of its false-negative rate against the champion's
reaches the one-sided critical value of ``rollout.alpha`` (docs/rollouts.md). The simulation draws
the confusion counts of both arms, as the exporter would count them, and runs that rule.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import chi2, chi2_contingency, norm

from alert_rules import champion_rules
from alert_rules.rollouts import z_critical
from exporter.stats.comparison import homogeneity_chisquare, two_proportion_z


@pytest.mark.parametrize("seed", range(5))
def test_homogeneity_chisquare_is_scipys_chi2_contingency(seed: int) -> None:
    rng = np.random.default_rng(seed)
    champion = rng.integers(0, 400, size=12)
    challenger = rng.integers(0, 400, size=12)
    champion[3] = challenger[3] = 0  # a bin neither arm filled is left out, as chi2_contingency needs
    statistic, dof = homogeneity_chisquare(champion, challenger)
    filled = (champion + challenger) > 0
    expected = chi2_contingency(np.vstack([champion[filled], challenger[filled]]), correction=False)
    assert statistic == pytest.approx(expected.statistic, rel=1e-10)
    assert dof == expected.dof == 10


def test_two_proportion_z_is_the_pooled_z_test_and_signed_worse_positive() -> None:
    z = two_proportion_z(100, 1000, 130, 1000)
    p = 230 / 2000
    assert z == pytest.approx((0.13 - 0.10) / np.sqrt(p * (1 - p) * (2 / 1000)))
    # scipy's two-sided p-value of the same test: 2 * sf(|z|)
    assert 2 * norm.sf(abs(z)) == pytest.approx(0.0355, abs=1e-3)
    assert two_proportion_z(100, 1000, 130, 1000, lower_is_better=False) == pytest.approx(-z)
    assert np.isnan(two_proportion_z(0, 0, 5, 10))


def test_the_critical_values_the_rules_embed_are_scipys_quantiles() -> None:
    assert champion_rules.critical_value(0.95, 1) == pytest.approx(3.841459, rel=1e-6)
    assert champion_rules.critical_value(0.99, 11) == pytest.approx(24.72497, rel=1e-6)
    table = champion_rules.critical_table("d", 0.99, 11)
    for dof in (1, 5, 11):
        assert f"((d) == bool {dof}) * {float(chi2.ppf(0.99, dof))!r}" in table


PREDICTIONS_PER_ARM = 5_000  # per analysis interval (rollout.window = rollout.interval: independent measurements)
PREVALENCE = 0.5
CHAMPION_FNR = 0.10
RUNS = 1_000
INTERVALS = 3


def _gate_fails(rng: np.random.Generator, canary_fnr: float, alpha: float) -> np.ndarray:
    """For RUNS canaries: True where one of INTERVALS measurements fails the quality gate."""
    critical = z_critical(alpha)
    failed = np.zeros(RUNS, dtype=bool)
    for _ in range(INTERVALS):
        for run in range(RUNS):
            positives = rng.binomial(PREDICTIONS_PER_ARM, PREVALENCE, size=2)  # the FNR's trials per arm
            misses = rng.binomial(positives, [CHAMPION_FNR, canary_fnr])
            z = two_proportion_z(misses[0], positives[0], misses[1], positives[1])
            failed[run] |= z >= critical
    return failed


def test_a_canary_two_points_worse_fails_the_gate_in_at_least_80_percent_of_runs_within_3_intervals() -> None:
    caught = _gate_fails(np.random.default_rng(2015), CHAMPION_FNR + 0.02, alpha=0.01).mean()
    assert caught >= 0.80, caught


def test_a_canary_equal_to_the_champion_fails_the_gate_in_at_most_5_percent_of_runs() -> None:
    false_alarms = _gate_fails(np.random.default_rng(2016), CHAMPION_FNR, alpha=0.01).mean()
    assert false_alarms <= 0.05, false_alarms
