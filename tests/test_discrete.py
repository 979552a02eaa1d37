"""Discrete values (issue 13, item 5): one bin per distinct value, and one canonical text per category."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np

from exporter.config.model import DriftConfig, ModelConfig
from exporter.http.drift_report import Reference, score_window
from exporter.ingest.columns import categorical_column
from exporter.profiles.build import build_profile
from exporter.profiles.pca import Field, fit_pca
from exporter.profiles.profile import Binning, Profile, canonical_category, numeric_binning
from exporter.state.store import Layout

DOORS = np.array([2.0, 3.0, 4.0, 5.0])
DOOR_P = [0.1, 0.2, 0.4, 0.3]
MOVED = [0.1, 0.2, 0.3, 0.4]  # 10 points from 4 doors to 5
TRIALS = 2000


def quantile_binning(values: np.ndarray, bins: int) -> Binning:
    """The old rule, equal-mass edges with repeated quantiles merged (4 and 5 share the last bin)."""
    edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    empty = Binning("doors", "numeric", np.zeros(len(edges) + 1, dtype=np.int64), edges=edges)
    counts = np.bincount(empty.assign(values), minlength=empty.n_bins)
    return Binning("doors", "numeric", counts, edges=edges, stats={"std": float(values.std())})


def drift_rate(binning: Binning, rng: np.random.Generator, p: list[float], n: int = 1000) -> float:
    values = rng.choice(DOORS, size=(TRIALS, n), p=p)
    index = binning.assign(values.ravel()).reshape(TRIALS, n) + np.arange(TRIALS)[:, None] * binning.n_bins
    counts = np.bincount(index.ravel(), minlength=TRIALS * binning.n_bins).reshape(TRIALS, binning.n_bins)
    ref = Reference.of(Layout((binning, binning), np.array([0, binning.n_bins, 2 * binning.n_bins])))
    return float(score_window(ref, np.concatenate([counts, counts], axis=1).astype(float), DriftConfig())["verdict"][:, 0].mean())


def test_a_feature_with_no_more_distinct_values_than_bins_gets_one_bin_per_value() -> None:
    rng = np.random.default_rng(1)
    reference = rng.choice(DOORS, size=20_000, p=DOOR_P)
    binning = numeric_binning("doors", reference, 10)
    assert binning.stats["discrete"] == 1 and binning.stats["distinct"] == 4
    assert binning.n_bins == 4 + 2  # under, 2, 3, 4, 5, over
    assert list(binning.assign(DOORS)) == [1, 2, 3, 4]
    assert list(binning.assign(np.array([1.0, 4.5, 5.5]))) == [0, 3, 5]  # between values: the lower one's bin
    assert np.allclose(binning.reference_ratio[1:5], np.bincount(np.searchsorted(DOORS, reference)) / 20_000)
    # Round trip through the profile file keeps it.
    assert Binning.from_json("doors", binning.to_json()).stats["discrete"] == 1
    # More distinct values than bins: quantile bins as before, not discrete.
    assert "discrete" not in numeric_binning("x", rng.normal(size=1000), 10).stats


def test_a_shift_between_the_two_largest_values_is_caught_and_was_not_before() -> None:
    rng = np.random.default_rng(2)
    reference = rng.choice(DOORS, size=20_000, p=DOOR_P)
    assert drift_rate(numeric_binning("doors", reference, 10), rng, MOVED) >= 0.99
    assert drift_rate(quantile_binning(reference, 10), rng, MOVED) <= 0.05  # 4 and 5 shared a bin
    assert drift_rate(numeric_binning("doors", reference, 10), rng, DOOR_P) <= 0.01


def test_categories_have_one_canonical_text_however_they_arrive() -> None:
    assert [canonical_category(v) for v in [4, 4.0, "4.0", "4", "-2.00", -3.0, "007", "4.05", "x.0", "0.5"]] == \
        ["4", "4", "4", "4", "-2", "-3", "007", "4.05", "x.0", "0.5"]
    assert [canonical_category(v) for v in [True, None, 0.5, float("nan"), float("inf"), [4]]] == [None] * 6
    column = categorical_column([4, 4.0, "4.0", "4", "a", 2.5])
    assert list(column.values) == ["4", "4", "4", "4", "a"] and column.type_errors == 1
    fast = categorical_column(["4.0", "5", "b.0"])  # the all-strings fast path
    assert list(fast.values) == ["4", "5", "b.0"]


def test_a_profile_built_from_a_csv_matches_live_integers_and_floats(tmp_path: Path) -> None:
    model = ModelConfig.model_validate({
        "name": "cars", "task": "regression", "reference": "cars.json",
        "features": [{"name": "x", "type": "numeric"}, {"name": "door_code", "type": "categorical"}],
        "prediction": {"name": "price", "type": "numeric"},
    })
    rng = np.random.default_rng(3)
    path = tmp_path / "cars.csv"
    with path.open("w", newline="") as handle:  # pandas writes an int column holding a null as 4.0
        writer = csv.writer(handle)
        writer.writerow(["x", "door_code", "price"])
        for i in range(500):
            writer.writerow([rng.normal(), "" if i == 0 else f"{rng.choice([3, 4, 5])}.0", rng.normal()])
    profile = build_profile(path, model)
    binning = profile.features["door_code"]
    assert set(binning.categories) == {"3", "4", "5"}
    live = categorical_column([4, 4.0, "4.0", 5])
    assert list(binning.assign(live.values)) == [binning.categories.index("4")] * 3 + [binning.categories.index("5")]
    assert isinstance(profile, Profile)


def test_the_multivariate_encoding_uses_the_same_canonical_texts() -> None:
    rng = np.random.default_rng(4)
    x = rng.normal(size=500)
    codes = np.where(x > 0, "4", "5").astype(object)
    basis = fit_pca([x, codes, rng.normal(size=500)], [Field("x"), Field("door_code", "categorical", ("4", "5")), Field("y")])
    same = basis.encode_raw([[1.0, 1.0, 1.0], [4, 4.0, "4.0"], [0.0, 0.0, 0.0]])
    assert np.allclose(same, same[0]) and same[0, 1] == 1.0


def test_a_very_long_text_is_another_category_and_never_widens_the_encoding() -> None:
    from exporter.profiles.pca import OTHER_CODE, _codes

    long = "x" * 50_000
    assert _codes(["a", long], "categorical", ("a",)).tolist() == [0, OTHER_CODE]
    assert _codes(["a", long, None, 4.0], "categorical", ("a", "4")).tolist() == [0, OTHER_CODE, -1, 1]
