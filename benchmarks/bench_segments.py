"""Drift per segment value: what it adds to applying a batch and to a scrape, against the same config without it.

The example's fraud model, 10,000-record batches (decoded once, outside the timing) applied to a
StateStore: baseline with `segments` as bias only, then with `drift: true` on country (9 values) for
amount and account_age_days, and for every feature. The scrape is `collect` of the whole store. Variants run interleaved; each figure is the fastest of 20 repeats.

    python -m benchmarks segments
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from exporter.config.model import parse_config
from exporter.http.collector import collect
from exporter.http.exporter_stats import ExporterStats
from exporter.ingest.decode import decode_body
from exporter.profiles.load import load_profiles
from exporter.state.store import StateStore
from exporter.tooling import synthetic

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"
ROWS, REPEATS = 10_000, 20


def _config(segment: dict[str, Any]) -> Any:
    data = yaml.safe_load((EXAMPLES / "mlmon.yaml").read_text())
    data["models"][0]["segments"][0] = segment
    return parse_config(copy.deepcopy(data), base_dir=EXAMPLES)


class _Variant:
    """One config's store with the batch prepared and admitted; apply and scrape timed one repeat at a time."""

    def __init__(self, config: Any, records: list[dict[str, Any]]) -> None:
        self.store = StateStore(config, load_profiles(config))
        batches = decode_body(json.dumps(records).encode(), "application/json", config, 100_000).batches
        self.admitted, _ = self.store.admit(self.store.prepare(batches))
        self.stats = ExporterStats([m.name for m in config.models])
        self.applies: list[float] = []
        self.scrapes: list[float] = []

    def once(self) -> None:
        started = time.perf_counter()
        for state, batch in self.admitted:
            state.apply(batch, self.store.clock())
        self.applies.append(time.perf_counter() - started)
        started = time.perf_counter()
        collect(self.store, self.stats, time.time()).render(False)
        self.scrapes.append(time.perf_counter() - started)


def main() -> list[tuple[str, str, str]]:
    records = synthetic.records("fraud", "v1", ROWS, np.random.default_rng(3), faults=0.0)
    countries = ["US", "GB", "DE", "FR", "IN", "BR", "NG", "JP"]
    variants = {
        "bias only (baseline)": {"attribute": "country", "values": countries},
        "drift: 2 features": {"attribute": "country", "values": countries, "drift": True,
                              "features": ["amount", "account_age_days"]},
        "drift: all 5 features": {"attribute": "country", "values": countries, "drift": True},
    }
    runs = {name: _Variant(_config(segment), records) for name, segment in variants.items()}
    for _ in range(REPEATS):  # interleaved, so the machine's load falls on every variant alike
        for run in runs.values():
            run.once()
    # the fastest of the repeats: the machine is shared, and its noise only ever adds
    results = {name: (min(run.applies), min(run.scrapes)) for name, run in runs.items()}
    base_apply, base_scrape = results["bias only (baseline)"]
    rows = []
    print(f"{'variant':>24} {'apply 10k rows':>15} {'ratio':>6} {'scrape':>10} {'ratio':>6}")
    for name, (apply, scrape) in results.items():
        print(f"{name:>24} {apply * 1e3:>12.2f} ms {apply / base_apply:>5.2f}x {scrape * 1e3:>7.2f} ms "
              f"{scrape / base_scrape:>5.2f}x", flush=True)
        if name != "bias only (baseline)":
            rows.append((f"segments: {name}, apply", f"{apply * 1e3:.2f} ms", f"{apply / base_apply:.2f}x baseline"))
            rows.append((f"segments: {name}, scrape", f"{scrape * 1e3:.2f} ms", f"{scrape / base_scrape:.2f}x baseline"))
    return rows


if __name__ == "__main__":
    main()
