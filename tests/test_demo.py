"""`mlmon demo` drives the real exporter over HTTP: traffic, drift, faults and delayed labels all show up."""

from __future__ import annotations

import io
import threading
import time

import requests

from conftest import parse_metrics, series
from exporter.config.model import load_config
from exporter.tooling.demo import DemoOptions, drift_at, run_demo
from exporter.tooling.localstack import free_port


def test_drift_ramps_from_zero_to_one_over_a_minute_after_the_clean_period() -> None:
    assert [drift_at(t, 60) for t in (0, 60, 90, 120, 500)] == [0.0, 0.0, 0.5, 1.0, 1.0]


def test_the_demo_feeds_both_example_models_with_drift_faults_and_labels() -> None:
    metrics_port = free_port()
    options = DemoOptions(
        seed=3, rate=400, duration=6, drift_after=1, drift_ramp=1, label_delay=1, swap_after=3,
        metrics_listen=f"127.0.0.1:{metrics_port}", ingest_listen="127.0.0.1:0",
    )
    out = io.StringIO()
    scraped: list[str] = []

    def scrape_near_the_end() -> None:
        time.sleep(5)
        scraped.append(requests.get(f"http://127.0.0.1:{metrics_port}/metrics", timeout=5).text)

    scraper = threading.Thread(target=scrape_near_the_end)
    scraper.start()
    run_demo(load_config("examples/mlmon.yaml"), options, out=out)
    scraper.join()

    assert f"curl http://127.0.0.1:{metrics_port}/metrics" in out.getvalue()  # it says where to look
    samples = parse_metrics(scraped[0])
    for model in ("fraud", "delivery_time"):
        assert series(samples, "mlmon_predictions_total", model=model), model
        assert sum(series(samples, "mlmon_predictions_total", model=model).values()) > 1000
    # Drift moves amounts up: the top two reference deciles (20% of the reference) now hold far more.
    amount = {dict(k)["bin"]: v for k, v in series(samples, "mlmon_feature_bin_total", feature="amount").items()}
    assert sum(amount[b] for b in ("09", "10", "11")) / sum(amount.values()) > 0.3
    # Faults produce nulls.
    assert sum(series(samples, "mlmon_feature_null_total", model="fraud").values()) > 0
    # Labels arrive a second later and are joined to their predictions.
    joined = [v for (name, labels), v in samples.items() if name.startswith("mlmon_label") and "joined" in str(labels)]
    assert sum(joined) > 0
    assert "stopped after" in out.getvalue()
    # The fraud model sends attributions, and is swapped half way: its channel attributions appear.
    phi = series(samples, "mlmon_attribution_value_sum_total", model="fraud", feature="channel")
    assert sum(phi.values()) > 0 and "swapped" in out.getvalue()
