"""A client inventing model versions cannot churn a real Prometheus, and the real version survives it.

`mlmon serve` runs as a process (with its real log set-up) and a real Prometheus scrapes it every
second while one client sends the real version `v1` five times a second and another invents 50 new
versions per request, five requests a second (issue 16, item 7: 50 new versions a second put
236,289 series into Prometheus and evicted `v1`). Afterwards Prometheus is asked what it stored.
"""

from __future__ import annotations

import random
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from conftest import ROOT, parse_metrics, toy_model_data, toy_profile, toy_record
from tests.support.processes import PrometheusProcess, free_port, require_binary

CAP = 4            # exporter.max_versions_per_model
PER_MINUTE = 6     # versions.max_new_per_minute: a burst of 6, then one every 10 s
IDLE = 3           # versions.evict_idle_after, seconds: short, so invented versions also evict each other
ATTACK_SECONDS = 12


def write_config(folder: Path, metrics_port: int, ingest_port: int) -> Path:
    toy_profile().write(folder / "toy.json")
    model = dict(toy_model_data(), versions={"max_new_per_minute": PER_MINUTE, "evict_idle_after": f"{IDLE}s"})
    config = {
        "exporter": {
            "metrics_listen": f"127.0.0.1:{metrics_port}",
            "ingest_listen": f"127.0.0.1:{ingest_port}",
            "max_versions_per_model": CAP,
            "window_slots": 10,
        },
        "models": [model],
    }
    path = folder / "mlmon.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


class Traffic:
    """The real client and the version-inventing one, each in a thread, with what they were told."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.stop = threading.Event()
        self.real_sent = self.real_accepted = 0
        self.invented_sent = 0
        self.invented_rejections: dict[str, int] = {}

    def real(self) -> None:
        with requests.Session() as http:
            while not self.stop.is_set():
                answer = http.post(self.url, json=[toy_record("v1")] * 10, timeout=10).json()
                self.real_sent += 10
                self.real_accepted += answer["accepted"]
                time.sleep(0.2)

    def inventing(self) -> None:
        rng = random.Random(5)
        with requests.Session() as http:
            while not self.stop.is_set():
                body = [toy_record(f"v{rng.getrandbits(48):x}") for _ in range(50)]
                answer = http.post(self.url, json=body, timeout=10).json()
                self.invented_sent += 50
                for rejection in answer["rejections"]:  # 20 reported per answer; the counter has them all
                    self.invented_rejections[rejection["reason"]] = self.invented_rejections.get(rejection["reason"], 0) + 1
                time.sleep(0.2)

    def run(self, seconds: float) -> None:
        threads = [threading.Thread(target=self.real), threading.Thread(target=self.inventing)]
        for thread in threads:
            thread.start()
        time.sleep(seconds)
        self.stop.set()
        for thread in threads:
            thread.join(timeout=15)


def scalar(prom: PrometheusProcess, expr: str) -> float:
    result = prom.query(expr)
    assert result, f"no data for {expr}"
    return float(result[0]["value"][1])


@pytest.fixture(scope="module")
def churned(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    require_binary("prometheus")
    tmp_path = tmp_path_factory.mktemp("churn")
    metrics_port, ingest_port = free_port(), free_port()
    config = write_config(tmp_path, metrics_port, ingest_port)
    log_path = tmp_path / "mlmon.log"
    with open(log_path, "wb") as log:
        server = subprocess.Popen([sys.executable, "-m", "exporter.cli", "serve", "--config", str(config)],
                                  cwd=ROOT, stdout=log, stderr=subprocess.STDOUT)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        with PrometheusProcess(tmp_path, [f"127.0.0.1:{metrics_port}"]) as prom:
            prom.wait_for(lambda: prom.query('up{job="mlmon"} == 1'), timeout=30, what="the first scrape of mlmon")
            traffic = Traffic(f"http://127.0.0.1:{ingest_port}/v1/predictions")
            requests.post(traffic.url, json=[toy_record("v1")], timeout=10).raise_for_status()
            traffic.real_sent = traffic.real_accepted = 1
            prom.wait_for(lambda: prom.query('mlmon_predictions_total{model_version="v1"}'), what="v1 scraped")
            started = time.time()
            traffic.run(ATTACK_SECONDS)
            time.sleep(2.5)  # the last records scraped
            final = parse_metrics(requests.get(metrics_url, timeout=10).text)
            # Every scrape within `span` came after v1 was first scraped.
            span = f"{int(time.time() - started)}s"
            yield {"prom": prom, "span": span, "traffic": traffic, "final": final, "log": log_path}
    finally:
        server.terminate()
        server.wait(timeout=15)


def test_prometheus_stores_only_the_versions_the_budget_admits(churned) -> None:
    prom, span = churned["prom"], churned["span"]
    versions = scalar(prom, f'count(count by (model_version) (last_over_time(mlmon_predictions_total{{model="toy"}}[{span}])))')
    # v1, the burst, and one token per 10 s of the attack: 1 + 6 + 2, whatever the client invented.
    assert churned["traffic"].invented_sent >= 2000
    assert versions <= 1 + PER_MINUTE + ATTACK_SECONDS * PER_MINUTE / 60 + 1


def test_the_exporter_series_count_stays_under_the_bound_of_the_cap(churned) -> None:
    prom, span, final = churned["prom"], churned["span"], churned["final"]
    per_version = sum(1 for (_, labels) in final if ("model_version", "v1") in labels)
    unversioned = sum(1 for (_, labels) in final if "model_version" not in dict(labels))
    bound = unversioned + CAP * per_version
    assert scalar(prom, f'max_over_time(scrape_samples_scraped{{job="mlmon"}}[{span}])') <= bound


def test_the_real_version_is_never_evicted_and_every_record_of_it_counted(churned) -> None:
    prom, span, traffic = churned["prom"], churned["span"], churned["traffic"]
    v1 = 'mlmon_predictions_total{model="toy",model_version="v1"}'
    assert traffic.real_accepted == traffic.real_sent
    assert scalar(prom, f"resets({v1}[{span}])") == 0
    assert scalar(prom, f"count_over_time({v1}[{span}])") == scalar(prom, f'count_over_time(up{{job="mlmon"}}[{span}])')
    assert scalar(prom, v1) == traffic.real_sent


def test_every_refused_record_is_counted_with_its_reason(churned) -> None:
    final, traffic = churned["final"], churned["traffic"]
    rejected = {dict(labels)["reason"]: value for (name, labels), value in final.items()
                if name == "mlmon_records_rejected_total" and dict(labels)["model"] == "toy" and value}
    assert set(rejected) <= {"too_many_versions", "version_rate_limited"}
    evicted = final[("mlmon_model_versions_evicted_total", frozenset({"model": "toy"}.items()))]
    admitted = sum(1 for (name, labels) in final if name == "mlmon_predictions_total") + evicted - 1
    assert sum(rejected.values()) == traffic.invented_sent - admitted
    hits = {dict(labels)["limit"]: value for (name, labels), value in final.items() if name == "mlmon_limit_hits_total"}
    assert hits["versions_per_model"] + hits["new_versions_per_minute"] > 0


def test_the_log_says_it_a_few_times_instead_of_once_per_version(churned) -> None:
    lines = churned["log"].read_text().splitlines()
    new_version_lines = [line for line in lines if "first record of version" in line]
    assert len(new_version_lines) <= 5  # 5 lines of a kind per minute
    assert len(lines) < 40, "\n".join(lines)
