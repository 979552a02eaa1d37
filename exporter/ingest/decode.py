"""Request bodies -> one columnar batch per model/version, plus the records rejected and why.

Three shapes are accepted on ``POST /v1/predictions``:

* a JSON array of records (``application/json``),
* one record per line (``application/x-ndjson``; a bad line rejects only that line),
* a columnar object ``{"model", "model_version", "ids", "features": {name: [...]}, "predictions": [...]}``.

A record is rejected whole only when it cannot be attributed or counted (no model, unknown
model, no prediction, ...). Problems with a single feature value (null, NaN, wrong type) are
data-quality events counted per feature by the state, and the record is still accepted.
"""

from __future__ import annotations

import functools
import json
import operator
import re
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

import orjson

from exporter.config.model import MlmonConfig, ModelConfig
from exporter.ingest.strings import all_short_strings as _all_short_strings
from exporter.ingest.attributions import (
    AttributionBodyError, AttributionColumns, from_columnar, from_records, from_values,
)
from exporter.ingest.limits import TooManyRecords, check_structure, split_lines  # TooManyRecords: re-exported
from exporter.ingest.numbers import RawColumn, feature_columns, tuple_columns  # RawColumn: a feature's raw values
from exporter.ingest.typed_records import (
    BACKOFF, TypedRecords, decode_array, decode_lines, feature_rows, is_array, model_for,
)

# Why a record was rejected; a closed set, so `reason` is a bounded label.
REJECTION_REASONS = (
    "malformed_json",         # an NDJSON line that is not JSON
    "not_an_object",          # a record that is not a JSON object
    "missing_model",          # no `model` string
    "unknown_model",          # `model` not declared in the config
    "invalid_model_version",  # missing, not a string/number, or outside [A-Za-z0-9_.:+-]
    "model_version_too_long", # longer than exporter.max_label_value_length (a label-value limit)
    "invalid_features",       # `features` missing or not an object
    "type_error",             # a feature value of the wrong type, with exporter.type_errors: reject
    "missing_prediction",     # no `prediction`
    "invalid_prediction",     # prediction of the wrong type for the model
    "invalid_id",             # `id` present but not a string or integer
    "invalid_timestamp",      # `timestamp` present but not unix seconds or RFC 3339
    "value_too_long",         # `id` or a class longer than exporter.max_string_length (a memory limit)
    # A new model_version the state may not hold (exporter/state/versions.py):
    "version_not_allowed",    # outside models[].versions.allow / pattern
    "version_rate_limited",   # over models[].versions.max_new_per_minute
    "too_many_versions",      # at max_versions_per_model, and no held version idle for evict_idle_after
)
UNKNOWN_MODEL_LABEL = "__unknown__"
VERSION_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.:+\-]*")
MISSING = object()  # a feature key that was absent (as opposed to present and null)
MAX_SECONDS = 1 << 53  # a timestamp beyond this is not a time; bounded, so label delays always sum finitely
MAX_SCORE = 1e300      # per-class scores are compared, never summed; this only keeps out NaN, inf and 1e400


class BodyError(Exception):
    """The whole body is unusable (400): not JSON, wrong top-level shape, inconsistent columns."""


@dataclass(slots=True)  # a body of 40,000 `[]`s makes 40,000 of these: slots halve their cost
class Rejection:
    index: int
    reason: str
    detail: str
    model: str = UNKNOWN_MODEL_LABEL

    def to_json(self) -> dict[str, Any]:
        return {"index": self.index, "reason": self.reason, "detail": self.detail}


@dataclass
class Batch:
    """Accepted records of one model version, as columns (raw Python values, converted later).

    A numeric feature's column is a float64 array instead of a list when decode already knows
    every value is a JSON number (exporter/ingest/numbers.py): what converting the list gives.
    """

    model: ModelConfig
    version: str
    features: dict[str, RawColumn]
    predictions: list[Any]
    ids: list[Any] = field(default_factory=list)
    timestamps: list[Any] = field(default_factory=list)
    labels: list[Any] = field(default_factory=list)
    segments: list[Any] = field(default_factory=list)
    # The model's own decision next to its score (binary: True/False per row, None where not sent), and the
    # per-class scores of a multiclass row in the config's class order (None where the row sent a class).
    # Empty when no row of the batch has them (the common case costs nothing).
    decisions: list[Any] = field(default_factory=list)
    class_scores: list[Any] = field(default_factory=list)
    unknown_features: int = 0
    indices: list[int] = field(default_factory=list)  # each row's position in the request (for rejections)
    attributions: AttributionColumns | None = None  # per-record phi of models with attributions.enabled

    @property
    def size(self) -> int:
        return len(self.predictions)


