"""Bin labels in feature units say exactly which values each bin holds."""

from __future__ import annotations

import numpy as np

from exporter.profiles.bin_labels import display_labels, format_edge
from exporter.profiles.profile import categorical_binning, numeric_binning


def test_numeric_bins_read_as_open_below_half_open_inside_closed_at_the_max_and_open_above() -> None:
    labels = display_labels(numeric_binning("x", np.arange(100.0), bins=10))
    assert labels[:2] == ("< 0", "[0, 9.9)")
    assert labels[-2:] == ("[89.1, 99]", "> 99")


def test_every_value_lands_in_the_bin_whose_label_contains_it() -> None:
    binning = numeric_binning("x", np.random.default_rng(3).lognormal(3, 1, 5000), bins=20)
    labels = display_labels(binning)
    edges = binning.edges
    values = np.concatenate([np.random.default_rng(4).uniform(-10, edges[-1] * 1.2, 2000), edges])
    for value, index in zip(values, binning.assign(values)):
        low, high = binning.bin_bounds()[index]
        assert low <= value <= high, (value, labels[index])
        if 0 < index < binning.n_bins - 2:
            assert value < high  # half open inside: the upper edge belongs to the next bin


def test_categories_keep_their_names_and_the_rest_is_other() -> None:
    assert display_labels(categorical_binning("c", ["b", "a", "a"], max_categories=5)) == ("a", "b", "(other)")


def test_edges_are_written_with_six_significant_digits() -> None:
    assert [format_edge(v) for v in (1234.5678, 0.000123456789, -0.0, 1e7)] == ["1234.57", "0.000123457", "0", "1e+07"]
