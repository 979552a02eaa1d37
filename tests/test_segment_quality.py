"""Quality per segment value equals scikit-learn's on the same rows, for every task.

Binary: a real exporter gets labelled fraud traffic (inline labels) and a real Prometheus records the
segment-quality rules of alert_rules/segment_quality.py. One target means one extrapolation factor
for every counter, so the ratios of increase() are the ratios of the counts: exact.

Regression and multiclass (segments with quality: true): the per-pod gauges equal scikit-learn on each
value's rows (labels inline and labels joined late through /v1/labels, hostile segment values folding
into __other__); a snapshot keeps the sums; with two replicas and a real Prometheus the recorded fleet
metrics equal scikit-learn on the union of the rows, each replica's rows weighted by the extrapolation
factor Prometheus applied to that replica's counters (read off its labelled-predictions counter).
"""

from __future__ import annotations

import copy
import math
import time
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pytest
import requests
import yaml
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error, mean_squared_log_error
from sklearn.metrics import precision_score, recall_score

from alert_rules.segment_quality import ratio_name, score_name, segment_quality_groups
from conftest import LiveExporter, build_config, example_config_data
from exporter import catalog as c
from exporter.config.errors import ConfigError
from exporter.config.model import MlmonConfig
from exporter.http.server import start
from exporter.state import snapshot
from exporter.tooling import synthetic
from tests.support.processes import PrometheusProcess, require_binary
from tests.support.redis_server import RedisServer
from tests.test_fleet_rules import record_factors, samples_at, scraped_since, settled_at, write_rules
from tests.test_segment_drift import Clock, feed, rendered, store_of

CLASSES = ["cat", "dog", "fox"]
REGIONS = ["north", "south"]
WEATHER = ["clear", "rain", "snow", "storm"]


def test_recorded_quality_per_country_equals_sklearn_on_the_same_rows(tmp_path: Path) -> None:
    require_binary("prometheus")
    data = example_config_data()
    data["models"] = data["models"][:1]
    data.pop("alerting", None)
    config = build_config(data)
    groups = [g.to_dict() for g in segment_quality_groups(config)]
    rules = tmp_path / "segment_quality.yml"
    rules.write_text(yaml.safe_dump({"groups": groups}, sort_keys=False, width=100_000))
    replica = start(config, "127.0.0.1:0", "127.0.0.1:0")
    try:
        replica.exporter.store.version_state(config.model("fraud"), "v1")  # counters exported from 0
        with PrometheusProcess(tmp_path, [f"127.0.0.1:{replica.metrics_port}"], [rules]) as prom:
            prom.wait_for(lambda: prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2"), timeout=20,
                          what="two scrapes at zero")
            records = synthetic.records("fraud", "v1", 20_000, np.random.default_rng(11), drift=0.5, with_labels=True)
            requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=records, timeout=60).raise_for_status()
            after = scraped_since(prom, time.time(), targets=1)  # scraped with the final counts
            ratios = f'{ratio_name("1h")}{{attribute="country"}}'
            prom.wait_for(lambda: prom.query(f"timestamp({ratios}) > {after}"), timeout=20,
                          what="the segment ratios evaluated after the final scrape")
            got = {(s["metric"]["segment"], s["metric"]["metric"]): float(s["value"][1]) for s in prom.query(ratios)}
    finally:
        replica.stop()
    threshold = config.model("fraud").quality.decision_threshold
    countries = {r["segments"]["country"] for r in records}
    assert {segment for segment, _ in got} == countries  # no __other__: every synthetic country is listed
    for country in countries:
        rows = [r for r in records if r["segments"]["country"] == country]
        y = np.array([r["label"] for r in rows])
        predicted = np.array([r["prediction"] >= threshold for r in rows], dtype=int)
        fp, tn = int(((predicted == 1) & (y == 0)).sum()), int(((predicted == 0) & (y == 0)).sum())
        expected = {
            "accuracy": accuracy_score(y, predicted), "precision": precision_score(y, predicted, zero_division=np.nan),
            "recall": recall_score(y, predicted, zero_division=np.nan), "f1": f1_score(y, predicted, zero_division=np.nan),
            "false_positive_rate": fp / (fp + tn),
        }
        for metric, value in expected.items():
            if np.isnan(value):  # no denominator: no sample
                assert (country, metric) not in got
            else:
                assert got[(country, metric)] == pytest.approx(value, rel=1e-9), (country, metric)


