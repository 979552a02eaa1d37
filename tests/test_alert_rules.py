"""The generated Prometheus rules: current, accepted by promtool, unit-tested, conventional, documented."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from alert_rules.build import ALERTS_FILE, PROMETHEUS_RULE_FILE, RULES_FILE, render
from alert_rules.naming import GENERATED_HEADER
from exporter import catalog
from exporter.cli import main
from exporter.config.model import load_config
from tests.conftest import EXAMPLE_CONFIG, build_config, example_config_data
from tests.support.processes import require_binary

ROOT = Path(__file__).resolve().parents[1]
GENERATED = ROOT / "alert_rules" / "generated"
UNIT_TESTS = sorted((ROOT / "alert_rules" / "tests").glob("*.test.yaml"))


def load_rules(name: str) -> list[dict[str, Any]]:
    return [rule for group in yaml.safe_load((GENERATED / name).read_text())["groups"] for rule in group["rules"]]


ALERTS = load_rules(ALERTS_FILE)
RECORDS = load_rules(RULES_FILE)
ALERT_NAMES = sorted({rule["alert"] for rule in ALERTS})


def promtool(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([require_binary("promtool"), *map(str, args)], capture_output=True, text=True, timeout=120)


def test_committed_files_equal_what_rules_build_writes_now() -> None:
    files = render(load_config(EXAMPLE_CONFIG))
    for name, text in files.items():
        assert (GENERATED / name).read_text() == text, f"{name} is stale: run `make generate`"


def test_rules_build_check_exits_1_on_a_stale_file_and_0_once_rebuilt(tmp_path: Path) -> None:
    args = ["rules", "build", "--config", str(EXAMPLE_CONFIG), "--out", str(tmp_path)]
    assert main(args + ["--check"]) == 1  # nothing written yet
    assert main(args) == 0
    assert main(args + ["--check"]) == 0
    alerts = tmp_path / ALERTS_FILE
    alerts.write_text(alerts.read_text().replace("> 0.05", "> 0.5"))
    assert main(args + ["--check"]) == 1


def test_every_generated_file_begins_with_the_do_not_edit_header() -> None:
    for path in GENERATED.iterdir():
        assert path.read_text().startswith(GENERATED_HEADER), path.name


def test_promtool_accepts_the_recording_and_alerting_rules() -> None:
    result = promtool("check", "rules", GENERATED / RULES_FILE, GENERATED / ALERTS_FILE)
    assert result.returncode == 0, result.stdout + result.stderr


def test_promtool_accepts_the_groups_inside_the_prometheusrule_manifest(tmp_path: Path) -> None:
    manifest = yaml.safe_load((GENERATED / PROMETHEUS_RULE_FILE).read_text())
    spec = tmp_path / "spec.yaml"
    spec.write_text(yaml.safe_dump(manifest["spec"]))
    result = promtool("check", "rules", spec)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(manifest["spec"]["groups"]) == len(yaml.safe_load((GENERATED / RULES_FILE).read_text())["groups"]) + len(
        yaml.safe_load((GENERATED / ALERTS_FILE).read_text())["groups"]
    )


def test_prometheusrule_manifest_carries_the_configured_extra_labels() -> None:
    data = example_config_data()
    data["alerting"]["rule_labels"] = {"release": "monitoring", "prometheus": "ml"}
    manifest = yaml.safe_load(render(build_config(data))[PROMETHEUS_RULE_FILE])
    assert manifest["apiVersion"] == "monitoring.coreos.com/v1"
    assert manifest["kind"] == "PrometheusRule"
    assert manifest["metadata"]["labels"]["release"] == "monitoring"
    assert manifest["metadata"]["labels"]["prometheus"] == "ml"


@pytest.mark.parametrize("path", UNIT_TESTS, ids=lambda p: p.name)
def test_promtool_unit_tests_pass(path: Path) -> None:
    result = promtool("test", "rules", path)
    assert result.returncode == 0, result.stdout + result.stderr


def _unit_test_evals() -> list[dict[str, Any]]:
    evals = []
    for path in UNIT_TESTS:
        for test in yaml.safe_load(path.read_text())["tests"]:
            evals += test.get("alert_rule_test", [])
    return evals


def test_every_alert_has_a_unit_test_where_it_fires_and_one_where_it_is_silent() -> None:
    evals = _unit_test_evals()
    fires = {e["alertname"] for e in evals if e.get("exp_alerts")}
    silent = {e["alertname"] for e in evals if not e.get("exp_alerts")}
    assert set(ALERT_NAMES) - fires == set(), "alerts without a firing unit test"
    # exp_alerts must match exactly, so good series next to the bad ones are silence checks too;
    # an explicit empty evaluation (too early, too few samples, or healthy) is asked of every alert.
    assert set(ALERT_NAMES) - silent == set(), "alerts without a silent unit test"


def test_every_severity_of_every_alert_is_unit_tested() -> None:
    tested = {(e["alertname"], a["exp_labels"]["severity"]) for e in _unit_test_evals() for a in e.get("exp_alerts", [])}
    generated = {(rule["alert"], rule["labels"]["severity"]) for rule in ALERTS}
    assert generated - tested == set()


@pytest.mark.parametrize("rule", ALERTS, ids=lambda r: f"{r['alert']}-{r['labels']['severity']}")
def test_alert_follows_the_conventions(rule: dict[str, Any]) -> None:
    assert re.fullmatch(r"MLMon[A-Z][A-Za-z0-9]+", rule["alert"])
    assert rule["labels"]["severity"] in ("critical", "warning", "info")
    assert rule["labels"]["team"]
    summary, description = rule["annotations"]["summary"], rule["annotations"]["description"]
    assert summary[0].isupper() and summary.endswith(".") and "{{" not in summary, "summary is static"
    assert "{{ $labels." in description or "{{ $value" in description, "description is templated"
    assert rule["annotations"]["runbook_url"].endswith(f"/docs/runbooks/{rule['alert']}.md")


def test_model_alerts_carry_the_team_of_their_model() -> None:
    config = load_config(EXAMPLE_CONFIG)
    teams = {m.name: m.team for m in config.models}
    for rule in ALERTS:
        selected = re.search(r'\{model="([a-z_]+)"', rule["expr"])
        if selected and selected.group(1) in teams:
            assert rule["labels"]["team"] == teams[selected.group(1)], rule["alert"]


def test_runbook_url_base_is_configurable() -> None:
    data = example_config_data()
    data["alerting"]["runbook_url"] = "https://wiki.example.com/ml/runbooks/"
    alerts = yaml.safe_load(render(build_config(data))[ALERTS_FILE])
    urls = {r["annotations"]["runbook_url"] for g in alerts["groups"] for r in g["rules"]}
    assert "https://wiki.example.com/ml/runbooks/MLMonExporterDown.md" in urls
    assert all(url.startswith("https://wiki.example.com/ml/runbooks/MLMon") for url in urls)


@pytest.mark.parametrize("name", ALERT_NAMES)
def test_every_alert_has_a_runbook_that_says_what_why_how_and_what_to_do(name: str) -> None:
    text = (ROOT / "docs" / "runbooks" / f"{name}.md").read_text()
    for section in ("## What it means", "## Likely causes", "## How to debug", "## What to do"):
        assert section in text, f"{name}.md lacks {section}"
    assert "MLMon / " in text, "names the dashboard to look at"


def test_every_alert_is_listed_in_docs_alerts_md() -> None:
    text = (ROOT / "docs" / "alerts.md").read_text()
    assert [name for name in ALERT_NAMES if f"[{name}]" not in text] == []


def test_recording_rules_are_named_level_metric_operation() -> None:
    families = {metric.family for metric in catalog.CATALOG}
    for group in yaml.safe_load((GENERATED / RULES_FILE).read_text())["groups"]:
        for rule in group["rules"]:
            level, metric, operation = rule["record"].split(":")
            assert re.fullmatch(r"[a-z][a-z_]*", level) and re.fullmatch(r"[a-z0-9][a-z0-9_]*", operation), rule["record"]
            # The fleet drift groups (alert_rules/fleet_rules.py) name derived scores such as mlmon_feature_psi.
            if not group["name"].startswith("mlmon-fleet-drift-"):  # mlmon-fleet-quality-* use catalog families
                assert metric in families, f"{rule['record']}: {metric} is not a catalog metric"


def test_every_metric_in_an_expression_is_in_the_catalog_or_recorded() -> None:
    known = {metric.name for metric in catalog.CATALOG} | {r["record"] for r in RECORDS}
    known |= {f"{m.name}_bucket" for m in catalog.CATALOG if m.type == "histogram"}
    for rule in ALERTS + RECORDS:
        names = set(re.findall(r"\b(mlmon_[a-z_]+|[a-z_]+:mlmon_[a-z_]+:[a-z0-9_]+)\b", rule["expr"]))
        assert names <= known, f"{rule.get('alert') or rule['record']}: {sorted(names - known)}"


def test_alert_rules_never_type_a_metric_name() -> None:
    for path in (ROOT / "alert_rules").glob("*.py"):
        # A quoted mlmon_ word that is not a file name (mlmon_rules.yaml) would be a typed metric name.
        assert not re.search(r"[\"']mlmon_[a-z_]+(?![a-z_.])", path.read_text()), f"{path.name} types a metric name"


def test_data_quality_alerts_only_exist_for_feature_types_they_apply_to() -> None:
    data = example_config_data()
    for model in data["models"]:
        model["features"] = [f for f in model["features"] if f["type"] == "numeric"]
    alerts = yaml.safe_load(render(build_config(data))[ALERTS_FILE])
    names = {r["alert"] for g in alerts["groups"] for r in g["rules"]}
    assert "MLMonFeatureNonFinite" in names
    assert "MLMonFeatureUnseenCategory" not in names


def test_thresholds_come_from_the_config() -> None:
    data = example_config_data()
    data["alerting"]["data_quality"]["missing_ratio"] = 0.125
    data["models"][0]["quality"]["thresholds"]["recall"] = {"min": 0.42}
    alerts = render(build_config(data))[ALERTS_FILE]
    assert 'mlmon_feature_missing:ratio_rate10m{model="fraud"} > 0.125' in alerts
    assert "(threshold 12.5%)" in alerts
    assert 'metric="recall"} < 0.42' in alerts


def test_runbook_url_with_an_alert_placeholder_is_used_as_written() -> None:
    """Wikis have no `.md` pages: `{alert}` marks where the name goes and nothing is appended."""
    data = example_config_data()
    data["alerting"]["runbook_url"] = "https://wiki.example.com/display/ML/{alert}?src=alert"
    alerts = yaml.safe_load(render(build_config(data))[ALERTS_FILE])
    urls = {r["alert"]: r["annotations"]["runbook_url"] for g in alerts["groups"] for r in g["rules"]}
    assert urls["MLMonExporterDown"] == "https://wiki.example.com/display/ML/MLMonExporterDown?src=alert"
    assert not [url for url in urls.values() if ".md" in url]


def test_anomaly_alerts_wait_for_the_configured_minimum_history() -> None:
    data = example_config_data()
    data["alerting"].setdefault("traffic", {})["anomaly_min_history"] = "3d"
    alerts = yaml.safe_load(render(build_config(data))[ALERTS_FILE])
    anomalies = [r for g in alerts["groups"] for r in g["rules"] if r["alert"].endswith("Anomaly")]
    assert {r["alert"] for r in anomalies} == {"MLMonPredictionVolumeAnomaly", "MLMonPredictionMeanAnomaly"}
    assert all("offset 3d)" in r["expr"] for r in anomalies)
