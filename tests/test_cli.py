"""The `mlmon` command: exit codes, the published JSON Schema, profile build, and `serve` shutting down cleanly."""

from __future__ import annotations

import json
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from conftest import EXAMPLE_CONFIG, EXAMPLES, ROOT, example_config_data
from exporter.cli import main
from exporter.config.model import config_json_schema
from exporter.profiles.profile import Profile

MLMON = [sys.executable, "-m", "exporter.cli"]


def run_mlmon(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*MLMON, *args], capture_output=True, text=True, cwd=ROOT, timeout=60)


# ----------------------------------------------------------------------------- config check


def test_config_check_accepts_the_example_and_exits_0() -> None:
    result = run_mlmon("config", "check", "-c", str(EXAMPLE_CONFIG))
    assert result.returncode == 0, result.stderr
    assert "ok (2 model(s), references readable)" in result.stdout


def test_config_check_exits_2_and_names_the_place_of_a_bad_value(tmp_path: Path) -> None:
    data = example_config_data()
    data["models"][0]["features"][1]["type"] = "categoric"
    path = tmp_path / "mlmon.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["config", "check", "-c", str(path)]) == 2
    result = run_mlmon("config", "check", "-c", str(path))
    assert result.returncode == 2
    assert "models[0].features[1].type: 'categoric' is not one of numeric, categorical, boolean" in result.stderr


def test_config_check_exits_2_on_a_yaml_syntax_error(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text("models:\n  - name: [fraud\n")
    result = run_mlmon("config", "check", "-c", str(path))
    assert result.returncode == 2
    assert "line 3, column 1: not valid YAML" in result.stderr


def test_config_check_exits_2_when_a_reference_profile_is_missing(tmp_path: Path) -> None:
    data = example_config_data()
    path = tmp_path / "mlmon.yaml"  # references are relative to the file, and tmp_path has none
    path.write_text(yaml.safe_dump(data))
    result = run_mlmon("config", "check", "-c", str(path))
    assert result.returncode == 2
    assert "reference profile:" in result.stderr and "fraud.json" in result.stderr


def test_config_check_exits_2_on_a_missing_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["config", "check", "-c", str(tmp_path / "nope.yaml")]) == 2
    assert "cannot read the file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- config schema

# The keywords the validator below understands; the schema may use no other, so nothing is skipped silently.
KNOWN_KEYWORDS = {
    "$schema", "$defs", "$ref", "title", "description", "default", "type", "properties", "additionalProperties",
    "required", "items", "anyOf", "enum", "const", "minimum", "maximum", "exclusiveMinimum", "exclusiveMaximum",
    "minItems", "maxItems", "pattern",
}
JSON_TYPES = {
    "object": dict, "array": list, "string": str, "boolean": bool, "null": type(None),
    "integer": int, "number": (int, float),
}


def schema_errors(value: Any, schema: dict[str, Any], root: dict[str, Any], where: str = "$") -> list[str]:
    """A small JSON Schema (2020-12 subset) validator: `jsonschema` is not a dependency of mlmon."""
    unknown = set(schema) - KNOWN_KEYWORDS
    assert not unknown, f"{where}: schema keywords this test does not check: {unknown}"
    if "$ref" in schema:
        name = schema["$ref"].removeprefix("#/$defs/")
        return schema_errors(value, root["$defs"][name], root, where)
    if "anyOf" in schema:
        if all(schema_errors(value, option, root, where) for option in schema["anyOf"]):
            return [f"{where}: matches no option of anyOf"]
    errors: list[str] = []
    if "type" in schema:
        python_type = JSON_TYPES[schema["type"]]
        if not isinstance(value, python_type) or (isinstance(value, bool) and schema["type"] in ("integer", "number")):
            return [f"{where}: {value!r} is not of type {schema['type']}"]
    if "enum" in schema and value not in schema["enum"]:
        errors.append(f"{where}: {value!r} not in {schema['enum']}")
    if "const" in schema and value != schema["const"]:
        errors.append(f"{where}: {value!r} != {schema['const']!r}")
    if "pattern" in schema and not re.search(schema["pattern"], value):
        errors.append(f"{where}: {value!r} does not match {schema['pattern']}")
    for keyword, ok in (
        ("minimum", lambda v, b: v >= b), ("maximum", lambda v, b: v <= b),
        ("exclusiveMinimum", lambda v, b: v > b), ("exclusiveMaximum", lambda v, b: v < b),
    ):
        if keyword in schema and not ok(value, schema[keyword]):
            errors.append(f"{where}: {value!r} fails {keyword} {schema[keyword]}")
    if isinstance(value, list):
        if len(value) < schema.get("minItems", 0) or len(value) > schema.get("maxItems", len(value)):
            errors.append(f"{where}: {len(value)} items")
        for i, item in enumerate(value):
            errors += schema_errors(item, schema.get("items", {}), root, f"{where}[{i}]")
    if isinstance(value, dict):
        properties = schema.get("properties", {})
        errors += [f"{where}: {key} is required" for key in schema.get("required", []) if key not in value]
        for key, item in value.items():
            if key in properties:
                errors += schema_errors(item, properties[key], root, f"{where}.{key}")
            elif schema.get("additionalProperties") is False:
                errors.append(f"{where}: unknown key {key}")
    return errors


