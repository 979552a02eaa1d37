"""Memory per request is bounded by the body's structure, measured before parsing (exporter/ingest/limits.py).

The numbers behind docs/ingest.md#memory: parsing costs what orjson needs (its peak is ~16x the
body for records, ~17x for columnar); the structure estimate stays above what the parsed body
holds, and the whole request (parse, decode, prepare) peaks below 3x that estimate.
"""

from __future__ import annotations

import json
import tracemalloc

import orjson
import pytest

from conftest import build_config, example_config_data
from exporter.http.server import load_profiles
from exporter.ingest.decode import decode_body
from exporter.ingest.limits import LimitExceeded, TooManyRecords, check_structure, split_lines, structure
from exporter.state.store import StateStore

N = 2_000
COUNTRIES = ["US", "GB", "DE", "FR"]


def record(i: int, **features: object) -> dict[str, object]:
    values = {"amount": 10.0 + i % 500, "account_age_days": 1 + i % 3000, "country": COUNTRIES[i % 4],
              "channel": "web", "is_international": bool(i % 2)}
    values.update(features)
    return {"model": "fraud", "model_version": "v1", "id": f"f-{i}", "features": values,
            "prediction": (i % 100) / 100, "segments": {"country": COUNTRIES[i % 4]}}


SHAPES = {
    "records": json.dumps([record(i) for i in range(N)]).encode(),
    "columnar": json.dumps({
        "model": "fraud", "model_version": "v1", "ids": [f"f-{i}" for i in range(N)],
        "features": {"amount": [i / 3 for i in range(N)], "country": [COUNTRIES[i % 4] for i in range(N)]},
        "predictions": [0.5] * N}).encode(),
    "one 50,000-character category": json.dumps({
        "model": "fraud", "model_version": "v1",
        "features": {"amount": [1.0] * N, "country": ["x" * 50_000] + ["DE"] * (N - 1)},
        "predictions": [0.5] * N}).encode(),
    "list values": json.dumps([record(i, amount=[1.0], country=["DE"]) for i in range(N)]).encode(),
    "empty objects": b"[" + b",".join([b"{}"] * 20 * N) + b"]",
    "empty arrays": b"[" + b",".join([b"[]"] * 20 * N) + b"]",
    "one-key objects": json.dumps([{f"k{i}": 1.5} for i in range(20 * N)]).encode(),
    "short strings": json.dumps(["a"] * 20 * N).encode(),
}


@pytest.fixture(scope="module")
def store() -> StateStore:
    config = build_config(example_config_data())
    return StateStore(config, load_profiles(config))


def peak_bytes(action) -> tuple[int, object]:
    tracemalloc.start()
    try:
        result = action()
        return tracemalloc.get_traced_memory()[1], result
    finally:
        tracemalloc.stop()


@pytest.mark.parametrize("shape", SHAPES)
def test_the_structure_estimate_stays_above_what_the_parsed_body_holds(shape: str) -> None:
    body = SHAPES[shape]
    tracemalloc.start()
    parsed = orjson.loads(body)
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    del parsed
    assert structure(body).decoded_bytes >= held


@pytest.mark.parametrize("shape", SHAPES)
def test_a_whole_request_peaks_below_three_times_the_estimate(shape: str, store: StateStore) -> None:
    body = SHAPES[shape]

    def request() -> None:
        store.prepare(decode_body(body, "application/json", store.config, 100_000).batches)

    peak, _ = peak_bytes(request)
    assert peak <= 3 * structure(body).decoded_bytes
    assert peak <= 70 * len(body)  # the worst shapes here (40,000 `[]` or `{}` records) cost ~60x their body


def test_one_long_category_no_longer_multiplies_a_column(store: StateStore) -> None:
    body = SHAPES["one 50,000-character category"]  # ~100 KB: it used to cost rows x 200 KB (+384 MB)
    peak, _ = peak_bytes(lambda: store.prepare(decode_body(body, "application/json", store.config, N).batches))
    assert peak < 20 * len(body)


def test_a_captured_reference_holds_counts_not_wide_strings(tmp_path) -> None:
    data = example_config_data()
    data["models"] = [m for m in data["models"] if m["name"] == "fraud"]
    data["models"][0]["reference"] = {"capture": 100_000}
    data["alerting"] = {}
    config = build_config(data)
    capture = StateStore(config, {})
    body = json.dumps({"model": "fraud", "model_version": "v1",
                       "features": {"amount": [1.0] * N, "country": ["x" * 256] + ["DE"] * (N - 1),
                                    "channel": ["web"] * N, "account_age_days": [1] * N,
                                    "is_international": [True] * N},
                       "predictions": [0.5] * N}).encode()
    capture.ingest(decode_body(body, "application/json", config, N).batches[0])  # creates the version's state
    decoded = decode_body(body, "application/json", config, N)
    tracemalloc.start()
    capture.ingest(decoded.batches[0])
    held = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert held < len(body)  # was 263 MB for an 85 KB request


def test_nesting_is_measured_without_parsing() -> None:
    assert structure(b'{"a": [1, {"b": []}]}').depth == 4
    with pytest.raises(LimitExceeded) as caught:
        check_structure(b"[" * 100_000, max_depth=32, max_decoded_bytes=1 << 30)
    assert (caught.value.limit, caught.value.status) == ("nesting_depth", 400)


def test_ndjson_lines_are_counted_before_the_body_is_split() -> None:
    assert split_lines(b'{"a": 1}\n\n{"b": 2}\n', max_records=3) == [b'{"a": 1}', b"", b'{"b": 2}', b""]
    with pytest.raises(TooManyRecords) as caught:
        split_lines(b"1\n" * 5_000_000, max_records=100_000)
    assert caught.value.count == 5_000_000
