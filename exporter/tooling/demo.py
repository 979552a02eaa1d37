"""`mlmon demo`: the exporter plus synthetic traffic for the example models, over real HTTP.

Traffic starts from the reference distribution; after ``drift_after`` seconds the inputs drift
(ramping up over a minute) and data-quality faults appear, so drift scores, out-of-range and
null counters move while you watch. The fraud model sends its exact attributions with every record;
after ``swap_after`` seconds it is swapped for one that weighs the channel instead of the amount:
the same inputs, other explanations (nDCG and share drift move; docs/explainability.md).
"""

from __future__ import annotations

import contextlib
import json
import sys
import tempfile
import time
import urllib.request
from collections import deque
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from exporter import catalog

from exporter.tooling import synthetic
from exporter.config.model import MlmonConfig
from exporter.http.server import RunningExporter, start
from exporter.tooling.stack import AlertPrinter, Render, local_alerting, run_stack
from exporter.tooling.localstack import WebhookReceiver


@dataclass
class DemoOptions:
    seed: int = 7
    rate: float = 200.0          # records per second per model
    duration: float | None = None  # seconds; None runs until Ctrl-C
    drift_after: float = 60.0     # seconds of clean traffic before drift starts
    drift_ramp: float = 60.0      # seconds over which drift grows from nothing to full
    swap_after: float | None = 30.0  # seconds until the fraud model is swapped (an attribution shift); None: never
    version: str = "v1"
    label_delay: float = 20.0     # seconds before ground truth arrives for a prediction
    label_share: float = 0.8      # share of predictions that ever get a label
    prometheus_port: int | None = None    # --stack: fixed ports, else free ones
    alertmanager_port: int | None = None
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


def demo_records(model: str, version: str, count: int, rng: np.random.Generator, drift: float,
                 id_prefix: str = "", swap: bool = False) -> list[dict[str, Any]]:
    """One second of the demo's traffic for a model, labels included; data-quality faults grow with
    drift, so the clean period (drift 0) is clean (tests/test_example_quality_bounds.py holds the
    example's quality bounds to it). `swap` serves the model that weighs another feature (the attribution
    shift of docs/explainability.md)."""
    return synthetic.records(model, version, count, rng, drift=drift, faults=0.02 * drift, id_prefix=id_prefix,
                             with_labels=True, attributions=True, swap=swap)


def run_demo(config: MlmonConfig, options: DemoOptions, out=sys.stdout, render: Render | None = None) -> None:
    """Serve and feed the example models; with `render` (the rule generator) also run the alert path."""
    models = [m.name for m in config.models if m.name in synthetic.MODELS]
    if not models:
        raise SystemExit("the demo generates traffic for the example models (fraud, delivery_time) only")
    with contextlib.ExitStack() as stack:
        webhook = None
        if render is not None:
            printer = AlertPrinter()
            webhook = WebhookReceiver(on_payload=lambda p: [print(line, file=out, flush=True) for line in printer(p)])
            config = local_alerting(config, webhook.url)
        running = start(config, options.metrics_listen, options.ingest_listen)
        stack.callback(running.stop)
        _announce(config, options, running, models, out)
        if render is not None and webhook is not None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="mlmon-stack-")))
            local = stack.enter_context(
                run_stack(config, render, [f"127.0.0.1:{running.metrics_port}"], workdir, webhook,
                          options.prometheus_port, options.alertmanager_port)
            )
            print(f"  prometheus:   {local.prometheus.url} (rules loaded: try ALERTS)", file=out)
            print(f"  alertmanager: {local.alertmanager.url}; alerts are printed here as they arrive", file=out)
        sent = _traffic(config, options, running.ingest_port, models, out)
    print(f"mlmon demo: stopped after {sent} records per model", file=out)


def _announce(config: MlmonConfig, options: DemoOptions, running: RunningExporter, models: list[str], out) -> None:
    listen = options.metrics_listen or config.exporter.metrics_listen
    metrics_host = listen.rpartition(":")[0].replace("0.0.0.0", "localhost")
    print(f"mlmon demo: exporter up; traffic for {', '.join(models)} at {options.rate:g} records/s per model", file=out)
    print(f"  metrics:  curl http://{metrics_host}:{running.metrics_port}/metrics", file=out)
    print(f"  ingest:   http://127.0.0.1:{running.ingest_port}/v1/predictions", file=out)
    print(f"  labels:   {options.label_share:.0%} of predictions get their label {options.label_delay:g}s later", file=out)
    if options.swap_after is not None:
        print(f"  the fraud model is swapped for one that weighs the channel after {options.swap_after:g}s "
              f"(watch {catalog.ATTRIBUTION_NDCG.name})", file=out)
    print(f"  drift and data-quality faults start after {options.drift_after:g}s; Ctrl-C stops", file=out)


def _traffic(config: MlmonConfig, options: DemoOptions, ingest_port: int, models: list[str], out) -> int:
    """Post one batch per model per second (and the labels that have come due) until the duration ends."""
    ingest = f"http://127.0.0.1:{ingest_port}/v1/predictions"
    labels_url = f"http://127.0.0.1:{ingest_port}/v1/labels"
    pending: deque[tuple[float, list[Any], list[Any]]] = deque()  # (due, ids, labels), due in order
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
                print(f"  [{elapsed:5.0f}s] drift begins: watch {catalog.FEATURE_DRIFT_SCORE.name} and "
                      f"{catalog.FEATURE_NULL.name}", file=out)
                announced = True
            count = max(1, int(rng.poisson(options.rate * tick)))
            for model in models:
                swap = options.swap_after is not None and elapsed >= options.swap_after
                batch = demo_records(model, options.version, count, rng, drift, id_prefix=f"{sent}-", swap=swap)
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
    return sent