# ---------------------------------------------------------------- regression and multiclass (quality: true)


def multiclass_model() -> dict[str, Any]:
    return {"name": "animals", "task": "multiclass_classification", "reference": {"capture": 100},
            "features": [{"name": "x", "type": "numeric"}],
            "prediction": {"name": "animal", "type": "categorical", "classes": CLASSES},
            "quality": {"windows": ["1h"]}, "drift": {"windows": ["1h"]},
            "segments": [{"attribute": "region", "values": REGIONS, "quality": True}]}


def config_with_both() -> MlmonConfig:
    """The example's delivery_time (weather segments with quality: true) and a 3-class model per region."""
    data = example_config_data()
    data["models"] = [data["models"][1], multiclass_model()]
    data.pop("alerting", None)
    return build_config(data)


def hostile_segments(records: list[dict[str, Any]], rng: np.random.Generator, attribute: str) -> None:
    """About 5% of records lose their segments, 3% carry an unlisted value, 2% a number: all are __other__."""
    for record in records:
        u = rng.random()
        if u < 0.05:
            record.pop("segments", None)
        elif u < 0.08:
            record["segments"] = {attribute: "elsewhere"}
        elif u < 0.10:
            record["segments"] = {attribute: 7}


def segment_of(record: dict[str, Any], attribute: str, values: list[str]) -> str:
    value = (record.get("segments") or {}).get(attribute)
    return value if isinstance(value, str) and value in values else "__other__"


def animal_records(n: int, rng: np.random.Generator, prefix: str = "") -> list[dict[str, Any]]:
    """The model is right 85% of the time in the north, 50% in the south; 3% of labels and predictions are
    classes outside the config (they count as __other__)."""
    regions = rng.choice(REGIONS, size=n, p=[0.6, 0.4])
    truth = rng.choice([*CLASSES, "wolf"], size=n, p=[0.5, 0.3, 0.17, 0.03])
    right = rng.random(n) < np.where(regions == "north", 0.85, 0.5)
    guess = rng.choice([*CLASSES, "wolf"], size=n, p=[0.34, 0.33, 0.3, 0.03])
    predicted = np.where(right, truth, guess)
    records = [{"id": f"{prefix}a-{i}", "model": "animals", "model_version": "v1", "features": {"x": float(i % 97)},
                "prediction": str(predicted[i]), "label": str(truth[i]), "segments": {"region": str(regions[i])}}
               for i in range(n)]
    hostile_segments(records, rng, "region")
    return records


def delivery_records(n: int, rng: np.random.Generator, prefix: str = "") -> list[dict[str, Any]]:
    """Synthetic delivery traffic (the model under-reacts to bad weather); 2% of labels are negative, so those
    pairs are left out of RMSLE."""
    records = synthetic.records("delivery_time", "v1", n, rng, id_prefix=prefix, with_labels=True)
    for record in records:
        if rng.random() < 0.02:
            record["label"] = -abs(record["label"])
    hostile_segments(records, rng, "weather")
    return records


def mapped(value: str) -> str:
    return value if value in CLASSES else "__other__"


def expected_multiclass(rows: list[dict[str, Any]], weights: np.ndarray | None = None) -> dict[str, float]:
    y = [mapped(r["label"]) for r in rows]
    p = [mapped(r["prediction"]) for r in rows]
    present = [k for k in CLASSES if k in set(y) | set(p)]
    return {"accuracy": accuracy_score(y, p, sample_weight=weights),
            "macro_f1": f1_score(y, p, labels=present, average="macro", zero_division=0, sample_weight=weights)}


def expected_regression(rows: list[dict[str, Any]], weights: np.ndarray | None = None) -> dict[str, float]:
    y = np.array([r["label"] for r in rows], dtype=float)
    p = np.array([r["prediction"] for r in rows], dtype=float)
    w = np.ones(len(y)) if weights is None else weights
    logged = (y >= 0) & (p >= 0)
    return {"mae": mean_absolute_error(y, p, sample_weight=w),
            "rmse": math.sqrt(mean_squared_error(y, p, sample_weight=w)),
            "bias": float(np.average(p - y, weights=w)),
            "rmsle": math.sqrt(mean_squared_log_error(y[logged], p[logged], sample_weight=w[logged]))}


