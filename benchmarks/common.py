"""Shared fixtures for the benchmarks: a 50-feature model, its reference profile, and request bodies.

Everything is synthetic and seeded, so two runs send byte-identical bodies. The model mixes 40
numeric and 10 categorical features (10 bins and up to 20 categories each), which is what a
tabular production model tends to look like.
"""

from __future__ import annotations

import json
import socket
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from exporter.config.model import MlmonConfig, parse_config
from exporter.profiles.profile import Profile, categorical_binning, numeric_binning

MODEL = "bench"
VERSION = "v1"
N_NUMERIC = 40
N_CATEGORICAL = 10
CATEGORIES = tuple(f"c{i:02d}" for i in range(12))
SEED = 20240601


def feature_names() -> tuple[list[str], list[str]]:
    return [f"num_{i:02d}" for i in range(N_NUMERIC)], [f"cat_{i:02d}" for i in range(N_CATEGORICAL)]


def synthetic_columns(rows: int, rng: np.random.Generator) -> tuple[dict[str, list[Any]], list[float]]:
    """Feature columns as plain Python lists (what a JSON encoder sees) and the predictions."""
    numeric, categorical = feature_names()
    columns: dict[str, list[Any]] = {}
    for i, name in enumerate(numeric):
        columns[name] = np.round(rng.normal(loc=i, scale=1.0 + i / 10, size=rows), 4).tolist()
    for name in categorical:
        columns[name] = rng.choice(CATEGORIES, size=rows).tolist()
    predictions = np.round(rng.random(rows), 6).tolist()
    return columns, predictions


def build_workspace(directory: Path, reference_rows: int = 20_000, max_versions: int = 10) -> MlmonConfig:
    """Write a reference profile built from synthetic data and return a config that uses it."""
    rng = np.random.default_rng(SEED)
    columns, predictions = synthetic_columns(reference_rows, rng)
    numeric, categorical = feature_names()
    binnings = {n: numeric_binning(n, np.asarray(columns[n]), 10) for n in numeric}
    binnings.update({n: categorical_binning(n, columns[n], 20) for n in categorical})
    prediction = numeric_binning("score", np.asarray(predictions), 10)
    Profile(MODEL, reference_rows, binnings, prediction, source="benchmark").write(directory / "bench.json")
    features = [{"name": n, "type": "numeric", "bins": 10} for n in numeric]
    features += [{"name": n, "type": "categorical", "max_categories": 20} for n in categorical]
    document = {
        "exporter": {
            # Placeholders: the benchmarks pass "127.0.0.1:0" to server.start() for free ports.
            "metrics_listen": "127.0.0.1:8710",
            "ingest_listen": "127.0.0.1:8711",
            "max_request_bytes": 64 * 1024 * 1024,
            "max_records_per_request": 1_000_000,
            "max_versions_per_model": max_versions,
        },
        "models": [{
            "name": MODEL,
            "task": "regression",
            "reference": "bench.json",
            "features": features,
            "prediction": {"name": "score", "type": "numeric", "bins": 10},
            "drift": {"windows": ["5m", "1h"]},
            # bench_render creates its versions all at once: a burst as large as the cap.
            "versions": {"max_new_per_minute": max_versions},
        }],
    }
    return parse_config(document, base_dir=directory, source="benchmark config")


def workspace(max_versions: int = 10) -> tuple[tempfile.TemporaryDirectory[str], MlmonConfig]:
    folder = tempfile.TemporaryDirectory(prefix="mlmon-bench-")
    return folder, build_workspace(Path(folder.name), max_versions=max_versions)


# Every request must carry fresh ids, as real traffic does: re-sent ids hit the label store's
# duplicate path. Bodies hold this fixed-width token in every id; the load client replaces it
# with the request number before each send (bytes.replace keeps the length).
ID_TOKEN = b"RQ000000"


def record_id(row: int) -> str:
    return f"{ID_TOKEN.decode()}-{row}"


def records_of(columns: dict[str, list[Any]], predictions: list[float], start_id: int = 0) -> list[dict[str, Any]]:
    names = list(columns)
    return [
        {
            "id": record_id(start_id + row),
            "model": MODEL,
            "model_version": VERSION,
            "features": {name: columns[name][row] for name in names},
            "prediction": predictions[row],
        }
        for row in range(len(predictions))
    ]


def bodies(rows: int, seed: int = SEED + 1) -> dict[str, tuple[bytes, str, int]]:
    """The same rows in each accepted shape: {shape: (body, content type, feature values)}."""
    columns, predictions = synthetic_columns(rows, np.random.default_rng(seed))
    records = records_of(columns, predictions)
    values = rows * len(columns)
    columnar = {"model": MODEL, "model_version": VERSION, "ids": [record_id(i) for i in range(rows)],
                "features": columns, "predictions": predictions}
    return {
        "columnar": (json.dumps(columnar).encode(), "application/json", values),
        "records": (json.dumps(records).encode(), "application/json", values),
        "ndjson": ("\n".join(json.dumps(r) for r in records).encode() + b"\n", "application/x-ndjson", values),
    }


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def timed(fn: Callable[[], Any], repeat: int, budget_seconds: float) -> list[float]:
    """Wall time of up to `repeat` calls, stopping early once the time budget is spent."""
    times: list[float] = []
    deadline = time.perf_counter() + budget_seconds
    for _ in range(repeat):
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
        if time.perf_counter() > deadline:
            break
    return times
