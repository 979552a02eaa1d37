"""`mlmon report`: check a batch file against a model's reference offline, with the exporter's own code.

The rows are not scored by a second implementation: they go through the same path a live
record takes (columnar decode -> ``StateStore.ingest`` -> window counts -> ``drift_report``
evaluation -> quality collection), in-process, with a clock that stands still so every row lands
in the window being judged. The result is the model page as one self-contained HTML file plus
the same document as JSON, and an exit code for CI:

* 1 when any feature's or the prediction's drift verdict is "drifted" (so also whenever the
  drifted-feature share reaches ``drifted_share``), or when labels are in the data and a
  measured quality metric is outside its configured bound with at least
  ``alerting.quality.min_samples`` labelled rows;
* 0 otherwise (also when there are too few rows for a verdict: N < ``min_samples`` decides nothing).
"""

from __future__ import annotations

import json
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from exporter.config.model import MlmonConfig, ModelConfig, VersionsConfig, format_duration
from exporter.http.pages.model_data import model_document
from exporter.http.pages.model_page import render_model_page
from exporter.ingest.decode import decode_columnar
from exporter.profiles.build import FALSE_TEXT, TRUE_TEXT, read_chunks
from exporter.profiles.load import load_profile
from exporter.state.store import StateStore

VERSION = "batch"


class ReportError(Exception):
    """The batch cannot be checked as asked (no such column, a captured reference, ...)."""


def typed(value: Any, kind: str) -> Any:
    """A CSV cell (always text) as the JSON value a model server would send; other files' values as they are.

    Text that does not parse is left as text, so the state counts it as a type error exactly as
    the exporter would for the same record.
    """
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    if kind == "numeric":
        try:
            return float(value)
        except ValueError:
            return value
    if kind == "boolean":
        text = value.strip().lower()
        return True if text in TRUE_TEXT else False if text in FALSE_TEXT else value
    return value


def typed_label(value: Any, task: str) -> Any:
    if not isinstance(value, str):
        return value
    if value == "":
        return None
    if task == "multiclass_classification":
        return value
    try:
        number = float(value)
    except ValueError:
        return value
    return int(number) if task == "binary_classification" and number in (0.0, 1.0) else number


def columnar(model: ModelConfig, rows: list[dict[str, Any]], label_column: str | None, version: str) -> dict[str, Any]:
    """One chunk of rows as the columnar body of POST /v1/predictions (docs/ingest.md)."""
    prediction_kind = "numeric" if model.prediction.type == "numeric" else "categorical"
    document: dict[str, Any] = {
        "model": model.name,
        "model_version": version,
        "features": {f.name: [typed(r.get(f.name), f.type) for r in rows] for f in model.features},
        "predictions": [typed(r.get(model.prediction.name), prediction_kind) for r in rows],
    }
    if label_column:
        document["labels"] = [typed_label(r.get(label_column), model.task) for r in rows]
    attributes = [s.attribute for s in model.segments]
    if attributes and rows and all(a in rows[0] for a in attributes):
        document["segments"] = [{a: str(r[a]) for a in attributes if r.get(a) not in (None, "")} for r in rows]
    return document


@dataclass
class Report:
    document: dict[str, Any]
    rows: int
    rejected: int
    reasons: list[str] = field(default_factory=list)

    @property
    def failed(self) -> bool:
        return bool(self.reasons)

    def to_json(self) -> dict[str, Any]:
        return {"rows": self.rows, "rejected": self.rejected, "failed": self.failed, "reasons": self.reasons,
                **self.document}


def verdict_reasons(version: dict[str, Any]) -> list[str]:
    """Why the batch fails (empty: it passes); the rule of this module's docstring."""
    reasons = [f"feature {f['name']!r} drifted ({f['severity']}, {version['method']} {f['decision_score']:.4g})"
               for f in version.get("features", []) if f["drifted"]]
    if version.get("prediction", {}).get("drifted"):
        reasons.append(f"prediction {version['prediction']['name']!r} drifted")
    if version.get("dataset_drift"):
        reasons.append(f"dataset drift: {version['drifted_features_ratio']:.0%} of features drifted "
                       f"(drifted_share {version['thresholds']['drifted_share']})")
    # Every quality window holds the whole batch (the clock stands still): judge by the first one.
    for window in version["quality"]["windows"][:1]:
        for m in window["metrics"]:
            if m["crossed"]:
                bound = ", ".join(f"{side} {m[side]}" for side in ("min", "max") if m[side] is not None)
                reasons.append(f"{m['metric']} {m['value']:.4g} outside {bound} ({window['labelled']} labelled)")
    return reasons


def check_batch(config: MlmonConfig, model: ModelConfig, data: Path, *, label_column: str | None = "label",
                window: int | None = None, progress: bool = False, now: float | None = None,
                say: Callable[[str], None] = lambda line: None) -> Report:
    """Feed ``data`` through the exporter's ingest, state and drift code and judge it."""
    path = config.reference_path(model)
    if path is None:
        raise ReportError(f"model {model.name!r} captures its reference from live traffic; a report needs a profile file")
    profile = load_profile(path, model)  # read and checked as `mlmon serve` reads it
    moment = time.time() if now is None else now
    # The batch is one version held alone: the live admission rules (allow-list, pattern, new-version
    # budget) guard Prometheus against unbounded label values and have nothing to guard here.
    model = model.model_copy(update={"versions": VersionsConfig()})
    config = config.model_copy(update={"models": [model if m.name == model.name else m for m in config.models]})
    store = StateStore(config, {model.name: profile}, clock=lambda: moment)  # a clock that stands still
    rows = rejected = 0
    use_labels: bool | None = None
    for chunk in read_chunks(data, model.prediction.name, progress, what="checking"):
        if use_labels is None:
            use_labels = bool(label_column) and bool(chunk) and label_column in chunk[0]
            missing = [f.name for f in model.features if chunk and f.name not in chunk[0]]
            if missing:
                say(f"warning: no column for {', '.join(missing)}; counted as missing values")
        decoded = decode_columnar(columnar(model, chunk, label_column if use_labels else None, VERSION), config, len(chunk))
        for batch in decoded.batches:
            store.ingest(batch)
        rows += len(chunk)
        rejected += len(decoded.rejections)
        say(f"{rows:,} rows read")
    states = store.snapshot()
    seconds = window or model.drift.windows[0]
    if seconds not in model.drift.windows:
        raise ReportError(f"window {format_duration(seconds)} is not configured for {model.name!r}")
    document = model_document(config, model, states, seconds, moment)
    document["data"] = str(data)
    reasons = verdict_reasons(document["versions"][0]) if document["versions"] else []
    return Report(document, rows, rejected, reasons)


def write_report(report: Report, html_path: Path, json_path: Path) -> None:
    nav = [("#data-quality", "data quality"), ("#prediction", "prediction")]
    html_path.parent.mkdir(parents=True, exist_ok=True)
    html_path.write_text(render_model_page(report.document, nav, live=False), encoding="utf-8")
    json_path.parent.mkdir(parents=True, exist_ok=True)
    json_path.write_text(json.dumps(report.to_json(), indent=1, default=_json_default) + "\n", encoding="utf-8")


def _json_default(value: Any) -> Any:
    try:
        number = float(value)  # numpy scalars
    except (TypeError, ValueError):
        raise TypeError(f"not JSON: {type(value).__name__}") from None
    return None if math.isnan(number) else number
