"""mlmon.yaml: every mistake is reported at its exact place, with what would be right."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable

import pytest

from exporter.config.model import ConfigError, config_json_schema, format_duration, load_config, parse_duration
from conftest import EXAMPLE_CONFIG, build_config, example_config_data


def problems_after(change: Callable[[dict[str, Any]], None]) -> list[str]:
    """Apply `change` to the example config and return the problems the loader reports."""
    data = example_config_data()
    change(data)
    with pytest.raises(ConfigError) as caught:
        build_config(data)
    return caught.value.problems


def test_loads_the_example_config_with_parsed_durations() -> None:
    config = load_config(EXAMPLE_CONFIG)
    assert [m.name for m in config.models] == ["fraud", "delivery_time"]
    assert config.models[0].drift.windows == [300, 3600]
    assert config.reference_path(config.models[0]) == (EXAMPLE_CONFIG.parent / "reference/fraud.json").resolve()


def test_names_the_exact_place_of_a_misspelt_feature_type() -> None:
    problems = problems_after(lambda d: d["models"][0]["features"][1].update(type="categoric"))
    assert problems == ["models[0].features[1].type: 'categoric' is not one of numeric, categorical, boolean"]


def test_names_an_unknown_key_and_lists_the_keys_allowed_there() -> None:
    problems = problems_after(lambda d: d["exporter"].update(max_request_byte=5))
    assert len(problems) == 1
    assert problems[0].startswith("exporter.max_request_byte: unknown key (a typo?); allowed here: metrics_listen,")
    assert "max_request_bytes" in problems[0]


def test_names_an_unknown_key_inside_a_model() -> None:
    problems = problems_after(lambda d: d["models"][1].update(referenc="x.json"))
    assert problems[0].startswith("models[1].referenc: unknown key (a typo?); allowed here: name, task, reference,")


@pytest.mark.parametrize("window", ["5min", "0h", "-1m", "1y", True])
def test_rejects_a_bad_duration_at_its_list_index(window: Any) -> None:
    problems = problems_after(lambda d: d["models"][0]["drift"].update(windows=["5m", window]))
    assert len(problems) == 1
    assert problems[0].startswith("models[0].drift.windows[1]: ")
    assert "duration like" in problems[0]


@pytest.mark.parametrize(("text", "seconds"), [("30s", 30), ("5m", 300), ("1h", 3600), ("2d", 172800), ("1w", 604800), (90, 90)])
def test_parses_prometheus_durations_to_seconds(text: Any, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(("seconds", "text"), [(300, "5m"), (3600, "1h"), (90, "90s"), (86400, "1d")])
def test_formats_seconds_as_the_shortest_duration(seconds: int, text: str) -> None:
    assert format_duration(seconds) == text


def test_rejects_critical_below_warning() -> None:
    problems = problems_after(lambda d: d["models"][0]["drift"].update(warning=0.3, critical=0.2))
    assert problems == ["models[0].drift: critical (0.2) must be >= warning (0.3)"]


def test_rejects_repeated_windows_even_when_written_differently() -> None:
    problems = problems_after(lambda d: d["models"][0]["drift"].update(windows=["5m", "300s"]))
    assert problems == ["models[0].drift: windows must be distinct"]


def test_rejects_duplicate_feature_names() -> None:
    problems = problems_after(lambda d: d["models"][0]["features"].append({"name": "amount", "type": "numeric"}))
    assert problems == ["models[0]: feature names must be unique; repeated: amount"]


def test_rejects_duplicate_model_names() -> None:
    problems = problems_after(lambda d: d["models"].append(dict(d["models"][1])))
    assert problems == ["(top level): model names must be unique; repeated: delivery_time"]


def test_rejects_a_prediction_named_like_a_feature() -> None:
    problems = problems_after(lambda d: d["models"][1]["prediction"].update(name="items"))
    assert problems == ["models[1]: prediction.name 'items' clashes with a feature of the same name"]


def test_rejects_a_model_name_that_is_not_label_safe() -> None:
    problems = problems_after(lambda d: d["models"][0].update(name="fraud model"))
    assert problems == ["models[0].name: 'fraud model' must start with a letter or _ and use only letters, digits, _ . - (at most 64)"]


def test_rejects_a_listen_address_without_a_port() -> None:
    problems = problems_after(lambda d: d["exporter"].update(metrics_listen="8710"))
    assert problems == ["exporter.metrics_listen: '8710' is not HOST:PORT (e.g. 0.0.0.0:8710)"]


def test_reports_every_problem_not_only_the_first() -> None:
    def two_mistakes(d: dict[str, Any]) -> None:
        d["models"][0]["task"] = "classification"
        d["models"][1]["features"][0]["bins"] = 1

    problems = problems_after(two_mistakes)
    assert len(problems) == 2
    assert problems[0].startswith("models[0].task: 'classification' is not one of binary_classification,")
    assert problems[1].startswith("models[1].features[0].bins: ")


def test_requires_at_least_one_model() -> None:
    assert problems_after(lambda d: d.pop("models")) == ["models: is required"]


def test_says_once_that_capture_must_be_positive() -> None:
    problems = problems_after(lambda d: d["models"][0].update(reference={"capture": 0}))
    assert problems == ["models[0].reference.capture: Input should be greater than 0 (got 0)"]


def test_names_a_typo_inside_the_capture_mapping() -> None:
    problems = problems_after(lambda d: d["models"][0].update(reference={"captur": 10}))
    assert problems == [
        "models[0].reference.capture: is required",
        "models[0].reference.captur: unknown key (a typo?); allowed here: capture",
    ]


@pytest.mark.parametrize("reference", [5, None, ["a.json"]])
def test_says_once_what_a_reference_may_be(reference: Any) -> None:
    problems = problems_after(lambda d: d["models"][0].update(reference=reference))
    assert problems == ["models[0].reference: must be a profile path (string) or {capture: N} with N > 0"]


def test_accepts_a_capture_reference() -> None:
    data = example_config_data()
    data["models"][0]["reference"] = {"capture": 1000}
    config = build_config(data)
    assert config.reference_path(config.models[0]) is None


def test_reports_a_yaml_syntax_error_with_its_line_and_column(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text("models:\n  - name: fraud\n    task: regression\n    features: [{name: a, type: numeric}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    (problem,) = caught.value.problems
    assert problem.startswith("line 5, column 1: not valid YAML")


def test_reports_a_tab_indentation_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text("exporter: {}\nmodels:\n\t- name: fraud\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems[0].startswith("line 3, column 1: not valid YAML")


def test_rejects_a_document_that_is_not_a_mapping(tmp_path: Path) -> None:
    path = tmp_path / "mlmon.yaml"
    path.write_text("- just\n- a list\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert caught.value.problems == ["the top level must be a mapping with a `models:` list, not list"]


def test_reports_an_unreadable_file_by_its_path(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(tmp_path / "absent.yaml")
    assert caught.value.source.endswith("absent.yaml")
    assert caught.value.problems == ["cannot read the file: No such file or directory"]


def test_renders_a_header_and_one_indented_line_per_problem() -> None:
    error = ConfigError("mlmon.yaml", ["a: one", "b: two"])
    assert error.render() == "mlmon.yaml: 2 problem(s)\n  a: one\n  b: two"


def test_json_schema_forbids_unknown_keys_in_every_section() -> None:
    schema = config_json_schema()
    assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert schema["additionalProperties"] is False
    for name, definition in schema["$defs"].items():
        assert definition.get("additionalProperties") is False, name
    feature_type = schema["$defs"]["FeatureConfig"]["properties"]["type"]
    assert feature_type["enum"] == ["numeric", "categorical", "boolean"]


def test_a_relative_secret_path_is_reported_as_needing_an_absolute_path() -> None:
    data = example_config_data()
    data["alerting"]["receivers"][1]["pagerduty"]["routing_key_file"] = "etc/secrets/key"
    with pytest.raises(ConfigError) as error:
        build_config(data)
    assert error.value.problems == [
        "alerting.receivers[1].pagerduty.routing_key_file: 'etc/secrets/key' must be an absolute path "
        "(a file holding the secret)"
    ]
