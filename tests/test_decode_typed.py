"""The typed path of record bodies (msgspec structs per model) gives what the dict path gives, or gives up.

exporter/ingest/typed_records.py decodes a JSON array or NDJSON body straight into structs of the
model's features, and is a shortcut: every test here compares it with the dict path (orjson, then
the uniform and per-record paths) on the same bytes. The seeded bodies are those of
tests/test_decode_uniform.py (missing, extra and reordered keys, values of every wrong type,
several models and versions, malformed lines), with byte-level changes on top for what only a
parser sees: integers beyond int64, numbers beyond float range, NaN literals, lone surrogates,
duplicate keys, a byte-order mark, white space around the array.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.ingest import decode as decode_module
from exporter.ingest import typed_records
from exporter.ingest.decode import Decoded, decode_body
from exporter.ingest.limits import TooManyRecords
from test_decode_uniform import (  # noqa: F401  (reference_dir is a fixture)
    NDJSON, answers_and_metrics, assert_same_decoded, bodies, clean_record, configs, reference_dir, without_typed_path,
)

# What a parser reads differently (or not at all) from what json.dumps writes: spliced in as raw text.
RAW_VALUES = [b"9223372036854775807", b"9223372036854775808", b"18446744073709551616", b"-9223372036854775809",
              b"123456789012345678901234567890", b"1e400", b"-1e400", b"1e-400", b"NaN", b"Infinity", b"-0",
              b'"\\ud800"', b'"\\u0000"', b'"\\u00e9t\\u00e9"', b"9007199254740993", b"0.1e1", b"[]", b"{}", b"true"]


@pytest.fixture(autouse=True)
def always_try_the_typed_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """No back-off here: every body is tried, so every comparison covers the typed path."""
    monkeypatch.setattr(decode_module, "BACKOFF", typed_records.Backoff(max_skip=0))


def counting_typed_path(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """The typed path as it is, noting for each body whether it gave the batch."""
    taken: list[bool] = []
    real = decode_module.typed_batch

    def counted(typed: Any, model: Any, config: Any) -> Any:
        batch = real(typed, model, config)
        taken.append(batch is not None)
        return batch

    monkeypatch.setattr(decode_module, "typed_batch", counted)
    return taken


def splice(rng: random.Random, body: bytes) -> bytes:
    """One raw token in place of a value, a duplicated key, or white space and a byte-order mark around it."""
    kind = rng.randrange(6)
    if kind <= 2:  # a value after some key: `"name": <raw>`
        positions = [i for i in range(len(body) - 1) if body[i:i + 2] == b": "]
        if not positions:
            return body
        at = rng.choice(positions) + 2
        end = at
        while end < len(body) and body[end:end + 1] not in (b",", b"}", b"\n"):
            end += 1 if body[end:end + 1] != b'"' else body.index(b'"', end + 1) - end + 1
        return body[:at] + rng.choice(RAW_VALUES) + body[end:]
    if kind == 3:  # a key given twice: the last one counts, for both parsers
        return body.replace(b'"features": {', b'"features": {"a": "dup", ', 1)
    if kind == 4:
        return b" \n\t" + body + b" \r\n"
    return b"\xef\xbb\xbf" + body


def decoded_both_ways(body: bytes, content_type: str, config: Any, monkeypatch: pytest.MonkeyPatch,
                      max_records: int = 1000) -> tuple[Any, Any]:
    """(with the typed path, without it): Decoded, or the exception type each raised."""
    def attempt() -> Any:
        try:
            return decode_body(body, content_type, config, max_records)
        except Exception as error:  # noqa: BLE001  the same error both ways is the same answer
            return type(error)

    typed = attempt()
    with monkeypatch.context() as patch:
        without_typed_path(patch)
        general = attempt()
    return typed, general


def assert_same(typed: Any, general: Any) -> None:
    if isinstance(typed, Decoded) and isinstance(general, Decoded):
        assert_same_decoded(typed, general)
    else:
        assert typed == general


# ----------------------------------------------------------------------------- tests

def test_a_clean_array_of_one_model_version_decodes_into_structs(reference_dir: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(1)
    records = [clean_record(rng, "wide", "v1", row) for row in range(30)]
    taken = counting_typed_path(monkeypatch)
    (batch,) = decode_body(json.dumps(records).encode(), "application/json", config, 100).batches
    assert taken == [True]
    assert batch.size == 30 and isinstance(batch.features["a"], np.ndarray)
    assert batch.features["color"] == [r["features"]["color"] for r in records]
    assert batch.features["a"].tolist() == [float(r["features"]["a"]) for r in records]


@pytest.mark.parametrize("seed", [41, 42, 43])
def test_seeded_hostile_bodies_decode_the_same_with_and_without_the_typed_path(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch, seed: int,
) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(seed)
    cases = bodies(seed, 300)
    cases = [(splice(rng, body) if rng.random() < 0.4 else body, content_type) for body, content_type in cases]
    taken = counting_typed_path(monkeypatch)
    for body, content_type in cases:
        assert_same(*decoded_both_ways(body, content_type, config, monkeypatch))
    assert 40 <= sum(taken) <= len(cases) - 40  # taken often, and given up often


@pytest.mark.parametrize("raw", RAW_VALUES)
@pytest.mark.parametrize("where", ["a", "color", "flag", "id", "model_version", "label", "prediction", "segments",
                                   "attributions", "timestamp"])
def test_every_raw_value_in_every_field_decodes_as_the_dict_path_decodes_it(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch, raw: bytes, where: str,
) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(5)
    records = [clean_record(rng, "wide", "v1", row) for row in range(4)]
    marker = "@@RAW@@"
    record = records[2]
    if where in ("a", "color", "flag"):
        record["features"][where] = marker
    elif where == "attributions":
        record["attributions"] = {"a": marker}
    elif where == "segments":
        record["segments"] = {"group": marker}
    else:
        record[where] = marker
    body = json.dumps(records).encode().replace(f'"{marker}"'.encode(), raw)
    for content_type, text in (("application/json", body),
                               (NDJSON, b"\n".join(json.dumps(r).encode() for r in records).replace(
                                   f'"{marker}"'.encode(), raw))):
        assert_same(*decoded_both_ways(text, content_type, config, monkeypatch))


def test_the_first_records_model_picks_the_struct_and_a_wrong_guess_gives_up(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(6)
    churn = [clean_record(rng, "churn", "v1", row) for row in range(5)]
    for record in churn:
        record["prediction"] = 0.5  # a plain score: the uniform paths' case
    assert typed_records.model_for(json.dumps(churn).encode(), config).name == "churn"
    # A feature value that reads like a model key does not fool it into another model's struct for long.
    churn[0]["features"]["plan"] = '"model": "wide"'
    taken = counting_typed_path(monkeypatch)
    typed, general = decoded_both_ways(json.dumps(churn).encode(), "application/json", config, monkeypatch)
    assert_same(typed, general)
    assert taken == [True]
    # The first record names one model, a later one another: structs of the first; the dict path decides.
    mixed = churn[:2] + [clean_record(rng, "species", "v1", 9)]
    taken.clear()
    assert_same(*decoded_both_ways(json.dumps(mixed).encode(), "application/json", config, monkeypatch))
    assert taken == []  # the species record has none of churn's features: the structs refused the body


def test_too_many_records_is_the_same_limit_on_both_paths(reference_dir: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    config = configs(reference_dir)["count"]
    rng = random.Random(7)
    body = json.dumps([clean_record(rng, "wide", "v1", row) for row in range(12)]).encode()
    assert decoded_both_ways(body, "application/json", config, monkeypatch, max_records=10) == \
        (TooManyRecords, TooManyRecords)


@pytest.mark.parametrize("mode", ["count", "parse", "reject"])
def test_an_exporter_answers_and_counts_the_same_with_and_without_the_typed_path(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch, mode: str,
) -> None:
    """Rejections, accepted counts, the per-request quality report and every /metrics sample."""
    config = configs(reference_dir)[mode]
    rng = random.Random({"count": 51, "parse": 52, "reject": 53}[mode])
    cases = [(splice(rng, body) if rng.random() < 0.3 else body, content_type)
             for body, content_type in bodies({"count": 51, "parse": 52, "reject": 53}[mode], 150)]

    taken = counting_typed_path(monkeypatch)
    typed_answers, typed_metrics = answers_and_metrics(config, cases)
    assert 20 <= sum(taken)
    without_typed_path(monkeypatch)
    general_answers, general_metrics = answers_and_metrics(config, cases)
    assert typed_answers == general_answers
    assert typed_metrics == general_metrics


def test_threads_sharing_a_models_decoder_each_get_their_own_records(reference_dir: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """The ingest workers share one decoder per model: concurrent decodes must not mix their records."""
    from concurrent.futures import ThreadPoolExecutor

    config = configs(reference_dir)["count"]
    rng = random.Random(8)
    batches = [[clean_record(rng, "wide", "v1", row) for row in range(200)] for _ in range(8)]
    for records in batches:
        for record in records:
            record.pop("attributions", None)
    texts = [json.dumps(records).encode() for records in batches]
    taken = counting_typed_path(monkeypatch)

    def first_feature(text: bytes) -> list[float]:
        (batch,) = decode_body(text, "application/json", config, 1000).batches
        return batch.features["a"].tolist()

    with ThreadPoolExecutor(4) as pool:
        for _ in range(5):
            results = list(pool.map(first_feature, texts))
            assert results == [[float(r["features"]["a"]) for r in records] for records in batches]
    assert taken == [True] * 40


def test_feature_names_that_are_not_python_identifiers_decode_too(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Config names allow dots, dashes and dunders; the struct's fields must not care."""
    from conftest import build_config

    names = ["page.views", "x-rate", "__slots__", "__init__", "class", "model", "_"]
    config = build_config({"models": [{
        "name": "odd", "task": "regression", "reference": {"capture": 50},
        "features": [{"name": n, "type": "numeric"} for n in names], "prediction": {"name": "y", "type": "numeric"},
    }]}, base_dir=tmp_path)
    records = [{"model": "odd", "model_version": "v1", "features": {n: i + row for i, n in enumerate(names)},
                "prediction": 0.5} for row in range(3)]
    taken = counting_typed_path(monkeypatch)
    typed, general = decoded_both_ways(json.dumps(records).encode(), "application/json", config, monkeypatch)
    assert_same(typed, general)
    assert taken == [True]
    assert typed.batches[0].features["__slots__"].tolist() == [2.0, 3.0, 4.0]


