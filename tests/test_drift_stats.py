"""Drift scores from bin counts, checked against scipy on the same data and against hand-worked values."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats
from scipy.spatial import distance

from exporter.stats import drift
from exporter.profiles.profile import numeric_binning

REF_N = 20_000


def one(counts_ref: np.ndarray, counts_cur: np.ndarray) -> tuple[drift.Segments, np.ndarray, np.ndarray]:
    seg = drift.Segments.of_sizes([len(counts_ref)])
    return seg, drift.fractions(counts_ref, seg)[0], drift.fractions(counts_cur, seg)[0]


@pytest.fixture(scope="module")
def numeric_case() -> dict:
    rng = np.random.default_rng(11)
    reference = rng.normal(size=REF_N)
    current = rng.normal(0.3, 1.2, size=3000)
    current = current[(current >= reference.min()) & (current <= reference.max())]  # inside the reference range
    binning = numeric_binning("x", reference, 10)
    counts = np.bincount(binning.assign(current), minlength=binning.n_bins)
    return {"reference": reference, "current": current, "binning": binning, "counts": counts}


def test_psi_matches_a_hand_worked_example() -> None:
    seg, p, q = one(np.array([50, 30, 20]), np.array([30, 30, 40]))
    # (0.3-0.5) ln(0.3/0.5) + 0 + (0.4-0.2) ln(0.4/0.2) = 0.10217 + 0.13863
    assert drift.psi(p, q, seg)[0] == pytest.approx(0.2 * np.log(5 / 3) + 0.2 * np.log(2), rel=1e-12)


def test_psi_is_the_symmetrised_kl_divergence_of_scipy_entropy() -> None:
    seg, p, q = one(np.array([400, 300, 200, 100]), np.array([250, 250, 250, 250]))
    expected = stats.entropy(q, p) + stats.entropy(p, q)
    assert drift.psi(p, q, seg)[0] == pytest.approx(expected, rel=1e-12)


def test_kl_matches_scipy_entropy_of_current_against_reference() -> None:
    seg, p, q = one(np.array([400, 300, 200, 100]), np.array([100, 200, 300, 400]))
    assert drift.kl(p, q, seg)[0] == pytest.approx(stats.entropy(q, p), rel=1e-12)


def test_empty_reference_bins_take_epsilon_in_psi_and_kl() -> None:
    seg, p, q = one(np.array([0, 50, 50]), np.array([10, 45, 45]))
    expected_psi = (0.1 - drift.EPSILON) * np.log(0.1 / drift.EPSILON) + 2 * (-0.05 * np.log(0.45 / 0.5))
    assert drift.psi(p, q, seg)[0] == pytest.approx(expected_psi, rel=1e-12)
    assert drift.kl(p, q, seg)[0] == pytest.approx(0.1 * np.log(0.1 / drift.EPSILON) + 0.9 * np.log(0.9), rel=1e-12)


def test_js_distance_matches_scipy_jensenshannon_also_with_empty_bins() -> None:
    seg, p, q = one(np.array([0, 300, 200, 100, 400]), np.array([50, 0, 250, 250, 450]))
    assert drift.js_distance(p, q, seg)[0] == pytest.approx(distance.jensenshannon(p, q), rel=1e-12)


def test_hellinger_matches_the_euclidean_distance_of_square_roots() -> None:
    seg, p, q = one(np.array([0, 300, 200, 500]), np.array([50, 100, 250, 600]))
    expected = distance.euclidean(np.sqrt(p), np.sqrt(q)) / np.sqrt(2)
    assert drift.hellinger(p, q, seg)[0] == pytest.approx(expected, rel=1e-12)


def test_chisquare_matches_scipy_chi2_contingency_without_correction() -> None:
    reference, current = np.array([500, 300, 0, 150, 50]), np.array([40, 35, 0, 20, 5])
    seg = drift.Segments.of_sizes([5])
    statistic, p_value, dof = drift.chisquare(reference, current, seg)
    keep = (reference + current) > 0  # scipy refuses all-zero columns
    expected = stats.chi2_contingency(np.vstack([reference[keep], current[keep]]), correction=False)
    assert statistic[0] == pytest.approx(expected.statistic, rel=1e-12)
    assert p_value[0] == pytest.approx(expected.pvalue, rel=1e-9)
    assert dof[0] == expected.dof


def test_chisquare_approaches_scipy_goodness_of_fit_when_the_reference_is_large() -> None:
    p = np.array([0.4, 0.3, 0.2, 0.1])
    current = np.array([90, 70, 30, 10])
    seg = drift.Segments.of_sizes([4])
    statistic, _, _ = drift.chisquare(p * 10**9, current, seg)
    assert statistic[0] == pytest.approx(stats.chisquare(current, p * current.sum()).statistic, rel=1e-6)


def test_binned_ks_lies_between_its_bounds_around_scipy_ks_2samp(numeric_case: dict) -> None:
    binning, counts = numeric_case["binning"], numeric_case["counts"]
    seg, p, q = one(binning.reference_counts, counts)
    result = drift.ks(p, q, seg, np.array([float(REF_N)]), np.array([float(counts.sum())]))
    raw = stats.ks_2samp(numeric_case["reference"], numeric_case["current"]).statistic
    upper = drift.ks_upper_bound(p, q, seg)[0]
    # Stated bound: raw D in [binned D, max over bins of the monotone-CDF gap]; here at most D + 0.1.
    assert result.statistic[0] <= raw + 1e-12
    assert raw <= upper + 1e-12
    assert upper - result.statistic[0] <= max(p.max(), q.max()) + 1e-12


def test_ks_p_value_follows_scipy_asymptotic_ks_2samp_at_the_effective_sample_size() -> None:
    rng = np.random.default_rng(5)
    reference, current = rng.normal(size=5000), rng.normal(0.08, 1, size=800)
    exact = stats.ks_2samp(reference, current, method="asymp")
    seg = drift.Segments.of_sizes([2])
    # Feed the raw D through the p-value formula: Stephens' correction tracks scipy's kstwo law.
    d = exact.statistic
    p, q = np.array([0.5, 0.5]), np.array([0.5 + d, 0.5 - d])
    ours = drift.ks(p, q, seg, np.array([5000.0]), np.array([800.0])).p_value[0]
    assert ours == pytest.approx(exact.pvalue, abs=0.01)


def test_wasserstein_bounds_bracket_scipy_and_the_estimate_is_close(numeric_case: dict) -> None:
    binning, counts = numeric_case["binning"], numeric_case["counts"]
    seg, p, q = one(binning.reference_counts, counts)
    widths = np.concatenate([[0.0], np.diff(binning.edges), [0.0]])
    spread = np.array([binning.stats["std"]])
    w = drift.wasserstein(p, q, seg, widths, spread)
    raw = stats.wasserstein_distance(numeric_case["reference"], numeric_case["current"]) / spread[0]
    assert w.lower[0] <= raw <= w.upper[0]
    # The bracket is loose: the outer equal-mass bins of a normal are wide and values in them are far from
    # uniform, which is also what keeps the linear-in-bin estimate ~0.06 sd above the raw distance here.
    assert w.lower[0] <= w.estimate[0] <= w.upper[0]
    assert w.estimate[0] == pytest.approx(raw, abs=0.08)


def test_wasserstein_lower_bound_holds_when_values_leave_the_reference_range() -> None:
    rng = np.random.default_rng(3)
    reference, current = rng.normal(size=REF_N), rng.normal(2.5, 1, size=2000)
    binning = numeric_binning("x", reference, 10)
    seg, p, q = one(binning.reference_counts, np.bincount(binning.assign(current), minlength=binning.n_bins))
    widths = np.concatenate([[0.0], np.diff(binning.edges), [0.0]])
    w = drift.wasserstein(p, q, seg, widths, np.array([binning.stats["std"]]))
    raw = stats.wasserstein_distance(reference, current) / binning.stats["std"]
    assert w.lower[0] <= raw
    # The estimate counts values beyond the reference max as sitting at the max: close, not exact.
    assert w.estimate[0] == pytest.approx(raw, rel=0.05)


def test_segments_score_many_columns_at_once_like_one_at_a_time() -> None:
    rng = np.random.default_rng(2)
    sizes = [12, 3, 7]
    seg = drift.Segments.of_sizes(sizes)
    ref = rng.integers(1, 100, size=seg.width).astype(float)
    cur = rng.integers(0, 100, size=seg.width).astype(float)
    p, q = drift.fractions(ref, seg)[0], drift.fractions(cur, seg)[0]
    together = drift.psi(p, q, seg), drift.js_distance(p, q, seg), drift.chisquare(ref, cur, seg)[0]
    for i, (start, size) in enumerate(zip(seg.starts, sizes)):
        s1, p1, q1 = one(ref[start:start + size], cur[start:start + size])
        assert together[0][i] == pytest.approx(drift.psi(p1, q1, s1)[0], rel=1e-12)
        assert together[1][i] == pytest.approx(distance.jensenshannon(p1, q1), rel=1e-12)
        assert together[2][i] == pytest.approx(drift.chisquare(ref[start:start + size], cur[start:start + size], s1)[0][0])


def test_an_empty_window_scores_nan_rather_than_zero() -> None:
    seg, p, q = one(np.array([5, 5]), np.array([0, 0]))
    assert np.isnan(drift.psi(p, q, seg)[0]) and np.isnan(drift.js_distance(p, q, seg)[0])
    assert np.isnan(drift.chisquare(np.array([5, 5]), np.array([0, 0]), seg)[1][0])
