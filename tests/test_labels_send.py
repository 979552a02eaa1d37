"""`mlmon labels send FILE`: a label file joins its predictions, in batches, with a summary."""

from __future__ import annotations

import csv
import json
import subprocess
from pathlib import Path

import numpy as np
import pytest

from conftest import LiveExporter
from exporter.tooling import synthetic
from exporter.tooling.labels_send import label_value
from tests.test_cli import MLMON, ROOT


def send(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLMON, "labels", "send", *args], capture_output=True, text=True, cwd=ROOT, timeout=120)


def predictions(live: LiveExporter, n: int, prefix: str) -> list[dict]:
    records = synthetic.records("fraud", "v1", n, np.random.default_rng(2), id_prefix=prefix)
    live.post_ok(records)
    return records


def joined(live: LiveExporter) -> float:
    return live.value("mlmon_label_outcomes_total", model="fraud", outcome="joined") or 0.0


@pytest.mark.parametrize("cell, value", [("1", 1), ("0", 0), ("true", True), ("FALSE", False), ("0.25", 0.25),
                                         ("cat", "cat"), (1, 1)])
def test_label_cells_become_the_json_values_a_label_would_be(cell, value) -> None:
    assert label_value(cell) == value and type(label_value(cell)) is type(value)


def test_a_csv_of_labels_joins_in_batches_and_says_what_became_of_them(example_exporter: LiveExporter, tmp_path: Path) -> None:
    records = predictions(example_exporter, 2500, "csv-")
    path = tmp_path / "chargebacks.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["transaction", "is_fraud"])
        for i, record in enumerate(records):
            writer.writerow([record["id"], i % 2])
        writer.writerow(["never-predicted", 1])
        writer.writerow(["", 1])  # no id: skipped, counted
    result = send(str(path), "--url", example_exporter.ingest_url, "--id-column", "transaction",
                  "--label-column", "is_fraud", "--batch-size", "1000")
    assert result.returncode == 0, result.stderr
    assert "2501 labels in 3 batches: joined 2500, unknown_id 1, duplicate 0, invalid 0; 1 rows skipped" in result.stdout
    assert joined(example_exporter) == 2500
    again = send(str(path), "--url", example_exporter.ingest_url, "--id-column", "transaction", "--label-column", "is_fraud")
    assert "joined 0, unknown_id 1, duplicate 2500" in again.stdout  # a second run never joins twice


def test_json_lines_with_a_model_go_to_every_replica_given(start_exporter, example_exporter: LiveExporter, tmp_path: Path) -> None:
    other = start_exporter(example_exporter.running.exporter.config)
    first, second = predictions(example_exporter, 300, "a-"), predictions(other, 200, "b-")
    path = tmp_path / "labels.jsonl"
    path.write_text("".join(json.dumps({"id": r["id"], "label": 1}) + "\n" for r in first + second))
    result = send(str(path), "--url", example_exporter.ingest_url, "--url", other.ingest_url, "--model", "fraud")
    assert result.returncode == 0, result.stderr
    assert f"{example_exporter.ingest_url}: 500 labels in 1 batches: joined 300, unknown_id 200" in result.stdout
    assert f"{other.ingest_url}: 500 labels in 1 batches: joined 200, unknown_id 300" in result.stdout
    assert joined(example_exporter) == 300 and joined(other) == 200


def test_a_missing_file_is_one_line_and_exit_2(tmp_path: Path) -> None:
    missing = send(str(tmp_path / "nope.csv"))
    assert missing.returncode == 2 and "no such file" in missing.stderr and "Traceback" not in missing.stderr
