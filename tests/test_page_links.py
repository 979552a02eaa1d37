"""Links from alerts and dashboards to the exporter's model page (`links:` in mlmon.yaml).

Set, every alert carries a `page_url` (and a `dashboard_url` with `links.grafana_url`), rendered by
promtool from the firing series' labels, and the link opens a page the exporter really serves. Unset,
no alert and no dashboard carries a link that could be broken.
"""

from __future__ import annotations

import json
import subprocess
import urllib.parse
from pathlib import Path
from typing import Any

import pytest
import requests
import yaml

from alert_rules.build import ALERTS_FILE, RULES_FILE, render
from dashboards.build import build_all
from exporter.config.errors import ConfigError
from tests.conftest import build_config, example_config_data, toy_record
from tests.support.processes import require_binary


def alerts(config) -> list[dict[str, Any]]:
    return [r for g in yaml.safe_load(render(config)[ALERTS_FILE])["groups"] for r in g["rules"]]


def config_with_links(**links: str):
    data = example_config_data()
    data["links"] = links
    return build_config(data)


def test_without_links_no_alert_and_no_dashboard_carries_a_page_link() -> None:
    data = example_config_data()
    data.pop("links", None)
    config = build_config(data)
    for rule in alerts(config):
        assert set(rule["annotations"]) == {"summary", "description", "runbook_url"}, rule["alert"]
    for name, text in build_all(config).items():
        assert "/models/" not in text, name


def test_every_alert_links_its_model_page_or_for_the_exporter_the_status_page() -> None:
    config = config_with_links(exporter_url="https://mlmon.example.com/", grafana_url="https://grafana.example.com")
    for group in yaml.safe_load(render(config)[ALERTS_FILE])["groups"]:
        model = group["name"].split(".")[2] if group["name"].startswith("mlmon.model.") else None
        for rule in group["rules"]:
            page, dashboard = rule["annotations"]["page_url"], rule["annotations"]["dashboard_url"]
            if model is None:
                assert page == "https://mlmon.example.com/", rule["alert"]
                assert dashboard == "https://grafana.example.com/d/mlmon-exporter", rule["alert"]
            else:
                assert page.startswith(f"https://mlmon.example.com/models/{model}"), (rule["alert"], page)
                assert dashboard.startswith("https://grafana.example.com/d/mlmon-"), (rule["alert"], dashboard)
                assert f"var-model={model}" in dashboard


def test_a_per_version_host_leaves_alerts_about_a_whole_model_without_a_page_link() -> None:
    config = config_with_links(exporter_url="https://{model}-{version}.mlmon.example.com")
    by_name = {r["alert"]: r["annotations"] for r in alerts(config) if r["labels"].get("team") == "risk"}
    assert "page_url" not in by_name["MLMonNoPredictions"]  # no model_version label: no single host
    assert by_name["MLMonFeatureMissing"]["page_url"].startswith(
        "https://fraud-{{ $labels.model_version | urlquery }}.mlmon.example.com/models/fraud?version=")
    exporter = next(r["annotations"] for r in alerts(config) if r["alert"] == "MLMonExporterDown")
    assert "page_url" not in exporter


@pytest.mark.parametrize("url, problem", [
    ("https://{team}.example.com", "placeholders"),
    ("https://user:secret@mlmon.example.com", "user:password"),
    ("mlmon.example.com", "http(s) URL"),
    ("https://mlmon.example.com/?a=b", "query"),
])
def test_a_bad_link_url_is_refused_naming_the_key(url: str, problem: str) -> None:
    with pytest.raises(ConfigError) as error:
        config_with_links(exporter_url=url)
    assert "links.exporter_url" in str(error.value) and problem in str(error.value)


PROMTOOL_TEST = """
rule_files: [rules.yaml, alerts.yaml]
evaluation_interval: 1m
tests:
  - interval: 1m
    input_series:
      - series: 'mlmon_quality_window_samples{{instance="a", model="fraud", model_version="{version}", window="1h"}}'
        values: '1000x60'
      - series: 'mlmon_quality_window_samples{{instance="a", model="fraud", model_version="{version}", window="1d"}}'
        values: '1000x60'
      - series: 'mlmon_quality_ratio{{instance="a", model="fraud", model_version="{version}", window="1d", metric="roc_auc"}}'
        values: '0.5x60'
    alert_rule_test:
      - eval_time: 45m
        alertname: MLMonModelQualityOutOfBounds
        exp_alerts:
          - exp_labels: {{severity: warning, category: quality, team: risk, metric: roc_auc, instance: a, model: fraud, model_version: "{version}", window: 1d}}
            exp_annotations:
              summary: Model quality is outside its configured bounds.
              description: roc_auc of model fraud version {version} is 0.5 over the last 1d (it must stay at or above {bound}).
              runbook_url: https://github.com/mlmon/mlmon/blob/main/docs/runbooks/MLMonModelQualityOutOfBounds.md
              page_url: "{page}"
              dashboard_url: "{dashboard}"
"""


