"""Drift per segment value (models[].segments with drift: true): state, verdicts, snapshots, config, fleet rules.

The example config watches amount and account_age_days per country. The in-process tests feed a real
StateStore through the ingest decoder and read the /metrics rendering; the fleet test runs two
exporters and a real Prometheus with the generated rules.
"""

from __future__ import annotations

import copy
import json
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import requests

from conftest import build_config, example_config_data
from alert_rules.fleet_rules import SEGMENTS, bins_name, fleet_recording_rules, rule_name
from alert_rules.fleet_verdict import names, verdict_groups_for
from exporter import catalog as c
from exporter.config.errors import ConfigError
from exporter.http.collector import collect
from exporter.http.exporter_stats import ExporterStats
from exporter.http.server import load_profiles, start
from exporter.ingest.decode import decode_body
from exporter.state import snapshot
from exporter.state.store import StateStore
from exporter.stats import drift
from exporter.tooling import synthetic
from tests.support.processes import PrometheusProcess, require_binary
from tests.test_fleet_rules import FACTOR, record_factors, samples_at, scraped_since, settled_at, write_rules

COUNTRIES = ("US", "GB", "DE", "FR", "IN", "BR", "NG", "JP", "__other__")


class Clock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def store_of(data: dict[str, Any] | None = None, clock: Clock | None = None) -> StateStore:
    config = build_config(data or example_config_data())
    return StateStore(config, load_profiles(config), clock=clock or Clock())


def feed(store: StateStore, records: list[dict[str, Any]]) -> None:
    decoded = decode_body(json.dumps(records).encode(), "application/json", store.config, 100_000)
    for batch in decoded.batches:
        store.ingest(batch)


