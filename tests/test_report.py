"""`mlmon report` judges a batch file with the exporter's own code: same scores, same verdicts, exit 1 on drift."""

from __future__ import annotations

import csv
import re
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from exporter.cli import main
from exporter.tooling.synthetic import records
from tests.conftest import EXAMPLE_CONFIG, LiveExporter

TOLERANCE = 1e-12


def write_batch(path: Path, model: str, n: int, drift: float, seed: int, labels: bool = False) -> list[dict[str, Any]]:
    """A CSV of synthetic rows (features, prediction, maybe label) and the same rows as prediction records."""
    rows = records(model, "batch", n, np.random.default_rng(seed), drift=drift, with_labels=labels)
    prediction = {"fraud": "fraud_score", "delivery_time": "minutes"}[model]
    names = [*rows[0]["features"], prediction, *(["label"] if labels else [])]
    with path.open("w", newline="") as handle:
        writer = csv.DictWriter(handle, names)
        writer.writeheader()
        for record in rows:
            writer.writerow({**record["features"], prediction: record["prediction"],
                             **({"label": record["label"]} if labels else {})})
    return rows


def run_report(tmp_path: Path, model: str, data: Path) -> tuple[int, dict[str, Any]]:
    code = main(["report", "--config", str(EXAMPLE_CONFIG), "--model", model, str(data), "-o", str(tmp_path / "report.html")])
    return code, json.loads((tmp_path / "report.json").read_text())


def assert_same_columns(offline: dict[str, Any], live: dict[str, Any]) -> None:
    assert offline["name"] == live["name"]
    assert offline["samples"] == live["samples"]
    assert offline["drifted"] == live["drifted"]
    assert offline["severity"] == live["severity"]
    assert offline["p_value"] == pytest.approx(live["p_value"], abs=TOLERANCE, rel=TOLERANCE)
    assert offline["scores"].keys() == live["scores"].keys()
    for method, value in live["scores"].items():
        assert offline["scores"][method] == pytest.approx(value, abs=TOLERANCE, rel=TOLERANCE), method
    assert np.allclose(offline["current_fractions"], live["current_fractions"], rtol=0, atol=TOLERANCE)


def compare_with_exporter(live: LiveExporter, rows: list[dict[str, Any]], offline: dict[str, Any]) -> None:
    live.post_ok(rows)
    answer = live.http.get(f"{live.ingest_url}/v1/models/{rows[0]['model']}/drift", params={"window": "5m"}).json()
    online = answer["versions"][0]
    mine = offline["versions"][0]
    assert [f["name"] for f in mine["features"]] == [f["name"] for f in online["features"]]
    for offline_column, live_column in zip([*mine["features"], mine["prediction"]], [*online["features"], online["prediction"]]):
        assert_same_columns(offline_column, live_column)
    assert mine["dataset_drift"] == online["dataset_drift"]
    assert mine["drifted_features_ratio"] == pytest.approx(online["drifted_features_ratio"], abs=TOLERANCE)
    if online["multivariate"]:
        for key, value in online["multivariate"].items():
            assert mine["multivariate"][key] == pytest.approx(value, abs=TOLERANCE, rel=TOLERANCE)


def test_a_drifted_batch_exits_1_with_the_exporters_scores(tmp_path: Path, example_exporter: LiveExporter) -> None:
    rows = write_batch(tmp_path / "drifted.csv", "fraud", 3000, drift=1.0, seed=7)
    code, result = run_report(tmp_path, "fraud", tmp_path / "drifted.csv")
    assert code == 1
    assert result["failed"] and any("drifted" in reason for reason in result["reasons"])
    compare_with_exporter(example_exporter, rows, result)


def test_an_undrifted_batch_exits_0_with_the_exporters_scores(tmp_path: Path, example_exporter: LiveExporter) -> None:
    rows = write_batch(tmp_path / "clean.csv", "fraud", 3000, drift=0.0, seed=8)
    code, result = run_report(tmp_path, "fraud", tmp_path / "clean.csv")
    assert code == 0, result["reasons"]
    assert result["reasons"] == [] and result["rows"] == 3000
    compare_with_exporter(example_exporter, rows, result)


def test_labels_in_the_batch_fail_it_when_a_quality_bound_is_crossed(tmp_path: Path) -> None:
    # delivery_time allows mae <= 6 minutes; labels 20 minutes off the predictions break it.
    path = tmp_path / "late.csv"
    write_batch(path, "delivery_time", 1000, drift=0.0, seed=9, labels=True)
    text = path.read_text().splitlines()
    shifted = [text[0]] + [",".join([*line.split(",")[:-1], str(float(line.split(",")[-1]) + 20)]) for line in text[1:]]
    path.write_text("\n".join(shifted) + "\n")
    code, result = run_report(tmp_path, "delivery_time", path)
    assert code == 1
    assert any(reason.startswith("mae ") for reason in result["reasons"])


def test_the_report_page_is_one_self_contained_file(tmp_path: Path) -> None:
    write_batch(tmp_path / "drifted.csv", "fraud", 2000, drift=1.0, seed=10)
    run_report(tmp_path, "fraud", tmp_path / "drifted.csv")
    page = (tmp_path / "report.html").read_text()
    assert page.count('<svg class="chart"') == 5 + 1  # five features and the prediction
    assert "<script" not in page and "src=" not in page and re.findall(r"<link[^>]*>", page) == ['<link rel="icon" href="data:,">']


def test_a_model_that_captures_its_reference_cannot_be_reported(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    config = EXAMPLE_CONFIG.read_text().replace("reference: reference/fraud.json", "reference: {capture: 100}")
    (tmp_path / "mlmon.yaml").write_text(config)
    write_batch(tmp_path / "b.csv", "fraud", 10, drift=0.0, seed=1)
    code = main(["report", "--config", str(tmp_path / "mlmon.yaml"), "--model", "fraud", str(tmp_path / "b.csv"), "-o",
                 str(tmp_path / "r.html")])
    assert code == 2
    assert "captures its reference" in capsys.readouterr().err


def test_a_model_that_allows_only_its_own_versions_is_still_reported(tmp_path: Path) -> None:
    # The live allow-list keeps label values bounded; the offline batch is one version of its own.
    config = EXAMPLE_CONFIG.read_text().replace("reference: reference/fraud.json",
                                                "reference: reference/fraud.json\n    versions: {allow: [v1]}")
    (tmp_path / "mlmon.yaml").write_text(config)
    (tmp_path / "reference").symlink_to(EXAMPLE_CONFIG.parent / "reference")
    write_batch(tmp_path / "b.csv", "fraud", 1000, drift=1.0, seed=2)
    code = main(["report", "--config", str(tmp_path / "mlmon.yaml"), "--model", "fraud", str(tmp_path / "b.csv"), "-o",
                 str(tmp_path / "r.html")])
    assert code == 1
    assert json.loads((tmp_path / "r.json").read_text())["rows"] == 1000
