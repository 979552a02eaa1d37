"""Per-class probability drift: a profile built from per-class scores bins each class's probability, and the
exporter flags the class whose probability shifted while the predicted class (the argmax) barely moves."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from exporter.config.model import parse_config
from exporter.profiles.build import build_profile
from exporter.profiles.class_scores import class_binnings
from tests.conftest import LiveExporter

CLASSES = ["cat", "dog", "fox"]


def model_data(reference: Any) -> dict[str, Any]:
    return {"name": "m", "task": "multiclass_classification", "reference": reference,
            "features": [{"name": "x", "type": "numeric"}],
            "prediction": {"name": "animal", "type": "categorical", "classes": CLASSES, "bins": 10},
            "drift": {"windows": ["1h"], "min_samples": 100}}


def scores(rng: np.random.Generator, n: int, fox_share: tuple[float, float]) -> np.ndarray:
    """cat holds most of the mass (so it is nearly always the argmax); fox takes a Beta share of the rest."""
    cat = rng.uniform(0.48, 0.8, n)
    share = rng.beta(*fox_share, n)
    rest = 1 - cat
    return np.column_stack([cat, rest * (1 - share), rest * share])


REFERENCE_SHARE = (2.0, 5.0)   # fox ~ 0.29 of what cat leaves
SHIFTED_SHARE = (3.5, 4.0)     # fox ~ 0.47 of it: its probability moves, the argmax nearly never does


def write_reference(path: Path, rng: np.random.Generator, columns: bool) -> Path:
    s = scores(rng, 20_000, REFERENCE_SHARE)
    x = rng.normal(size=20_000)
    if columns:  # CSV with <prediction>_<class> columns
        lines = ["x,animal,animal_cat,animal_dog,animal_fox"]
        lines += [f"{xi},{CLASSES[int(np.argmax(r))]},{r[0]},{r[1]},{r[2]}" for xi, r in zip(x, s)]
        path.write_text("\n".join(lines) + "\n")
    else:  # JSON lines whose prediction is {class: score}
        path.write_bytes(b"\n".join(orjson.dumps({"x": xi, "animal": dict(zip(CLASSES, r))})
                                    for xi, r in zip(x.tolist(), s.tolist())))
    return path


@pytest.mark.parametrize(("name", "columns"), [("ref.csv", True), ("ref.jsonl", False)])
def test_a_profile_built_from_per_class_scores_bins_each_class(tmp_path: Path, name: str, columns: bool) -> None:
    model = parse_config({"models": [model_data({"capture": 10})]}).models[0]
    profile = build_profile(write_reference(tmp_path / name, np.random.default_rng(1), columns), model)
    binnings = class_binnings(profile, model)
    assert binnings is not None and [b.name for b in binnings] == ["animal_cat", "animal_dog", "animal_fox"]
    assert all(b.kind == "numeric" and b.reference_counts.sum() == 20_000 for b in binnings)


@pytest.fixture
def exporter(start_exporter, tmp_path: Path) -> LiveExporter:
    model = parse_config({"models": [model_data({"capture": 10})]}).models[0]
    build_profile(write_reference(tmp_path / "ref.csv", np.random.default_rng(2), True), model).write(tmp_path / "m.json")
    config = parse_config({"exporter": {"window_slots": 10}, "models": [model_data("m.json")]}, base_dir=tmp_path)
    return start_exporter(config)


def send(exporter: LiveExporter, rows: np.ndarray, version: str) -> None:
    body = {"model": "m", "model_version": version, "features": {"x": [0.0] * len(rows)}, "predictions": rows.tolist()}
    assert exporter.post_ok(body)["accepted"] == len(rows)


def verdicts(exporter: LiveExporter, version: str) -> tuple[dict[str, float | None], float | None]:
    ids = {"model": "m", "model_version": version, "window": "1h"}
    per_class = {c: exporter.value("mlmon_class_probability_drift_detected", **ids, **{"class": c}) for c in CLASSES}
    return per_class, exporter.value("mlmon_prediction_drift_detected", **ids)


def test_one_class_probability_shifting_fires_its_drift_and_not_the_argmax_drift(exporter: LiveExporter) -> None:
    rng = np.random.default_rng(3)
    shifted = scores(rng, 5_000, SHIFTED_SHARE)
    reference = scores(rng, 5_000, REFERENCE_SHARE)
    # The argmax barely moves: cat is the predicted class of almost every row in both.
    assert abs((shifted.argmax(axis=1) == 0).mean() - (reference.argmax(axis=1) == 0).mean()) < 0.01
    send(exporter, shifted, "drifted")
    send(exporter, reference, "same")
    per_class, argmax = verdicts(exporter, "drifted")
    assert per_class["fox"] == 1 and per_class["dog"] == 1  # dog gives fox its mass
    assert per_class["cat"] == 0 and argmax == 0
    per_class, argmax = verdicts(exporter, "same")
    assert per_class == {"cat": 0, "dog": 0, "fox": 0} and argmax == 0
    assert exporter.value("mlmon_class_probability_window_samples", model="m", model_version="drifted",
                          window="1h") == 5_000
    score = exporter.value("mlmon_class_probability_drift_score", model="m", model_version="drifted", window="1h",
                           method="psi", **{"class": "fox"})
    assert score is not None and score > 0.1


def test_rows_sent_as_a_class_alone_are_not_in_the_class_probability_bins(exporter: LiveExporter) -> None:
    body = {"model": "m", "model_version": "v", "features": {"x": [0.0, 0.0]}, "predictions": ["cat", [0.6, 0.3, 0.1]]}
    exporter.post_ok(body)
    assert exporter.value("mlmon_class_probability_window_samples", model="m", model_version="v", window="1h") == 1


def test_a_reference_rows_predicted_class_breaks_ties_by_config_order_as_live(tmp_path: Path) -> None:
    model = parse_config({"models": [model_data({"capture": 10})]}).models[0]
    rows = [{"x": 1.0, "animal": {"fox": 0.4, "dog": 0.4, "cat": 0.2}}] * 3 + [{"x": 2.0, "animal": [0.5, 0.5, 0.0]}]
    (tmp_path / "ref.jsonl").write_bytes(b"\n".join(map(orjson.dumps, rows)))
    profile = build_profile(tmp_path / "ref.jsonl", model)
    counts = dict(zip(profile.prediction.categories, profile.prediction.reference_counts.tolist()))
    assert counts["dog"] == 3 and counts["cat"] == 1 and counts.get("fox", 0) == 0


def test_a_captured_reference_bins_each_class_score_and_watches_their_drift(start_exporter) -> None:
    """`reference: {capture: N}`: the capture keeps the per-class score rows and the profile it makes has the same
    class binnings `mlmon profile build` makes from score columns (equal edges on the same rows)."""
    capture = {"exporter": {"window_slots": 10}, "models": [model_data({"capture": 5000})]}
    config = parse_config(capture)
    exporter = start_exporter(config)
    rng = np.random.default_rng(11)
    reference = scores(rng, 5000, REFERENCE_SHARE)
    body = {"model": "m", "model_version": "v", "features": {"x": [0.0] * 5001},
            "predictions": ["cat"] + reference.tolist()}  # a row sent as a class alone is captured without scores
    exporter.post_ok(body)
    state = exporter.running.exporter.store.version_state(config.models[0], "v")
    assert state.profile is not None and state.class_drift is not None  # captured at 5,000 rows, with class scores
    expected = [np.quantile(reference[:4999, i], np.linspace(0, 1, 11)) for i in range(3)]  # first 4,999 scored rows
    for binning, edges in zip(state.class_drift.binnings, expected):
        assert binning.reference_counts.sum() == 4999
        np.testing.assert_allclose(binning.edges, edges)
    send(exporter, scores(rng, 5000, SHIFTED_SHARE), "v")
    per_class, _ = verdicts(exporter, "v")
    assert per_class["fox"] == 1 and per_class["cat"] == 0
    assert exporter.value("mlmon_class_probability_bin_total", model="m", model_version="v", **{"class": "fox"},
                          bin="00") is not None  # and the counters the fleet rules sum