def metric_values(text: str, name: str) -> dict[tuple[tuple[str, str], ...], float]:
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{"):
            head, value = line.rsplit(" ", 1)
            labels = tuple(tuple(p.split("=", 1)) for p in head[len(name) + 1:-1].replace('"', "").split(","))
            out[labels] = float(value)
    return out


def pick(values: dict[tuple[tuple[str, str], ...], float], **want: str) -> dict[tuple[tuple[str, str], ...], float]:
    return {k: v for k, v in values.items() if want.items() <= dict(k).items()}


def one(values: dict[tuple[tuple[str, str], ...], float], **want: str) -> float:
    hits = pick(values, **want)
    assert len(hits) == 1, (want, hits)
    return next(iter(hits.values()))


def rendered(store: StateStore) -> str:
    return collect(store, ExporterStats([m.name for m in store.config.models]), store.clock()).render(False)


def ng_drifted_records(seed: int, n: int = 30_000, factor: float = 3.0) -> list[dict[str, Any]]:
    """Reference-like fraud traffic, except that every amount of a record from NG (2 % of records) is `factor`
    times larger; 30,000 records give NG about 600, past min_samples (500)."""
    records = synthetic.records("fraud", "v1", n, np.random.default_rng(seed))
    for record in records:
        if record["segments"]["country"] == "NG":
            record["features"]["amount"] *= factor
    return records


def test_only_the_drifted_segment_value_fires_while_the_whole_model_barely_moves() -> None:
    store = store_of()
    feed(store, ng_drifted_records(seed=13))
    text = rendered(store)
    verdicts = metric_values(text, c.SEGMENT_FEATURE_DRIFT_DETECTED.name)
    scores = metric_values(text, c.SEGMENT_FEATURE_DRIFT_SCORE.name)
    assert one(verdicts, segment="NG", feature="amount", window="1h") == 1
    assert one(scores, segment="NG", feature="amount", window="1h") >= 0.25  # critical for NG alone
    judged = pick(verdicts, feature="amount", window="1h")
    assert len(judged) >= 5  # the common countries have a verdict at N >= min_samples
    assert all(v == 0 for k, v in judged.items() if dict(k)["segment"] != "NG")
    assert all(v == 0 for v in pick(verdicts, feature="account_age_days", window="1h").values())
    whole = metric_values(text, c.FEATURE_DRIFT_SCORE.name)
    # The whole model: NG is a few percent of the traffic, so its PSI stays below the warning line.
    assert one(whole, feature="amount", window="1h", method="psi") < 0.1


def test_segment_counts_equal_an_independent_binning_of_the_same_rows_even_with_bad_values() -> None:
    store = store_of()
    records = synthetic.records("fraud", "v1", 3000, np.random.default_rng(5), faults=0.1)
    for record in records[::7]:
        record.pop("segments")  # no segments object: __other__
    for record in records[::11]:
        record["segments"] = {"country": ["NG"]}  # not a string: __other__
    feed(store, records)
    state = store.versions["fraud"]["v1"]
    binning = state.layout.binnings[0]  # amount
    counters = metric_values(rendered(store), c.SEGMENT_FEATURE_BIN.name)
    for country in COUNTRIES:
        rows = [r for r in records if (r.get("segments") or {}).get("country") in (country,)
                or (country == "__other__" and (r.get("segments") or {}).get("country") not in COUNTRIES[:-1])]
        values = [r["features"].get("amount") for r in rows]
        finite = np.array([v for v in values if type(v) in (int, float) and np.isfinite(v)], dtype=float)
        expected = np.bincount(binning.assign(finite), minlength=binning.n_bins)
        got = [one(counters, segment=country, feature="amount", bin=label) for label in binning.labels]
        assert got == expected.tolist(), country
    # and the values of all segments add up to the whole model's bins
    whole = state.cumulative[state.layout.slice(0)]
    total = sum(np.array([one(counters, segment=s, feature="amount", bin=b) for b in binning.labels]) for s in COUNTRIES)
    assert total.tolist() == whole.tolist()


def test_a_restored_store_keeps_the_per_segment_state(tmp_path: Path) -> None:
    clock = Clock()
    store = store_of(clock=clock)
    for minute in range(5):
        clock.now += 60
        feed(store, ng_drifted_records(seed=minute, n=6000))  # NG: about 600 in all
    path = tmp_path / snapshot.FILE_NAME
    snapshot.save(path, store, {})
    restored = store_of(clock=clock)
    assert snapshot.restore(path, restored, {}).result == "restored"
    text = rendered(restored)
    assert text == rendered(store)
    assert one(metric_values(text, c.SEGMENT_FEATURE_DRIFT_DETECTED.name), segment="NG", feature="amount", window="1h") == 1


def with_segments(**changes: Any) -> dict[str, Any]:
    data = copy.deepcopy(example_config_data())
    data["models"][0]["segments"][0].update(changes)
    return data


@pytest.mark.parametrize("changes, problem", [
    ({"features": ["amount", "nope"]}, "features nope are not features of the model"),
    ({"drift": False, "features": ["amount"]}, "`features` needs `drift: true`"),
])
def test_the_config_refuses_segment_drift_it_cannot_do(changes: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError, match=problem):
        build_config(with_segments(**changes))


def test_a_regression_model_may_watch_drift_per_segment_but_not_bias() -> None:
    data = copy.deepcopy(example_config_data())
    data["models"][1]["segments"] = [{"attribute": "city", "values": ["paris"], "drift": True}]
    build_config(data)
    data["models"][1]["segments"] = [{"attribute": "city", "values": ["paris"]}]
    with pytest.raises(ConfigError, match="bias measures"):
        build_config(data)


def test_per_segment_fleet_rules_on_two_replicas_equal_the_python_scores_of_the_summed_counts(tmp_path: Path) -> None:
    require_binary("prometheus")
    data = copy.deepcopy(example_config_data())
    data["models"] = data["models"][:1]
    data.pop("alerting", None)
    data["models"][0]["drift"].update(windows=["1h"], min_samples=100)  # NG: about 240 of 12,000 records
    data["models"][0]["segments"][0]["features"] = ["amount", "account_age_days", "channel"]  # and a categorical one
    config = build_config(data)
    groups = fleet_recording_rules(config)
    for group, verdict in zip(groups, verdict_groups_for(config).values()):
        group["rules"] += verdict
    record_factors(groups[0])
    rules = write_rules(tmp_path / "fleet.yml", groups)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(2)]
    try:
        model = config.model("fraud")
        states = [r.exporter.store.version_state(model, "v1") for r in replicas]
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with PrometheusProcess(tmp_path, targets, [rules]) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2")) == 2,
                          timeout=20, what="two scrapes of both replicas at zero")
            halves = [ng_drifted_records(seed=21, n=6000), ng_drifted_records(seed=22, n=6000)]
            for i, (replica, half) in enumerate(zip(replicas, halves)):
                for record in half:
                    record["id"] = f"{i}-{record['id']}"
                requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=half, timeout=30).raise_for_status()
            at = settled_at(prom, after=scraped_since(prom, time.time()))  # on both replicas' final counts
            bins = samples_at(prom, bins_name(SEGMENTS, 3600), at)
            factors = samples_at(prom, FACTOR, at)
            f = {dict(k)["instance"]: v / 6000 for k, v in factors.items()}
            grades = samples_at(prom, names(SEGMENTS, 3600).grade, at)
            block = states[0].segment_drift.blocks[0]
            for v, country in enumerate(block.values):
                for j, col in enumerate(block.columns):
                    binning = states[0].layout.binnings[col]
                    key = {"model": "fraud", "model_version": "v1", "attribute": "country", "segment": country,
                           "feature": binning.name}
                    fleet = np.array([bins[tuple(sorted({**key, "bin": b}.items()))] for b in binning.labels])
                    span = slice(block.start + v * block.row_width + int(block.bin_offsets[j]),
                                 block.start + v * block.row_width + int(block.bin_offsets[j + 1]))
                    mixed = sum(f[t] * s.segment_drift.cumulative[span].astype(float) for t, s in zip(targets, states))
                    np.testing.assert_allclose(fleet, mixed, rtol=1e-6, atol=1e-9)  # the replicas are summed
                    seg = drift.Segments.of_sizes([binning.n_bins])
                    p, q = binning.reference_ratio, drift.fractions(fleet, seg)[0]
                    python = {"psi": drift.psi(p, q, seg)[0], "js": drift.js_distance(p, q, seg)[0]}
                    if binning.kind == "numeric":
                        python["ks"] = drift.ks(p, q, seg, np.array([1.0]), np.array([1.0])).statistic[0]
                    else:
                        python["chisquare"] = drift.chisquare(binning.reference_counts.astype(float), fleet, seg)[0][0]
                    for score, expected in python.items():
                        got = samples_at(prom, f'{rule_name(SEGMENTS, score, 3600)}{{segment="{country}",feature="{binning.name}"}}', at)
                        assert list(got.values()) == [pytest.approx(expected, rel=1e-6, abs=1e-12, nan_ok=True)], (score, country)  # NaN: no values (__other__)
                    grade = grades.get(tuple(sorted(key.items())))
                    if country == "NG" and binning.name == "amount":
                        assert grade == 3  # critical, fleet-wide, for NG's amounts only
                    elif grade is not None:
                        assert grade == 0, (country, binning.name)
    finally:
        for replica in replicas:
            replica.stop()


