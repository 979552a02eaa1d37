"""`mlmon profile build`: CSV and JSON lines stream into the same profile; the reservoir samples uniformly."""

from __future__ import annotations

import csv
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

import exporter.profiles.build as profile_build
from conftest import EXAMPLE_CONFIG, EXAMPLES, toy_model_data
from exporter.config.model import ModelConfig, load_config
from exporter.profiles.profile import Profile, ProfileError, numeric_binning
from exporter.profiles.build import Reservoir, build_profile

TOY = ModelConfig.model_validate(toy_model_data())
ROWS = 500


def toy_rows(n: int = ROWS, seed: int = 5) -> list[dict[str, Any]]:
    rng = np.random.default_rng(seed)
    x = np.round(rng.normal(20, 5, size=n), 3)
    colors = rng.choice(["red", "green", "blue", "teal"], size=n, p=[0.5, 0.3, 0.15, 0.05])
    flags = rng.random(n) < 0.3
    scores = np.round(rng.random(n), 4)
    return [
        {"x": float(x[i]), "color": str(colors[i]), "flag": bool(flags[i]), "score": float(scores[i])} for i in range(n)
    ]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    return path


def write_jsonl(path: Path, rows: list[dict[str, Any]]) -> Path:
    path.write_text("".join(json.dumps(row) + "\n" for row in rows))
    return path


def features_json(profile: Profile) -> dict[str, Any]:
    return {name: binning.to_json() for name, binning in profile.features.items()}


def test_builds_from_csv_the_same_bins_as_from_the_values_themselves(tmp_path: Path) -> None:
    rows = toy_rows()
    profile = build_profile(write_csv(tmp_path / "ref.csv", rows), TOY)
    x = np.array([r["x"] for r in rows])
    expected_x = numeric_binning("x", x, bins=10)
    assert profile.rows == ROWS
    assert profile.features["x"].edges.tolist() == expected_x.edges.tolist()
    assert profile.features["x"].reference_counts.tolist() == expected_x.reference_counts.tolist()
    assert profile.features["color"].categories == ("red", "green", "blue", "teal")
    assert profile.features["flag"].reference_counts.tolist() == [
        sum(not r["flag"] for r in rows), sum(r["flag"] for r in rows), 0,
    ]
    assert profile.prediction.name == "score"
    assert profile.source == "ref.csv"


def test_builds_the_same_profile_from_flat_json_lines_and_csv(tmp_path: Path) -> None:
    rows = toy_rows()
    from_csv = build_profile(write_csv(tmp_path / "ref.csv", rows), TOY)
    from_jsonl = build_profile(write_jsonl(tmp_path / "ref.jsonl", rows), TOY)
    assert features_json(from_jsonl) == features_json(from_csv)
    assert from_jsonl.prediction.to_json() == from_csv.prediction.to_json()


def test_builds_from_mlmon_prediction_records(tmp_path: Path) -> None:
    rows = toy_rows()
    records = [
        {"id": i, "model": "toy", "model_version": "v1", "features": {k: r[k] for k in ("x", "color", "flag")},
         "prediction": r["score"]}
        for i, r in enumerate(rows)
    ]
    from_records = build_profile(write_jsonl(tmp_path / "records.ndjson", records), TOY)
    from_flat = build_profile(write_jsonl(tmp_path / "flat.jsonl", rows), TOY)
    assert features_json(from_records) == features_json(from_flat)
    assert from_records.prediction.to_json() == from_flat.prediction.to_json()


def test_counts_missing_values_and_bins_only_the_present_ones(tmp_path: Path) -> None:
    rows = toy_rows(100)
    for row in rows[:7]:
        row["x"] = ""
    for row in rows[7:10]:
        row["color"] = ""
    profile = build_profile(write_csv(tmp_path / "ref.csv", rows), TOY)
    assert profile.features["x"].stats["missing"] == 7
    assert profile.features["x"].reference_total == 93
    assert profile.features["color"].stats["missing"] == 3
    assert profile.features["color"].reference_total == 97


def test_reads_boolean_text_in_the_usual_spellings(tmp_path: Path) -> None:
    rows = toy_rows(8)
    for row, text in zip(rows, ["True", "false", "1", "0", "yes", "no", "T", "maybe"]):
        row["flag"] = text
    profile = build_profile(write_csv(tmp_path / "ref.csv", rows), TOY)
    flag = profile.features["flag"]
    assert flag.reference_counts.tolist() == [3, 4, 0]  # false, true, __other__
    assert flag.stats["missing"] == 1  # "maybe" is neither


def test_names_the_missing_columns(tmp_path: Path) -> None:
    rows = [{k: v for k, v in row.items() if k not in ("color", "score")} for row in toy_rows(10)]
    with pytest.raises(ProfileError, match="no column\\(s\\) color, score"):
        build_profile(write_csv(tmp_path / "ref.csv", rows), TOY)


