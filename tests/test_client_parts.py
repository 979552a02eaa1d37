"""The parts of mlmon_client on their own: bodies it builds, values it converts, answers it
classifies, retries it makes or refuses, and the promise that it imports nothing outside the
standard library.
"""

from __future__ import annotations

import ast
import datetime
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from prometheus_client import CollectorRegistry, generate_latest

from mlmon_client import Client
from mlmon_client.batching import ColumnBatch, Label, batch_chunks, label_chunks, record_chunks
from mlmon_client.columns import feature_columns, json_default
from mlmon_client.prometheus import ClientCollector
from mlmon_client.transport import Endpoint, classify
from tests.conftest import ROOT
from tests.support.sidecars import HungServer, RecordingServer
from tests.test_layout import cycles

PACKAGE = ROOT / "clients" / "python" / "mlmon_client"
# The adapters import their framework; everything else may import only the standard library.
ADAPTER_IMPORTS = {"flask.py": {"flask"}, "starlette.py": {"starlette"}, "prometheus.py": {"prometheus_client"}}


def record(features: dict, model: str = "m", version: str = "v1", id: object = None,
           predicted_class: object = None) -> tuple:
    return (model, version, features, 0.5, id, None, 1000.0, predicted_class)


# ----------------------------------------------------------------------------- bodies


def test_records_with_the_same_model_version_and_features_share_one_columnar_body():
    chunks, invalid = record_chunks([record({"a": 1, "b": "x"}, id="1"), record({"a": 2, "b": "y"})], batch_size=10)
    assert invalid == 0
    assert [c.document for c in chunks] == [{
        "model": "m", "model_version": "v1", "features": {"a": [1, 2], "b": ["x", "y"]}, "predictions": [0.5, 0.5],
        "ids": ["1", None], "timestamps": [1000.0, 1000.0],
    }]


def test_the_models_own_predicted_class_travels_as_the_predicted_classes_column():
    chunks, _ = record_chunks([record({"a": 1}, predicted_class=True), record({"a": 2})], batch_size=10)
    assert chunks[0].document["predicted_classes"] == [True, None]
    batch = ColumnBatch("m", "v1", {"a": [1, 2]}, [[0.2, 0.8], [0.6, 0.4]], None, None, None, None, None, 2,
                        np.array(["dog", "cat"]))
    assert batch_chunks(batch, 10, now=0.0)[0].document["predicted_classes"] == ["dog", "cat"]


def test_a_record_without_a_feature_goes_in_a_body_of_its_own_so_absent_is_not_sent_as_null():
    chunks, _ = record_chunks([record({"a": 1, "b": 2}), record({"a": 3}), record({"a": 4, "b": 5})], batch_size=10)
    assert sorted((c.rows, sorted(c.document["features"])) for c in chunks) == [(1, ["a"]), (2, ["a", "b"])]


def test_records_are_cut_into_bodies_of_at_most_batch_size():
    chunks, _ = record_chunks([record({"a": i}) for i in range(25)], batch_size=10)
    assert [c.rows for c in chunks] == [10, 10, 5]
    assert [v for c in chunks for v in c.document["features"]["a"]] == list(range(25))


def test_a_refused_body_splits_into_halves_that_keep_every_column_in_step():
    chunks, _ = record_chunks([record({"a": i}, id=str(i)) for i in range(5)], batch_size=10)
    first, second = chunks[0].halves()
    assert (first.rows, second.rows) == (2, 3)
    assert first.document["ids"] == ["0", "1"] and second.document["features"]["a"] == [2, 3, 4]
    assert first.document["model"] == second.document["model"] == "m"


def test_optional_columns_are_left_out_when_empty_and_unreadable_records_are_counted():
    chunks, invalid = record_chunks([("m", ["unhashable"], {"a": 1}, 0.5, None, None, 1.0), record({"a": 1})], 10)
    assert invalid == 1
    assert "ids" not in chunks[0].document and "segments" not in chunks[0].document


