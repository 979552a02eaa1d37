"""The uniform path of record bodies (one model version, every record good) gives what the per-record path gives.

`uniform_batch` checks a body column-wise and gives up on anything the per-record path would
reject or treat record by record; `feature_columns` types numeric features in one pass over the
records. Both are shortcuts, so every test here compares them with the way they replace, on
seeded bodies that mix clean records with hostile ones: missing, extra and reordered keys,
values of every wrong type, several models and versions in one body, and malformed NDJSON lines.
The comparison covers the decoded batches and rejections, the typed columns, and the whole answer
and /metrics of an exporter that ingested the body (type_errors: count, parse and reject).
"""

from __future__ import annotations

import json
import math
import random
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest

from conftest import build_config
from exporter.config.model import MlmonConfig
from exporter.http.collector import collect
from exporter.http.service import Exporter
from exporter.ingest import decode as decode_module
from exporter.ingest.columns import Column, convert, numeric_column
from exporter.ingest.decode import (
    MISSING, Batch, BodyError, Decoded, MalformedLine, decode_body, parse_json, parse_lines, uniform_batch,
)
from exporter.ingest.numbers import feature_columns, number_array
from exporter.profiles.load import load_profiles
from exporter.profiles.profile import Profile, categorical_binning, numeric_binning
from exporter.state.store import StateStore

COLORS = ["red", "green", "blue", "4.0", "x" * 20]  # "4.0" reads as the category "4"; 20 characters is too long
MODELS = ("wide", "churn", "species")
CLASSES = ["cat", "dog", "eel"]
NDJSON = "application/x-ndjson"


def config_data(type_errors: str = "count") -> dict[str, Any]:
    return {
        "exporter": {"max_string_length": 16, "max_label_value_length": 12, "type_errors": type_errors,
                     "max_reported_rejections": 1000},
        "models": [
            {"name": "wide", "task": "regression", "reference": "wide.json",
             "features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"},
                          {"name": "c", "type": "numeric"}, {"name": "color", "type": "categorical"},
                          {"name": "flag", "type": "boolean"}],
             "prediction": {"name": "y", "type": "numeric"}, "drift": {"windows": ["5m"]},
             "attributions": {"enabled": True}},
            {"name": "churn", "task": "binary_classification", "reference": {"capture": 50},
             "features": [{"name": "a", "type": "numeric"}, {"name": "b", "type": "numeric"},
                          {"name": "plan", "type": "categorical"}],
             "segments": [{"attribute": "group", "values": ["g1", "g2"]}], "drift": {"windows": ["5m"]}},
            {"name": "species", "task": "multiclass_classification", "reference": {"capture": 50},
             "features": [{"name": "petal", "type": "numeric"}, {"name": "sepal", "type": "numeric"}],
             "prediction": {"name": "kind", "type": "categorical", "classes": CLASSES},
             "drift": {"windows": ["5m"]}},
        ],
    }


@pytest.fixture(scope="module")
def reference_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("uniform")
    rng = np.random.default_rng(7)
    features = {name: numeric_binning(name, rng.normal(0, 3, 500), bins=5) for name in ("a", "b", "c")}
    features["color"] = categorical_binning("color", ["red"] * 5 + ["green"] * 3, max_categories=3)
    features["flag"] = categorical_binning("flag", ["true", "false"], max_categories=2, kind="boolean")
    Profile("wide", 500, features, numeric_binning("y", rng.normal(0, 1, 500), bins=4), source="test").write(
        folder / "wide.json")
    return folder


def configs(folder: Path) -> dict[str, MlmonConfig]:
    return {mode: build_config(config_data(mode), base_dir=folder) for mode in ("count", "parse", "reject")}


# ----------------------------------------------------------------------------- seeded bodies

def clean_features(rng: random.Random, model: str) -> dict[str, Any]:
    if model == "wide":
        features = {"a": rng.gauss(0, 3), "b": rng.randint(-3, 3), "c": round(rng.uniform(-9, 9), 2),
                    "color": rng.choice(COLORS[:3]), "flag": rng.choice([True, False])}
    elif model == "churn":
        features = {"a": rng.gauss(0, 3), "b": rng.choice([0, 1, 2.5, -4]), "plan": rng.choice(["basic", "pro"])}
    else:
        features = {"petal": rng.uniform(0, 5), "sepal": rng.randint(0, 9)}
    if rng.random() < 0.3:  # the same keys in another order
        keys = list(features)
        rng.shuffle(keys)
        features = {k: features[k] for k in keys}
    return features