def test_names_the_line_of_malformed_json(tmp_path: Path) -> None:
    path = tmp_path / "ref.jsonl"
    path.write_text(json.dumps(toy_rows(1)[0]) + "\n\n{oops\n")
    with pytest.raises(ProfileError, match="line 3: not JSON"):
        build_profile(path, TOY)


def test_refuses_an_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "ref.csv"
    path.write_text("x,color,flag,score\n")
    with pytest.raises(ProfileError, match="no rows"):
        build_profile(path, TOY)


def test_streams_in_chunks_to_the_same_profile(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write_csv(tmp_path / "ref.csv", toy_rows())
    whole = build_profile(path, TOY)
    monkeypatch.setattr(profile_build, "CHUNK_ROWS", 37)
    chunked = build_profile(path, TOY)
    assert chunked.content_hash == whole.content_hash


def test_a_reservoir_smaller_than_the_file_still_counts_every_row(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(profile_build, "CHUNK_ROWS", 64)
    rows = toy_rows(2000)
    profile = build_profile(write_csv(tmp_path / "ref.csv", rows), TOY, sample_rows=300)
    assert profile.rows == 2000
    assert profile.features["x"].reference_total == 300
    # The sample's median sits near the full data's (sampling error of the median is ~0.3 here).
    assert abs(profile.features["x"].stats["p50"] - float(np.median([r["x"] for r in rows]))) < 1.5


def test_parquet_needs_pyarrow_or_reads_the_same_rows(tmp_path: Path) -> None:
    rows = toy_rows(50)
    try:
        import pyarrow
        import pyarrow.parquet as pq
    except ImportError:
        path = tmp_path / "ref.parquet"
        path.write_bytes(b"PAR1")
        with pytest.raises(ProfileError, match="needs pyarrow"):
            build_profile(path, TOY)
        return
    path = tmp_path / "ref.parquet"
    pq.write_table(pyarrow.Table.from_pylist(rows), path)
    from_csv = build_profile(write_csv(tmp_path / "ref.csv", rows), TOY)
    assert features_json(build_profile(path, TOY)) == features_json(from_csv)


def test_the_example_reference_data_builds_the_shipped_profiles(tmp_path: Path) -> None:
    config = load_config(EXAMPLE_CONFIG)
    for model in config.models:
        built = build_profile(EXAMPLES / "data" / f"{model.name}_reference.csv", model)
        shipped = Profile.read(EXAMPLES / "reference" / f"{model.name}.json")
        assert features_json(built) == features_json(shipped), model.name


# ----------------------------------------------------------------------------- the reservoir


def inclusion_counts(stream: int, capacity: int, chunk: int, trials: int) -> np.ndarray:
    """How often each stream position ends up in the sample, over `trials` seeded runs."""
    counts = np.zeros(stream, dtype=np.int64)
    for seed in range(trials):
        reservoir = Reservoir(capacity, seed=seed)
        for start in range(0, stream, chunk):
            reservoir.add([np.arange(start, min(start + chunk, stream))])
        kept = reservoir.columns[0]
        assert len(kept) == capacity and len(np.unique(kept)) == capacity  # a sample without repeats
        counts[kept] += 1
    return counts


@pytest.mark.parametrize("chunk", [70, 400])
def test_reservoir_includes_every_row_with_the_same_probability(chunk: int) -> None:
    stream, capacity, trials = 1000, 100, 300
    counts = inclusion_counts(stream, capacity, chunk, trials)
    # Each row is kept with probability capacity/stream = 0.1, wherever it sits in the stream.
    assert counts.mean() == pytest.approx(trials * capacity / stream)
    by_decile = counts.reshape(10, -1).sum(axis=1)
    assert stats.chisquare(by_decile).pvalue > 0.001
    # Rows from the first and the last chunk, which the algorithm treats most differently.
    first, last = counts[:chunk].mean() / trials, counts[-chunk:].mean() / trials
    assert first == pytest.approx(0.1, abs=0.02) and last == pytest.approx(0.1, abs=0.02)


def test_reservoir_keeps_everything_when_the_stream_fits() -> None:
    reservoir = Reservoir(100, seed=0)
    reservoir.add([np.arange(30), np.arange(30) * 2.0])
    reservoir.add([np.arange(30, 60), np.arange(30, 60) * 2.0])
    assert reservoir.columns[0].tolist() == list(range(60))
    assert reservoir.columns[1].tolist() == [2.0 * i for i in range(60)]  # columns stay aligned
    assert reservoir.seen == 60


def test_reservoir_keeps_columns_of_a_row_together() -> None:
    reservoir = Reservoir(50, seed=1)
    for start in range(0, 1000, 90):
        ids = np.arange(start, min(start + 90, 1000))
        reservoir.add([ids, ids.astype(str).astype(object)])
    assert [str(i) for i in reservoir.columns[0]] == list(reservoir.columns[1])
