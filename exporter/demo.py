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
from dataclasses import dataclass

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
    version: str = "v1"


def post(url: str, records: list[dict]) -> dict:
    body = json.dumps(records).encode()
    request = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


def drift_at(elapsed: float, drift_after: float) -> float:
    """0 before drift_after, then a linear ramp to 1 over 60 s."""
    return float(np.clip((elapsed - drift_after) / 60.0, 0.0, 1.0))


def run_demo(config: MlmonConfig, options: DemoOptions, out=sys.stdout) -> None:
    models = [m.name for m in config.models if m.name in synthetic.MODELS]
    if not models:
        raise SystemExit("the demo generates traffic for the example models (fraud, delivery_time) only")
    running = start(config)
    metrics_host = config.exporter.metrics_listen.rpartition(":")[0].replace("0.0.0.0", "localhost")
    ingest = f"http://127.0.0.1:{running.ingest_port}/v1/predictions"
    print(f"mlmon demo: exporter up; traffic for {', '.join(models)} at {options.rate:g} records/s per model", file=out)
    print(f"  metrics:  curl http://{metrics_host}:{running.metrics_port}/metrics", file=out)
    print(f"  ingest:   {ingest}", file=out)
    print(f"  drift and data-quality faults start after {options.drift_after:g}s; Ctrl-C stops", file=out)
    rng = np.random.default_rng(options.seed)
    started = time.monotonic()
    tick = 1.0
    sent = 0
    announced = False
    try:
        while options.duration is None or time.monotonic() - started < options.duration:
            elapsed = time.monotonic() - started
            drift = drift_at(elapsed, options.drift_after)
            if drift > 0 and not announced:
                print(f"  [{elapsed:5.0f}s] drift begins: watch mlmon_feature_out_of_range_total and the bins", file=out)
                announced = True
            count = max(1, int(rng.poisson(options.rate * tick)))
            for model in models:
                batch = synthetic.records(
                    model, options.version, count, rng, drift=drift, faults=0.02 * drift, id_prefix=f"{sent}-"
                )
                post(ingest, batch)
            sent += count
            time.sleep(max(0.0, tick - (time.monotonic() - started - elapsed)))
    except KeyboardInterrupt:
        pass
    finally:
        running.stop()
        print(f"mlmon demo: stopped after {sent} records per model", file=out)
