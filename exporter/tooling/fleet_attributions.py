"""`mlmon explain`: the fleet's rank signals (nDCG, top driver) from counters merged across replicas.

nDCG needs a sort, which PromQL does not have, so the recording rules stop at the fleet importance of
each feature (attribution counters summed over replicas first, alert_rules/attribution_rules.py). This
reads those recorded series and the reference importance gauges from Prometheus and computes, per model
version, exactly what each exporter computes for its own window (exporter/stats/attribution.py), on
the merged counters: the fleet-wide nDCG, share TV and top driver.
"""

from __future__ import annotations

import urllib.parse
from typing import Any

import numpy as np

from exporter import catalog as c
from exporter.config.model import ModelConfig, format_duration
from exporter.stats import attribution as stats
from exporter.tooling.localstack import http_json


def recorded_importance(window: int) -> str:
    """The fleet importance rule's name (as alert_rules.attribution_rules.name writes it; a test holds them equal)."""
    return f"model_version_feature:{c.ATTRIBUTION_VALUE_SUM.family}:mean_abs{format_duration(window)}"


def recorded_records(window: int) -> str:
    return f"model_version:{c.ATTRIBUTION_RECORDS.family}:increase{format_duration(window)}"


def query(prometheus: str, expr: str) -> list[dict[str, Any]]:
    answer = http_json(f"{prometheus.rstrip('/')}/api/v1/query?" + urllib.parse.urlencode({"query": expr}), timeout=10)
    if answer.get("status") != "success":
        raise ValueError(f"Prometheus refused {expr!r}: {answer.get('error')}")
    return answer["data"]["result"]


def _by_version(samples: list[dict[str, Any]]) -> dict[str, dict[str, float]]:
    out: dict[str, dict[str, float]] = {}
    for sample in samples:
        labels = sample["metric"]
        out.setdefault(labels["model_version"], {})[labels.get("feature", "")] = float(sample["value"][1])
    return out


def fleet_report(prometheus: str, model: ModelConfig, window: int) -> dict[str, Any]:
    """{model, window, versions: [{model_version, samples, ndcg, share_tv, top_driver, reference_top_driver,
    top_driver_changed, drifted, importance, reference_importance}]} over the fleet's merged counters."""
    select = f'{{model="{model.name}"}}'
    live = _by_version(query(prometheus, recorded_importance(window) + select))
    reference = _by_version(query(prometheus, f"max by (model_version, feature) "
                                              f"({c.FEATURE_IMPORTANCE_REFERENCE.name}{select})"))
    records = {v: f.get("", 0.0) for v, f in _by_version(query(prometheus, recorded_records(window) + select)).items()}
    names = [f.name for f in model.features]
    config = model.attributions
    versions = []
    for version in sorted(live):
        ref = reference.get(version)
        if not ref:
            continue
        a = np.array([ref.get(n, 0.0) for n in names])
        importance = np.array([live[version].get(n, 0.0) for n in names])  # no live attributions: importance 0
        row: dict[str, Any] = {"model_version": version, "samples": records.get(version, 0.0),
                               "importance": dict(zip(names, importance.tolist())),
                               "reference_importance": dict(zip(names, a.tolist()))}
        live_shares, ref_shares = stats.shares(importance), stats.shares(a)
        if live_shares is not None and ref_shares is not None:
            ndcg, tv = stats.ndcg(a, importance), stats.total_variation(live_shares, ref_shares)
            top, ref_top = names[stats.top_driver(importance, a)], names[stats.top_driver(a)]
            row.update({"ndcg": ndcg, "share_tv": tv, "top_driver": top, "reference_top_driver": ref_top,
                        "top_driver_changed": top != ref_top,
                        "drifted": (ndcg < config.ndcg_threshold or tv >= config.share_tv_threshold)
                        if row["samples"] >= config.min_samples else None})
        versions.append(row)
    return {"model": model.name, "window": format_duration(window), "versions": versions}
