"""Every optional kind of state survives a restore: a snapshot of a store that uses them all (per-class
probability bins, attributions, drift and quality per segment value, shadow pairs, a capture) restores to a
store that renders exactly the same /metrics.

A state class that keeps a config- or profile-derived object the walker cannot encode must list it in its
`snapshot_skip`; without that the whole snapshot became unreadable and every model started fresh (found with
ClassDriftState's binnings)."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import orjson
import pytest

from exporter.config.model import parse_config
from exporter.http.collector import collect
from exporter.http.service import Exporter
from exporter.profiles.build import build_profile
from exporter.profiles.load import load_profiles
from exporter.state import snapshot
from exporter.state.class_drift import ClassDriftState
from exporter.state.store import StateStore
from tests.test_class_drift import REFERENCE_SHARE, model_data, scores, write_reference

NOW = 1_000.0


def binary_model() -> dict[str, Any]:
    return {
        "name": "b", "task": "binary_classification", "reference": {"capture": 200},
        "features": [{"name": "x", "type": "numeric"}, {"name": "c", "type": "categorical"}],
        "segments": [{"attribute": "region", "values": ["na", "eu"], "drift": True}],
        "attributions": {"enabled": True},
        "versions": {"variants": {"v2": "shadow"}},
        "drift": {"windows": ["1h"], "min_samples": 50},
    }


def store_of(folder: Path) -> tuple[StateStore, Exporter]:
    config = parse_config({"exporter": {"window_slots": 10}, "models": [model_data("m.json"), binary_model()]},
                          base_dir=folder)
    store = StateStore(config, load_profiles(config), clock=lambda: NOW)
    return store, Exporter(config, store)


def traffic(exporter: Exporter) -> None:
    rng = np.random.default_rng(5)
    rows = scores(rng, 400, REFERENCE_SHARE)
    multiclass = {"model": "m", "model_version": "v1", "features": {"x": rng.normal(size=400).tolist()},
                  "predictions": rows.tolist()}
    answer, status = exporter.ingest_predictions(orjson.dumps(multiclass), "application/json")
    assert status == 200 and answer["accepted"] == 400, answer
    for version in ("v1", "v2"):
        records = [{"model": "b", "model_version": version, "id": f"r{i}", "prediction": float(rng.uniform()),
                    "features": {"x": float(rng.normal()), "c": str(rng.choice(["p", "q"]))},
                    "segments": {"region": str(rng.choice(["na", "eu", "apac"]))},
                    "attributions": {"x": float(rng.normal()), "c": float(rng.normal())}}
                   for i in range(300)]  # v2 re-scores v1's ids: the shadow pairs
        answer, status = exporter.ingest_predictions(orjson.dumps(records), "application/json")
        assert status == 200 and answer["accepted"] == 300, answer


def write_profile(folder: Path) -> None:
    """Model m's reference profile, with the per-class binnings its class-probability drift needs."""
    model = parse_config({"models": [model_data({"capture": 10})]}).models[0]
    build_profile(write_reference(folder / "ref.csv", np.random.default_rng(2), True), model).write(folder / "m.json")


def save_and_restore(folder: Path) -> tuple[tuple[StateStore, Exporter], tuple[StateStore, Exporter], Any]:
    """A store given every kind of traffic and saved, a fresh store restored from its file, and the restore report."""
    store, exporter = store_of(folder)
    traffic(exporter)
    snapshot.save(folder / snapshot.FILE_NAME, store, {"stats": exporter.stats})
    restored, restored_exporter = store_of(folder)
    report = snapshot.restore(folder / snapshot.FILE_NAME, restored, {"stats": restored_exporter.stats})
    return (store, exporter), (restored, restored_exporter), report


def test_a_store_using_every_kind_of_state_restores_to_the_same_metrics(tmp_path: Path) -> None:
    write_profile(tmp_path)
    (store, exporter), (restored, restored_exporter), report = save_and_restore(tmp_path)
    assert report.result == "restored" and set(report.models.values()) == {"restored"}, report
    before = collect(store, exporter.stats, NOW).render(False)
    assert "mlmon_class_probability_bin_total" in before and "mlmon_segment_feature_bin_total" in before
    assert collect(restored, restored_exporter.stats, NOW).render(False) == before


def test_a_model_whose_state_cannot_be_decoded_starts_fresh_and_the_others_are_restored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    write_profile(tmp_path)
    # The bug this file was written for, put back: the per-class binnings are saved as objects the walker
    # cannot encode, so model m's state cannot be decoded.
    monkeypatch.setattr(ClassDriftState, "snapshot_skip", ())
    _, (restored, _), report = save_and_restore(tmp_path)
    assert report.result == "restored" and report.models == {"m": "unreadable", "b": "restored"}, report
    assert (tmp_path / snapshot.FILE_NAME).exists()  # the file is kept: it still holds model b's state
    assert list(restored.versions.get("m", {})) == [] and list(restored.versions["b"]) == ["v1", "v2"]
