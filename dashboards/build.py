"""`mlmon dashboards build`: config -> dashboards -> JSON files, and `--check` for stale ones.

A pipeline of small steps: load the config, build each dashboard (a dict in the current Grafana
schema), render it to canonical JSON (sorted keys, two-space indent, trailing newline, so a
diff shows only real changes), then write or compare.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

from exporter.config.model import MlmonConfig
from dashboards.exporter_health import exporter_health
from dashboards.model import model
from dashboards.overview import overview
from dashboards.quality import quality
from dashboards.rollouts import rollouts_dashboard
from dashboards.versions import versions

# File name -> builder. File names are stable: provisioning and the Helm chart refer to them.
DASHBOARDS: dict[str, Callable[[MlmonConfig], dict[str, Any]]] = {
    "mlmon-overview.json": overview,
    "mlmon-model.json": model,
    "mlmon-quality.json": quality,
    "mlmon-versions.json": versions,
    "mlmon-rollouts.json": rollouts_dashboard,
    "mlmon-exporter.json": exporter_health,
}


def render(dashboard: dict[str, Any]) -> str:
    return json.dumps(dashboard, indent=2, sort_keys=True, ensure_ascii=False) + "\n"


def build_all(config: MlmonConfig) -> dict[str, str]:
    """File name -> file text for every dashboard."""
    return {name: render(builder(config)) for name, builder in DASHBOARDS.items()}


def write(config: MlmonConfig, out: Path) -> list[Path]:
    out.mkdir(parents=True, exist_ok=True)
    written = []
    for name, text in build_all(config).items():
        path = out / name
        path.write_text(text, encoding="utf-8")
        written.append(path)
    return written


def stale(config: MlmonConfig, out: Path) -> list[str]:
    """Files in `out` that differ from what the config generates now (missing ones included),
    and generated-looking files that no dashboard produces any more."""
    wanted = build_all(config)
    problems = []
    for name, text in wanted.items():
        path = out / name
        if not path.exists():
            problems.append(f"{path}: missing")
        elif path.read_text(encoding="utf-8") != text:
            problems.append(f"{path}: differs from the generated dashboard")
    for path in sorted(out.glob("mlmon-*.json")):
        if path.name not in wanted:
            problems.append(f"{path}: no dashboard generates it any more")
    return problems
