"""Serving platforms' bodies -> the same Decoded batches as ``POST /v1/predictions``.

* Open Inference Protocol (KServe v2, Triton, MLServer): ``{"inputs": [...], "outputs": [...]}``,
  each tensor ``{"name", "shape", "datatype", "data"}``. Already columnar: an input of shape
  ``[N]`` or ``[N, 1]`` named like a feature is that feature's column; one 2-D input ``[N, K]`` is
  split into K columns in ``models[].serving.columns`` order (default: the config's features).
* KServe v1: ``{"instances": [...]}`` and ``{"predictions": [...]}``; an instance is an object by
  feature name or a list in that same column order.

A request body and its response body are joined first (``join``): by the caller for
``/v2/models/<model>/infer`` and ``/v1/models/<model>:predict`` (one body holding both), by the
CloudEvents store for the KServe logger (exporter/ingest/cloudevents.py). Everything ends in
``decode_columnar`` or ``group_records``, so every per-record check and every limit applies.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

from exporter.config.model import MlmonConfig, ModelConfig
from exporter.ingest.decode import (
    BodyError, Decoded, Rejection, decode_columnar, group_records, valid_version,
)
from exporter.ingest.limits import TooManyRecords

DEFAULT_VERSION = "default"  # no version in the path, the body or the CloudEvent


def serving_model(config: MlmonConfig, name: str) -> ModelConfig | None:
    """The config model called `name`, or whose serving.names lists it (an InferenceService name)."""
    model = config.model(name)
    if model is not None:
        return model
    return next((m for m in config.models if name in m.serving.names), None)


def kind_of(document: Any) -> str | None:
    """'v2' for an OIP body, 'v1' for a KServe v1 body, None for neither."""
    if not isinstance(document, dict):
        return None
    if "inputs" in document or "outputs" in document:
        return "v2"
    if "instances" in document or "predictions" in document:
        return "v1"
    return None


def join(request: dict[str, Any], response: dict[str, Any]) -> dict[str, Any]:
    """One body with the request's inputs and the response's outputs (and its model_version)."""
    joined = dict(request)
    for key in ("outputs", "predictions", "model_version"):
        if key in response:
            joined[key] = response[key]
    return joined


def decode_serving(
    document: Any, model_name: str, version: str | None, config: MlmonConfig, max_records: int,
    request_id: str | None = None,
) -> Decoded:
    """A joined v1 or v2 body of the model named `model_name` (path or CloudEvent)."""
    kind = kind_of(document)
    if kind is None:
        raise BodyError("expected an Open Inference Protocol body (inputs/outputs) or KServe v1 (instances/predictions)")
    if request_id is None and isinstance(document.get("id"), str):
        request_id = document["id"]
    if version is None:
        version = _body_version(document)
    if kind == "v2":
        features, predictions, count = _v2_columns(document, max_records)
    else:
        features, predictions, count = _v1_rows(document, max_records)
    model = serving_model(config, model_name)
    if model is None:
        detail = f"model {ascii(model_name[:64])} is not in the config (nor in any models[].serving.names)"
        return Decoded([], [Rejection(i, "unknown_model", detail) for i in range(count)], count)
    ids = _row_ids(request_id, count)
    if kind == "v2":
        return decode_columnar(
            {"model": model.name, "model_version": version, "features": _v2_features(model, features, count),
             "predictions": predictions, "ids": ids, "attributions": _v2_attributions(model, document, count)},
            config, max_records,
        )
    columns = _columns(model)
    records = [
        {"model": model.name, "model_version": version, "features": _instance(row, columns),
         "prediction": prediction, "id": None if ids is None else ids[i]}
        for i, (row, prediction) in enumerate(zip(features, predictions))
    ]
    return group_records(records, config, [])


def _body_version(document: dict[str, Any]) -> str:
    version = document.get("model_version")
    return version if isinstance(version, str) and version else DEFAULT_VERSION


def _row_ids(request_id: str | None, count: int) -> list[str] | None:
    """The request's id for its only row; `<id>:<row>` for each row of a batch (labels join on these)."""
    if request_id is None:
        return None
    if count == 1:
        return [request_id]
    return [f"{request_id}:{i}" for i in range(count)]


def _columns(model: ModelConfig) -> list[str]:
    return list(model.serving.columns or [f.name for f in model.features])


# ----------------------------------------------------------------------------- OIP v2


def _tensor(value: Any, where: str) -> tuple[str, list[int], list[Any]]:
    """(name, shape, flat row-major data) of one tensor; BodyError when shape and data disagree."""
    if not isinstance(value, dict):
        raise BodyError(f"{where}: each tensor must be an object with name, shape, datatype and data")
    name, shape, data = value.get("name"), value.get("shape"), value.get("data")
    if not isinstance(name, str) or not isinstance(data, list):
        raise BodyError(f"{where}: a tensor needs a string `name` and a `data` array")
    if (not isinstance(shape, list) or not 1 <= len(shape) <= 2
            or not all(type(n) is int and n >= 0 for n in shape)):
        raise BodyError(f"{where} {ascii(name[:64])}: `shape` must be [N] or [N, K] (rows first)")
    while data and isinstance(data[0], list):  # nested row-major data; depth is bounded by max_nesting_depth
        if not all(isinstance(row, list) for row in data):
            raise BodyError(f"{where} {ascii(name[:64])}: nested `data` must be arrays all the way down")
        data = list(itertools.chain.from_iterable(data))
    if len(data) != math.prod(shape):
        raise BodyError(f"{where} {ascii(name[:64])}: shape {shape} needs {math.prod(shape)} values, got {len(data)}")
    return name, shape, data