def test_promtool_renders_the_links_with_the_firing_version_escaped(tmp_path: Path) -> None:
    config = config_with_links(exporter_url="http://mlmon.test:8710", grafana_url="http://grafana.test")
    files = render(config)
    (tmp_path / "rules.yaml").write_text(files[RULES_FILE])
    (tmp_path / "alerts.yaml").write_text(files[ALERTS_FILE])
    version = "1.0+build:7"
    bound = f"{config.model('fraud').quality.thresholds['roc_auc'].min:g}"
    quoted = urllib.parse.quote_plus(version)
    # The quality window 1d is no drift window, so the page opens at its default window; the
    # Quality dashboard has a 1d window and gets it.
    test = PROMTOOL_TEST.format(version=version, bound=bound,
                                page=f"http://mlmon.test:8710/models/fraud?version={quoted}#quality",
                                dashboard=f"http://grafana.test/d/mlmon-quality?var-model=fraud&var-version={quoted}"
                                          "&var-window=1d")
    (tmp_path / "links.test.yaml").write_text(test)
    result = subprocess.run([require_binary("promtool"), "test", "rules", "links.test.yaml"], cwd=tmp_path,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_link_of_a_feature_alert_opens_that_feature_on_a_page_the_exporter_serves(start_exporter) -> None:
    config = config_with_links(exporter_url="http://placeholder.invalid")
    template = next(r for r in alerts(config) if r["alert"] == "MLMonFeatureDrift")["annotations"]["page_url"]
    version = "1.0+b"
    path = (template.replace("http://placeholder.invalid", "")
            .replace("{{ $labels.model_version | urlquery }}", urllib.parse.quote_plus(version))
            .replace("{{ with $labels.feature }}#feature-{{ . }}{{ end }}", "#feature-amount"))
    assert "{{" not in path, path
    path, _, anchor = path.partition("#")
    live = start_exporter(config)
    record = {"model": "fraud", "model_version": version, "prediction": 0.1,
              "features": {"amount": 12.5, "account_age_days": 30.0, "country": "US", "channel": "web",
                           "is_international": False}}
    live.post_ok([record])
    page = requests.get(live.metrics_url + path, timeout=10)
    assert page.status_code == 200, page.text[:300]
    assert f'id="{anchor}"' in page.text and f"Version {version}" in page.text


def test_the_model_dashboard_links_the_page_with_its_variables_and_the_tables_link_each_row() -> None:
    config = config_with_links(exporter_url="https://mlmon.example.com")
    model = json.loads(build_all(config)["mlmon-model.json"])
    (page,) = [link for link in model["links"] if link["type"] == "link"]
    assert page["url"] == "https://mlmon.example.com/models/${model}?version=${version:percentencode}&window=${window}"
    assert page["targetBlank"] is True
    text = json.dumps(model)
    assert "#feature-${__data.fields.feature}" in text  # the feature drift table: each row opens its card
    overview = build_all(config)["mlmon-overview.json"]
    assert "https://mlmon.example.com/models/${__data.fields.model}?version=${__data.fields.model_version:percentencode}" \
        in overview


def test_every_runbook_starts_debugging_at_the_page_linked_from_the_alert() -> None:
    runbooks = sorted((Path(__file__).resolve().parents[1] / "docs" / "runbooks").glob("MLMon*.md"))
    assert runbooks
    for path in runbooks:
        first = path.read_text().split("## How to debug", 1)[1].lstrip().split("\n- ", 1)[0]
        assert first.startswith("- **Open the") and "`page_url`" in first, path.name


def test_the_demo_prints_the_page_a_firing_alert_links() -> None:
    from exporter.tooling.stack import describe_payload

    page = "http://localhost:8710/models/fraud?version=v1&window=1h#feature-amount"
    alert = {"status": "firing", "labels": {"alertname": "MLMonFeatureDrift", "model": "fraud", "feature": "amount"},
             "annotations": {"summary": "A feature drifted.", "page_url": page}}
    (line,) = describe_payload({"receiver": "risk-slack", "alerts": [alert]})
    assert line.endswith(f"A feature drifted. -> {page}")
    (resolved,) = describe_payload({"receiver": "risk-slack", "alerts": [{**alert, "status": "resolved"}]})
    assert page not in resolved


def test_models_with_different_windows_get_page_links_without_a_window() -> None:
    data = example_config_data()
    data["links"] = {"exporter_url": "https://mlmon.example.com"}
    data["models"][1]["drift"]["windows"] = ["10m", "1h"]
    model = json.loads(build_all(build_config(data))["mlmon-model.json"])
    (page,) = [link for link in model["links"] if link["type"] == "link"]
    assert page["url"] == "https://mlmon.example.com/models/${model}?version=${version:percentencode}"
    assert "window=${window}" not in json.dumps(model)


def test_config_check_hints_at_links_only_when_the_exporter_url_is_unset(tmp_path: Path, capsys) -> None:
    from exporter.cli import main

    data = example_config_data()
    data.pop("links", None)
    path = tmp_path / "mlmon.yaml"
    path.write_text(yaml.safe_dump(data))
    (tmp_path / "reference").symlink_to(Path(__file__).resolve().parents[1] / "examples" / "reference")
    assert main(["config", "check", "-c", str(path), "--skip-profiles"]) == 0
    assert "hint: links.exporter_url is not set" in capsys.readouterr().err
    data["links"] = {"exporter_url": "https://mlmon.example.com"}
    path.write_text(yaml.safe_dump(data))
    assert main(["config", "check", "-c", str(path), "--skip-profiles"]) == 0
    assert "hint" not in capsys.readouterr().err


def test_no_unit_tested_alert_links_an_empty_version() -> None:
    """An alert marked versioned whose series had no model_version would render `version=` empty."""
    tests = Path(__file__).resolve().parents[1] / "alert_rules" / "tests"
    for path in tests.glob("*.test.yaml"):
        for test in yaml.safe_load(path.read_text())["tests"]:
            for case in test.get("alert_rule_test", []):
                for alert in case.get("exp_alerts", []):
                    for key in ("page_url", "dashboard_url"):
                        url = alert["exp_annotations"].get(key, "")
                        query = urllib.parse.parse_qs(urllib.parse.urlsplit(url).query, keep_blank_values=True)
                        assert all(v != [""] for v in query.values()), (path.name, case["alertname"], url)
