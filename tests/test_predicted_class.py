"""Predictions as models emit them: per-class ties broken by the config's class order, and the model's own
predicted class carried next to its score (it overrides decision_threshold and the argmax)."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import pytest

from exporter.ingest.decode import check_prediction


def multiclass(classes: list[str]) -> Any:
    return SimpleNamespace(name="m", task="multiclass_classification",
                           prediction=SimpleNamespace(type="categorical", classes=classes),
                           quality_classes=tuple(classes))


@pytest.mark.parametrize("scores", [
    {"fox": 0.4, "dog": 0.4, "cat": 0.2},
    {"cat": 0.2, "dog": 0.4, "fox": 0.4},
    {"dog": 0.4, "cat": 0.2, "fox": 0.4},
])
def test_a_tie_in_class_scores_goes_to_the_class_listed_first_in_the_config_whatever_the_key_order(
        scores: dict[str, float]) -> None:
    assert check_prediction(multiclass(["cat", "dog", "fox"]), scores) == "dog"


def test_a_tie_in_a_predict_proba_row_goes_to_the_first_class_in_the_config() -> None:
    assert check_prediction(multiclass(["cat", "dog", "fox"]), [0.2, 0.4, 0.4]) == "dog"
    assert check_prediction(multiclass(["fox", "dog", "cat"]), [0.4, 0.4, 0.2]) == "fox"


def test_a_configured_class_wins_a_tie_against_a_class_the_config_does_not_list() -> None:
    assert check_prediction(multiclass(["cat", "dog"]), {"emu": 0.5, "dog": 0.5}) == "dog"


def test_a_tie_between_unlisted_classes_goes_to_the_smallest_text_whatever_the_key_order() -> None:
    model = multiclass(["cat", "dog"])
    assert check_prediction(model, {"yak": 0.5, "emu": 0.5, "cat": 0.1}) == "emu"
    assert check_prediction(model, {"emu": 0.5, "yak": 0.5, "cat": 0.1}) == "emu"


# ----------------------------------------------------------------------------- the model's own predicted class

from pathlib import Path  # noqa: E402

import orjson  # noqa: E402

from exporter.ingest.decode import check_predicted_class  # noqa: E402
from tests.conftest import LiveExporter, build_config  # noqa: E402


def binary(classes: list[str] | None = None) -> Any:
    return SimpleNamespace(name="m", task="binary_classification",
                           prediction=SimpleNamespace(type="numeric", classes=classes), quality_classes=())


@pytest.mark.parametrize(("value", "positive"), [
    (True, True), (False, False), (1, True), (0, False), ("1", True), ("0", False), ("true", True), ("no", False),
])
def test_a_binary_predicted_class_is_true_false_one_zero_or_a_named_side(value: Any, positive: bool) -> None:
    assert check_predicted_class(binary(), value) is positive


def test_a_binary_predicted_class_may_name_the_two_configured_classes() -> None:
    assert check_predicted_class(binary(["stay", "churn"]), "churn") is True
    assert check_predicted_class(binary(["stay", "churn"]), "stay") is False


@pytest.mark.parametrize("value", ["maybe", 2, 0.7, None, [1], "churned"])
def test_a_binary_predicted_class_that_is_neither_side_is_refused_with_the_accepted_values(value: Any) -> None:
    with pytest.raises(ValueError, match="'stay'/'churn', true/false or 1/0"):
        check_predicted_class(binary(["stay", "churn"]), value)


def test_a_multiclass_predicted_class_outside_the_config_is_kept_to_fold_into_other() -> None:
    assert check_predicted_class(multiclass(["cat", "dog"]), "emu") == "emu"
    assert check_predicted_class(multiclass(["cat", "dog"]), 7) == "7"
    with pytest.raises(ValueError, match="a class"):
        check_predicted_class(multiclass(["cat", "dog"]), 0.5)


def model_data(task: str, **extra: Any) -> dict[str, Any]:
    data = {"name": "m", "task": task, "reference": {"capture": 1000},
            "features": [{"name": "x", "type": "numeric"}], "drift": {"windows": ["1h"]}}
    data.update(extra)
    return data


@pytest.fixture
def live(start_exporter, tmp_path: Path):
    def start(task: str, **extra: Any) -> LiveExporter:
        return start_exporter(build_config({"models": [model_data(task, **extra)]}, base_dir=tmp_path))
    return start


def record(prediction: Any, **fields: Any) -> dict[str, Any]:
    return {"model": "m", "model_version": "v1", "features": {"x": 1.0}, "prediction": prediction, **fields}


def confusion(exporter: LiveExporter) -> dict[str, float]:
    return {o: exporter.value("mlmon_confusion_total", model="m", model_version="v1", outcome=o) for o in
            ("tp", "fp", "tn", "fn")}


def test_a_binary_models_own_decision_overrides_the_threshold_in_records_ndjson_and_columns(live) -> None:
    exporter = live("binary_classification", quality={"decision_threshold": 0.5})
    # A score of 0.3 the model itself called positive, a 0.9 it called negative (its own threshold differs).
    assert exporter.post_ok([record(0.3, predicted_class=True, label=1), record(0.9, predicted_class=0, label=1),
                             record(0.7, label=0)])["accepted"] == 3
    lines = b"\n".join(orjson.dumps(r) for r in [record(0.2, predicted_class="1", label=0)])
    assert exporter.post_ok(lines, "application/x-ndjson")["accepted"] == 1
    columns = {"model": "m", "model_version": "v1", "features": {"x": [1.0, 1.0]}, "predictions": [0.1, 0.95],
               "predicted_classes": [True, None], "labels": [1, 1]}
    assert exporter.post_ok(columns)["accepted"] == 2
    # tp: 0.3 (own yes, label 1), 0.1 (own yes, label 1), 0.95 (no own class: threshold); fp: 0.7 (threshold),
    # 0.2 (own yes, label 0); fn: 0.9 (own no, label 1).
    assert confusion(exporter) == {"tp": 3, "fp": 2, "tn": 0, "fn": 1}


def test_the_own_decision_waits_with_the_prediction_for_a_late_label(live) -> None:
    exporter = live("binary_classification", quality={"decision_threshold": 0.5})
    exporter.post_ok([record(0.3, predicted_class=True, id="a"), record(0.9, predicted_class=False, id="b"),
                      record(0.8, id="c")])
    labels = [{"id": "a", "label": 0}, {"id": "b", "label": 0}, {"id": "c", "label": 1}]
    answer = exporter.http.post(f"{exporter.ingest_url}/v1/labels", json=labels, timeout=10)
    assert answer.json()["joined"] == 3
    assert confusion(exporter) == {"tp": 1, "fp": 1, "tn": 1, "fn": 0}


def test_a_bad_binary_predicted_class_rejects_its_record_with_the_reason(live) -> None:
    exporter = live("binary_classification")
    answer = exporter.post([record(0.3, predicted_class="perhaps"), record(0.3)]).json()
    assert answer["accepted"] == 1
    assert answer["rejections"][0]["reason"] == "invalid_prediction"
    assert "predicted_class" in answer["rejections"][0]["detail"]


def test_a_multiclass_predicted_class_overrides_the_argmax_and_an_unlisted_one_is_other(live) -> None:
    exporter = live("multiclass_classification", prediction={"name": "animal", "type": "categorical",
                                                             "classes": ["cat", "dog", "fox"]})
    exporter.post_ok([
        record({"cat": 0.6, "dog": 0.3, "fox": 0.1}, predicted_class="dog", label="dog"),  # argmax cat, model says dog
        record([0.1, 0.2, 0.7], predicted_class="emu", label="fox"),                        # unlisted: __other__
        record([0.1, 0.2, 0.7], label="fox"),                                               # argmax
    ])
    cell = lambda a, p: exporter.value("mlmon_class_confusion_total", model="m", model_version="v1",  # noqa: E731
                                       actual=a, predicted=p)
    assert cell("dog", "dog") == 1 and cell("dog", "cat") == 0
    assert cell("fox", "__other__") == 1 and cell("fox", "fox") == 1


def test_the_python_client_sends_the_models_own_class(live) -> None:
    from mlmon_client import Client

    exporter = live("binary_classification", quality={"decision_threshold": 0.5})
    client = Client(exporter.ingest_url, flush_interval=0.05)
    try:
        client.log(model="m", version="v1", features={"x": 1.0}, prediction=0.2, id="p1", predicted_class=True)
        client.log_batch(model="m", version="v1", features={"x": [1.0, 2.0]}, predictions=[0.9, 0.1],
                         ids=["p2", "p3"], predicted_classes=[False, None])
        client.label("p1", 1)
        client.label("p2", 1)
        client.label("p3", 0)
        assert client.flush(timeout=10)
    finally:
        client.close()
    assert confusion(exporter) == {"tp": 1, "fp": 0, "tn": 1, "fn": 1}


# ----------------------------------------------------------------------------- where pending predictions wait

def own_records(n: int, prefix: str) -> tuple[list[dict[str, Any]], list[int]]:
    """Fraud records where the model's own decision disagrees with decision_threshold on every third row."""
    import numpy as np

    from exporter.tooling import synthetic

    rng = np.random.default_rng(n)
    records = synthetic.records("fraud", "v1", n, rng, id_prefix=prefix)
    for i, record in enumerate(records):
        if i % 3 == 0:
            record["predicted_class"] = record["prediction"] < 0.02  # the opposite of the configured threshold
    return records, [int(v) for v in rng.random(n) < 0.3]


