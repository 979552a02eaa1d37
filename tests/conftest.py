"""Shared fixtures: configs, a hand-made toy model, and a real exporter on free loopback ports.

Everything HTTP-level here runs the real server (``exporter.http.server.start``), so tests that use
``start_exporter`` exercise werkzeug, both Flask apps, the state and the exposition together.

    def test_something(start_exporter, toy_config):
        live = start_exporter(toy_config)
        live.post([toy_record(x=5.0)])
        assert live.value("mlmon_predictions_total", model="toy", model_version="v1") == 1
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests
import yaml
from prometheus_client.parser import text_string_to_metric_families

from exporter.config.model import MlmonConfig, parse_config
from exporter.profiles.profile import Profile, categorical_binning, numeric_binning
from exporter.http.server import RunningExporter, start

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples"
EXAMPLE_CONFIG = EXAMPLES / "mlmon.yaml"
OPENMETRICS = "application/openmetrics-text; version=1.0.0"


# ----------------------------------------------------------------------------- configs


def example_config_data() -> dict[str, Any]:
    """examples/mlmon.yaml as a fresh, mutable dict (tweak it, then pass it to ``build_config``)."""
    return yaml.safe_load(EXAMPLE_CONFIG.read_text())


def build_config(data: dict[str, Any], base_dir: Path = EXAMPLES) -> MlmonConfig:
    return parse_config(copy.deepcopy(data), base_dir=base_dir, source="test config")


# The toy model: reference values chosen so every bin edge and count can be worked by hand.
# x: 0..99 (10 equal-mass bins of 10 values, min 0, max 99); color: red x50, green x30, blue x20;
# flag: 60 false, 40 true; prediction `score`: 0..99 / 100.
TOY_X = np.arange(100, dtype=float)
TOY_COLORS = ["red"] * 50 + ["green"] * 30 + ["blue"] * 20
TOY_FLAGS = ["false"] * 60 + ["true"] * 40


def toy_profile() -> Profile:
    features = {
        "x": numeric_binning("x", TOY_X, bins=10),
        "color": categorical_binning("color", TOY_COLORS, max_categories=5),
        "flag": categorical_binning("flag", TOY_FLAGS, max_categories=2, kind="boolean"),
    }
    return Profile("toy", 100, features, numeric_binning("score", TOY_X / 100, bins=4), source="hand-made")


def toy_model_data(name: str = "toy", reference: Any = "toy.json") -> dict[str, Any]:
    return {
        "name": name,
        "task": "regression",
        "reference": reference,
        "features": [
            {"name": "x", "type": "numeric", "bins": 10},
            {"name": "color", "type": "categorical", "max_categories": 5},
            {"name": "flag", "type": "boolean"},
        ],
        "prediction": {"name": "score", "type": "numeric", "bins": 4},
        "drift": {"method": "psi", "warning": 0.1, "critical": 0.25, "min_samples": 10, "windows": ["5m", "1h"]},
    }


@pytest.fixture
def toy_dir(tmp_path: Path) -> Path:
    """A folder with the toy model's reference profile, to use as a config's base_dir."""
    toy_profile().write(tmp_path / "toy.json")
    return tmp_path


@pytest.fixture
def toy_data(toy_dir: Path) -> dict[str, Any]:
    """Config data for one toy model; limits are small enough to hit in a test."""
    return {
        "exporter": {"max_versions_per_model": 3, "window_slots": 10},
        "models": [toy_model_data()],
    }


@pytest.fixture
def toy_config(toy_data: dict[str, Any], toy_dir: Path) -> MlmonConfig:
    return build_config(toy_data, base_dir=toy_dir)


def toy_record(version: str = "v1", prediction: Any = 0.5, **features: Any) -> dict[str, Any]:
    """One toy record; features default to a clean in-range value each (pass a key to override)."""
    values = {"x": 50.0, "color": "red", "flag": True}
    values.update(features)
    return {"model": "toy", "model_version": version, "features": values, "prediction": prediction}


# ----------------------------------------------------------------------------- /metrics parsing


def parse_metrics(text: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    """Prometheus text -> {(sample name, labels): value}, parsed by prometheus_client's parser."""
    samples = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return samples


def series(samples: dict, name: str, **labels: str) -> dict[frozenset, float]:
    """Every sample of `name` whose labels include `labels`, keyed by its full label set."""
    wanted = set(labels.items())
    return {key: value for (sample_name, key), value in samples.items() if sample_name == name and wanted <= key}


# ----------------------------------------------------------------------------- a live exporter


class LiveExporter:
    """A running exporter plus the few calls tests make against it over real HTTP."""

    def __init__(self, running: RunningExporter) -> None:
        self.running = running
        self.http = requests.Session()
        self.ingest_url = f"http://127.0.0.1:{running.ingest_port}"
        self.metrics_url = f"http://127.0.0.1:{running.metrics_port}"

    @property
    def predictions_url(self) -> str:
        return f"{self.ingest_url}/v1/predictions"

    def post(self, body: Any, content_type: str = "application/json") -> requests.Response:
        """POST records (list/dict, sent as JSON) or raw bytes/str to /v1/predictions."""
        if not isinstance(body, (bytes, str)):
            body = json.dumps(body)  # stdlib json, so NaN/Infinity are written as literals
        return self.http.post(self.predictions_url, data=body, headers={"Content-Type": content_type}, timeout=10)

    def post_ok(self, body: Any, content_type: str = "application/json") -> dict[str, Any]:
        response = self.post(body, content_type)
        assert response.status_code == 200, response.text
        return response.json()

    def scrape(self, accept: str | None = None) -> requests.Response:
        headers = {"Accept": accept} if accept else {}
        response = self.http.get(f"{self.metrics_url}/metrics", headers=headers, timeout=10)
        assert response.status_code == 200, response.text
        return response

    def samples(self) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
        return parse_metrics(self.scrape().text)

    def value(self, name: str, **labels: str) -> float | None:
        """The one sample of `name` with exactly these labels, or None when it is not exported."""
        return self.samples().get((name, frozenset(labels.items())))

    def stop(self) -> None:
        self.http.close()
        self.running.stop()


@pytest.fixture
def start_exporter() -> Iterator[Callable[[MlmonConfig], LiveExporter]]:
    """Factory: start a real exporter for a config on free loopback ports; all are stopped afterwards."""
    started: list[LiveExporter] = []

    def _start(config: MlmonConfig) -> LiveExporter:
        live = LiveExporter(start(config, "127.0.0.1:0", "127.0.0.1:0"))
        started.append(live)
        return live

    yield _start
    for live in started:
        live.stop()


@pytest.fixture
def example_exporter(start_exporter: Callable[[MlmonConfig], LiveExporter]) -> LiveExporter:
    """The exporter running examples/mlmon.yaml (fraud + delivery_time) with the shipped references."""
    return start_exporter(build_config(example_config_data()))


@pytest.fixture
def toy_exporter(start_exporter: Callable[[MlmonConfig], LiveExporter], toy_config: MlmonConfig) -> LiveExporter:
    return start_exporter(toy_config)