def by_segment(records: list[dict[str, Any]], attribute: str, values: list[str]) -> dict[str, list[int]]:
    out: dict[str, list[int]] = {}
    for i, record in enumerate(records):
        out.setdefault(segment_of(record, attribute, values), []).append(i)
    return out


def gauges(samples: dict, name: str, window: str) -> dict[tuple[str, str], float]:
    return {(dict(k)["segment"], dict(k)["metric"]): v for (n, k), v in samples.items()
            if n == name and dict(k)["window"] == window}


def test_regression_error_per_weather_equals_sklearn_on_each_values_rows(
        start_exporter: Callable[[MlmonConfig], LiveExporter]) -> None:
    live = start_exporter(config_with_both())
    records = delivery_records(6000, np.random.default_rng(5))
    live.post_ok(records)
    samples = live.samples()
    got = gauges(samples, c.SEGMENT_QUALITY_SCORE.name, "1h")
    groups = by_segment(records, "weather", WEATHER)
    assert set(groups) == {*WEATHER, "__other__"}
    for value, rows in groups.items():
        expected = expected_regression([records[i] for i in rows])
        for metric, number in expected.items():
            assert got[(value, metric)] == pytest.approx(number, rel=1e-9), (value, metric)
        labels = frozenset({"model": "delivery_time", "model_version": "v1", "attribute": "weather",
                            "segment": value}.items())
        assert samples[(c.SEGMENT_REGRESSION_PAIRS.name, labels)] == len(rows)
    assert got[("storm", "mae")] > 3 * got[("clear", "mae")]  # the model degraded for weather=storm
    pairs = sum(v for (n, _), v in samples.items() if n == c.SEGMENT_REGRESSION_PAIRS.name)
    assert pairs == samples[(c.LABELLED_PREDICTIONS.name, frozenset({"model": "delivery_time", "model_version": "v1"}.items()))]


def test_multiclass_accuracy_and_macro_f1_per_region_equal_sklearn_when_labels_arrive_late(
        start_exporter: Callable[[MlmonConfig], LiveExporter]) -> None:
    live = start_exporter(config_with_both())
    rng = np.random.default_rng(8)
    records = animal_records(5000, rng)
    labels = [{"id": r["id"], "label": r.pop("label")} for r in records]
    live.post_ok(records)
    assert "mlmon_segment_quality_ratio{" not in live.scrape().text  # nothing labelled yet: no gauge
    order = rng.permutation(len(labels))  # labels come back in another order than their predictions
    answer = live.http.post(f"{live.ingest_url}/v1/labels", json=[labels[i] for i in order], timeout=30).json()
    assert answer["joined"] == len(records), answer
    for record, label in zip(records, labels):
        record["label"] = label["label"]
    samples = live.samples()
    got = gauges(samples, c.SEGMENT_QUALITY.name, "1h")
    groups = by_segment(records, "region", REGIONS)
    assert set(groups) == {*REGIONS, "__other__"}
    for value, rows in groups.items():
        for metric, number in expected_multiclass([records[i] for i in rows]).items():
            assert got[(value, metric)] == pytest.approx(number, rel=1e-12), (value, metric)
        # the counters: the matrix of this value's rows, cell by cell
        cells = {(dict(k)["actual"], dict(k)["predicted"]): v for (n, k), v in samples.items()
                 if n == c.SEGMENT_CLASS_CONFUSION.name and dict(k)["segment"] == value}
        assert len(cells) == (len(CLASSES) + 1) ** 2
        for (actual, predicted), count in cells.items():
            assert count == sum(mapped(records[i]["label"]) == actual and mapped(records[i]["prediction"]) == predicted
                                for i in rows)
    assert got[("north", "accuracy")] > got[("south", "accuracy")] + 0.2


def test_a_restored_store_keeps_the_per_segment_quality_sums(tmp_path: Path) -> None:
    data = example_config_data()
    data["models"] = [data["models"][1], multiclass_model()]
    data.pop("alerting", None)
    clock = Clock()
    store = store_of(copy.deepcopy(data), clock)
    rng = np.random.default_rng(3)
    for minute in range(3):
        clock.now += 60
        feed(store, delivery_records(1000, rng, prefix=f"{minute}-") + animal_records(1000, rng, prefix=f"{minute}-"))
    path = tmp_path / snapshot.FILE_NAME
    snapshot.save(path, store, {})
    restored = store_of(copy.deepcopy(data), clock)
    assert snapshot.restore(path, restored, {}).result == "restored"
    text = rendered(restored)
    assert text == rendered(store)
    assert c.SEGMENT_QUALITY_SCORE.name + "{" in text and c.SEGMENT_CLASS_CONFUSION.name + "{" in text


