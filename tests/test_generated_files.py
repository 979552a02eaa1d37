"""Generated files are committed; these tests fail when one is stale (run `make generate`)."""

from __future__ import annotations

import json
from pathlib import Path

from exporter.config.model import config_json_schema
from exporter.config.reference_doc import render_config_doc
from exporter.tooling.metrics_doc import render_metrics_doc

ROOT = Path(__file__).resolve().parent.parent


def test_metrics_reference_matches_the_catalog() -> None:
    assert (ROOT / "docs/metrics.md").read_text() == render_metrics_doc(), "docs/metrics.md is stale: make generate"


def test_configuration_reference_matches_the_config_models() -> None:
    assert (ROOT / "docs/configuration.md").read_text() == render_config_doc(), "stale: make generate"


def test_committed_json_schema_matches_the_config_models() -> None:
    committed = json.loads((ROOT / "docs/mlmon.schema.json").read_text())
    assert committed == config_json_schema(), "docs/mlmon.schema.json is stale: make generate"



def test_committed_rollout_gates_match_the_example_config() -> None:
    from exporter.cli import main

    assert main(["rollouts", "build", "-c", str(ROOT / "examples/mlmon.yaml"), "-o", str(ROOT / "deploy/rollouts"),
                 "--check"]) == 0, "deploy/rollouts is stale: make generate"
