"""The metrics listener's front page: every model and version at a glance, with links to go deeper.

Headlines only, over each model's first (shortest) drift window: traffic, the reference (hash and
age), the dataset verdict and which features drifted, data-quality events, quality metrics past
their thresholds. The numbers come from the same evaluation as /metrics (``model_data``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from exporter.config.model import MlmonConfig, ModelConfig
from exporter.http.pages.html import age, badge, esc, number, page, table, timestamp
from exporter.http.pages.model_data import version_document
from exporter.http.pages.model_page import model_href
from exporter.state.store import StateStore

DRIFT_RUNBOOKS = ("MLMonFeatureDrift", "MLMonDriftedFeatureShare", "MLMonPredictionDrift", "MLMonMultivariateDrift",
                  "MLMonModelQualityOutOfBounds")


def reference_age(config: MlmonConfig, model: ModelConfig, now: float) -> str:
    """How old the reference file is (its modification time); captured references say so."""
    path = config.reference_path(model)
    if path is None:
        return "captured from live traffic"
    try:
        return f"{age(max(0.0, now - Path(path).stat().st_mtime))} old"
    except OSError:
        return "file unreadable"


def firing(version: dict[str, Any]) -> list[str]:
    """The verdicts that are set: drifted features, prediction, dataset, multivariate, quality bounds (escaped)."""
    out = []
    drifted = [f["name"] for f in version.get("features", []) if f["drifted"]]
    if version.get("dataset_drift"):
        out.append(badge("critical", "dataset drift"))
    if drifted:
        names = ", ".join(esc(n) for n in drifted[:5]) + (" …" if len(drifted) > 5 else "")
        out.append(f"{badge('drifted', f'{len(drifted)} drifted')} {names}")
    if version.get("prediction", {}).get("drifted"):
        out.append(badge("drifted", "prediction drift"))
    if (version.get("multivariate") or {}).get("drifted"):
        out.append(badge("drifted", "multivariate drift"))
    for window in version["quality"]["windows"]:
        for m in window["metrics"]:
            if m["crossed"]:
                out.append(badge("crossed", f"{m['metric']} {number(m['value'])} ({window['window']})"))
    return out


def data_quality_headline(version: dict[str, Any]) -> str:
    dq = version["data_quality"]
    events = sum(sum(c.values()) for c in dq["features"].values())
    worst = max(dq["features"].items(), key=lambda kv: sum(kv[1].values()), default=None)
    if not events:
        return "clean"
    noun = "event" if events == 1 else "events"
    return f"{events:,} {noun} (most: {esc(worst[0])})" if worst else f"{events:,} {noun}"


def render_status_page(config: MlmonConfig, store: StateStore, now: float) -> str:
    docs = config.alerting.runbook_url.rsplit("/runbooks", 1)[0]
    states = store.snapshot()
    body = [f"<h1>mlmon exporter</h1><p class=\"muted\">{len(config.models)} models · {timestamp(now)}</p>"]
    rows = []
    for model in config.models:
        window = model.drift.windows[0]
        versions = [s for s in states if s.model.name == model.name]
        link = f'<a href="{esc(model_href(model.name))}">{esc(model.name)}</a>'
        if not versions:
            rows.append([link, esc(model.task), "–", "no traffic yet", "–", "–", "–", "–"])
        for state in versions:
            doc = version_document(state, window, now, config)
            ref = doc["reference"]
            reference = (f"capturing {ref['captured_rows']:,}/{ref['target']:,}" if ref["capturing"]
                         else f"<code>{esc(ref['short_hash'])}</code> {reference_age(config, model, now)}")
            version_link = f'<a href="{esc(model_href(model.name, version=state.version))}">{esc(state.version)}</a>'
            verdicts = " ".join(firing(doc)) or badge("none", "nothing firing")
            rows.append([link, esc(model.task), version_link, f"{doc['predictions']:,} ({doc['window_predictions']:,} in {esc(doc['window'])})",
                         reference, data_quality_headline(doc), f"{doc['quality']['labelled']:,}", verdicts])
    body.append(table(["model", "task", "version", "predictions", "reference", "data quality", "labelled", "firing"],
                      rows, "models"))
    runbooks = "".join(f'<li><a href="{esc(docs)}/runbooks/{name}.md">{name}</a></li>' for name in DRIFT_RUNBOOKS)
    body.append(
        '<h2>Links</h2><ul><li><a href="/metrics">/metrics</a> (what Prometheus scrapes)</li>'
        f'<li><a href="{esc(docs)}/pages.md">pages and <code>mlmon report</code></a> · <a href="{esc(docs)}/drift.md">drift</a>'
        f' · <a href="{esc(docs)}/quality.md">quality</a> · <a href="{esc(docs)}/metrics.md">metrics</a></li>'
        f'<li>runbooks: <ul>{runbooks}</ul></li></ul>'
    )
    return page("mlmon exporter", "".join(body), nav=[("/", "status"), ("/metrics", "/metrics")])