@pytest.mark.parametrize("task_model, segment, problem", [
    (1, {"attribute": "city", "values": ["paris"]}, "drift: true` or `quality: true"),
    (1, {"attribute": "city", "values": ["paris"], "quality": True}, None),
    (0, {"attribute": "city", "values": ["paris"], "quality": True}, None),  # binary: the counters exist anyway
])
def test_the_config_takes_quality_per_segment_for_every_task(task_model: int, segment: dict, problem: str | None) -> None:
    data = copy.deepcopy(example_config_data())
    data["models"][task_model]["segments"] = [segment]
    if problem is None:
        build_config(data)
    else:
        with pytest.raises(ConfigError, match=problem):
            build_config(data)
    data = example_config_data()
    data["models"] = [multiclass_model()]
    data.pop("alerting", None)
    build_config(data)


def test_fleet_quality_per_segment_on_two_replicas_equals_sklearn_on_the_weighted_union(tmp_path: Path) -> None:
    require_binary("prometheus")
    config = config_with_both()
    groups = [g.to_dict() for g in segment_quality_groups(config)]
    assert [g["name"] for g in groups] == ["mlmon-fleet-segment-quality-1h", "mlmon-fleet-segment-quality-1d"]
    factor = "test:mlmon_labelled_predictions:increase1h"
    record_factors(groups[0], factor, "mlmon_labelled_predictions_total")
    rules = write_rules(tmp_path / "segment_quality.yml", groups)
    replicas = [start(config, "127.0.0.1:0", "127.0.0.1:0") for _ in range(2)]
    try:
        for replica in replicas:  # counters exported from 0
            for model in config.models:
                replica.exporter.store.version_state(model, "v1")
        targets = [f"127.0.0.1:{r.metrics_port}" for r in replicas]
        with PrometheusProcess(tmp_path, targets, [rules]) as prom:
            prom.wait_for(lambda: len(prom.query("count_over_time(mlmon_predictions_total[1m]) >= 2")) == 4,
                          timeout=20, what="two scrapes of both replicas at zero")
            rng = np.random.default_rng(17)
            sent = []
            for i, replica in enumerate(replicas):
                part = {"delivery_time": delivery_records(3000 + 1000 * i, rng, prefix=f"{i}-"),
                        "animals": animal_records(2000 + 1000 * i, rng, prefix=f"{i}-")}
                for records in part.values():
                    requests.post(f"http://127.0.0.1:{replica.ingest_port}/v1/predictions", json=records,
                                  timeout=60).raise_for_status()
                sent.append(part)
            after = scraped_since(prom, time.time())  # both replicas scraped with their final counts
            at = settled_at(prom, factor, targets=4, after=after)  # 2 replicas x 2 models, and no scrape landed mid-group
            factors = {(dict(k)["instance"], dict(k)["model"]): v for k, v in samples_at(prom, factor, at).items()}
            scores = samples_at(prom, score_name("1h"), at)
            ratios = samples_at(prom, ratio_name("1h"), at)
    finally:
        for replica in replicas:
            replica.stop()
    for model, attribute, values, recorded, expected in (
            ("delivery_time", "weather", WEATHER, scores, expected_regression),
            ("animals", "region", REGIONS, ratios, expected_multiclass)):
        rows = [r for part in sent for r in part[model]]
        weights = np.concatenate([np.full(len(part[model]), factors[(t, model)] / len(part[model]))
                                  for t, part in zip(targets, sent)])
        assert 0.9 < weights.min() and weights.max() < 1.5  # increase() extrapolates a little, per replica
        groups_of = by_segment(rows, attribute, values)
        assert set(groups_of) == {*values, "__other__"}
        for value, index in groups_of.items():
            for metric, number in expected([rows[i] for i in index], weights[index]).items():
                key = tuple(sorted({"model": model, "model_version": "v1", "attribute": attribute, "segment": value,
                                    "metric": metric}.items()))
                assert recorded[key] == pytest.approx(number, rel=1e-6), (model, value, metric)


