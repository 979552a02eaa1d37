"""Run every benchmark and print one summary table: what was measured, and the ratio to its baseline.

    python -m benchmarks                 # everything (a few minutes on 2 cores)
    python -m benchmarks ingest render   # a subset, by module name without the bench_ prefix
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import time

# bench_drift is written separately; it joins the run when it exists.
MODULES = ("ingest", "serving", "render", "memory", "drift", "snapshot", "client", "pages", "labels", "segments",
           "attributions")


def available() -> list[str]:
    return [m for m in MODULES if importlib.util.find_spec(f"benchmarks.bench_{m}") is not None]


def main(argv: list[str]) -> int:
    chosen = argv or available()
    unknown = [m for m in chosen if m not in available()]
    if unknown:
        print(f"unknown benchmark(s): {', '.join(unknown)}; available: {', '.join(available())}", file=sys.stderr)
        return 2
    rows: list[tuple[str, str, str]] = []
    started = time.perf_counter()
    for name in chosen:
        print(f"== bench_{name}", flush=True)
        result = importlib.import_module(f"benchmarks.bench_{name}").main()
        # A module's main() returns (benchmark, measured, ratio) rows; one that returns nothing only prints.
        rows.extend(result or [])
        print(flush=True)
    if rows:
        widths = [max(len(str(row[i])) for row in [("benchmark", "measured", "ratio vs baseline"), *rows]) for i in range(3)]
        line = "  ".join("-" * w for w in widths)
        print("summary (ratios are the point; absolute numbers drift with the machine and its load)")
        print(line)
        for row in [("benchmark", "measured", "ratio vs baseline"), *rows]:
            print("  ".join(str(cell).ljust(w) for cell, w in zip(row, widths)))
        print(line)
    print(f"total {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