def test_config_check_prints_the_cost_of_each_segment_and_warns_when_it_breaks_the_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from exporter.cli import main
    import yaml

    def check(drift_on: bool) -> tuple[str, str]:
        data = copy.deepcopy(example_config_data())
        data["exporter"]["series_budget"] = 1400  # 1,240 without drift per country, 1,564 with it
        data["models"][0]["segments"][0]["drift"] = drift_on
        if not drift_on:
            data["models"][0]["segments"][0].pop("features")
        for model in data["models"]:
            model["reference"] = str(Path(__file__).resolve().parent.parent / "examples" / model["reference"])
        path = tmp_path / "mlmon.yaml"
        path.write_text(yaml.safe_dump(data))
        assert main(["config", "check", "-c", str(path)]) == 0
        out = capsys.readouterr()
        return out.out, out.err

    out, err = check(drift_on=True)
    assert "drift per segment: fraud country: 9 values x (24 bins of 2 features + 2 windows x 3 x 2) = 324 series" in out
    assert "above exporter.series_budget (1400)" in err and "segments[].features" in err
    out, err = check(drift_on=False)
    assert "drift per segment" not in out and "above exporter.series_budget" not in err


def test_a_captured_reference_counts_per_segment_the_rows_after_the_capture_and_survives_a_restore(tmp_path: Path) -> None:
    data = copy.deepcopy(example_config_data())
    data["models"][0]["reference"] = {"capture": 2000}
    clock = Clock()
    store = store_of(data, clock)
    feed(store, ng_drifted_records(seed=1, n=5000))  # 2,000 build the reference, 3,000 are binned in the same batch
    state = store.versions["fraud"]["v1"]
    assert not state.capturing and state.segment_drift is not None
    assert int(state.segment_drift.cumulative.sum()) == 3000 * 2  # two features per row, every row in some segment
    path = tmp_path / snapshot.FILE_NAME
    snapshot.save(path, store, {})
    restored = store_of(data, clock)
    assert snapshot.restore(path, restored, {}).result == "restored"
    assert rendered(restored) == rendered(store)