@dataclass
class Decoded:
    batches: list[Batch]
    rejections: list[Rejection]
    records: int


def parse_json(body: bytes) -> Any:
    """orjson for speed; stdlib json as a fallback so NaN/Infinity literals (Python's json.dumps) still parse.

    The fallback also reads what orjson refuses on purpose: integers beyond float range (they
    become non-finite values downstream) and lone surrogates. Callers bound the nesting depth
    first (limits.check_structure), and RecursionError is caught all the same.
    """
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError:
        try:
            return json.loads(body)
        except (ValueError, UnicodeDecodeError, RecursionError) as error:
            raise BodyError(f"body is not valid JSON: {ascii(str(error))[1:-1][:200]}") from None


NDJSON_TYPES = ("application/x-ndjson", "application/jsonl", "application/json-lines")


def decode_body(body: bytes, content_type: str, config: MlmonConfig, max_records: int) -> Decoded:
    """Decode any accepted body shape.

    Raises LimitExceeded before parsing a body that is too deep, too costly or has too many
    lines, and BodyError for a body that is unusable as a whole.
    """
    limits = config.exporter
    media = content_type.split(";")[0].strip().lower()
    rejections: list[Rejection] = []
    if media in NDJSON_TYPES:
        lines = split_lines(body, max_records)
        check_structure(body, limits.max_nesting_depth, limits.max_decoded_bytes)
        batch = _typed(body, lines, config, max_records)
        if batch is not None:
            return Decoded([batch], [], batch.size)
        records = parse_lines(lines)
    else:
        check_structure(body, limits.max_nesting_depth, limits.max_decoded_bytes)
        batch = _typed(body, None, config, max_records) if is_array(body) else None  # an array: records
        if batch is not None:
            return Decoded([batch], [], batch.size)
        document = parse_json(body)
        if isinstance(document, dict) and isinstance(document.get("features"), dict) and "predictions" in document:
            return decode_columnar(document, config, max_records)
        if isinstance(document, dict):
            document = [document]
        if not isinstance(document, list):
            raise BodyError("expected a JSON array of records, one record, or a columnar object")
        records = document
    if len(records) > max_records:
        raise TooManyRecords(len(records))
    return group_records(records, config, rejections)


def _typed(body: bytes, lines: list[bytes] | None, config: MlmonConfig, max_records: int) -> Batch | None:
    """The body as one Batch by the typed path (typed_records.py), or None for the dict path to decode."""
    model = model_for(body, config)
    if model is None or not BACKOFF.should_try(model.name):
        return None
    typed = decode_lines(lines, model) if lines is not None else decode_array(body, model)
    if typed is not None and typed.size > max_records:
        raise TooManyRecords(typed.size)
    batch = typed_batch(typed, model, config) if typed is not None else None
    BACKOFF.record(model.name, batch is not None)
    return batch


@dataclass
class MalformedLine:
    detail: str


def parse_lines(lines: list[bytes]) -> list[Any]:
    """Each NDJSON line parsed; a blank line is skipped, a line that is not JSON becomes a MalformedLine.

    The common body (every line a JSON value orjson reads, maybe a final newline) is one C-level
    map over the lines; any blank or bad line (or NaN, which only the stdlib reads) sends it line
    by line.
    """
    try:
        return list(map(orjson.loads, lines[:-1] if lines and not lines[-1] else lines))
    except orjson.JSONDecodeError:
        pass
    records: list[Any] = []
    for number, line in enumerate(lines):
        if not line.strip():
            continue
        try:
            records.append(parse_json(line))
        except BodyError as error:
            records.append(MalformedLine(f"line {number + 1}: {error}"))
    return records


@functools.lru_cache(maxsize=16)
def _got(kind: type) -> str:
    """One shared detail string per JSON type (there are six), not one per rejected record."""
    return f"got {kind.__name__}"


