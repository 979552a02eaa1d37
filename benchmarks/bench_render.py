"""/metrics render time: mlmon's exposition from numpy state vs prometheus_client.generate_latest.

mlmon side: a StateStore with enough model versions of the 50-feature model to reach about 10k
and 50k series, each version fed one batch; the timed call is exactly what the /metrics handler
runs, ``collect(store, stats, now).render(openmetrics=False)`` (the handful of process_* series
appended by the handler are left out of both sides).

Baseline: the same series (same metric names, types, label names and label values, parsed back
from mlmon's own output) as Counter/Gauge children in a fresh CollectorRegistry, rendered with
``prometheus_client.generate_latest``. ``_created`` series are turned off so both sides emit the
same lines. Best of a few timed renders each, bounded by a time budget; nothing is asserted.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Counter, Gauge, disable_created_metrics, enable_created_metrics
from prometheus_client import generate_latest
from prometheus_client.parser import text_string_to_metric_families

from benchmarks.common import SEED, VERSION, bodies, timed, workspace
from exporter.http.collector import collect
from exporter.config.model import MlmonConfig
from exporter.ingest.decode import decode_body
from exporter.http.server import load_profiles
from exporter.state.store import StateStore
from exporter.http.exporter_stats import ExporterStats

TARGETS = (10_000, 50_000)


@dataclass
class RenderResult:
    series: int
    versions: int
    mlmon_seconds: float
    baseline_seconds: float
    identical_series: bool


def store_with_versions(config: MlmonConfig, versions: int) -> StateStore:
    store = StateStore(config, load_profiles(config))
    body, content_type, _ = bodies(500, seed=SEED + 2)["columnar"]
    batch = decode_body(body, content_type, config, 10_000).batches[0]
    for i in range(versions):
        batch.version = f"{VERSION}.{i}"
        store.ingest(batch)
    return store


def series_lines(text: str) -> int:
    return sum(1 for line in text.splitlines() if line and not line.startswith("#"))


def baseline_registry(text: str) -> CollectorRegistry:
    """The series of `text` as prometheus_client children, one per label set, with the same values."""
    registry = CollectorRegistry()
    groups: list[tuple[str, str, str, list]] = []
    for family in text_string_to_metric_families(text):
        if family.type in ("counter", "gauge"):
            groups.append((family.name, family.type, family.documentation, family.samples))
        else:  # a few exporter-level histogram series: one gauge per sample name keeps the line count equal
            for name in dict.fromkeys(s.name for s in family.samples):
                groups.append((name, "gauge", family.documentation, [s for s in family.samples if s.name == name]))
    for name, kind_name, documentation, samples in groups:
        if not samples:
            continue
        label_names = list(samples[0].labels)
        kind = Counter if kind_name == "counter" else Gauge
        metric = kind(name, documentation or "help", label_names, registry=registry)
        for sample in samples:
            child = metric.labels(*[sample.labels[n] for n in label_names]) if label_names else metric
            if kind is Counter:
                child.inc(sample.value)
            else:
                child.set(sample.value)
    return registry


def measure(config: MlmonConfig, per_version: int, target: int) -> RenderResult:
    versions = max(1, math.ceil(target / per_version))
    store = store_with_versions(config, versions)
    stats = ExporterStats([m.name for m in config.models])
    now = time.time()
    text = collect(store, stats, now).render(False)
    mlmon = min(timed(lambda: collect(store, stats, now).render(False), repeat=15, budget_seconds=5))
    disable_created_metrics()
    try:
        registry = baseline_registry(text)
        baseline_text = generate_latest(registry).decode()
        baseline = min(timed(lambda: generate_latest(registry), repeat=5, budget_seconds=10))
    finally:
        enable_created_metrics()
    same = series_lines(baseline_text) == series_lines(text)
    return RenderResult(series_lines(text), versions, mlmon, baseline, same)


def run() -> list[RenderResult]:
    folder, config = workspace(max_versions=1000)
    try:
        probe = series_lines(collect(store_with_versions(config, 2), ExporterStats(["bench"]), time.time()).render(False))
        single = series_lines(collect(store_with_versions(config, 1), ExporterStats(["bench"]), time.time()).render(False))
        per_version = probe - single  # series added by one more version (the exporter's own series are fixed)
        return [measure(config, per_version, target) for target in TARGETS]
    finally:
        folder.cleanup()


def main() -> list[tuple[str, str, str]]:
    results = run()
    print("/metrics render (collect + text exposition), best of several renders, in process")
    rows = []
    for r in results:
        print(f"  {r.series:6d} series ({r.versions} versions x 50 features)  mlmon {r.mlmon_seconds * 1e3:7.1f} ms  "
              f"prometheus_client {r.baseline_seconds * 1e3:7.1f} ms  ratio {r.baseline_seconds / r.mlmon_seconds:5.1f}x"
              + ("" if r.identical_series else "  (series counts differ!)"))
        rows.append((f"render {r.series // 1000}k series", f"{r.mlmon_seconds * 1e3:.1f} ms "
                     f"(prometheus_client {r.baseline_seconds * 1e3:.0f} ms)", f"{r.baseline_seconds / r.mlmon_seconds:.1f}x"))
    return rows


if __name__ == "__main__":
    main()
