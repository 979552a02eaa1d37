"""Memory against traffic: resident set size after 1M vs 10M ingested feature values.

Each measurement runs in a fresh child process (so imports, allocator state and the other
benchmarks do not blur the numbers): it builds the 50-feature model, feeds it columnar batches of
5,000 rows through the real decode + StateStore path (no HTTP: the listener does not hold
state), collects garbage, and reports VmRSS from /proc/self/status. Two traffic kinds:

* ``no ids``: drift and data-quality state only. This must be flat: bins x window slots per
  version, whatever the traffic.
* ``with ids``: every record carries a unique id, so predictions also wait in the label-join
  store until their label arrives. That store is bounded by ``max_pending_predictions``
  (100,000 by default; oldest evicted and counted), so it grows up to the cap and then stays flat.

The ratio RSS(10M) / RSS(1M) is printed; 1.0 means flat. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import gc
import json
import subprocess
import sys

ROWS_PER_BATCH = 5_000
FEATURES = 50
SIZES = (1_000_000, 10_000_000)


def rss_bytes() -> int:
    with open("/proc/self/status", encoding="ascii") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    raise RuntimeError("no VmRSS in /proc/self/status")


def child(values: int, with_ids: bool) -> dict[str, int]:
    import numpy as np
    import orjson

    from benchmarks.common import MODEL, SEED, VERSION, synthetic_columns, workspace
    from exporter.ingest.decode import decode_body
    from exporter.http.server import load_profiles
    from exporter.state.store import StateStore

    folder, config = workspace()
    store = StateStore(config, load_profiles(config))
    columns, predictions = synthetic_columns(ROWS_PER_BATCH, np.random.default_rng(SEED + 3))
    document = {"model": MODEL, "model_version": VERSION, "features": columns, "predictions": predictions}
    batches = -(-values // (ROWS_PER_BATCH * FEATURES))
    for number in range(batches):
        if with_ids:  # unique ids per record, as a real model server would send
            document["ids"] = [f"r{number}-{i}" for i in range(ROWS_PER_BATCH)]
        decoded = decode_body(orjson.dumps(document), "application/json", config, ROWS_PER_BATCH)
        for batch in decoded.batches:
            store.ingest(batch)
    gc.collect()
    state = store.snapshot()[0]
    state_bytes = state.cumulative.nbytes + sum(r.counts.nbytes for r in state.windows)
    folder.cleanup()
    return {"values": batches * ROWS_PER_BATCH * FEATURES, "rss": rss_bytes(), "bin_state_bytes": state_bytes}


def measure(values: int, with_ids: bool) -> dict[str, int]:
    command = [sys.executable, "-m", "benchmarks.bench_memory", "--child", str(values)]
    if with_ids:
        command.append("--ids")
    done = subprocess.run(command, capture_output=True, text=True, timeout=300, check=True)
    return json.loads(done.stdout)


def main() -> list[tuple[str, str, str]]:
    print("RSS after ingesting N feature values (fresh child process per measurement, 5,000-row columnar batches)")
    rows = []
    for with_ids in (False, True):
        small, large = (measure(size, with_ids) for size in SIZES)
        kind = "with ids" if with_ids else "no ids"
        ratio = large["rss"] / small["rss"]
        print(f"  {kind:9s} 1M: {small['rss'] / 2**20:6.1f} MiB   10M: {large['rss'] / 2**20:6.1f} MiB   "
              f"ratio {ratio:.2f}   (bin counters + window rings: {large['bin_state_bytes'] / 2**10:.0f} KiB)")
        rows.append((f"RSS 1M -> 10M values, {kind}", f"{small['rss'] / 2**20:.0f} -> {large['rss'] / 2**20:.0f} MiB",
                     f"{ratio:.2f}x"))
    return rows


if __name__ == "__main__":
    parser = argparse.ArgumentParser()
    parser.add_argument("--child", type=int)
    parser.add_argument("--ids", action="store_true")
    arguments = parser.parse_args()
    if arguments.child:
        json.dump(child(arguments.child, arguments.ids), sys.stdout)
    else:
        main()