def valid_version(value: Any, max_length: int) -> str | None:
    """A model_version as a bounded, label-safe string, or None; registry references are mapped.

        >>> [valid_version(v, 64) for v in ("v1", 3, "models:/churn/3", "models:/churn@champion")]
        ['v1', '3', 'churn.3', 'churn.champion']
        >>> valid_version("ghcr.io/acme/churn@sha256:" + "ab" * 32, 64), valid_version("a/b", 64)
        ('sha256:abababababab', None)
    """
    if isinstance(value, bool) or not isinstance(value, (str, int, float)):
        return None
    text = registry_version(value) if isinstance(value, str) else str(value)
    return text if _label_safe(text, max_length) else None


MLFLOW_MODEL_URI = re.compile(r"models:/([A-Za-z0-9][A-Za-z0-9_.\-]*)[/@]([A-Za-z0-9][A-Za-z0-9_.\-]*)")
DIGEST = re.compile(r"(?:.*@)?(sha256|sha512):([0-9a-f]{12})[0-9a-f]*")


@functools.lru_cache(maxsize=256)
def registry_version(text: str) -> str:
    """A model registry's reference as a label-safe version (docs/ingest.md#model-versions).

    MLflow ``models:/<name>/<version>`` and ``models:/<name>@<alias>`` become ``<name>.<version>``
    (``<name>.<alias>``); an image or artifact digest (``sha256:<hex>``, ``repo@sha256:<hex>``)
    becomes ``sha256:`` and its first 12 hex digits, as ``docker images`` shows it. Anything else
    is left as it is, to be accepted or rejected by the version pattern.
    """
    match = MLFLOW_MODEL_URI.fullmatch(text)
    if match:
        return f"{match[1]}.{match[2]}"
    match = DIGEST.fullmatch(text)
    if match:
        return f"{match[1]}:{match[2]}"
    return text


@functools.lru_cache(maxsize=1024)
def _label_safe(text: str, max_length: int) -> bool:
    """Cached: a body repeats the same model_version on every record; bounded, so hostile input cannot grow it."""
    return len(text) <= max_length and VERSION_PATTERN.fullmatch(text) is not None


def check_prediction(model: ModelConfig, value: Any, max_length: int = 256) -> Any:
    """The prediction in canonical form (float or class string), or raise ValueError with why.

    A class longer than `max_length` raises TooLong (a ValueError): classes are kept as strings.
    """
    if model.prediction.type == "numeric":
        if type(value) in (float, int):
            return value
        if isinstance(value, (list, dict)) and model.task == "binary_classification":
            return _positive_score(model, value)
        raise ValueError(f"prediction must be a number for {model.name}, got {type(value).__name__}")
    if isinstance(value, list):  # a predict_proba row: one score per class, in the config's class order
        classes = model.quality_classes
        if len(value) != len(classes) or not _finite_scores(value):
            raise ValueError(f"a row of scores must have one finite number per class ({len(classes)}) for {model.name}")
        return classes[value.index(max(value))]  # ties: the first in class order
    if isinstance(value, dict):  # per-class scores: the predicted class is the argmax
        scores = {k: v for k, v in value.items() if type(v) in (float, int) and -MAX_SCORE <= v <= MAX_SCORE}
        if not scores or len(scores) != len(value):
            raise ValueError("per-class scores must be an object of finite numbers")
        # Ties: the class first in the config; between keys the config does not list, the smallest text,
        # so the same scores give the same class whatever order the keys arrive in.
        order = {c: i for i, c in enumerate(model.quality_classes)}
        predicted = min(scores, key=lambda k: (-scores[k], order.get(k, len(order)), k))
        if len(predicted) > max_length:
            raise TooLong(f"the predicted class is longer than {max_length} characters")
        return predicted
    if isinstance(value, str) or (isinstance(value, int) and not isinstance(value, bool)):
        text = value if isinstance(value, str) else _int_text(value)
        if text is None or len(text) > max_length:
            raise TooLong(f"the predicted class is longer than {max_length} characters")
        return text
    raise ValueError(f"prediction must be a class (string) or per-class scores for {model.name}")


POSITIVE_KEYS = ("1", "true", "True", "yes", "positive")
NEGATIVE_KEYS = ("0", "false", "False", "no", "negative")
PREDICTED_CLASS = "predicted_class"     # a record's field: the class the model itself predicted
PREDICTED_CLASSES = "predicted_classes"  # the columnar body's column of them


