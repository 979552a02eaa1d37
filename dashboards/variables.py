"""Dashboard variables: the datasource picker and the model/version/window/feature selectors.

Query variables read label values off `mlmon_model_info` and the reference-ratio series, which
exist as soon as a version has been seen, so the selectors fill before any traffic has drifted.
"""

from __future__ import annotations

from typing import Any

from exporter import catalog
from exporter.config.model import MlmonConfig, format_duration
from dashboards.panels import DATASOURCE
from dashboards.promql import PROMETHEUS_UP, selector

# Grafana's value for "All" in multi-value variables: a regex matching every label value.
ALL_VALUE = ".*"


def datasource() -> dict[str, Any]:
    return {
        "name": "datasource",
        "label": "Data source",
        "type": "datasource",
        "query": "prometheus",
        "current": {},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": [],
        "refresh": 1,
        "regex": "",
    }


def _query(name: str, label: str, query: str, *, multi: bool = False, include_all: bool = False,
           hide: int = 0) -> dict[str, Any]:
    variable: dict[str, Any] = {
        "name": name,
        "label": label,
        "type": "query",
        "datasource": DATASOURCE,
        "definition": query,
        "query": {"query": query, "refId": f"{name}-variable"},
        "current": {},
        "hide": hide,
        "includeAll": include_all,
        "multi": multi,
        "options": [],
        "refresh": 2,  # on time range change: new versions appear without a reload
        "regex": "",
        "sort": 1,
    }
    if include_all:
        variable["allValue"] = ALL_VALUE
    return variable


def model(multi: bool = False) -> dict[str, Any]:
    return _query("model", "Model", f"label_values({catalog.MODEL_INFO.name}, model)",
                  multi=multi, include_all=multi)


def version(name: str = "version", label: str = "Version", multi: bool = False) -> dict[str, Any]:
    matcher = '=~"$model"' if multi else '"$model"'
    query = f"label_values({selector(catalog.MODEL_INFO, model=matcher)}, model_version)"
    return _query(name, label, query, multi=multi, include_all=multi)


def feature() -> dict[str, Any]:
    source = selector(catalog.FEATURE_REFERENCE, model='"$model"', model_version='"$version"')
    return _query("feature", "Feature", f"label_values({source}, feature)", multi=True, include_all=True)


def segment() -> dict[str, Any]:
    """Segment values of the version: the configured values plus __other__, from the quality or the drift counters."""
    names = "|".join(m.name for m in (catalog.SEGMENT_CONFUSION, catalog.SEGMENT_FEATURE_BIN, catalog.SEGMENT_CLASS_CONFUSION,
                                      catalog.SEGMENT_REGRESSION_PAIRS))
    source = f'{{__name__=~"{names}",model="$model",model_version="$version"}}'
    return _query("segment", "Segment", f"label_values({source}, segment)", multi=True, include_all=True)


def job() -> dict[str, Any]:
    """The scrape job(s) of the exporter, read off a series only mlmon exports."""
    return _query("job", "Job", f"label_values({catalog.SCRAPE_DURATION.name}, job)", multi=True, include_all=True)


def target_label(name: str, label: str) -> dict[str, Any]:
    """A scrape-target label of the exporter's job (`namespace`, `cluster`, `instance`) with "All".
    Outside Kubernetes there is no namespace or cluster label: the list is empty, and All (`.*`)
    still matches, because a regex that matches "" selects series without the label."""
    narrower = {"namespace": "", "cluster": "", "instance": ',namespace=~"$namespace",cluster=~"$cluster"'}[name]
    query = f'label_values({PROMETHEUS_UP}{{job=~"$job"{narrower}}}, {name})'
    variable = _query(name, label, query, multi=True, include_all=True)
    variable["current"] = {"selected": True, "text": ["All"], "value": ["$__all"]}
    return variable


def targets() -> list[dict[str, Any]]:
    """cluster, namespace and pod (instance) pickers for per-pod dashboards."""
    return [target_label("cluster", "Cluster"), target_label("namespace", "Namespace"),
            target_label("instance", "Pod / instance")]


def window_names(config: MlmonConfig, kind: str = "drift") -> list[str]:
    """Every drift (or quality) window any model uses, shortest first (e.g. ["5m", "1h"]): the
    windows the exporter computes its windowed gauges over, so every option has data."""
    windows = (lambda m: m.drift.windows) if kind == "drift" else (lambda m: m.quality_windows)
    seconds = sorted({w for m in config.models for w in windows(m)})
    return [format_duration(s) for s in seconds]


def window(config: MlmonConfig, kind: str = "drift") -> dict[str, Any]:
    """The time window of the exporter's windowed gauges and of the bin-share queries. Drift opens
    at the longest window, the one the drift alerts judge; the others stay a click away."""
    names = window_names(config, kind)
    default = names[-1] if kind == "drift" else names[0]
    options = [{"selected": n == default, "text": n, "value": n} for n in names]
    return {
        "name": "window",
        "label": "Window",
        "type": "custom",
        "query": ",".join(names),
        "current": {"selected": True, "text": default, "value": default},
        "hide": 0,
        "includeAll": False,
        "multi": False,
        "options": options,
        "skipUrlSync": False,
    }
