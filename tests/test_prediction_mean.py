"""The mean of numeric predictions as mergeable counters, over the real HTTP server.

mlmon_prediction_value_sum_total{sign} holds the sums of positive values and of the magnitudes of
negative ones; (positive - negative) / mlmon_prediction_values_total is the mean that the
MLMonPredictionMeanAnomaly recording rules compute over a rate window.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from exporter.config.model import MlmonConfig
from conftest import LiveExporter, build_config, toy_model_data, toy_record

SUM, COUNT = "mlmon_prediction_value_sum_total", "mlmon_prediction_values_total"


def sums(live: LiveExporter, version: str = "v1", model: str = "toy") -> tuple[float | None, float | None, float | None]:
    """(positive sum, negative magnitude sum, count) of one version as exported."""
    samples = live.samples()
    labels = {"model": model, "model_version": version}
    return (
        samples.get((SUM, frozenset({**labels, "sign": "positive"}.items()))),
        samples.get((SUM, frozenset({**labels, "sign": "negative"}.items()))),
        samples.get((COUNT, frozenset(labels.items()))),
    )


def test_sums_predictions_by_sign_and_counts_them(toy_exporter: LiveExporter) -> None:
    toy_exporter.post_ok([toy_record(prediction=p) for p in (0.5, 2.25, -1.5, -0.25, 0.0)])
    # by hand: 0.5 + 2.25 = 2.75; |-1.5| + |-0.25| = 1.75; five values; mean (2.75 - 1.75) / 5 = 0.2
    assert sums(toy_exporter) == (2.75, 1.75, 5)


def test_leaves_nonfinite_predictions_out_of_the_mean_but_counts_them_as_predictions(
    toy_exporter: LiveExporter,
) -> None:
    body = '[' + ",".join(
        f'{{"model": "toy", "model_version": "v1", "features": {{"x": 1.0}}, "prediction": {p}}}'
        for p in ("NaN", "Infinity", "-Infinity", "3", "-1.0")
    ) + ']'
    toy_exporter.post_ok(body)
    assert sums(toy_exporter) == (3.0, 1.0, 2)
    assert toy_exporter.value("mlmon_predictions_total", model="toy", model_version="v1") == 5


def test_adds_up_over_batches_and_keeps_versions_apart(toy_exporter: LiveExporter) -> None:
    toy_exporter.post_ok([toy_record("v1", prediction=1.5), toy_record("v2", prediction=-4)])
    toy_exporter.post_ok([toy_record("v1", prediction=-0.5), toy_record("v1", prediction=2)])
    assert sums(toy_exporter, "v1") == (3.5, 0.5, 3)
    assert sums(toy_exporter, "v2") == (0.0, 4.0, 1)


def test_mean_from_the_counters_matches_numpy_on_many_values(toy_exporter: LiveExporter) -> None:
    values = np.random.default_rng(7).normal(-0.3, 2.0, size=2000)
    for chunk in np.array_split(values, 4):
        toy_exporter.post_ok({
            "model": "toy", "model_version": "v1", "features": {"x": [1.0] * len(chunk)},
            "predictions": chunk.tolist(),
        })
    positive, negative, count = sums(toy_exporter)
    assert count == 2000
    assert positive == pytest.approx(values[values > 0].sum(), rel=1e-12)
    assert negative == pytest.approx(-values[values < 0].sum(), rel=1e-12)
    assert (positive - negative) / count == pytest.approx(np.mean(values), rel=1e-9)


def test_counts_predictions_while_the_reference_is_being_captured(
    start_exporter: Callable[[MlmonConfig], LiveExporter], toy_dir: Path,
) -> None:
    config = build_config({"models": [toy_model_data(reference={"capture": 3})]}, base_dir=toy_dir)
    live = start_exporter(config)
    live.post_ok([toy_record(prediction=p) for p in (1.0, 2.0)])
    assert live.value("mlmon_reference_capturing", model="toy", model_version="v1") == 1
    live.post_ok([toy_record(prediction=p) for p in (-3.0, 4.0)])  # completes the capture, one value past it
    assert sums(live) == (7.0, 3.0, 4)


def test_exports_no_mean_for_class_predictions(
    start_exporter: Callable[[MlmonConfig], LiveExporter], toy_dir: Path,
) -> None:
    species = {
        "name": "species", "task": "multiclass_classification", "reference": {"capture": 10},
        "features": [{"name": "petal", "type": "numeric"}],
        "prediction": {"name": "kind", "type": "categorical", "classes": ["cat", "dog"]},
    }
    live = start_exporter(build_config({"models": [species]}, base_dir=toy_dir))
    live.post_ok([{"model": "species", "model_version": "v1", "features": {"petal": 1.0}, "prediction": "cat"}])
    assert live.value("mlmon_predictions_total", model="species", model_version="v1") == 1
    assert sums(live, model="species") == (None, None, None)