def check_predicted_class(model: ModelConfig, value: Any, max_length: int = 256) -> Any:
    """The model's own predicted class, canonical: binary True (positive) / False, multiclass the class text.

    Binary: true/false, 1/0, the two `prediction.classes` when two are configured, or the texts of
    POSITIVE_KEYS / NEGATIVE_KEYS; anything else raises ValueError (a binary model has no __other__).
    Multiclass: a class (string or integer) like a class prediction; one the config does not list is
    kept and folds into __other__ where it is counted, as a class prediction does.
    """
    if model.task == "binary_classification":
        if value is True or value is False:
            return value
        if type(value) is int and value in (0, 1):
            return value == 1
        classes = model.prediction.classes
        if isinstance(value, str):
            if classes and len(classes) == 2 and value in classes:
                return value == classes[1]
            if value in POSITIVE_KEYS or value in NEGATIVE_KEYS:
                return value in POSITIVE_KEYS
        named = f"{classes[0]!r}/{classes[1]!r}, " if classes and len(classes) == 2 else ""
        raise ValueError(f"predicted_class of a binary model must be {named}true/false or 1/0")
    if model.task == "multiclass_classification":
        if isinstance(value, str) or (type(value) is int):
            text = value if isinstance(value, str) else _int_text(value)
            if text is None or len(text) > max_length:
                raise TooLong(f"predicted_class is longer than {max_length} characters")
            return text
        raise ValueError("predicted_class must be a class (string or integer)")
    raise ValueError(f"predicted_class is for classifiers; {model.name} is a regression model")


def class_score_row(model: ModelConfig, value: Any) -> list[float] | None:
    """A multiclass prediction's per-class scores in the config's class order (None for a class prediction).

    A `predict_proba` row is already in that order; an object's configured classes are read by name, a
    configured class it leaves out scores 0 and a key the config does not list is not kept (its mass is
    what the configured classes' scores do not add up to). Call after check_prediction accepted the value.
    """
    if isinstance(value, list):
        return [float(v) for v in value]
    if isinstance(value, dict):
        return [float(value.get(c, 0.0)) for c in model.quality_classes]
    return None


def read_prediction(model: ModelConfig, record: dict[str, Any], max_length: int) -> tuple[Any, Any, Any]:
    """(canonical prediction, the model's own decision or None, per-class scores or None) of a record.

    Multiclass: a predicted_class replaces the argmax as the prediction (its scores are still kept).
    """
    raw = record["prediction"]
    prediction = check_prediction(model, raw, max_length)
    scores = class_score_row(model, raw) if model.task == "multiclass_classification" else None
    own = record.get(PREDICTED_CLASS)
    if own is None:
        return prediction, None, scores
    own = check_predicted_class(model, own, max_length)
    if model.task == "multiclass_classification":
        return own, None, scores
    return prediction, own, None


def _finite_scores(values: list[Any]) -> bool:
    return all(type(v) in (float, int) and -MAX_SCORE <= v <= MAX_SCORE for v in values)


def _positive_score(model: ModelConfig, value: list[Any] | dict[str, Any]) -> float:
    """Binary: the positive class's score of a predict_proba row [p0, p1] or of {class: score}.

    The positive class is the last of prediction.classes when two are configured, else the key
    "1", "true", "yes" or "positive".
    """
    if isinstance(value, list):
        if len(value) in (1, 2) and _finite_scores(value):
            return value[-1]
        raise ValueError("a binary prediction row must be [score] or [p_negative, p_positive] of finite numbers")
    classes = model.prediction.classes
    keys = (classes[-1],) if classes and len(classes) == 2 else POSITIVE_KEYS
    score = next((value[k] for k in keys if k in value), None)
    if score is None or not _finite_scores([score]):
        raise ValueError(f"binary per-class scores need a finite score for the positive class ({', '.join(keys)})")
    return score


class TooLong(ValueError):
    """A string over exporter.max_string_length: the record is rejected with `value_too_long`."""


def _int_text(value: int) -> str | None:
    """Decimal text of an int id or class, None past 4,300 digits (Python's int-to-str limit)."""
    try:
        return str(value)
    except ValueError:
        return None


