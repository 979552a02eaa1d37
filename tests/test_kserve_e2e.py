"""A real KServe model server, its bodies delivered as KServe's logger would: mlmon counts what was served.

tests/support/kserve_model.py serves a scikit-learn classifier with the `kserve` package's own
ModelServer (v1 and v2 over HTTP). Each request and the response it produced are then posted to
mlmon's /v1/cloudevents as binary-mode CloudEvents with the headers of kserve/kserve
pkg/logger/worker.go: halves in either order, some sent twice, some never completed. The
exporter's counts, bins and data quality must equal a count made here from what was served.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import pytest
import requests

from conftest import LiveExporter, build_config, series, toy_model_data
from exporter.tooling.localstack import free_port


SERVER = Path(__file__).parent / "support" / "kserve_model.py"
COLORS = ["red", "green", "blue", "black", "purple"]  # the reference knows red, green and blue


@pytest.fixture(scope="module")
def kserve_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    http_port, grpc_port = free_port(), free_port()
    log = (tmp_path_factory.mktemp("kserve") / "server.log").open("w")
    process = subprocess.Popen([sys.executable, str(SERVER), str(http_port), str(grpc_port)],
                               stdout=log, stderr=subprocess.STDOUT, cwd=tmp_path_factory.getbasetemp(),
                               env={**os.environ, "PROMETHEUS_MULTIPROC_DIR": ""})
    url = f"http://127.0.0.1:{http_port}"
    try:
        for _ in range(600):
            assert process.poll() is None, Path(log.name).read_text()[-3000:]
            try:
                if requests.get(f"{url}/v2/models/toy/ready", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            time.sleep(0.1)
        else:
            pytest.fail("the KServe model server did not become ready")
        yield url
    finally:
        process.terminate()
        process.wait(timeout=30)
        log.close()


@pytest.fixture
def binary_exporter(start_exporter, toy_dir) -> LiveExporter:
    model = {**toy_model_data(), "task": "binary_classification", "serving": {"names": ["toy-isvc"]}}
    return start_exporter(build_config({"exporter": {"window_slots": 10}, "models": [model]}, base_dir=toy_dir))


def served(url: str, rng: np.random.Generator, count: int) -> list[dict[str, Any]]:
    """`count` inferences against the real server: v1 and v2 in turn, 1-3 rows each."""
    exchanges = []
    for i in range(count):
        rows = int(rng.integers(1, 4))
        x = [round(float(v), 3) for v in rng.uniform(-20, 120, rows)]
        color = [str(c) for c in rng.choice(COLORS, rows)]
        flag = [int(f) for f in rng.integers(0, 2, rows)]
        if i % 2:
            request = {"instances": [list(r) for r in zip(x, color, flag)]}
            path = "/v1/models/toy:predict"
        else:
            request = {"id": f"r{i}", "inputs": [
                {"name": "x", "shape": [rows], "datatype": "FP64", "data": x},
                {"name": "color", "shape": [rows], "datatype": "BYTES", "data": color},
                {"name": "flag", "shape": [rows], "datatype": "BOOL", "data": [bool(f) for f in flag]},
            ]}
            path = "/v2/models/toy/infer"
        answer = requests.post(url + path, json=request, timeout=30)
        assert answer.status_code == 200, answer.text
        response = answer.content
        scores = answer.json()
        p1 = ([row[1] for row in scores["predictions"]] if i % 2
              else np.asarray(scores["outputs"][0]["data"]).reshape(rows, 2)[:, 1].tolist())
        exchanges.append({"request": request, "response": response, "x": x, "color": color, "p1": p1,
                          "endpoint": "canary" if i % 3 == 0 else "default"})
    return exchanges


def headers(event_id: str, half: str, endpoint: str) -> dict[str, str]:
    return {"Ce-Specversion": "1.0", "Ce-Id": event_id, "Ce-Type": f"org.kubeflow.serving.inference.{half}",
            "Ce-Source": "http://localhost:9081/", "Ce-Inferenceservicename": "toy-isvc", "Ce-Namespace": "ml",
            "Ce-Component": "predictor", "Ce-Endpoint": endpoint, "Ce-Metadata": "{}",
            "Content-Type": "application/json"}


def test_what_kserve_served_is_what_mlmon_counts(kserve_url: str, binary_exporter: LiveExporter) -> None:
    import json

    rng = np.random.default_rng(12)
    exchanges = served(kserve_url, rng, 40)
    url = binary_exporter.ingest_url + "/v1/cloudevents"
    complete: list[dict[str, Any]] = []
    sends = 0
    for i, exchange in enumerate(exchanges):
        event_id = str(uuid.UUID(int=int(rng.integers(1 << 62))))
        halves = [("request", json.dumps(exchange["request"]).encode()), ("response", exchange["response"])]
        if rng.random() < 0.5:
            halves.reverse()                        # either order
        if i % 7 == 3:
            halves = halves[:1]                     # an orphan: its other half never comes
        elif i % 5 == 0:
            halves.append(halves[0])                # a repeat of a half, after the pair was joined
        if i % 6 == 1 and len(halves) >= 2:
            halves.insert(1, halves[0])             # a repeat while the first half is still held
        for half, body in halves:
            answer = requests.post(url, data=body, headers=headers(event_id, half, exchange["endpoint"]), timeout=10)
            assert answer.status_code == 200, answer.text
            sends += 1
        if {h for h, _ in halves} == {"request", "response"}:
            complete.append(exchange)
    assert 0 < len(complete) < len(exchanges)

    samples = binary_exporter.samples()
    rows = Counter()
    for exchange in complete:
        rows[exchange["endpoint"]] += len(exchange["x"])
    for endpoint, expected in rows.items():
        assert binary_exporter.value("mlmon_predictions_total", model="toy", model_version=endpoint) == expected
    x = np.concatenate([e["x"] for e in complete])
    colors = Counter(c for e in complete for c in e["color"])
    p1 = sum(p for e in complete for p in e["p1"])

    def total(name: str, **labels: str) -> float:
        return sum(series(samples, name, model="toy", **labels).values())

    assert total("mlmon_feature_bin_total", feature="x") == len(x)
    assert total("mlmon_feature_out_of_range_total", feature="x") == int((x < 0).sum() + (x > 99).sum())
    for color in ("red", "green", "blue"):
        assert total("mlmon_feature_bin_total", feature="color", bin=color) == colors[color]
    assert total("mlmon_feature_unseen_category_total", feature="color") == colors["black"] + colors["purple"]
    assert total("mlmon_feature_type_errors_total") == 0 and total("mlmon_records_rejected_total") == 0
    assert total("mlmon_prediction_value_sum_total") == pytest.approx(p1)
    events = {k: v for k, v in ((o, binary_exporter.value("mlmon_cloudevents_total", outcome=o))
                                for o in ("received", "joined", "duplicate"))}
    orphans = len(exchanges) - len(complete)
    assert events == {"received": sends, "joined": len(complete), "duplicate": sends - 2 * len(complete) - orphans}
    assert binary_exporter.value("mlmon_cloudevents_pending") == orphans
