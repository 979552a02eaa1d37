"""The exporter process's garbage-collector thresholds: young collections sized for an ingest request.

CPython runs a young-generation collection every 700 net allocations of container objects (dicts,
lists, tuples). A JSON records body of 5,000 records is 10,000 dicts while it is decoded, so the
default ran ~17 young and ~2 middle collections per request, each walking every record still
alive: ~15 ms of a ~100 ms request (measured in-process; columnar bodies, one list per column,
paid ~8 ms). The records are freed by reference counting when the request ends, not by the
collector; it only needs to run for reference cycles, which ingest does not make.

A young threshold of 100,000 lets one request of up to ~50,000 records decode between
collections; collections still run (the collector is never disabled, so a reference cycle made
anywhere is still freed), and what waits for one is bounded: at most 100,000 young containers,
a few MB. The older generations keep CPython's defaults. docs/ingest.md has the numbers.
"""

from __future__ import annotations

import gc

YOUNG_THRESHOLD = 100_000  # CPython's default is 700


def tune_gc() -> None:
    """Raise the young-generation threshold (never lower it: an embedding process may have raised it more)."""
    young, middle, old = gc.get_threshold()
    if 0 < young < YOUNG_THRESHOLD:  # 0: the collector is disabled by the embedding process; leave it so
        gc.set_threshold(YOUNG_THRESHOLD, middle, old)