def clean_prediction(rng: random.Random, model: str) -> Any:
    if model == "species":
        return rng.choice([rng.choice(CLASSES), [rng.random() for _ in CLASSES], {c: rng.random() for c in CLASSES}])
    if model == "churn":
        return rng.choice([rng.random(), rng.random(), [0.3, 0.7], {"1": rng.random()}])
    return rng.choice([rng.gauss(0, 1), rng.randint(-2, 2)])


def clean_record(rng: random.Random, model: str, version: Any, row: int) -> dict[str, Any]:
    record = {"model": model, "model_version": version, "features": clean_features(rng, model),
              "prediction": clean_prediction(rng, model)}
    if rng.random() < 0.7:
        record["id"] = rng.choice([f"r{row}", row])
    if rng.random() < 0.2:
        record["timestamp"] = rng.choice([1_700_000_000 + row, 1.7e9 + row / 3, "2024-05-01T12:00:00Z"])
    if rng.random() < 0.2:
        record["label"] = rng.choice([0, 1, 0.5, "cat", None])
    if model == "wide" and rng.random() < 0.5:  # attributions ride the uniform path too
        record["attributions"] = {name: rng.gauss(0, 1) for name in ("a", "b", "c", "color", "flag")}
    if model == "churn" and rng.random() < 0.5:
        record["segments"] = rng.choice([{"group": "g1"}, {"group": "g2"}, {"group": "zz"}, {}])
    return record


WRONG_VALUES = ["12", "1e3", True, False, None, [5.0], {"v": 1}, 2**70, 0, 1, 1.0, -0.0, "4.0", "true",
                "x" * 40, math.nan, math.inf, 10**400, "", 7]


def mutate(rng: random.Random, record: dict[str, Any]) -> Any:
    """One hostile change to a record: what a buggy or malicious client sends."""
    kind = rng.randrange(14)
    if kind == 0:
        record.pop(rng.choice(["model", "model_version", "features", "prediction"]))
    elif kind == 1:
        record["model"] = rng.choice([5, None, "nope", rng.choice(MODELS)])
    elif kind == 2:
        record["model_version"] = rng.choice([3, True, 1.0, 1, "v2", "models:/w/3", "w.3", "x" * 80, "bad/v", None, [1]])
    elif kind == 3:
        record["features"] = rng.choice([[], "x", None, {}])
    elif kind == 4 and isinstance(record.get("features"), dict) and record["features"]:
        record["features"].pop(rng.choice(list(record["features"])))
    elif kind == 5 and isinstance(record.get("features"), dict):
        record["features"][rng.choice(["zzz", "extra", "a", "petal"])] = rng.choice(WRONG_VALUES)
    elif kind in (6, 7) and isinstance(record.get("features"), dict) and record["features"]:
        record["features"][rng.choice(list(record["features"]))] = rng.choice(WRONG_VALUES)
    elif kind == 8:
        record["prediction"] = rng.choice(["0.5", True, None, [0.2, 0.8], {"1": 0.3}, "cat", [0.1, 0.2, 0.7],
                                           {"cat": 0.5, "dog": 0.5}, "x" * 40, 10**400, math.nan, [1, 2, 3, 4]])
    elif kind == 9:
        record["id"] = rng.choice([True, 1.5, "x" * 40, 2**80, None, [1]])
    elif kind == 10:
        record["timestamp"] = rng.choice(["2024-01-01T00:00:00Z", "yesterday", True, 1e20, math.nan, 1_700_000_000])
    elif kind == 11:
        record[rng.choice(["extra", "predicted_class"])] = 1  # a key the uniform path does not know
    elif kind == 12:
        record["attributions"] = rng.choice([1, None, {"a": "x"}, {"zzz": 1.0}, {"a": math.nan}, [1.0]])
    else:
        return rng.choice([[], 5, "x", None, [record]])
    return record


def body_records(rng: random.Random) -> list[Any]:
    """A body: mostly one model version (the uniform path's case), sometimes mixed; some records hostile."""
    model = rng.choice(MODELS)
    version = rng.choice(["v1", "v1", "v1", 7, "models:/w/3"])
    rows = rng.choice([1, 2, 5, 40])
    records: list[Any] = []
    hostile = rng.choice([0.0, 0.0, 0.02, 0.2])
    for row in range(rows):
        if rng.random() < 0.1:  # another model or version in the same body
            record = clean_record(rng, rng.choice(MODELS), rng.choice(["v1", "v2", "w.3"]), row)
        else:
            record = clean_record(rng, model, version, row)
        records.append(mutate(rng, record) if rng.random() < hostile else record)
    return records