def check_timestamp(value: Any) -> float | None:
    """Unix seconds, or an RFC 3339 string; raises ValueError otherwise."""
    if value is None:
        return None
    if type(value) is float and -MAX_SECONDS <= value <= MAX_SECONDS:  # NaN and inf fail the comparison
        return value
    if type(value) is int and -MAX_SECONDS <= value <= MAX_SECONDS:
        return float(value)
    if isinstance(value, str):
        from datetime import datetime

        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    raise ValueError("timestamp must be unix seconds or RFC 3339")


def group_records(records: list[Any], config: MlmonConfig, rejections: list[Rejection]) -> Decoded:
    """Validate records one by one (cheap checks only) and group the good ones per model/version."""
    if not rejections:
        uniform = uniform_batch(records, config)
        if uniform is not None:
            return Decoded([uniform], [], len(records))
    groups: dict[tuple[str, str], tuple[ModelConfig, list[dict[str, Any]], list[Any], list[int], dict[int, Any]]] = {}
    max_len = config.exporter.max_label_value_length
    max_string = config.exporter.max_string_length
    models = {m.name: m for m in config.models}
    for index, record in enumerate(records):
        if isinstance(record, MalformedLine):
            rejections.append(Rejection(index, "malformed_json", record.detail))
            continue
        if not isinstance(record, dict):
            rejections.append(Rejection(index, "not_an_object", _got(type(record))))
            continue
        name = record.get("model")
        if not isinstance(name, str):
            rejections.append(Rejection(index, "missing_model", "`model` must be a string"))
            continue
        model = models.get(name)
        if model is None:
            rejections.append(Rejection(index, "unknown_model", f"model {ascii(name[:64])} is not in the config"))
            continue
        reason = _record_problem(record, model, max_len, max_string)
        if reason is not None:
            rejections.append(Rejection(index, reason[0], reason[1], model=name))
            continue
        extra = None
        try:
            value = record["prediction"]
            if PREDICTED_CLASS in record or type(value) in (list, dict):
                prediction, decision, scores = read_prediction(model, record, max_string)
                if decision is not None or scores is not None:
                    extra = (decision, scores)
            else:
                prediction = check_prediction(model, value, max_string)
        except ValueError as error:
            why = "value_too_long" if isinstance(error, TooLong) else "invalid_prediction"
            rejections.append(Rejection(index, why, str(error), model=name))
            continue
        key = (name, valid_version(record["model_version"], max_len))
        group = groups.get(key)
        if group is None:
            group = groups[key] = (model, [], [], [], {})
        if extra is not None:
            group[4][len(group[2])] = extra
        group[1].append(record)
        group[2].append(prediction)
        group[3].append(index)
    batches = [
        _with_extras(_to_batch(model, version, recs, preds, indices), extras)
        for (_, version), (model, recs, preds, indices, extras) in groups.items()
    ]
    return Decoded(batches, rejections, len(records))


def _with_extras(batch: Batch, extras: dict[int, tuple[Any, Any]]) -> Batch:
    """Rows' own decisions and class scores as columns, only when some row of the batch had them."""
    if extras:
        rows = [extras.get(i, (None, None)) for i in range(batch.size)]
        if any(decision is not None for decision, _ in rows):
            batch.decisions = [decision for decision, _ in rows]
        if any(scores is not None for _, scores in rows):
            batch.class_scores = [scores for _, scores in rows]
    return batch
# The keys a record may carry for the uniform path; any other key sends the body to the per-record path.
# A new per-record field (validated there) is safe by default: it only joins this set once
# uniform_batch checks it column-wise the way _record_problem checks it record by record.
# `attributions` is checked nowhere per record (_to_batch reads it the same way on both paths); `predicted_class`
# is not here: read_prediction checks it row by row.
UNIFORM_KEYS = frozenset({"model", "model_version", "features", "prediction", "id", "timestamp", "label", "segments",
                          "attributions"})
_REQUIRED = tuple(operator.itemgetter(key) for key in ("model", "model_version", "features", "prediction"))