def test_a_batch_of_numpy_columns_becomes_plain_lists_with_one_time_for_every_row():
    batch = ColumnBatch("m", "v1", {"a": np.array([1.5, 2.5]), "flag": np.array([True, False])}, np.array([0.1, 0.2]),
                        np.array([7, 8]), {"country": ["DE", "FR"]}, None, None, None, 2)
    (chunk,) = batch_chunks(batch, batch_size=10, now=123.0)
    assert json.loads(chunk.encoded()) == {
        "model": "m", "model_version": "v1", "features": {"a": [1.5, 2.5], "flag": [True, False]},
        "predictions": [0.1, 0.2], "ids": [7, 8], "segments": [{"country": "DE"}, {"country": "FR"}],
        "timestamps": [123.0, 123.0],
    }


def test_a_batch_whose_columns_disagree_in_length_is_an_error_for_the_sender_to_count():
    batch = ColumnBatch("m", "v1", {"a": [1, 2, 3]}, [0.1, 0.2], None, None, None, None, None, 2)
    with pytest.raises(ValueError, match="features.a"):
        batch_chunks(batch, 10, 0.0)


def test_labels_are_grouped_by_model_in_the_columnar_labels_shape():
    chunks = label_chunks([Label("a", 1, None), Label("b", 0, "fraud"), Label("c", 1, None)], batch_size=10)
    assert [c.document for c in chunks] == [{"ids": ["a", "c"], "labels": [1, 1]}, {"ids": ["b"], "labels": [0], "model": "fraud"}]


# ----------------------------------------------------------------------------- values


@pytest.mark.parametrize("features, names, expected", [
    ({"a": np.array([1, 2])}, None, {"a": [1, 2]}),
    ([{"a": 1, "b": 2}, {"a": 3}], None, {"a": [1, 3], "b": [2, None]}),
    (np.array([[1.0, 2.0], [3.0, 4.0]]), ["x", "y"], {"x": [1.0, 3.0], "y": [2.0, 4.0]}),
])
def test_features_are_read_as_columns_from_each_accepted_shape(features, names, expected):
    assert feature_columns(features, names) == expected


def test_a_dataframe_is_read_column_by_column():
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame({"a": [1.0, None], "b": pd.Categorical(["x", "y"])})
    columns = feature_columns(frame)
    assert columns["b"] == ["x", "y"] and columns["a"][0] == 1.0 and np.isnan(columns["a"][1])


@pytest.mark.parametrize("value, expected", [
    (np.int64(3), 3), (np.float32(0.5), 0.5), (np.bool_(True), True), (np.array([1, 2]), [1, 2]),
    (datetime.datetime(2026, 1, 2, 3, 4, 5, tzinfo=datetime.timezone.utc), "2026-01-02T03:04:05+00:00"),
    ({1, 2}, [1, 2]), (object, str(object)),
])
def test_values_json_does_not_know_are_written_as_their_plain_equivalent(value, expected):
    assert json_default(value) == expected


# ----------------------------------------------------------------------------- answers and retries


@pytest.mark.parametrize("status, kind", [
    (200, "ok"), (400, "rejected"), (401, "rejected"), (404, "rejected"), (422, "rejected"), (413, "too_large"),
    (429, "retry"), (502, "retry"), (503, "retry"), (504, "retry"), (500, "unconfirmed"),
])
def test_only_answers_that_mean_not_applied_are_retried(status, kind):
    assert classify(status) == kind


@pytest.mark.parametrize("url, prefix, port", [
    ("http://127.0.0.1:8711", "", 8711), ("127.0.0.1:8711/v1/predictions", "", 8711),
    ("https://sidecar/mlmon/v1/labels", "/mlmon", 443),
])
def test_the_url_may_be_the_listener_or_a_pasted_route(url, prefix, port):
    endpoint = Endpoint(url, timeout=1)
    assert (endpoint.prefix, endpoint.port) == (prefix, port)


def test_a_url_that_cannot_work_fails_at_start_up_not_in_the_request_path():
    with pytest.raises(ValueError, match="http"):
        Client("ftp://sidecar")


