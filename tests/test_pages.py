"""The status and drift pages, rendered by headless Chromium against a running exporter with drifting traffic."""

from __future__ import annotations

import html
import re
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from exporter.config.model import MlmonConfig
from exporter.profiles.bin_labels import display_labels
from exporter.profiles.profile import Profile, categorical_binning, numeric_binning
from exporter.tooling.synthetic import records
from tests.conftest import EXAMPLES, LiveExporter, build_config, toy_model_data, toy_record
from tests.headless import CHROMIUM, LoadedPage, load_page

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="needs Debian's chromium (make test installs it)")

FRAUD_FEATURES = ("amount", "account_age_days", "country", "channel", "is_international")
SCRIPT = "<script>alert('x')</script>"


def drifting(live: LiveExporter) -> LiveExporter:
    """fraud v1 fully drifted, delivery_time v1 clean: enough samples for verdicts in the 5m window."""
    rng = np.random.default_rng(17)
    live.post_ok(records("fraud", "v1", 3000, rng, drift=1.0))
    live.post_ok(records("delivery_time", "v1", 3000, rng, drift=0.0))
    return live


def assert_offline_and_clean(page: LoadedPage, live: LiveExporter) -> None:
    """Nothing loaded from anywhere but the exporter itself, and nothing logged as an error."""
    foreign = [url for url in page.requests if not url.startswith((live.metrics_url, "data:"))]
    assert foreign == []
    assert page.console_errors == []
    sources = re.findall(r"""(?:src|href)\s*=\s*["']?(https?://[^"' >]+)""", page.dom)
    assert [s for s in sources if not s.startswith(live.metrics_url) and "/runbooks/" not in s and "/docs" not in s] == []


def sections(dom: str) -> list[tuple[str, str, str]]:
    """(feature, severity, inner HTML) of every feature section, in page order."""
    found = re.findall(r'<section class="feature feature"[^>]*data-feature="([^"]*)" data-severity="([^"]*)">(.*?)</section>',
                       dom, re.S)
    return [(html.unescape(name), severity, body) for name, severity, body in found]


def test_the_status_page_shows_models_traffic_references_and_firing_verdicts(example_exporter: LiveExporter) -> None:
    live = drifting(example_exporter)
    page = load_page(f"{live.metrics_url}/")
    assert 'href="/models/fraud"' in page.dom and 'href="/models/delivery_time"' in page.dom
    assert 'href="/models/fraud?version=v1"' in page.dom
    assert 'href="/metrics"' in page.dom and "MLMonFeatureDrift.md" in page.dom
    fraud_row = page.dom[page.dom.index('href="/models/fraud"'):page.dom.index('href="/models/delivery_time"')]
    assert "dataset drift" in fraud_row and "3,000" in fraud_row
    reference = Profile.read(EXAMPLES / "reference" / "fraud.json")
    assert reference.short_hash in fraud_row
    delivery_row = page.dom[page.dom.index('href="/models/delivery_time"'):]
    assert "nothing firing" in delivery_row
    assert_offline_and_clean(page, live)


def test_the_drift_page_draws_one_chart_per_feature_in_feature_units_drifted_first(example_exporter: LiveExporter) -> None:
    live = drifting(example_exporter)
    page = load_page(f"{live.metrics_url}/models/fraud?window=5m")
    features = sections(page.dom)
    assert sorted(name for name, _, _ in features) == sorted(FRAUD_FEATURES)
    assert [body.count('<svg class="chart"') for _, _, body in features] == [1] * len(FRAUD_FEATURES)
    severities = [severity for _, severity, _ in features]
    assert severities[0] in ("critical", "warning", "drifted")
    assert severities == sorted(severities, key=["critical", "warning", "drifted", "none", "no_verdict"].index)
    amount = next(body for name, _, body in features if name == "amount")
    labels = display_labels(Profile.read(EXAMPLES / "reference" / "fraud.json").features["amount"])
    shown = [html.unescape(t) for t in re.findall(r'<text class="bin-label"[^>]*>([^<]*)</text>', amount)]
    assert shown == list(labels) and shown[0].startswith("< ") and shown[-1].startswith("> ")
    assert "p-value (KS)" in amount and "N (window)" in amount and "drifted:" in amount
    for part in ("Multivariate", "Prediction", "Data quality"):
        assert f">{part}" in page.dom
    assert_offline_and_clean(page, live)