def expected(records: list[dict[str, Any]], labels: list[int], threshold: float) -> dict[str, float]:
    out = dict.fromkeys(("tp", "fp", "tn", "fn"), 0.0)
    for record, label in zip(records, labels):
        positive = record.get("predicted_class", record["prediction"] >= threshold)
        out[("t" if positive == bool(label) else "f") + ("p" if positive else "n")] += 1
    return out


def test_the_own_decision_survives_a_snapshot_and_restore() -> None:
    from tests.test_state_snapshot import Clock, example_store, feed, label, rendered
    from exporter.state import snapshot

    clock = Clock()
    store, stats = example_store(clock)
    records, labels = own_records(300, "snap-")
    feed(store, stats, records)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / snapshot.FILE_NAME
        snapshot.save(path, store, {"stats": stats})
        restored, restored_stats = example_store(clock)
        assert snapshot.restore(path, restored, {"stats": restored_stats}).result == "restored"
    ids = [r["id"] for r in records]
    assert label(restored, ids, labels)["joined"] == 300
    label(store, ids, labels)
    assert rendered(restored, restored_stats) == rendered(store, stats)
    quality = restored.quality_of("fraud", "v1")
    assert quality is not None
    threshold = restored.config.models[0].quality.decision_threshold
    assert dict(zip(("tp", "fp", "tn", "fn"), quality.labelled[:4].tolist())) == expected(records, labels, threshold)


def test_the_own_decision_waits_in_redis_and_joins_through_another_replica(start_exporter) -> None:
    from tests.support.redis_server import RedisServer
    from tests.test_label_store_redis import confusion as fraud_confusion, post_labels, redis_config

    server = RedisServer.start()
    try:
        config = redis_config(server)
        a, b = start_exporter(config), start_exporter(config)
        records, labels = own_records(200, "redis-")
        a.post_ok(records)
        assert post_labels(b, [r["id"] for r in records], labels)["joined"] == 200
        assert fraud_confusion(b) == expected(records, labels, config.models[0].quality.decision_threshold)
    finally:
        server.stop()