def printed_schema() -> dict[str, Any]:
    result = run_mlmon("config", "schema")
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_config_schema_validates_the_example_config() -> None:
    schema = printed_schema()
    assert schema_errors(example_config_data(), schema, schema) == []


def test_config_schema_catches_the_mistakes_the_loader_catches() -> None:
    schema = printed_schema()
    data = example_config_data()
    data["models"][0]["features"][1]["type"] = "categoric"
    data["models"][0]["drift"]["windows"] = ["5min"]
    data["exporter"]["max_request_byte"] = 1
    data["models"][1]["reference"] = {"capture": 0}
    errors = schema_errors(data, schema, schema)
    assert "$.models[0].features[1].type: 'categoric' not in ['numeric', 'categorical', 'boolean']" in errors
    assert "$.models[0].drift.windows[0]: matches no option of anyOf" in errors
    assert "$.exporter: unknown key max_request_byte" in errors
    assert "$.models[1].reference: matches no option of anyOf" in errors
    assert len(errors) == 4


def test_config_schema_can_be_written_to_a_file(tmp_path: Path) -> None:
    out = tmp_path / "schema.json"
    assert main(["config", "schema", "--out", str(out)]) == 0
    assert json.loads(out.read_text()) == config_json_schema()


# ----------------------------------------------------------------------------- profile build


def test_profile_build_writes_a_profile_that_config_check_accepts(tmp_path: Path) -> None:
    out = tmp_path / "delivery_time.json"
    data = EXAMPLES / "data" / "delivery_time_reference.csv"
    result = run_mlmon("profile", "build", "--config", str(EXAMPLE_CONFIG), "--model", "delivery_time", str(data), "-o", str(out))
    assert result.returncode == 0, result.stderr
    profile = Profile.read(out)
    assert set(profile.features) == {"distance_km", "items", "hour", "weather"}
    assert profile.content_hash in result.stdout
    assert f"{profile.rows} rows" in result.stdout


def test_profile_build_exits_2_for_an_unknown_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["profile", "build", "--config", str(EXAMPLE_CONFIG), "--model", "nope", "x.csv", "-o", str(tmp_path / "p.json")])
    assert code == 2
    assert "no model named 'nope'; models: fraud, delivery_time" in capsys.readouterr().err


def test_profile_build_exits_2_for_a_missing_data_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    code = main(["profile", "build", "-c", str(EXAMPLE_CONFIG), "--model", "fraud", str(tmp_path / "x.csv"), "-o", str(tmp_path / "p.json")])
    assert code == 2
    assert "no such file" in capsys.readouterr().err


# ----------------------------------------------------------------------------- serve


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for_health(url: str, process: subprocess.Popen[str]) -> requests.Response:
    """Poll until the server answers; fail with its stderr if it died first."""
    for _ in range(200):
        if process.poll() is not None:
            pytest.fail(f"mlmon serve exited early ({process.returncode}): {process.stderr.read() if process.stderr else ''}")
        try:
            return requests.get(url, timeout=1)
        except requests.ConnectionError:
            time.sleep(0.05)
    pytest.fail(f"{url} never answered")


def test_serve_answers_health_checks_and_exits_0_on_sigterm(tmp_path: Path) -> None:
    data = example_config_data()
    metrics_port, ingest_port = free_port(), free_port()
    data["exporter"]["metrics_listen"] = f"127.0.0.1:{metrics_port}"
    data["exporter"]["ingest_listen"] = f"127.0.0.1:{ingest_port}"
    for model in data["models"]:
        model["reference"] = str(EXAMPLES / model["reference"])
    config = tmp_path / "mlmon.yaml"
    config.write_text(yaml.safe_dump(data))
    process = subprocess.Popen([*MLMON, "serve", "--config", str(config)], cwd=ROOT, stderr=subprocess.PIPE, text=True)
    try:
        health = wait_for_health(f"http://127.0.0.1:{metrics_port}/healthz", process)
        assert health.status_code == 200 and health.json() == {"status": "ok"}
        assert requests.get(f"http://127.0.0.1:{ingest_port}/readyz", timeout=5).json() == {"status": "ready"}
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=15) == 0
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    log = process.stderr.read() if process.stderr else ""
    assert "serving metrics on" in log and "stopped" in log
    # One line per event worth knowing, none per request.
    assert "GET /healthz" not in log
