"""The generated Grafana dashboards follow mlmon's conventions, and every query is valid PromQL."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from alert_rules.alerts import alert_groups
from exporter import catalog
from exporter.cli import main
from exporter.config.model import load_config, parse_config
from dashboards import links
from dashboards.build import DASHBOARDS, build_all, stale
from dashboards.inspect import DashboardQuery, panels, queries, substitute
from dashboards.layout import Section, place
from dashboards.panels import Query, timeseries

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "mlmon.yaml"
GENERATED = ROOT / "dashboards" / "generated"
MODERN_TYPES = {"timeseries", "stat", "table", "heatmap", "bargauge", "histogram"}
EXPECTED_UIDS = {"mlmon-overview", "mlmon-model", "mlmon-quality", "mlmon-versions", "mlmon-exporter", "mlmon-rollouts"}
# The exporter dashboard is about the sidecar process, not a model: it selects scrape jobs instead.
WITHOUT_MODEL_VARIABLES = {"mlmon-exporter"}
# Values Grafana would put in for the variables, for promtool (any valid value makes the same syntax).
VARIABLE_VALUES = {
    "model": "fraud", "version": "v1", "version_a": "v1", "version_b": "v2", "challenger": ".*", "window": "5m",
    "feature": ".*", "segment": ".*",
    "job": "mlmon", "cluster": ".*", "namespace": ".*", "instance": ".*", "__rate_interval": "1m", "__range": "1h", "__interval": "15s",
}
PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


@pytest.fixture(scope="module")
def config():
    return load_config(EXAMPLE)


@pytest.fixture(scope="module")
def dashboards(config) -> dict[str, dict[str, Any]]:
    return {json.loads(text)["uid"]: json.loads(text) for text in build_all(config).values()}


def content_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    return [p for p in panels(dashboard) if p["type"] != "row"]


def config_with(**changes: Any):
    data = json.loads(json.dumps(load_config(EXAMPLE).model_dump(mode="json", by_alias=True)))
    for dotted, value in changes.items():
        node = data
        *path, last = dotted.split(".")
        for key in path:
            node = node[int(key)] if isinstance(node, list) else node[key]
        node[last] = value
    return parse_config(data, base_dir=EXAMPLE.parent)


def test_builds_one_dashboard_per_file_with_the_stable_uids(dashboards):
    assert set(dashboards) == EXPECTED_UIDS
    assert {name.removesuffix(".json") for name in DASHBOARDS} == EXPECTED_UIDS


def test_every_dashboard_has_the_mlmon_tag_and_an_mlmon_title(dashboards):
    for uid, dashboard in dashboards.items():
        assert "mlmon" in dashboard["tags"], uid
        assert dashboard["title"].startswith("MLMon / "), uid
        assert dashboard["description"], uid


def test_every_dashboard_uses_a_recent_schema_without_legacy_keys(dashboards):
    for uid, dashboard in dashboards.items():
        assert dashboard["schemaVersion"] >= 36, uid
        assert not {"rows", "style", "hideControls", "sharedCrosshair"} & set(dashboard), uid


def test_every_dashboard_has_a_prometheus_datasource_variable(dashboards):
    for uid, dashboard in dashboards.items():
        variables = {v["name"]: v for v in dashboard["templating"]["list"]}
        assert variables["datasource"]["type"] == "datasource", uid
        assert variables["datasource"]["query"] == "prometheus", uid


def test_model_dashboards_have_model_and_version_variables(dashboards):
    for uid, dashboard in dashboards.items():
        names = {v["name"] for v in dashboard["templating"]["list"]}
        if uid in WITHOUT_MODEL_VARIABLES:
            continue
        assert "model" in names, uid
        assert names & {"version", "version_a", "challenger"}, uid
    model_variables = {v["name"] for v in dashboards["mlmon-model"]["templating"]["list"]}
    assert {"datasource", "model", "version", "window"} <= model_variables


def window_options(dashboard: dict[str, Any]) -> list[str]:
    window = next(v for v in dashboard["templating"]["list"] if v["name"] == "window")
    return [o["value"] for o in window["options"]]


def test_window_variable_offers_the_windows_the_exporter_computes(dashboards):
    # examples/mlmon.yaml: drift windows [5m, 1h] for both models, quality windows [1h, 1d].
    assert window_options(dashboards["mlmon-model"]) == ["5m", "1h"]
    assert window_options(dashboards["mlmon-versions"]) == ["5m", "1h"]
    assert window_options(dashboards["mlmon-quality"]) == ["1h", "1d"]


def test_every_panel_has_a_unit_and_a_description(dashboards):
    for uid, dashboard in dashboards.items():
        for panel in content_panels(dashboard):
            assert panel.get("description"), (uid, panel["title"])
            assert panel["fieldConfig"]["defaults"].get("unit"), (uid, panel["title"])


def test_no_panel_uses_a_legacy_type(dashboards):
    for uid, dashboard in dashboards.items():
        types = {p["type"] for p in content_panels(dashboard)}
        assert types <= MODERN_TYPES, (uid, types - MODERN_TYPES)


def test_panel_ids_are_unique_within_a_dashboard(dashboards):
    for uid, dashboard in dashboards.items():
        ids = [p["id"] for p in panels(dashboard)]
        assert len(ids) == len(set(ids)), uid


def test_panels_fit_the_grid_without_overlapping(dashboards):
    for uid, dashboard in dashboards.items():
        taken: dict[tuple[int, int], str] = {}
        for panel in panels(dashboard):
            pos = panel["gridPos"]
            assert 0 <= pos["x"] and pos["x"] + pos["w"] <= 24 and pos["h"] > 0, (uid, panel["title"])
            for x in range(pos["x"], pos["x"] + pos["w"]):
                for y in range(pos["y"], pos["y"] + pos["h"]):
                    assert (x, y) not in taken, f"{uid}: {panel['title']!r} overlaps {taken[(x, y)]!r}"
                    taken[(x, y)] = panel["title"]


def test_every_panel_and_query_uses_the_datasource_variable_as_an_object(dashboards):
    current = {"type": "prometheus", "uid": "${datasource}"}
    for uid, dashboard in dashboards.items():
        for panel in content_panels(dashboard):
            assert panel["datasource"] == current, (uid, panel["title"])
            for target in panel["targets"]:
                assert target["datasource"] == current, (uid, panel["title"])
        for variable in dashboard["templating"]["list"]:
            if variable["type"] == "query":
                assert variable["datasource"] == current, (uid, variable["name"])


def test_bar_gauges_and_heatmaps_use_the_current_panel_schema(dashboards):
    for dashboard in dashboards.values():
        for panel in content_panels(dashboard):
            if panel["type"] == "bargauge":
                assert "fieldOptions" not in panel["options"]
                assert "reduceOptions" in panel["options"]
            if panel["type"] == "heatmap":
                assert panel["options"]["calculate"] is False
                assert not {"cards", "xAxis", "yAxis", "dataFormat"} & set(panel)


def test_rates_use_the_rate_interval(dashboards):
    for query in all_queries(dashboards):
        for window in re.findall(r"\b(?:rate|irate)\([^\[]*\[([^\]]+)\]", query.expr):
            assert window == "$__rate_interval", query


def test_every_mlmon_metric_queried_is_in_the_catalog(dashboards):
    known = {m.name for m in catalog.CATALOG}
    known |= {f"{m.name}{suffix}" for m in catalog.CATALOG if m.type == "histogram" for suffix in ("_bucket", "_sum", "_count")}
    for query in all_queries(dashboards):
        for name in re.findall(r"(?<![:\w])mlmon_[a-z0-9_]+", query.expr):  # `a:mlmon_x:b` is a recorded series
            assert name in known, (name, query)


def test_every_recorded_series_queried_is_one_the_rules_record(dashboards):
    """Fleet panels read recording rules; a name the rules do not record would be a dead panel."""
    from alert_rules.recording import recording_groups
    from dashboards.variables import window_names

    config = load_config(EXAMPLE)
    recorded = {rule.record for group in recording_groups(config) for rule in group.rules}
    windows = {"mlmon-quality": window_names(config, "quality")}
    queried = set()
    for query in all_queries(dashboards):
        for name in re.findall(r"\b[a-z_]+:mlmon_[a-z0-9_]+:[$a-z0-9_]+", query.expr):
            options = windows.get(query.dashboard, window_names(config))
            queried |= {name.replace("$window", w) for w in options} if "$window" in name else {name}
    assert queried, "the drift and quality panels should read the fleet recording rules"
    assert queried <= recorded, queried - recorded


def test_no_metric_name_is_typed_in_the_dashboards_package():
    for path in (ROOT / "dashboards").glob("*.py"):
        literals = re.findall(r"""["']mlmon_[a-z_]+""", path.read_text())
        assert not literals, (path.name, literals)