@pytest.fixture
def script_config(tmp_path: Path) -> MlmonConfig:
    """The toy model with a reference category that is markup, and an ampersand one."""
    colors = ["red"] * 50 + [SCRIPT] * 30 + ["a&b"] * 20
    features = {
        "x": numeric_binning("x", np.arange(100.0), bins=10),
        "color": categorical_binning("color", colors, max_categories=5),
        "flag": categorical_binning("flag", ["false"] * 60 + ["true"] * 40, max_categories=2, kind="boolean"),
    }
    Profile("toy", 100, features, numeric_binning("score", np.arange(100.0) / 100, bins=4)).write(tmp_path / "toy.json")
    return build_config({"models": [toy_model_data()]}, base_dir=tmp_path)


def test_a_category_named_like_markup_is_shown_as_text(start_exporter: Callable[[MlmonConfig], LiveExporter],
                                                       script_config: MlmonConfig) -> None:
    live = start_exporter(script_config)
    live.post_ok([toy_record(color=SCRIPT) for _ in range(20)] + [toy_record(color="a&b") for _ in range(5)])
    page = load_page(f"{live.metrics_url}/models/toy")
    assert "&lt;script&gt;alert('x')&lt;/script&gt;" in page.dom
    assert "<script" not in page.dom  # no element came out of the name
    assert page.console_errors == []


def test_unknown_models_versions_and_windows_get_an_html_answer_that_escapes_them(example_exporter: LiveExporter) -> None:
    base = example_exporter.metrics_url
    missing = example_exporter.http.get(f"{base}/models/%3Cscript%3E")
    assert missing.status_code == 404 and "<script" not in missing.text and "&lt;script&gt;" in missing.text
    assert example_exporter.http.get(f"{base}/models/fraud?window=7m").status_code == 400
    assert example_exporter.http.get(f"{base}/models/fraud?version=nope").status_code == 404
    ok = example_exporter.http.get(f"{base}/models/fraud?window=1h")
    assert ok.status_code == 200 and ok.headers["Content-Type"].startswith("text/html") and "No traffic seen" in ok.text


def test_the_json_drift_report_names_bins_in_feature_units_too(example_exporter: LiveExporter) -> None:
    live = drifting(example_exporter)
    report = live.http.get(f"{live.ingest_url}/v1/models/fraud/drift").json()["versions"][0]
    amount = next(f for f in report["features"] if f["name"] == "amount")
    profile = Profile.read(EXAMPLES / "reference" / "fraud.json").features["amount"]
    assert amount["bins"][0] == "00"  # the label values of the metrics stay as they were
    assert amount["bin_labels"] == list(display_labels(profile))
    assert amount["edges"] == profile.edges.tolist()
    assert all(top["label"] in amount["bin_labels"] for top in amount["top_bins"])
    country = next(f for f in report["features"] if f["name"] == "country")
    assert country["edges"] is None and country["bin_labels"][-1] == "(other)"


def test_a_version_still_capturing_its_reference_says_so_on_both_pages(
        start_exporter: Callable[[MlmonConfig], LiveExporter], toy_dir: Path) -> None:
    live = start_exporter(build_config({"models": [toy_model_data(reference={"capture": 1000})]}, base_dir=toy_dir))
    live.post_ok([toy_record() for _ in range(10)])
    status = live.http.get(f"{live.metrics_url}/")
    assert status.status_code == 200 and "capturing 10/1,000" in status.text and "captured from live traffic" not in status.text
    page = live.http.get(f"{live.metrics_url}/models/toy")
    assert page.status_code == 200 and "still being captured" in page.text and '<svg class="chart"' not in page.text
