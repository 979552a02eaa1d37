"""Reference profiles: equal-mass bins, exact edge handling, top-K categories, and a hash that catches edits."""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import numpy as np
import pytest

from conftest import EXAMPLES, toy_profile
from exporter.profiles.profile import OTHER, Binning, Profile, ProfileError, categorical_binning, numeric_binning


# ----------------------------------------------------------------------------- numeric bins


def test_continuous_data_gets_bins_of_equal_mass() -> None:
    values = np.random.default_rng(1).normal(50, 10, size=20_000)
    binning = numeric_binning("x", values, bins=10)
    ratio = binning.reference_ratio
    assert binning.n_bins == 12
    assert ratio[0] == 0 and ratio[-1] == 0  # nothing of the reference is outside its own range
    assert np.allclose(ratio[1:-1], 0.1, atol=0.001)
    assert binning.reference_total == 20_000


def test_hand_worked_quartile_bins_put_values_where_expected() -> None:
    # 0..99 in 4 bins: edges at the quartiles 0, 24.75, 49.5, 74.25, 99.
    binning = numeric_binning("x", np.arange(100.0), bins=4)
    assert binning.edges.tolist() == [0.0, 24.75, 49.5, 74.25, 99.0]
    assert binning.reference_counts.tolist() == [0, 25, 25, 25, 25, 0]
    assert binning.labels == ("00", "01", "02", "03", "04", "05")


def test_assigns_values_at_and_beyond_the_edges() -> None:
    binning = numeric_binning("x", np.arange(100.0), bins=4)
    low, high = 0.0, 99.0
    cases = {
        np.nextafter(low, -np.inf): 0,  # just below min: underflow
        low: 1,                         # exactly min: first inner bin
        24.75: 2,                       # an inner edge belongs to the bin above it
        np.nextafter(24.75, -np.inf): 1,
        high: 4,                        # exactly max: the last inner bin, not overflow
        np.nextafter(high, np.inf): 5,  # just above max: overflow
        -1e300: 0,
        1e300: 5,
    }
    values = np.array(list(cases))
    assert binning.assign(values).tolist() == list(cases.values())


def test_bin_bounds_run_from_minus_to_plus_infinity() -> None:
    bounds = numeric_binning("x", np.arange(100.0), bins=2).bin_bounds()
    assert bounds == [(-np.inf, 0.0), (0.0, 49.5), (49.5, 99.0), (99.0, np.inf)]


def test_a_constant_feature_gets_one_inner_bin() -> None:
    binning = numeric_binning("x", np.full(500, 7.0), bins=10)
    assert binning.n_bins == 3
    assert binning.reference_counts.tolist() == [0, 500, 0]
    assert binning.assign(np.array([6.99, 7.0, 7.01])).tolist() == [0, 1, 2]
    assert binning.stats["std"] == 0.0 and binning.stats["min"] == binning.stats["max"] == 7.0


def test_few_distinct_values_get_one_bin_each() -> None:
    # 70 ones, 20 twos, 10 threes: 3 distinct values <= 10 bins, so one bin per value (docs/drift.md,
    # "Discrete values"); quantile edges would have been [1, 1.3, 2, 2.1, 3].
    values = np.array([1.0] * 70 + [2.0] * 20 + [3.0] * 10)
    binning = numeric_binning("items", values, bins=10)
    assert binning.edges.tolist()[:3] == [1.0, 2.0, 3.0] and binning.edges[3] == np.nextafter(3.0, 4.0)
    assert binning.reference_counts.tolist() == [0, 70, 20, 10, 0]
    assert binning.stats["discrete"] == 1 and binning.stats["distinct"] == 3


def test_repeated_quantiles_merge_into_strictly_increasing_edges() -> None:
    # 70 ones and 30 other values: more distinct values than bins, so quantile edges, and the
    # deciles that all fall on 1 merge into one edge.
    values = np.array([1.0] * 70 + list(np.arange(2.0, 32.0)))
    binning = numeric_binning("items", values, bins=10)
    assert np.all(np.diff(binning.edges) > 0) and binning.edges[0] == 1.0 and binning.edges[1] > 1.0
    assert binning.reference_counts[1] == 70 and "discrete" not in binning.stats


def test_ignores_non_finite_reference_values() -> None:
    binning = numeric_binning("x", np.array([1.0, np.nan, 2.0, np.inf, 3.0, -np.inf]), bins=2)
    assert binning.reference_total == 3
    assert binning.stats["count"] == 3


def test_refuses_to_build_bins_without_a_finite_value() -> None:
    with pytest.raises(ProfileError, match="no finite reference values"):
        numeric_binning("x", np.array([np.nan, np.inf]), bins=10)