def test_a_sidecar_saying_not_now_is_retried_until_retry_for_then_dropped_and_counted():
    sidecar = RecordingServer(status=503)
    client = Client(sidecar.url, flush_interval=0.02, retry_for=0.5, max_backoff=0.05)
    try:
        client.log(model="m", version="v1", features={"a": 1}, prediction=0.5)
        assert client.flush(timeout=10)
        stats = client.stats()
    finally:
        client.close(timeout=1)
        sidecar.close()
    assert stats.dropped_unreachable == 1 and stats.retried >= 2 and stats.requests == stats.retried + 1


def test_a_refused_token_is_counted_as_rejected_and_not_retried():
    sidecar = RecordingServer(status=401, answer=b'{"error": "unauthorized"}')
    client = Client(sidecar.url, flush_interval=0.02)
    try:
        client.log(model="m", version="v1", features={"a": 1}, prediction=0.5)
        assert client.flush(timeout=10)
        stats = client.stats()
    finally:
        client.close(timeout=1)
        sidecar.close()
    assert (stats.rejected, stats.retried, stats.requests) == (1, 0, 1)


def test_a_request_whose_answer_never_comes_is_unconfirmed_and_never_sent_again():
    sidecar = HungServer()
    client = Client(sidecar.url, flush_interval=0.02, timeout=0.3)
    try:
        client.log(model="m", version="v1", features={"a": 1}, prediction=0.5)
        assert client.flush(timeout=10)
        stats = client.stats()
    finally:
        client.close(timeout=1)
        sidecar.close()
    assert (stats.unconfirmed, stats.retried, stats.requests) == (1, 0, 1)


def test_a_missing_token_file_holds_the_batch_as_not_sent_and_retries_it(tmp_path: Path):
    sidecar = RecordingServer()
    token = tmp_path / "token"
    client = Client(sidecar.url, token_file=str(token), flush_interval=0.02, max_backoff=0.05)
    try:
        client.log(model="m", version="v1", features={"a": 1}, prediction=0.5)
        time.sleep(0.3)  # a few attempts without the file
        token.write_text("late")
        assert client.flush(timeout=10)
        stats = client.stats()
    finally:
        client.close(timeout=1)
        sidecar.close()
    assert stats.sent == 1 and stats.retried >= 1
    assert [r["headers"]["Authorization"] for r in sidecar.requests] == ["Bearer late"]


# ----------------------------------------------------------------------------- counters on /metrics


def test_the_counters_can_be_scraped_from_the_model_servers_own_registry():
    client = Client("http://127.0.0.1:1", max_queue=1, retry_for=0, flush_interval=3600)
    try:
        client.log(model="m", version="v1", features={}, prediction=0.5)
        client.log(model="m", version="v1", features={}, prediction=0.5)  # the queue holds one
        registry = CollectorRegistry()
        registry.register(ClientCollector(client))
        text = generate_latest(registry).decode()
    finally:
        client.close(timeout=0.2)
    assert 'mlmon_client_records_total{outcome="dropped_queue_full"} 1.0' in text
    assert "mlmon_client_queued_records 1.0" in text


# ----------------------------------------------------------------------------- the package's imports


def imports_of(path: Path) -> set[str]:
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            found.add(node.module)
    return found


def test_the_client_imports_only_the_standard_library_outside_its_adapters():
    outside = {
        path.name: sorted(name for name in imports_of(path)
                          if name.split(".")[0] not in sys.stdlib_module_names | {"mlmon_client"}
                          and name.split(".")[0] not in ADAPTER_IMPORTS.get(path.name, set()))
        for path in PACKAGE.glob("*.py")
    }
    assert {name: found for name, found in outside.items() if found} == {}


def test_the_client_modules_import_each_other_without_cycles():
    modules = {f"mlmon_client.{p.stem}": p for p in PACKAGE.glob("*.py")}
    graph = {name: {m for m in imports_of(path) if m in modules and m != name} for name, path in modules.items()}
    graph["mlmon_client.__init__"] = set()  # the package's own __init__ re-exports; importing it is not an edge back
    assert cycles(graph) == []
