"""State snapshots: what one costs for the example config, and whether ingest stalls while one runs.

The store holds both example models, three versions each, and a full pending-prediction store
(the default 100,000 ids): the largest state the example config keeps. Measured: the time of one
`snapshot.save` (encode + crash-safe write + fsync) and its size; then the time of ingesting the
same batches with snapshots running back to back in another thread, against the same batches
without, in the same run (the ratio is the stall).

    python -m benchmarks snapshot
"""

from __future__ import annotations

import json
import statistics
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from exporter.config.model import load_config
from exporter.http.exporter_stats import ExporterStats
from exporter.http.server import load_profiles
from exporter.ingest.decode import decode_body
from exporter.state import snapshot
from exporter.state.store import StateStore
from exporter.tooling import synthetic

EXAMPLE = Path(__file__).resolve().parent.parent / "examples" / "mlmon.yaml"


def bodies(rng: np.random.Generator, count: int, prefix: str) -> list[bytes]:
    out = []
    for i in range(count):
        records = synthetic.records("fraud", f"v{i % 3}", 2000, rng, id_prefix=f"{prefix}{i}-")
        records += synthetic.records("delivery_time", f"v{i % 3}", 500, rng, id_prefix=f"{prefix}{i}-")
        out.append(json.dumps(records).encode())
    return out


def ingest_all(store: StateStore, payloads: list[bytes]) -> float:
    started = time.perf_counter()
    for body in payloads:
        for batch in decode_body(body, "application/json", store.config, 100_000).batches:
            store.ingest(batch)
    return time.perf_counter() - started


def main() -> list[tuple[str, str, str]]:
    config = load_config(EXAMPLE)
    store = StateStore(config, load_profiles(config))
    stats = ExporterStats([m.name for m in config.models])
    rng = np.random.default_rng(0)
    ingest_all(store, bodies(rng, 50, "warm"))  # 125k ids: the pending store is full
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / snapshot.FILE_NAME
        times = [snapshot.save(path, store, {"stats": stats}).seconds for _ in range(7)]
        size = path.stat().st_size
        save_ms = statistics.median(times) * 1000
        print(f"snapshot: {save_ms:.1f} ms median of 7, {size / 1e6:.1f} MB, "
              f"{len(store.labels)} pending ids, {sum(len(v) for v in store.versions.values())} versions")

        payloads = bodies(rng, 20, "measured")
        alone = ingest_all(store, payloads)
        stop = threading.Event()

        def snapshot_forever() -> None:
            while not stop.is_set():
                snapshot.save(path, store, {"stats": stats})

        background = threading.Thread(target=snapshot_forever)
        background.start()
        try:
            during = ingest_all(store, bodies(rng, 20, "during"))
        finally:
            stop.set()
            background.join()
    print(f"ingest of 20 x 2,500 records: {alone * 1000:.0f} ms alone, {during * 1000:.0f} ms with snapshots "
          f"running back to back (a worst case: the default is one every 30 s)")
    return [
        ("state snapshot, example config, 100k pending ids", f"{save_ms:.1f} ms, {size / 1e6:.1f} MB", "-"),
        ("ingest while snapshots run back to back", f"{during * 1000:.0f} ms vs {alone * 1000:.0f} ms",
         f"{during / alone:.2f}x time"),
    ]


if __name__ == "__main__":
    main()
