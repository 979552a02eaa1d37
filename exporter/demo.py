"""`mlmon demo`: the exporter plus synthetic traffic for the example models, over real HTTP.

Traffic starts from the reference distribution; after ``drift_after`` seconds the inputs drift
(ramping up over a minute) and data-quality faults appear, so drift scores, out-of-range and
null counters move while you watch.
"""

from __future__ import annotations

import json
import sys
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter import synthetic
from exporter.config import MlmonConfig
from exporter.server import start


@dataclass
class DemoOptions:
    seed: int = 7
    rate: float = 200.0          # records per second per model
    duration: float | None = None  # seconds; None runs until Ctrl-C
    drift_after: float = 60.0     # seconds of clean traffic before drift starts
    drift_ramp: float = 60.0      # seconds over which drift grows from nothing to full
    version: str = "v1"
    label_delay: float = 20.0     # seconds before ground truth arrives for a prediction
    label_share: float = 0.8      # share of predictions that ever get a label
    metrics_listen: str | None = None  # override the config's listeners (tests use port 0)
    ingest_listen: str | None = None


def post(url: str, records: list[dict] | dict) -> dict:
    body = json.dumps(records).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def drift_at(elapsed: float, drift_after: float, ramp: float = 60.0) -> float:
    """0 before drift_after, then a linear ramp to 1 over `ramp` seconds."""
    return float(np.clip((elapsed - drift_after) / ramp, 0.0, 1.0))


def run_demo(config: MlmonConfig, options: DemoOptions, out=sys.stdout) -> None:
    models = [m.name for m in config.models if m.name in synthetic.MODELS]
    if not models:
        raise SystemExit("the demo generates traffic for the example models (fraud, delivery_time) only")
    running = start(config, options.metrics_listen, options.ingest_listen)
    listen = options.metrics_listen or config.exporter.metrics_listen
    metrics_host = listen.rpartition(":")[0].replace("0.0.0.0", "localhost")
    ingest = f"http://127.0.0.1:{running.ingest_port}/v1/predictions"
    labels_url = f"http://127.0.0.1:{running.ingest_port}/v1/labels"
    pending: deque[tuple[float, list[Any], list[Any]]] = deque()  # (due, ids, labels), due in order
    print(f"mlmon demo: exporter up; traffic for {', '.join(models)} at {options.rate:g} records/s per model", file=out)
    print(f"  metrics:  curl http://{metrics_host}:{running.metrics_port}/metrics", file=out)
    print(f"  ingest:   {ingest}", file=out)
    print(f"  labels:   {options.label_share:.0%} of predictions get their label {options.label_delay:g}s later", file=out)
    print(f"  drift and data-quality faults start after {options.drift_after:g}s; Ctrl-C stops", file=out)
    rng = np.random.default_rng(options.seed)
    started = time.monotonic()
    tick = 1.0
    sent = 0
    announced = False
    try:
        while options.duration is None or time.monotonic() - started < options.duration:
            elapsed = time.monotonic() - started
            drift = drift_at(elapsed, options.drift_after, options.drift_ramp)
            if drift > 0 and not announced:
                print(f"  [{elapsed:5.0f}s] drift begins: watch mlmon_feature_drift_score and mlmon_feature_null_total", file=out)
                announced = True
            count = max(1, int(rng.poisson(options.rate * tick)))
            for model in models:
                batch = synthetic.records(
                    model, options.version, count, rng, drift=drift, faults=0.02 * drift, id_prefix=f"{sent}-",
                    with_labels=True,
                )
                truth = [(r["id"], r.pop("label")) for r in batch if rng.random() < options.label_share]
                post(ingest, batch)
                if truth:
                    ids, labels = zip(*truth)
                    pending.append((time.monotonic() + options.label_delay, list(ids), list(labels)))
            while pending and pending[0][0] <= time.monotonic():
                _, ids, labels = pending.popleft()
                post(labels_url, {"ids": ids, "labels": labels})
            sent += count
            time.sleep(max(0.0, tick - (time.monotonic() - started - elapsed)))
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        print(f"mlmon demo: stopped after {sent} records per model", file=out)
