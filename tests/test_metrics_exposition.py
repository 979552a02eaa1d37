"""/metrics: Prometheus text and OpenMetrics by content negotiation, clean under the real promtool."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest
from prometheus_client.openmetrics.parser import text_string_to_metric_families as parse_openmetrics

from conftest import OPENMETRICS, LiveExporter, parse_metrics, series
from exporter import catalog
from exporter.tooling import synthetic
from exporter.http.exposition import Exposition, escape_label_value, format_value, lines_for, series_prefix

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


def send_synthetic_traffic(live: LiveExporter, seed: int = 11) -> None:
    """Both example models, two versions, some drift, 10% faulty records and a few rejects."""
    rng = np.random.default_rng(seed)
    for model in synthetic.MODELS:
        for version, drift in (("v1", 0.0), ("v2", 0.7)):
            records = synthetic.records(model, version, 400, rng, drift=drift, faults=0.1)
            records += [{"model": model, "model_version": version, "features": {}, "prediction": "x"}, {"model": "nope"}]
            assert live.post(records).status_code == 200
    columns = synthetic.columns("fraud", 300, rng)
    body = {"model": "fraud", "model_version": "v3", "features": columns["features"], "predictions": columns["predictions"]}
    assert live.post_ok(body)["accepted"] == 300
    live.post(b"{broken")


# ----------------------------------------------------------------------------- negotiation


def test_serves_prometheus_text_by_default(example_exporter: LiveExporter) -> None:
    response = example_exporter.scrape()
    assert response.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"
    assert "# TYPE mlmon_predictions_total counter" in response.text
    assert "# EOF" not in response.text


def test_serves_openmetrics_when_asked_with_family_names_and_eof(example_exporter: LiveExporter) -> None:
    send_synthetic_traffic(example_exporter)
    response = example_exporter.scrape(accept=f"{OPENMETRICS}, text/plain;version=0.0.4;q=0.5")
    assert response.headers["Content-Type"].startswith("application/openmetrics-text; version=1.0.0")
    text = response.text
    assert text.endswith("# EOF\n") and text.count("# EOF") == 1
    # Counters are typed by their family name, without _total; their samples keep _total.
    assert "# TYPE mlmon_predictions counter" in text
    assert "# TYPE mlmon_predictions_total" not in text
    assert re.search(r'^mlmon_predictions_total\{model="fraud",model_version="v1"\} 400$', text, re.M)
    assert "# UNIT mlmon_ingest_received_bytes bytes" in text
    # prometheus_client's strict OpenMetrics parser accepts the whole scrape.
    families = {family.name: family for family in parse_openmetrics(text)}
    assert families["mlmon_predictions"].type == "counter"
    assert families["mlmon_feature_bin"].type == "counter"


def test_both_formats_carry_the_same_samples(example_exporter: LiveExporter) -> None:
    send_synthetic_traffic(example_exporter)
    text = parse_metrics(example_exporter.scrape().text)
    openmetrics = {}
    for family in parse_openmetrics(example_exporter.scrape(accept=OPENMETRICS).text):
        for sample in family.samples:
            openmetrics[(sample.name, frozenset(sample.labels.items()))] = sample.value
    mlmon = lambda samples: {k: v for k, v in samples.items() if k[0].startswith("mlmon_") and "scrape" not in k[0]}
    assert mlmon(openmetrics) == mlmon(text)


def test_every_mlmon_family_has_help_and_a_type_from_the_catalog(example_exporter: LiveExporter) -> None:
    send_synthetic_traffic(example_exporter)
    text = example_exporter.scrape().text
    helps = dict(re.findall(r"^# HELP (mlmon_\w+) (.+)$", text, re.M))
    types = dict(re.findall(r"^# TYPE (mlmon_\w+) (\w+)$", text, re.M))
    assert set(helps) == set(types)
    for name, kind in types.items():
        metric = catalog.by_name(name)
        assert (kind, helps[name]) == (metric.type, metric.help)
    core = {m.name for m in catalog.CATALOG if m.issue == "core"}
    assert core <= set(types), f"never exported: {core - set(types)}"


def test_metrics_and_index_pages_answer_on_the_metrics_listener(example_exporter: LiveExporter) -> None:
    index = example_exporter.http.get(example_exporter.metrics_url + "/", timeout=5)
    assert index.status_code == 200 and "/metrics" in index.text and "fraud" in index.text


def test_exports_model_info_with_the_reference_hash(example_exporter: LiveExporter) -> None:
    send_synthetic_traffic(example_exporter)
    info = series(example_exporter.samples(), "mlmon_model_info", model="fraud")
    assert {dict(k)["model_version"] for k in info} == {"v1", "v2", "v3"}
    assert all(dict(k)["task"] == "binary_classification" and len(dict(k)["reference_hash"]) == 12 for k in info)
    assert set(info.values()) == {1.0}


def test_window_samples_count_the_predictions_just_ingested(example_exporter: LiveExporter) -> None:
    send_synthetic_traffic(example_exporter)
    samples = example_exporter.samples()
    windows = series(samples, "mlmon_window_samples", model="delivery_time", model_version="v1")
    assert {dict(k)["window"]: v for k, v in windows.items()} == {"5m": 400, "1h": 400}


# ----------------------------------------------------------------------------- promtool


def test_promtool_check_metrics_is_clean_on_a_live_scrape(example_exporter: LiveExporter) -> None:
    # promtool (2.42) lints the Prometheus text format only; OpenMetrics is checked by the strict parser above.
    send_synthetic_traffic(example_exporter)
    text = example_exporter.scrape().text
    assert "mlmon_feature_null_total" in text and "mlmon_feature_bin_total" in text
    result = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60)
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


# ----------------------------------------------------------------------------- exposition helpers


def test_escapes_label_values_as_the_text_format_requires() -> None:
    assert escape_label_value('a\\b"c\nd') == 'a\\\\b\\"c\\nd'
    assert series_prefix("m", ("a", "b"), ("x", 'y"')) == 'm{a="x",b="y\\""} '
    assert series_prefix("m", (), ()) == "m "


@pytest.mark.parametrize(
    ("value", "text"),
    [(3, "3"), (np.int64(7), "7"), (0.25, "0.25"), (float("nan"), "NaN"), (float("inf"), "+Inf"), (float("-inf"), "-Inf")],
)
def test_formats_sample_values(value: float, text: str) -> None:
    assert format_value(value) == text


def test_lines_for_formats_integer_and_float_arrays() -> None:
    assert lines_for(["a ", "b "], np.array([1, 2])) == ["a 1", "b 2"]
    assert lines_for(["a ", "b "], np.array([0.5, np.nan])) == ["a 0.5", "b NaN"]


def test_an_empty_exposition_renders_nothing_and_a_family_renders_help_type_and_lines() -> None:
    assert Exposition().render(openmetrics=False) == ""
    out = Exposition()
    out.add_one(catalog.PREDICTIONS, ("m", "v"), 2)
    assert out.render(openmetrics=True).splitlines() == [
        f"# HELP mlmon_predictions {catalog.PREDICTIONS.help}",
        "# TYPE mlmon_predictions counter",
        'mlmon_predictions_total{model="m",model_version="v"} 2',
    ]
