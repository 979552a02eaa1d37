"""Raw feature values -> clean numpy values, with every problem counted by kind and none coerced."""

from __future__ import annotations

import math

import numpy as np

from exporter.ingest.columns import Column, boolean_column, categorical_column, convert, numeric_column
from exporter.ingest.decode import MISSING


def counts(column: Column) -> tuple[int, int, int, int]:
    return column.missing, column.null, column.nonfinite, column.type_errors


def test_a_clean_numeric_column_converts_in_one_pass() -> None:
    column = numeric_column([1, 2.5, -3])
    assert column.values.tolist() == [1.0, 2.5, -3.0]
    assert counts(column) == (0, 0, 0, 0)


def test_a_numeric_column_counts_each_kind_of_problem() -> None:
    raw = [1.0, MISSING, None, math.nan, math.inf, -math.inf, "3.5", True, False, {"v": 1}, [2], 7]
    column = numeric_column(raw)
    assert column.values.tolist() == [1.0, 7.0]
    assert counts(column) == (1, 1, 3, 5)  # strings and booleans are never coerced to numbers


def test_non_finite_values_in_an_otherwise_clean_column_are_dropped_and_counted() -> None:
    column = numeric_column([1.0, math.nan, 2.0, math.inf])
    assert column.values.tolist() == [1.0, 2.0]
    assert counts(column) == (0, 0, 2, 0)


def test_an_empty_column_is_empty() -> None:
    for column in (numeric_column([]), categorical_column([]), boolean_column([])):
        assert len(column.values) == 0 and counts(column) == (0, 0, 0, 0)


def test_a_categorical_column_reads_numbers_as_their_canonical_text() -> None:
    column = categorical_column(["US", 44, MISSING, None, 1.5, 4.0, "4.0", True, ["x"], float("nan")])
    assert column.values.tolist() == ["US", "44", "4", "4"]  # docs/drift.md, "Discrete values"
    assert counts(column) == (1, 1, 0, 4)


def test_a_boolean_column_takes_true_false_and_zero_one() -> None:
    column = boolean_column([True, False, 1, 0, 2, "true", None, MISSING, 1.0])
    assert column.values.tolist() == ["true", "false", "true", "false"]
    assert counts(column) == (1, 1, 0, 3)


def test_convert_dispatches_on_the_feature_type() -> None:
    assert convert("numeric", [1]).values.dtype == np.float64
    assert convert("categorical", ["a"]).values.tolist() == ["a"]
    assert convert("boolean", [True]).values.tolist() == ["true"]


def test_a_boolean_hidden_among_floats_is_a_type_error_not_a_one() -> None:
    # numpy would read True as 1.0 next to floats; the column must still count it as a type error.
    column = numeric_column([0.25, True, 3.5, False])
    assert column.values.tolist() == [0.25, 3.5]
    assert column.type_errors == 2


def test_integers_and_floats_mix_into_one_float_column() -> None:
    column = numeric_column([1, 0, 2.5, 10**20])
    assert column.values.tolist() == [1.0, 0.0, 2.5, 1e20]
    assert column.type_errors == 0