def test_summary_statistics_match_an_independent_computation() -> None:
    values = np.random.default_rng(2).gamma(2.0, 3.0, size=1001)
    stats = numeric_binning("x", values, bins=10).stats
    as_list = values.tolist()
    assert stats["count"] == 1001
    assert stats["mean"] == pytest.approx(statistics.fmean(as_list))
    assert stats["std"] == pytest.approx(statistics.stdev(as_list))
    assert stats["p50"] == pytest.approx(statistics.median(as_list))
    assert (stats["min"], stats["max"]) == (min(as_list), max(as_list))


# ----------------------------------------------------------------------------- categories


def test_keeps_the_top_k_categories_and_folds_the_rest_into_other() -> None:
    values = ["a"] * 5 + ["b"] * 4 + ["c"] * 3 + ["d"] * 2 + ["e"]
    binning = categorical_binning("c", values, max_categories=3)
    assert binning.labels == ("a", "b", "c", OTHER)
    assert binning.reference_counts.tolist() == [5, 4, 3, 3]
    assert binning.stats == {"count": 15, "distinct": 5}


def test_breaks_ties_between_equally_frequent_categories_by_name() -> None:
    values = ["zeta", "alpha", "mid", "mid", "beta", "zeta", "alpha", "beta"]  # four-way tie... minus one
    first = categorical_binning("c", values, max_categories=2)
    shuffled = categorical_binning("c", list(np.random.default_rng(3).permutation(values)), max_categories=2)
    assert first.categories == shuffled.categories == ("alpha", "beta")


def test_assigns_unseen_categories_to_other() -> None:
    binning = categorical_binning("c", ["red", "red", "blue"], max_categories=5)
    assert binning.assign(np.array(["blue", "red", "mauve", ""])).tolist() == [1, 0, 2, 2]
    assert binning.assign(np.array([], dtype=str)).tolist() == []


def test_boolean_features_always_have_false_and_true() -> None:
    binning = categorical_binning("flag", ["true"] * 3, max_categories=1, kind="boolean")
    assert binning.labels == ("false", "true", OTHER)
    assert binning.reference_counts.tolist() == [0, 3, 0]


# ----------------------------------------------------------------------------- files and hashes


def test_round_trips_through_json_with_the_same_hash(tmp_path: Path) -> None:
    profile = toy_profile()
    profile.write(tmp_path / "p.json")
    again = Profile.read(tmp_path / "p.json")
    assert again.content_hash == profile.content_hash
    assert again.features["x"].edges.tolist() == profile.features["x"].edges.tolist()
    assert again.features["color"].categories == ("red", "green", "blue")


def test_hash_does_not_depend_on_feature_order() -> None:
    profile = toy_profile()
    reordered = Profile(profile.model, profile.rows, dict(reversed(profile.features.items())), profile.prediction,
                        source=profile.source)
    assert reordered.content_hash == profile.content_hash
    assert profile.content_hash.startswith("sha256:") and len(profile.short_hash) == 12


def test_hash_changes_when_any_count_changes() -> None:
    profile = toy_profile()
    data = profile.to_json()
    data["features"]["x"]["counts"][3] += 1
    del data["content_hash"]
    assert Profile.from_json(data).content_hash != profile.content_hash


def test_detects_a_profile_edited_by_hand(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    toy_profile().write(path)
    data = json.loads(path.read_text())
    data["features"]["x"]["edges"][0] = -1.0
    path.write_text(json.dumps(data))
    with pytest.raises(ProfileError, match="content_hash does not match"):
        Profile.read(path)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.pop("mlmon_profile"), "not an mlmon profile"),
        (lambda d: d["features"]["x"].update(edges=[0.0, 5.0, 5.0, 99.0]), "edges must be strictly increasing"),
        (lambda d: d["features"]["x"]["counts"].pop(), "reference counts for"),
        (lambda d: d["features"]["x"].update(type="ordinal"), "unknown type 'ordinal'"),
        (lambda d: d.pop("rows"), "malformed profile"),
    ],
)
def test_rejects_malformed_profiles_with_a_reason(change, message: str) -> None:
    data = toy_profile().to_json()
    del data["content_hash"]
    change(data)
    with pytest.raises(ProfileError, match=message):
        Profile.from_json(data)


def test_reading_a_file_that_is_not_json_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "p.json"
    path.write_text("{not json")
    with pytest.raises(ProfileError, match=r"p\.json: not JSON"):
        Profile.read(path)
    with pytest.raises(ProfileError, match="cannot read"):
        Profile.read(tmp_path / "absent.json")


@pytest.mark.parametrize("name", ["fraud", "delivery_time"])
def test_the_shipped_example_profiles_verify(name: str) -> None:
    profile = Profile.read(EXAMPLES / "reference" / f"{name}.json")
    assert profile.model == name
    for binning in profile.features.values():
        assert isinstance(binning, Binning)
        assert binning.reference_total > 0