def uniform_batch(records: list[Any], config: MlmonConfig) -> Batch | None:
    """The whole body as one Batch when every record is good and of one model version, else None.

    This is the common body (a model server logs its own model), checked column-wise in C-level
    passes (map, set, itemgetter) instead of one Python call per record; it gives exactly the
    batch the per-record path gives, and gives up (None) at the first thing that path would
    reject or treat record by record: another shape, a rejection, two versions, a key it does not
    know. tests/test_decode_uniform.py holds the two paths equal on seeded hostile bodies.
    """
    if not records or set(map(type, records)) != {dict} or not set().union(*records) <= UNIFORM_KEYS:
        return None
    try:  # one C-level pass per key: cheaper than a tuple per record
        models, versions, feature_dicts, raw_predictions = (list(map(get, records)) for get in _REQUIRED)
    except KeyError:  # a record without model, model_version, features or prediction
        return None
    if set(map(type, feature_dicts)) != {dict}:
        return None
    ids = list(map(dict.get, records, repeat("id")))
    timestamps = list(map(dict.get, records, repeat("timestamp")))
    head = uniform_head(models, versions, raw_predictions, ids, timestamps, config)
    if head is None:
        return None
    model, version, predictions = head
    return _to_batch(model, version, records, predictions, list(range(len(records))))


def uniform_head(
    models: list[Any], versions: list[Any], raw_predictions: list[Any], ids: list[Any], timestamps: list[Any],
    config: MlmonConfig,
) -> tuple[ModelConfig, str, list[Any]] | None:
    """(model, version, canonical predictions) when the records' own fields are all good and alike, else None.

    The uniform paths' checks of everything but the features, column by column: what the
    per-record path would check record by record (_record_problem, check_prediction).
    """
    # One name and one version, each of one type: values that are equal but not alike (1 and
    # True, 1 and 1.0, 0.0 and -0.0) would otherwise share a set entry and be checked as one.
    if set(map(type, models)) != {str} or len(set(models)) != 1 or len(set(map(type, versions))) != 1:
        return None
    if type(versions[0]) not in (str, int) or len(set(versions)) != 1:
        return None
    model = config.model(models[0])
    limits = config.exporter
    version = valid_version(versions[0], limits.max_label_value_length)
    if model is None or version is None:
        return None
    predictions = uniform_predictions(model, raw_predictions, limits.max_string_length)
    if predictions is None or _bad_ids(ids, limits.max_string_length):
        return None
    if timestamps.count(None) != len(timestamps) and not _all_timestamps(timestamps):
        return None
    return model, version, predictions


def typed_batch(typed: TypedRecords, model: ModelConfig, config: MlmonConfig) -> Batch | None:
    """The Batch uniform_batch gives for these records, from records decoded as `model`'s structs (typed_records.py)."""
    head = uniform_head(typed.models, typed.versions, typed.predictions, typed.ids, typed.timestamps, config)
    if head is None or head[0].name != model.name:  # the structs were `model`'s features: the records name another
        return None
    version, predictions = head[1], head[2]
    names = [f.name for f in model.features]
    numeric = {f.name for f in model.features if f.type == "numeric"}
    return Batch(
        model=model,
        version=version,
        features=tuple_columns(feature_rows(typed.features), names, numeric),
        predictions=predictions,
        ids=typed.ids,
        timestamps=typed.timestamps,
        labels=typed.labels,
        segments=typed.segments,
        unknown_features=0,  # a key that is not a configured feature is not decoded here (forbid_unknown_fields)
        indices=list(range(len(predictions))),
        attributions=from_values(typed.attributions, model),
    )


def uniform_predictions(model: ModelConfig, raw: list[Any], max_string: int) -> list[Any] | None:
    """check_prediction of every row, or None if any row fails it (the per-record path rejects it).

    Plain numbers of a numeric prediction and short strings of a class are what check_prediction
    returns unchanged: those columns are checked in one pass, the rest row by row.
    """
    if model.prediction.type == "numeric" and set(map(type, raw)) <= {float, int}:
        return raw
    if model.prediction.type != "numeric" and _all_short_strings(raw, max_string):
        return raw
    if not set(map(type, raw)).isdisjoint((list, dict)):  # predict_proba rows, {class: score}: read_prediction's
        return None
    try:
        return [check_prediction(model, value, max_string) for value in raw]
    except ValueError:
        return None


def _all_timestamps(timestamps: list[Any]) -> bool:
    """Every present timestamp is one check_timestamp accepts."""
    try:
        for value in timestamps:
            if value is not None:
                check_timestamp(value)
    except (ValueError, TypeError):
        return False
    return True