def _v2_columns(document: dict[str, Any], max_records: int) -> tuple[list[tuple[str, list[int], list[Any]]], list[Any], int]:
    inputs = document.get("inputs")
    outputs = document.get("outputs")
    if not isinstance(inputs, list) or not inputs:
        raise BodyError("OIP body: `inputs` must be a non-empty array of tensors (the request)")
    if not isinstance(outputs, list) or not outputs or not all(isinstance(o, dict) and "data" in o for o in outputs):
        raise BodyError("OIP body: `outputs` with data are required (the response); a request alone is not a prediction")
    tensors = [_tensor(t, "inputs") for t in inputs]
    count = tensors[0][1][0]
    if count > max_records:
        raise TooManyRecords(count)
    for name, shape, _ in tensors:
        if shape[0] != count:
            raise BodyError(f"OIP body: input {ascii(name[:64])} has {shape[0]} rows, the first input {count}")
    name, shape, data = _tensor(outputs[0], "outputs")
    if shape[0] != count:
        raise BodyError(f"OIP body: output {ascii(name[:64])} has {shape[0]} rows, the inputs {count}")
    width = shape[1] if len(shape) == 2 else 1
    predictions = data if width == 1 else [data[i * width:(i + 1) * width] for i in range(count)]
    return tensors, predictions, count


def _v2_features(model: ModelConfig, tensors: list[tuple[str, list[int], list[Any]]], count: int) -> dict[str, list[Any]]:
    """Feature columns: a 1-column input by its name; a wider input split in serving.columns order."""
    known = {f.name for f in model.features}
    features: dict[str, list[Any]] = {}
    for name, shape, data in tensors:
        width = shape[1] if len(shape) == 2 else 1
        if width == 1 and (name in known or len(tensors) > 1):
            features[name] = data
            continue
        columns = _columns(model)
        if width != len(columns):
            raise BodyError(
                f"OIP body: input {ascii(name[:64])} has {width} columns; models[].serving.columns (or the "
                f"features) of {model.name} name {len(columns)}"
            )
        for j, column in enumerate(columns):
            features[column] = data[j::width] if width > 1 else data
    return features


def _v2_attributions(model: ModelConfig, document: dict[str, Any], count: int) -> dict[str, list[Any]] | None:
    """The output named models[].attributions.output ([N, K], K = serving columns) as {feature: phi column}."""
    if not model.attributions.enabled:
        return None
    wanted = model.attributions.output
    tensor = next((o for o in document.get("outputs") or [] if isinstance(o, dict) and o.get("name") == wanted), None)
    if tensor is None:
        return None
    name, shape, data = _tensor(tensor, "outputs")
    columns = _columns(model)
    width = shape[1] if len(shape) == 2 else 1
    if shape[0] != count or width != len(columns):
        raise BodyError(f"OIP body: output {ascii(name[:64])} must have shape [{count}, {len(columns)}] "
                        "(one attribution per serving column)")
    return {column: data[j::width] for j, column in enumerate(columns)}


# ----------------------------------------------------------------------------- KServe v1


def _v1_rows(document: dict[str, Any], max_records: int) -> tuple[list[Any], list[Any], int]:
    instances = document.get("instances")
    predictions = document.get("predictions")
    if not isinstance(instances, list):
        raise BodyError("KServe v1 body: `instances` must be an array (the request)")
    if not isinstance(predictions, list):
        raise BodyError("KServe v1 body: `predictions` must be an array (the response); a request alone is not a prediction")
    if len(instances) > max_records:
        raise TooManyRecords(len(instances))
    if len(predictions) != len(instances):
        raise BodyError(f"KServe v1 body: {len(instances)} instances but {len(predictions)} predictions")
    return instances, predictions, len(instances)


def _instance(row: Any, columns: list[str]) -> Any:
    """An instance as {feature: value}: an object as it is, a list by column order; else None (rejected)."""
    if isinstance(row, dict):
        return row
    if isinstance(row, list) and len(row) == len(columns):
        return dict(zip(columns, row))
    return None


def path_version(raw: str | None, config: MlmonConfig) -> str | None:
    """A version from a URL path, or None when absent; BodyError when it is not label-safe."""
    if raw is None:
        return None
    version = valid_version(raw, config.exporter.max_label_value_length)
    if version is None:
        raise BodyError("the model version in the path must be a short string of [A-Za-z0-9_.:+-]")
    return version