def test_data_quality_panel_thresholds_equal_the_alert_thresholds():
    config = config_with(**{"alerting.data_quality.missing_ratio": 0.07})
    model = json.loads(build_all(config)["mlmon-model.json"])
    panel = next(p for p in content_panels(model) if p["title"] == "Feature values: missing or null")
    steps = panel["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert steps[1]["value"] == 0.07


def mixed_drift_config():
    """Two models with different drift methods and thresholds."""
    return config_with(**{"models.0.drift.warning": 0.2, "models.0.drift.critical": 0.4,
                          "models.1.drift.method": "js", "models.1.drift.warning": 0.05,
                          "models.1.drift.critical": 0.1})


def test_drift_panel_colours_equal_each_models_drift_thresholds():
    model = json.loads(build_all(mixed_drift_config())["mlmon-model.json"])
    panel = panel_titled(model, "Feature drift score")
    assert [s["value"] for s in panel["fieldConfig"]["defaults"]["thresholds"]["steps"]] == [None, 0.2, 0.4]
    (override,) = panel["fieldConfig"]["overrides"]
    assert override["matcher"] == {"id": "byRegexp", "options": "^delivery_time( .*)?$"}
    assert [s["value"] for s in override["properties"][0]["value"]["steps"]] == [None, 0.05, 0.1]


def test_drift_queries_read_each_models_own_method():
    model = json.loads(build_all(mixed_drift_config())["mlmon-model.json"])
    expr = panel_titled(model, "Feature drift score")["targets"][0]["expr"]
    arms = dict(re.findall(r'mlmon_feature_(\w+):\$window\{[^}]*,model=~"(\w+)"\}', expr))
    assert arms == {"psi": "fraud", "js": "delivery_time"}, expr


def test_drift_panels_read_the_fleet_rules_and_open_at_the_window_the_alerts_judge():
    model = json.loads(build_all(load_config(EXAMPLE))["mlmon-model.json"])
    window = next(v for v in model["templating"]["list"] if v["name"] == "window")
    assert window["current"]["value"] == "1h" and [o["value"] for o in window["options"]] == ["5m", "1h"]
    for title in ("Feature drift score", "Feature drift over time", "Prediction drift"):
        expr = panel_titled(model, title)["targets"][0]["expr"]
        assert expr.startswith("max by (") and ":$window{" in expr, (title, expr)
        assert "instance" not in expr and "mlmon_feature_drift_score" not in expr, (title, expr)


def test_reference_distributions_collapse_pods_with_max_never_sum():
    for text in build_all(load_config(EXAMPLE)).values():
        for query in queries(json.loads(text)):
            if "reference_ratio" in query.expr and query.where.startswith("panel"):
                # Every reference ratio selector sits directly in a max (the share) or a group (its bin_label).
                wrapped = re.findall(r"(\w+) by \([^)]*\) \(mlmon_\w+_reference_ratio\{", query.expr)
                assert wrapped and set(wrapped) <= {"max", "group"}, query
                assert query.expr.count("_reference_ratio{") == len(wrapped), query


def test_multivariate_drift_uses_the_psi_defaults_for_models_not_scored_by_psi():
    model = json.loads(build_all(mixed_drift_config())["mlmon-model.json"])
    panel = next(p for p in content_panels(model) if p["title"] == "Multivariate drift" and p["type"] == "stat")
    (override,) = panel["fieldConfig"]["overrides"]
    assert [s["value"] for s in override["properties"][0]["value"]["steps"]] == [None, 0.1, 0.25]


def test_min_samples_thresholds_follow_each_model():
    config = config_with(**{"models.1.drift.min_samples": 2000})
    model = json.loads(build_all(config)["mlmon-model.json"])
    panel = next(p for p in content_panels(model) if p["title"] == "Samples in window" and p["type"] == "stat")
    assert panel["fieldConfig"]["defaults"]["thresholds"]["steps"][1]["value"] == 500
    (override,) = panel["fieldConfig"]["overrides"]
    assert override["matcher"]["options"].startswith("^delivery_time")
    assert override["properties"][0]["value"]["steps"][1]["value"] == 2000


def rich_config():
    """The example plus quality thresholds, label alerts and a sensitive attribute: every optional panel."""
    return config_with(**{
        "models.0.quality.thresholds": {"accuracy": {"min": 0.93}, "brier": {"max": 0.2}},
        "models.0.segments": [{"attribute": "region", "values": ["na", "eu"]}],
        "alerting.quality.min_labelled_ratio": 0.3,
        "alerting.quality.max_label_delay": "2h",
        "alerting.bias.max_difference": 0.15,
    })


def panel_titled(dashboard: dict[str, Any], title: str) -> dict[str, Any]:
    return next(p for p in content_panels(dashboard) if p["title"] == title)


def test_quality_panel_colours_each_metric_by_its_configured_bounds():
    quality = json.loads(build_all(rich_config())["mlmon-quality.json"])
    overrides = panel_titled(quality, "Quality vs business thresholds")["fieldConfig"]["overrides"]
    by_name = {o["matcher"]["options"]: o["properties"][0]["value"]["steps"] for o in overrides
               if o["matcher"]["id"] == "byName"}
    assert by_name["fraud accuracy"] == [{"color": "red", "value": None}, {"color": "green", "value": 0.93}]
    assert by_name["fraud brier"] == [{"color": "green", "value": None}, {"color": "red", "value": 0.2}]


def test_quality_threshold_panel_is_left_out_when_no_model_sets_thresholds():
    config = config_with(**{"models.0.quality.thresholds": {}, "models.1.quality.thresholds": {}})
    quality = json.loads(build_all(config)["mlmon-quality.json"])
    titles = {p["title"] for p in content_panels(quality)}
    assert "Quality vs business thresholds" not in titles


def test_bias_and_label_panels_use_the_alerting_bounds():
    quality = json.loads(build_all(rich_config())["mlmon-quality.json"])
    steps = panel_titled(quality, "Bias measures")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert [s["value"] for s in steps] == [None, -0.15, 0.15]
    labelled = panel_titled(quality, "Labelled share")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert labelled[1]["value"] == 0.3
    delay = panel_titled(quality, "Label delay")["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert delay[1]["value"] == 7200


@pytest.mark.parametrize("make_config", [lambda: load_config(EXAMPLE), rich_config], ids=["example", "rich"])
def test_runbook_links_name_alerts_the_rules_generate(make_config):
    config = make_config()
    dashboards = {json.loads(t)["uid"]: json.loads(t) for t in build_all(config).values()}
    alerts = {rule.alert for group in alert_groups(config) for rule in group.rules}
    base = config.alerting.runbook_url
    linked = set()
    for dashboard in dashboards.values():
        for panel in content_panels(dashboard):
            for link in panel["links"]:
                if link["url"].startswith(base):
                    linked.add(link["url"].removeprefix(base + "/").removesuffix(".md"))
    assert linked, "no panel links a runbook"
    assert linked <= alerts, linked - alerts
    missing = [a for a in linked if not (ROOT / "docs" / "runbooks" / f"{a}.md").exists()]
    assert not missing, f"panels link runbooks that do not exist: {missing}"


def test_links_between_dashboards_point_at_existing_uids(dashboards):
    found = 0
    for dashboard in dashboards.values():
        text = json.dumps(dashboard)
        for uid in re.findall(r"/d/([a-z0-9-]+)", text):
            assert uid in EXPECTED_UIDS, uid
            found += 1
        assert dashboard["links"][0]["tags"] == [links.TAG]
    assert found


def test_committed_dashboards_equal_what_the_build_generates(config):
    assert stale(config, GENERATED) == []


def test_check_exits_1_when_a_committed_dashboard_is_stale(tmp_path):
    out = tmp_path / "generated"
    assert main(["dashboards", "build", "--config", str(EXAMPLE), "--out", str(out)]) == 0
    assert main(["dashboards", "build", "--config", str(EXAMPLE), "--out", str(out), "--check"]) == 0
    path = out / "mlmon-model.json"
    path.write_text(path.read_text().replace("MLMon / Model", "MLMon / Edited by hand"))
    assert main(["dashboards", "build", "--config", str(EXAMPLE), "--out", str(out), "--check"]) == 1


def test_layout_wraps_panels_onto_a_new_line_when_the_grid_is_full():
    wide = [timeseries(f"p{i}", "d", "short", [Query("up")], width=10) for i in range(3)]
    placed = place([Section("s", wide)])
    positions = [(p.gridPos.x, p.gridPos.y) for p in placed]
    assert positions == [(0, 0), (0, 1), (10, 1), (0, 9)]


def test_substitute_replaces_grafana_variables_and_refuses_unknown_ones():
    assert substitute('rate(x{m="$model"}[${__rate_interval}])', {"model": "a", "__rate_interval": "1m"}) == \
        'rate(x{m="a"}[1m])'
    with pytest.raises(KeyError):
        substitute("x{m=\"$nope\"}", {})


def all_queries(dashboards: dict[str, dict[str, Any]]) -> list[DashboardQuery]:
    return [q for d in dashboards.values() for q in queries(d)]


def promtool_check(exprs: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    """Every expression as a recording rule in one file: `promtool check rules` parses each."""
    rules = [{"record": f"mlmon_dashboard_check:query{i}", "expr": expr} for i, expr in enumerate(exprs)]
    path = tmp_path / "dashboard_queries.yml"
    path.write_text(json.dumps({"groups": [{"name": "dashboards", "rules": rules}]}))  # JSON is valid YAML
    return subprocess.run([PROMTOOL, "check", "rules", str(path)], capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("make_config", [lambda: load_config(EXAMPLE), rich_config, mixed_drift_config],
                         ids=["example", "rich", "mixed-drift-methods"])
def test_every_query_passes_promtool_check_rules(make_config, tmp_path):
    dashboards = {json.loads(t)["uid"]: json.loads(t) for t in build_all(make_config()).values()}
    checked = all_queries(dashboards)
    result = promtool_check([substitute(q.expr, VARIABLE_VALUES) for q in checked], tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(checked)} rules found" in result.stdout


def test_promtool_check_catches_a_broken_query(tmp_path):
    result = promtool_check(['sum by (model) (rate(mlmon_predictions_total{model="x"}[1m])'], tmp_path)
    assert result.returncode != 0


def test_rollouts_panels_turn_red_where_the_generated_gates_fail(config, dashboards):
    """The champion-vs-challenger thresholds are the gates' (alert_rules/rollouts.py), model by model."""
    from alert_rules.rollouts import gates

    panels = {p["title"]: p for p in content_panels(dashboards["mlmon-rollouts"])}
    fraud = config.model("fraud")
    limits = {g.name: g.max_pass for g in gates(fraud)}

    def red_from(title: str) -> float:
        steps = panels[title]["fieldConfig"]["defaults"]["thresholds"]["steps"]
        return next(s["value"] for s in steps if s["color"] == "red")

    assert red_from("Prediction homogeneity: chi-square / critical value") == limits["homogeneity"] == 1.0
    assert red_from("Challenger quality: two-proportion z (positive = worse)") == limits["quality"] == 2.3263
    assert red_from("Challenger drift grade vs the reference") == fraud.rollout.max_drift_grade + 1
    sizes = panels["Arm sizes"]["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert sizes[0]["color"] == "red" and sizes[1]["value"] == fraud.rollout.min_samples
    # the quality z reads the metric the gate and MLMonChallengerWorse read
    assert f'metric="{fraud.rollout.quality_metric}"' in panels["Challenger quality: two-proportion z (positive = worse)"]["targets"][0]["expr"]
    annotations = [a for a in dashboards["mlmon-rollouts"]["annotations"]["list"] if a.get("name") == "Reference switch"]
    assert len(annotations) == 1 and "mlmon_reference_switches_total" in annotations[0]["expr"]
