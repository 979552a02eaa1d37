"""Ingest cost of attributions: a record with `attributions: {feature: phi}` for every feature vs the
same record without them, same process, same run (issue 14's bound: <= +30% per feature value).

What is measured: decode + prepare + apply of one request body (``decode_body`` -> ``StateStore.prepare``
-> ``admit`` -> ``apply``, what the ingest service does after reading the body), for the 50-feature
benchmark model (40 numeric, 10 categorical) with 2,500 records per body, as a JSON array of records and
as a columnar body. CPU time (``time.process_time``), best of 7 interleaved rounds, so both variants see
the same machine state. Reported per feature value (rows x 50):

* ``base``: per feature value without attributions;
* ``with``: the whole request with attributions, per feature value (each row also carries 50 phi);
* ``phi``: (with - base), the added cost of one phi value, and its ratio to one feature value's cost:
  the bound is phi <= 1.3 x feature value, i.e. an attribution costs at most 30% more than the input it explains.
"""

from __future__ import annotations

import json
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks.common import MODEL, VERSION, SEED, build_workspace, feature_names, synthetic_columns
from exporter.config.model import MlmonConfig, parse_config
from exporter.http.server import load_profiles
from exporter.ingest.decode import decode_body
from exporter.state.store import StateStore

ROWS = 2_500
ROUNDS = 7


def enabled(config: MlmonConfig) -> MlmonConfig:
    data = config.model_dump(by_alias=True, exclude_none=True)
    data["models"][0]["attributions"] = {"enabled": True}
    return parse_config(data, base_dir=config.base_dir, source="benchmark config")


def bodies(rng: np.random.Generator) -> dict[str, tuple[bytes, bytes]]:
    """shape -> (body without attributions, the same body with them)."""
    columns, predictions = synthetic_columns(ROWS, rng)
    numeric, categorical = feature_names()
    names = numeric + categorical
    phi = {n: np.round(rng.normal(0, 0.1, ROWS), 6).tolist() for n in names}
    records = [{"model": MODEL, "model_version": VERSION, "features": {n: columns[n][i] for n in names},
                "prediction": predictions[i]} for i in range(ROWS)]
    attributed = [dict(r, attributions={n: phi[n][i] for n in names}) for i, r in enumerate(records)]
    columnar = {"model": MODEL, "model_version": VERSION, "features": columns, "predictions": predictions}
    return {
        "records": (json.dumps(records).encode(), json.dumps(attributed).encode()),
        "columnar": (json.dumps(columnar).encode(), json.dumps(dict(columnar, attributions=phi)).encode()),
    }


def ingest_seconds(store: StateStore, body: bytes) -> float:
    started = time.process_time()
    decoded = decode_body(body, "application/json", store.config, 1_000_000)
    admitted, _ = store.admit(store.prepare(decoded.batches))
    store.apply(admitted)
    return time.process_time() - started


def measure(store: StateStore, plain: bytes, attributed: bytes) -> tuple[float, float]:
    best_plain = best_with = float("inf")
    for _ in range(ROUNDS):
        best_plain = min(best_plain, ingest_seconds(store, plain))
        best_with = min(best_with, ingest_seconds(store, attributed))
    return best_plain, best_with


def main() -> list[tuple[str, str, str]]:
    rows: list[tuple[str, str, str]] = []
    with tempfile.TemporaryDirectory() as folder:
        config = enabled(build_workspace(Path(folder)))
        store = StateStore(config, load_profiles(config))
        values = ROWS * len(config.models[0].features)
        for shape, (plain, attributed) in bodies(np.random.default_rng(SEED)).items():
            ingest_seconds(store, attributed)  # warm: the version exists, caches are built
            base, with_phi = measure(store, plain, attributed)
            per_value, per_phi = base / values, (with_phi - base) / values
            ratio = per_phi / per_value
            verdict = "within" if ratio <= 1.3 else "OVER"
            print(f"{shape}: {per_value * 1e9:.0f} ns per feature value alone; with attributions "
                  f"{with_phi / values * 1e9:.0f} ns per feature value (x{with_phi / base:.2f} the request); "
                  f"one phi adds {per_phi * 1e9:.0f} ns = {ratio:.2f} x a feature value ({verdict} the 1.3 bound)")
            rows.append((f"attributions ({shape}): cost of a phi vs a feature value",
                         f"{per_phi * 1e9:.0f} vs {per_value * 1e9:.0f} ns", f"x{ratio:.2f} (bound 1.3)"))
    return rows


if __name__ == "__main__":
    main()