def _record_problem(
    record: dict[str, Any], model: ModelConfig, max_len: int, max_string: int
) -> tuple[str, str] | None:
    version = record.get("model_version")
    if isinstance(version, str) and len(version) > max_len and valid_version(version, max_len) is None:
        return "model_version_too_long", f"`model_version` is longer than {max_len} characters"
    if valid_version(version, max_len) is None:
        return "invalid_model_version", f"`model_version` must be a string of at most {max_len} of [A-Za-z0-9_.:+-]"
    if not isinstance(record.get("features"), dict):
        return "invalid_features", "`features` must be an object of {name: value}"
    if "prediction" not in record:
        return "missing_prediction", "`prediction` is required"
    record_id = record.get("id")
    if record_id is not None:
        problem = id_problem(record_id, max_string)
        if problem is not None:
            return problem
    timestamp = record.get("timestamp")
    if timestamp is not None:  # the common case skips a call per record
        try:
            check_timestamp(timestamp)
        except (ValueError, TypeError):
            return "invalid_timestamp", "`timestamp` must be unix seconds or an RFC 3339 string"
    return None


def id_problem(value: Any, max_string: int) -> tuple[str, str] | None:
    """Why a present `id` cannot be kept for the label join, or None."""
    if isinstance(value, bool) or not isinstance(value, (str, int)):
        return "invalid_id", "`id` must be a string or an integer"
    text = value if isinstance(value, str) else _int_text(value)
    if text is None or len(text) > max_string:
        return "value_too_long", f"`id` is longer than {max_string} characters (exporter.max_string_length)"
    return None


def _transpose(feature_dicts: list[dict[str, Any]], model: ModelConfig) -> tuple[dict[str, RawColumn], int] | None:
    """Fast path when every record has every configured feature: (columns, unknown keys), or None.

    Every feature is gathered in one pass over the records (exporter/ingest/numbers.py); numeric
    features that hold only numbers come out as float64 arrays. When all configured names are
    present in a record, its unknown keys are simply len(record) - len(names) (names are unique by
    config validation).
    """
    names = [f.name for f in model.features]
    try:
        columns = feature_columns(feature_dicts, names, {f.name for f in model.features if f.type == "numeric"})
    except KeyError:
        return None
    return columns, sum(map(len, feature_dicts)) - len(feature_dicts) * len(names)


def _to_batch(
    model: ModelConfig, version: str, records: list[dict[str, Any]], predictions: list[Any], indices: list[int]
) -> Batch:
    feature_dicts = list(map(operator.itemgetter("features"), records))
    names = [f.name for f in model.features]
    fast = _transpose(feature_dicts, model)
    if fast is not None:
        columns, unknown = fast
    else:  # column by column: only a column with an absent key walks its records in Python
        columns, present = {}, 0  # (typed by prepare, value by value: MISSING is not a number)
        for name in names:
            try:
                columns[name] = list(map(operator.itemgetter(name), feature_dicts))
                present += len(feature_dicts)
            except KeyError:
                column = columns[name] = list(map(dict.get, feature_dicts, repeat(name), repeat(MISSING)))
                present += len(column) - column.count(MISSING)  # (JSON values equal MISSING only by identity)
        unknown = sum(map(len, feature_dicts)) - present  # keys that are not configured names (names are unique)
    return Batch(
        model=model,
        version=version,
        features=columns,
        predictions=predictions,
        ids=list(map(dict.get, records, repeat("id"))),  # C-level passes: no Python call per record
        timestamps=list(map(dict.get, records, repeat("timestamp"))),
        labels=list(map(dict.get, records, repeat("label"))),
        segments=list(map(dict.get, records, repeat("segments"))),
        unknown_features=unknown,
        indices=indices,
        attributions=from_records(records, model),
    )