def test_a_model_whose_bodies_keep_giving_up_is_tried_less_and_less_often(
    reference_dir: Path, monkeypatch: pytest.MonkeyPatch,
) -> None:
    config = configs(reference_dir)["count"]
    monkeypatch.setattr(decode_module, "BACKOFF", typed_records.Backoff(max_skip=32))
    attempts: list[int] = []
    real = decode_module.decode_array

    def counted(body: bytes, model: Any) -> Any:
        attempts.append(body_number)
        return real(body, model)

    monkeypatch.setattr(decode_module, "decode_array", counted)
    rng = random.Random(9)
    records = [clean_record(rng, "wide", "v1", row) for row in range(20)]
    records[-1]["features"]["extra"] = 1.0  # the typed path gives up at the last record
    late = json.dumps(records).encode()
    for body_number in range(1, 101):
        assert decode_body(late, "application/json", config, 1000).batches[0].unknown_features == 1
    assert attempts == [1, 3, 6, 11, 20, 37, 70]  # skips of 1, 2, 4, 8, 16, then 32 at most
    records[-1]["features"].pop("extra")
    clean = json.dumps(records).encode()
    attempts.clear()
    for body_number in range(101, 131):
        decode_body(clean if body_number > 102 else late, "application/json", config, 1000)
    assert attempts[:2] == [103, 104]  # one body taken and it is tried on every body again
    assert attempts == list(range(103, 131))