def encode(rng: random.Random, records: list[Any]) -> tuple[bytes, str]:
    """A JSON array, one object, or NDJSON (with blank and malformed lines now and then)."""
    shape = rng.random()
    if shape < 0.6:
        return json.dumps(records).encode(), "application/json"
    if shape < 0.65 and len(records) == 1:
        return json.dumps(records[0]).encode(), "application/json"
    lines = [json.dumps(r) for r in records]
    if rng.random() < 0.2:
        lines.insert(rng.randrange(len(lines) + 1), rng.choice(["", "{not json", "[1,", "   "]))
    return "\n".join(lines).encode(), NDJSON


def bodies(seed: int, count: int) -> list[tuple[bytes, str]]:
    rng = random.Random(seed)
    return [encode(rng, body_records(rng)) for _ in range(count)]


# ----------------------------------------------------------------------------- comparisons

def without_uniform_path(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(decode_module, "uniform_batch", lambda records, config: None)


def without_typed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """Record bodies parsed as dicts only (the typed path, tests/test_decode_typed.py, gives up on every body)."""
    monkeypatch.setattr(decode_module, "decode_array", lambda body, model: None)
    monkeypatch.setattr(decode_module, "decode_lines", lambda lines, model: None)


def counting_uniform_path(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The uniform path as it is, noting for each body whether it took it (the typed path off: it comes first)."""
    without_typed_path(monkeypatch)
    taken: list[bool] = []

    def counted(records: list[Any], config: MlmonConfig) -> Batch | None:
        batch = uniform_batch(records, config)
        taken.append(batch is not None)
        return batch

    monkeypatch.setattr(decode_module, "uniform_batch", counted)
    return taken


def same(a: Any, b: Any) -> bool:
    """Equal and of the same type, value by value (1, 1.0 and True differ; NaN equals NaN; MISSING is itself)."""
    if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
        return (isinstance(a, np.ndarray) and isinstance(b, np.ndarray) and a.dtype == b.dtype
                and np.array_equal(a, b, equal_nan=a.dtype.kind == "f"))
    if type(a) is not type(b):
        return False
    if isinstance(a, float):
        return a == b or (math.isnan(a) and math.isnan(b))
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b))
    if isinstance(a, dict):
        return list(a) == list(b) and all(same(a[k], b[k]) for k in a)
    return a is b if a is MISSING else a == b


def batch_fields(batch: Batch) -> dict[str, Any]:
    return {"model": batch.model.name, "version": batch.version, "features": batch.features,
            "predictions": batch.predictions, "ids": batch.ids, "timestamps": batch.timestamps,
            "labels": batch.labels, "segments": batch.segments, "unknown": batch.unknown_features,
            "indices": batch.indices, "attributions": batch.attributions, "decisions": batch.decisions,
            "class_scores": batch.class_scores}


def assert_same_decoded(fast: Decoded, general: Decoded) -> None:
    assert fast.records == general.records
    assert [(r.index, r.reason, r.detail, r.model) for r in fast.rejections] == \
        [(r.index, r.reason, r.detail, r.model) for r in general.rejections]
    assert len(fast.batches) == len(general.batches)
    for mine, theirs in zip(fast.batches, general.batches):
        a, b = batch_fields(mine), batch_fields(theirs)
        for key in a:
            assert same(a[key], b[key]), key


def assert_same_column(typed: Column, from_list: Column) -> None:
    assert np.array_equal(typed.values, from_list.values, equal_nan=typed.values.dtype.kind == "f")
    assert typed.values.dtype == from_list.values.dtype
    assert typed[1:6] == from_list[1:6]  # missing, null, nonfinite, type errors, too long
    assert same(list(typed.examples), list(from_list.examples))


# ----------------------------------------------------------------------------- tests

def test_a_clean_body_of_one_model_version_takes_the_uniform_path(reference_dir: Path) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(1)
    records = [clean_record(rng, "wide", "v1", row) for row in range(30)]
    batch = uniform_batch(records, config)
    assert batch is not None and batch.size == 30 and batch.indices == list(range(30))
    assert isinstance(batch.features["a"], np.ndarray)  # numbers typed in one pass
    assert batch.features["color"] == [r["features"]["color"] for r in records]


@pytest.mark.parametrize("change", [
    lambda r: r.update(extra=1),                             # a field it does not know: the per-record path decides
    lambda r: r.update(model_version="v2"),                  # a second version
    lambda r: r.update(model_version=True),                  # equal to 1 in a set, but not a valid version
    lambda r: r.pop("prediction"),                           # a rejection
    lambda r: r.update(id=True),
    lambda r: r.update(timestamp="yesterday"),
    lambda r: r.update(prediction="0.5"),
    lambda r: r.update(features=[1, 2]),
])
def test_the_uniform_path_gives_up_on_what_the_per_record_path_must_decide(
    reference_dir: Path, change: Callable[[dict[str, Any]], Any],
) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(2)
    records = [clean_record(rng, "wide", 1, row) for row in range(5)]
    change(records[3])
    assert uniform_batch(records, config) is None


def test_a_version_given_as_true_beside_1_is_still_rejected(reference_dir: Path) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(3)
    records = [clean_record(rng, "wide", 1, row) for row in range(3)]
    records[1]["model_version"] = True
    decoded = decode_body(json.dumps(records).encode(), "application/json", config, 100)
    assert [(r.index, r.reason) for r in decoded.rejections] == [(1, "invalid_model_version")]
    assert [b.size for b in decoded.batches] == [2]


@pytest.mark.parametrize("seed", [11, 12, 13])
def test_seeded_hostile_bodies_decode_the_same_with_and_without_the_uniform_path(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
) -> None:
    config = configs(reference_dir)["count"]
    cases = bodies(seed, 300)
    taken = counting_uniform_path(monkeypatch)
    fast = [decode_body(body, content_type, config, 1000) for body, content_type in cases]
    without_uniform_path(monkeypatch)
    for (body, content_type), mine in zip(cases, fast):
        assert_same_decoded(mine, decode_body(body, content_type, config, 1000))
    assert 60 <= sum(taken) <= len(cases) - 60  # both paths were taken, many times


@pytest.mark.parametrize("seed", [21, 22])
def test_typed_numeric_columns_convert_like_the_raw_values(reference_dir: Path, seed: int) -> None:
    """Every batch column, as decode typed it, converts to what the raw values of its records convert to."""
    config = configs(reference_dir)["count"]
    typed_columns = 0
    for body, content_type in bodies(seed, 300):
        decoded = decode_body(body, content_type, config, 1000)
        records = parse_json(body) if content_type != NDJSON else None  # (NDJSON: the same records)
        if not isinstance(records, list):
            continue
        for batch in decoded.batches:
            for feature in batch.model.features:
                raw = [records[i]["features"].get(feature.name, MISSING) for i in batch.indices]
                typed_columns += isinstance(batch.features[feature.name], np.ndarray)
                for parse in (False, True):
                    assert_same_column(convert(feature.type, batch.features[feature.name], 16, parse),
                                       convert(feature.type, raw, 16, parse))
    assert typed_columns >= 100


def test_feature_columns_types_only_numeric_columns_of_plain_numbers() -> None:
    rows = [{"a": 1, "b": 2.5, "c": True, "d": 0.0, "e": "x"}, {"a": 0, "b": -1.0, "c": 3.0, "d": 1, "e": 4}]
    names = ["a", "b", "c", "d", "e"]
    columns = feature_columns(rows, names, {"a", "b", "c", "d"})
    assert list(columns) == names
    typed = sorted(name for name, column in columns.items() if isinstance(column, np.ndarray))
    assert typed == ["a", "b", "d"]  # c holds a boolean, e is not numeric: raw values, typed value by value later
    assert columns["a"].tolist() == [1.0, 0.0] and columns["d"].tolist() == [0.0, 1.0]
    assert columns["c"] == [True, 3.0] and columns["e"] == ["x", 4]
    mixed = feature_columns(rows + [{"a": "1", "b": 1, "c": 1, "d": 1, "e": "y"}], names, {"a", "b", "c", "d"})
    assert mixed["a"] == [1, 0, "1"] and mixed["b"].tolist() == [2.5, -1.0, 1.0]  # only the column with a string
    assert feature_columns([{"a": 10**400, "b": 1}], ["a", "b"], {"a", "b"})["a"] == [10**400]  # beyond float range
    assert feature_columns([{"a": 2}, {"a": 3}], ["a"], {"a"})["a"].tolist() == [2.0, 3.0]  # one feature
    with pytest.raises(KeyError):
        feature_columns([{"a": 1}], ["a", "b"], {"a", "b"})


@pytest.mark.parametrize("seed", range(5))
def test_number_array_agrees_with_an_independent_count_of_each_value(seed: int) -> None:
    rng = random.Random(seed)
    pool = [0, 1, -1, 2.5, 1.0, 0.0, -0.0, 2**70, 10**400, math.nan, math.inf, True, False, None, "3", [1.0], MISSING]
    for _ in range(300):
        raw = [rng.choice(pool[:6]) for _ in range(rng.randint(0, 6))]
        if rng.random() < 0.5:
            raw.insert(rng.randint(0, len(raw)), rng.choice(pool))
        column = numeric_column(raw)
        finite = [float(v) for v in raw if type(v) in (int, float) and _finite(v)]
        assert column.values.tolist() == finite
        assert column.missing == sum(v is MISSING for v in raw) and column.null == raw.count(None)
        assert column.nonfinite == sum(type(v) in (int, float) and not _finite(v) for v in raw)
        assert column.type_errors == sum(type(v) not in (int, float) and v is not None and v is not MISSING
                                         for v in raw)
        plain = all(type(v) in (int, float) for v in raw)
        assert (number_array(raw) is not None) == (plain and not any(type(v) is int and abs(v) > 1e308 for v in raw))


def _finite(value: float | int) -> bool:
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@pytest.mark.parametrize("mode", ["count", "parse", "reject"])
def test_an_exporter_answers_and_counts_the_same_with_and_without_the_uniform_path(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
) -> None:
    """Rejections, accepted counts, the per-request quality report and every /metrics sample."""
    config = configs(reference_dir)[mode]
    cases = bodies({"count": 31, "parse": 32, "reject": 33}[mode], 150)

    taken = counting_uniform_path(monkeypatch)
    fast_answers, fast_metrics = answers_and_metrics(config, cases)
    assert 20 <= sum(taken) <= len(cases) - 20
    without_uniform_path(monkeypatch)
    general_answers, general_metrics = answers_and_metrics(config, cases)
    assert fast_answers == general_answers
    assert fast_metrics == general_metrics
    assert any("quality" in answer for answer, _ in fast_answers)
    assert any(answer.get("rejected") for answer, _ in fast_answers)


def answers_and_metrics(config: MlmonConfig, cases: list[tuple[bytes, str]]) -> tuple[list[Any], str]:
    """A fresh exporter's answer to each body, then its whole /metrics page."""
    store = StateStore(config, load_profiles(config), clock=lambda: 1_000.0)
    exporter = Exporter(config, store)
    answers = [exporter.ingest_predictions(body, content_type) for body, content_type in cases]
    return answers, collect(store, exporter.stats, 1_000.0).render(openmetrics=False)


def lines_one_by_one(lines: list[bytes]) -> list[Any]:
    """What NDJSON decoding did before parse_lines: every line on its own."""
    records: list[Any] = []
    for number, line in enumerate(lines):
        if line.strip():
            try:
                records.append(parse_json(line))
            except BodyError as error:
                records.append(MalformedLine(f"line {number + 1}: {error}"))
    return records


@pytest.mark.parametrize("seed", range(3))
def test_ndjson_lines_parse_as_they_do_one_by_one(seed: int) -> None:
    rng = random.Random(seed)
    pool = [b'{"a": 1}', b'{"a": [1, 2]}', b"[]", b"7", b'"x"', b"", b"  ", b"\r", b'{"a": NaN}', b"{bad",
            b'{"a": 1}\r', b"1, 2", b'{"a": 1} {"b": 2}', b'{"a": ' + b"9" * 400 + b"}"]  # an int only the stdlib reads
    for _ in range(400):
        lines = [rng.choice(pool[:5]) for _ in range(rng.randint(0, 5))]
        if rng.random() < 0.5:
            lines.insert(rng.randint(0, len(lines)), rng.choice(pool))
        body = b"\n".join(lines) + rng.choice([b"", b"\n"])
        split = body.split(b"\n")
        assert same(parse_lines(split), lines_one_by_one(split))
