"""The traffic generator: calls the demo model server with synthetic inputs that drift on a cycle.

Each cycle is `clean_seconds` of reference-like traffic, then `drift_seconds` of drifted traffic
(ramping to full drift over the first minute), then back to clean: the drift alerts fire during
the drifted phase and resolve after it.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import numpy as np

from exporter.tooling import synthetic

log = logging.getLogger("demo_model.traffic")
RAMP_SECONDS = 60.0


@dataclass(frozen=True)
class Schedule:
    clean_seconds: float = 600.0
    drift_seconds: float = 900.0

    def drift_at(self, elapsed: float) -> float:
        """0 in the clean phase; in the drifted phase a ramp from 0 to 1 over RAMP_SECONDS, then 1."""
        into_cycle = elapsed % (self.clean_seconds + self.drift_seconds)
        if into_cycle < self.clean_seconds:
            return 0.0
        return float(min(1.0, (into_cycle - self.clean_seconds) / min(RAMP_SECONDS, self.drift_seconds)))


def send(url: str, ids: list[str], features: dict[str, list]) -> None:
    body = json.dumps({"ids": ids, "features": features}).encode()
    post = urllib.request.Request(url, data=body, headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(post, timeout=10) as response:
        response.read()


def run(model_url: str, rate: float, schedule: Schedule, seed: int = 5, duration: float | None = None) -> int:
    """Send about `rate` records per second per model until `duration` (None: forever); returns batches sent."""
    rng = np.random.default_rng(seed)
    started = time.monotonic()
    batches = 0
    while duration is None or time.monotonic() - started < duration:
        tick = time.monotonic()
        drift = schedule.drift_at(tick - started)
        for model in synthetic.MODELS:
            count = max(1, int(rng.poisson(rate)))
            features = synthetic.columns(model, count, rng, drift=drift)["features"]
            ids = [f"{model}-{batches}-{i}" for i in range(count)]
            try:
                send(f"{model_url.rstrip('/')}/predict/{model}", ids, features)
                batches += 1
            except (urllib.error.URLError, OSError) as error:
                log.warning("model server at %s: %s", model_url, error)
        time.sleep(max(0.0, 1.0 - (time.monotonic() - tick)))
    return batches