def test_a_late_label_joined_through_another_replica_by_redis_lands_in_its_predictions_segment(
        start_exporter: Callable[[MlmonConfig], LiveExporter]) -> None:
    server = RedisServer.start()
    try:
        data = example_config_data()
        data["models"] = [data["models"][1]]
        data.pop("alerting", None)
        data["exporter"]["label_store"] = {"backend": "redis", "url": server.url, "timeout": 0.2, "retry_interval": 0.5}
        config = build_config(data)
        a, b = start_exporter(config), start_exporter(config)
        records = delivery_records(2000, np.random.default_rng(23), prefix="redis-")
        labels = [{"id": r["id"], "label": r.pop("label")} for r in records]
        a.post_ok(records)  # the predictions (and their segment codes) wait in Redis
        answer = b.http.post(f"{b.ingest_url}/v1/labels", json=labels, timeout=30).json()
        assert answer["joined"] == len(records), answer
        for record, label in zip(records, labels):
            record["label"] = label["label"]
        got = gauges(b.samples(), c.SEGMENT_QUALITY_SCORE.name, "1h")  # joined on b: b holds every pair
        assert not gauges(a.samples(), c.SEGMENT_QUALITY_SCORE.name, "1h")
        for value, rows in by_segment(records, "weather", WEATHER).items():
            for metric, number in expected_regression([records[i] for i in rows]).items():
                assert got[(value, metric)] == pytest.approx(number, rel=1e-9), (value, metric)
    finally:
        server.stop()


def test_config_check_prints_the_cost_of_quality_per_segment_and_warns_above_the_budget(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from exporter.cli import main

    assert main(["config", "check", "-c", "examples/mlmon.yaml"]) == 0
    out = capsys.readouterr()
    assert "quality per segment: delivery_time weather: 5 values x (6 counters + 2 windows x 5) = 80 series" in out.out
    data = example_config_data()
    classes = [f"c{i}" for i in range(50)]
    model = {**multiclass_model(), "prediction": {"name": "animal", "type": "categorical", "classes": classes},
             "segments": [{"attribute": "region", "values": [f"r{i}" for i in range(8)], "quality": True}]}
    model["quality"]["windows"] = ["1h", "1d"]
    data["models"] = [model]
    data.pop("alerting", None)
    path = tmp_path / "mlmon.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["config", "check", "-c", str(path)]) == 0
    out = capsys.readouterr()
    assert "quality per segment: animals region: 9 values x (2601 counters + 2 windows x 3) = 23463 series" in out.out
    assert "above exporter.series_budget" in out.err and "quality: true" in out.err


def test_only_attributes_with_quality_get_sums_and_each_value_holds_its_own_rows() -> None:
    from exporter.state.quality import ModelQuality

    data = example_config_data()
    data["models"][1]["segments"] = [{"attribute": "city", "values": ["p", "l"], "drift": True},
                                     {"attribute": "weather", "values": ["clear", "rain"], "quality": True},
                                     {"attribute": "day", "values": ["mon"], "quality": True}]
    quality = ModelQuality(build_config(data).model("delivery_time"), slots=4)
    layout = quality.layout
    assert layout.segment_rows == 3 + 2  # weather's 2 values and __other__, day's 1 and __other__; no city
    rng = np.random.default_rng(0)
    segments = [{"city": str(rng.choice(["p", "l", "x"])), "weather": str(rng.choice(["clear", "rain", "snow"])),
                 "day": str(rng.choice(["mon", "tue"]))} for _ in range(2000)]
    p, y = rng.normal(10, 2, 2000), rng.normal(10, 2, 2000)
    quality.observe_labels(p, y, layout.codec.encode(segments), None, 0.0)
    block = quality.labelled[layout.segment_sums()].reshape(layout.segment_rows, layout.segment_cell)
    rows = [("weather", v, ["clear", "rain"]) for v in ("clear", "rain", "__other__")] + \
        [("day", v, ["mon"]) for v in ("mon", "__other__")]
    for (attribute, value, listed), cell in zip(rows, block):
        chosen = np.array([(s[attribute] if s[attribute] in listed else "__other__") == value for s in segments])
        error = p[chosen] - y[chosen]
        assert cell[0] == chosen.sum()
        assert cell[1:4] == pytest.approx([error[error > 0].sum(), -error[error < 0].sum(), (error * error).sum()])