def decode_columnar(document: dict[str, Any], config: MlmonConfig, max_records: int) -> Decoded:
    """The columnar shape: one model/version, equal-length columns. Inconsistent shapes are a 400."""
    name = document.get("model")
    model = config.model(name) if isinstance(name, str) else None
    predictions = document.get("predictions")
    if not isinstance(predictions, list):
        raise BodyError("columnar body: `predictions` must be an array")
    count = len(predictions)
    if count > max_records:
        raise TooManyRecords(count)
    if model is None:
        reason = "unknown_model" if isinstance(name, str) else "missing_model"
        detail = f"model {ascii(str(name)[:64])} is not in the config"
        return Decoded([], [Rejection(i, reason, detail) for i in range(count)], count)
    raw_version = document.get("model_version")
    version = valid_version(raw_version, config.exporter.max_label_value_length)
    if version is None:
        too_long = isinstance(raw_version, str) and len(raw_version) > config.exporter.max_label_value_length
        reason = "model_version_too_long" if too_long else "invalid_model_version"
        detail = "`model_version` must be a short string of [A-Za-z0-9_.:+-]"
        rejections = [Rejection(i, reason, detail, model=model.name) for i in range(count)]
        return Decoded([], rejections, count)
    features: dict[str, Any] = document["features"]
    for column_name, column in features.items():
        if not isinstance(column, list) or len(column) != count:
            raise BodyError(f"columnar body: features.{ascii(str(column_name)[:64])[1:-1]} must be an array of {count} values")
    optional: dict[str, list[Any]] = {}
    for key in ("ids", "timestamps", "labels", "segments", PREDICTED_CLASSES):
        column = document.get(key)
        if column is not None and (not isinstance(column, list) or len(column) != count):
            raise BodyError(f"columnar body: `{key}` must be an array of {count} values")
        optional[key] = column if column is not None else [None] * count
    # Per-row checks only where a row can be wrong on its own: prediction, id, timestamp.
    rejections: list[Rejection] = []
    keep: list[int] | range = []
    canonical: list[Any] = []
    max_string = config.exporter.max_string_length
    bad_ids = _bad_ids(optional["ids"], max_string)
    own = document.get(PREDICTED_CLASSES)
    extras: dict[int, tuple[Any, Any]] = {}
    if not bad_ids and own is None and model.prediction.type == "numeric" and \
            set(map(type, predictions)) <= {float, int}:
        # Every prediction is a plain number: what the per-row check below would keep, in one C pass.
        keep, canonical, predictions = range(count), list(predictions), []
    for i, value in enumerate(predictions):
        if i in bad_ids:
            rejections.append(Rejection(i, *bad_ids[i], model=model.name))
            continue
        try:
            if own is not None or type(value) in (list, dict):
                row = {"prediction": value} if own is None else {"prediction": value, PREDICTED_CLASS: own[i]}
                prediction, decision, scores = read_prediction(model, row, max_string)
                if decision is not None or scores is not None:
                    extras[len(canonical)] = (decision, scores)
            else:
                prediction = check_prediction(model, value, max_string)
            canonical.append(prediction)
            keep.append(i)
        except ValueError as error:
            why = "value_too_long" if isinstance(error, TooLong) else "invalid_prediction"
            rejections.append(Rejection(i, why, str(error), model=model.name))
    known = {f.name for f in model.features}
    unknown_columns = [c for c in features if c not in known]

    def select(column: list[Any]) -> list[Any]:
        return column if len(keep) == count else [column[i] for i in keep]

    columns = {
        f.name: select(features[f.name]) if f.name in features else [MISSING] * len(keep) for f in model.features
    }
    try:
        attributions = from_columnar(document.get("attributions"), count, keep, model)
    except AttributionBodyError as error:
        raise BodyError(str(error)) from None
    batch = Batch(
        model=model,
        version=version,
        features=columns,
        predictions=canonical,
        ids=select(optional["ids"]),
        timestamps=select(optional["timestamps"]),
        labels=select(optional["labels"]),
        segments=select(optional["segments"]),
        unknown_features=len(unknown_columns) * len(keep),
        indices=list(keep),
        attributions=attributions,
    )
    return Decoded([_with_extras(batch, extras)] if keep else [], rejections, count)


def _bad_ids(ids: list[Any], max_string: int) -> dict[int, tuple[str, str]]:
    """Rows whose id is present but unusable; the all-short-strings case is one C-level pass."""
    if ids and ids[0] is None and ids.count(None) == len(ids):  # no ids sent
        return {}
    if _all_short_strings(ids, max_string):
        return {}
    problems = {}
    for i, value in enumerate(ids):
        if value is not None:
            problem = id_problem(value, max_string)
            if problem is not None:
                problems[i] = problem
    return problems
