"""The rules of the multiclass test config (alert_rules/tests/multiclass/): current, accepted by promtool, and
carrying MLMonClassProbabilityDrift with its links, which the example config (no multiclass model) cannot show."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from tests.support.processes import require_binary

ROOT = Path(__file__).resolve().parents[1]
FOLDER = ROOT / "alert_rules" / "tests" / "multiclass"


def test_the_multiclass_test_rules_are_what_rules_build_writes_now() -> None:
    done = subprocess.run([sys.executable, "-m", "exporter.cli", "rules", "build", "--config", str(FOLDER / "mlmon.yaml"),
                           "--out", str(FOLDER / "generated"), "--check"], capture_output=True, text=True, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr + "\nrun `make generate`"


def test_promtool_accepts_the_multiclass_rules() -> None:
    promtool = require_binary("promtool")
    for name in ("mlmon_rules.yaml", "mlmon_alerts.yaml"):
        done = subprocess.run([promtool, "check", "rules", str(FOLDER / "generated" / name)], capture_output=True, text=True)
        assert done.returncode == 0, done.stdout + done.stderr


def test_a_multiclass_model_gets_a_graded_class_probability_alert_linking_its_page() -> None:
    groups = yaml.safe_load((FOLDER / "generated" / "mlmon_alerts.yaml").read_text())["groups"]
    rules = [r for g in groups for r in g["rules"] if r["alert"] == "MLMonClassProbabilityDrift"]
    assert sorted(r["labels"]["severity"] for r in rules) == ["critical", "info", "warning"]
    for rule in rules:
        assert "model_version_class:mlmon_class_probability_drift_grade:1h" in rule["expr"]
        assert rule["annotations"]["page_url"].endswith("#prediction{{ end }}")
        assert "var-model=intent" in rule["annotations"]["dashboard_url"]
    examples = yaml.safe_load((ROOT / "alert_rules" / "generated" / "mlmon_alerts.yaml").read_text())["groups"]
    assert not [r for g in examples for r in g["rules"] if r["alert"] == "MLMonClassProbabilityDrift"]  # no multiclass model
