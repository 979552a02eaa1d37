"""Drift page render time: 100 features x 20 bins, the whole work of GET /models/<model> but the socket.

A model of 80 numeric features (20 equal-mass bins each, so 22 with under/overflow) and 20
categorical ones (19 categories + other), one version fed 20,000 drifting rows through the real
ingest path. Timed: ``model_document`` (drift evaluation, quality and data-quality sections) plus
``render_model_page`` (HTML and 101 SVG charts), with the drift cache cleared before each run so
the evaluation is paid every time, as after a new batch. Target: under 100 ms. Nothing asserted.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np

from exporter.config.model import parse_config
from exporter.http.pages.model_data import model_document
from exporter.http.pages.model_page import render_model_page
from exporter.ingest.decode import decode_columnar
from exporter.profiles.profile import Profile, categorical_binning, numeric_binning
from exporter.state.store import StateStore

N_NUMERIC, N_CATEGORICAL, BINS, ROWS = 80, 20, 20, 20_000
TARGET_SECONDS = 0.100
NOW = 1_800_000_000.0


def columns(rows: int, rng: np.random.Generator, shift: float) -> dict[str, list]:
    data: dict[str, list] = {f"n{i:02d}": np.round(rng.normal(i + shift, 1 + i / 10, rows), 4).tolist() for i in range(N_NUMERIC)}
    for i in range(N_CATEGORICAL):
        p = np.linspace(1, 2 + shift, BINS - 1)
        data[f"c{i:02d}"] = rng.choice([f"cat{j:02d}" for j in range(BINS - 1)], rows, p=p / p.sum()).tolist()
    return data


def build(directory: Path) -> tuple[StateStore, object]:
    rng = np.random.default_rng(11)
    reference = columns(ROWS, rng, 0.0)
    binnings = {n: numeric_binning(n, np.asarray(v), BINS) for n, v in reference.items() if n.startswith("n")}
    binnings.update({n: categorical_binning(n, v, BINS - 1) for n, v in reference.items() if n.startswith("c")})
    Profile("wide", ROWS, binnings, numeric_binning("score", rng.random(ROWS), BINS)).write(directory / "wide.json")
    features = [{"name": n, "type": "numeric", "bins": BINS} for n in binnings if n.startswith("n")]
    features += [{"name": n, "type": "categorical", "max_categories": BINS - 1} for n in binnings if n.startswith("c")]
    config = parse_config({"models": [{
        "name": "wide", "task": "regression", "reference": "wide.json", "features": features,
        "prediction": {"name": "score", "type": "numeric", "bins": BINS}, "drift": {"windows": ["5m", "1h"], "min_samples": 100},
    }]}, base_dir=directory, source="benchmark config")
    store = StateStore(config, {"wide": Profile.read(directory / "wide.json")}, clock=lambda: NOW)
    current = columns(ROWS, rng, 0.3)
    body = {"model": "wide", "model_version": "v1", "features": current, "predictions": rng.random(ROWS).tolist()}
    for batch in decode_columnar(body, config, ROWS).batches:
        store.ingest(batch)
    return store, config


def render_once(store: StateStore, config: object) -> str:
    state = store.snapshot()[0]
    state.__dict__.pop("drift_cache", None)  # pay the evaluation, as the first view after new traffic does
    model = config.models[0]  # type: ignore[attr-defined]
    document = model_document(config, model, [state], model.drift.windows[0], NOW)  # type: ignore[arg-type]
    return render_model_page(document, [("/", "status")])


def main() -> list[tuple[str, str, str]]:
    with tempfile.TemporaryDirectory(prefix="mlmon-bench-pages-") as folder:
        store, config = build(Path(folder))
        page = render_once(store, config)  # warm-up (imports, caches of the layout)
        times = []
        for _ in range(20):
            started = time.perf_counter()
            render_once(store, config)
            times.append(time.perf_counter() - started)
    best, median = min(times), float(np.median(times))
    charts = page.count('<svg class="chart"')
    print(f"drift page, {N_NUMERIC + N_CATEGORICAL} features x {BINS} bins ({charts} charts, {len(page) / 1e6:.2f} MB): "
          f"best {best * 1e3:.1f} ms, median {median * 1e3:.1f} ms (target < {TARGET_SECONDS * 1e3:.0f} ms)")
    return [(f"drift page {N_NUMERIC + N_CATEGORICAL} features x {BINS} bins", f"{median * 1e3:.1f} ms median, {best * 1e3:.1f} best",
             f"{median / TARGET_SECONDS:.2f}x of the 100 ms target")]


if __name__ == "__main__":
    main()
