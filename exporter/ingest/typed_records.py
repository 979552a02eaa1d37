"""Record bodies decoded straight into per-model structs: the fast path for JSON records and NDJSON.

A records body holds one dict per record and one Python object per value once orjson has parsed
it; building those and then gathering them into columns cost more than the rest of the request
(docs/ingest.md#speed). msgspec decodes the same bytes into a Struct whose fields are the model's
features: no dict per record, no key hashing, and the values come out in the config's order, so
the columns are slices of one flat list.

This path only ever takes a body the dict path would take whole (its uniform path:
decode.uniform_batch), and gives exactly the Batch that path gives. It gives up (None), and the
body is parsed again by the dict path, on anything else:

* a key that is not a configured feature or a known record field, or a configured feature that
  is absent (``forbid_unknown_fields``, required fields): unknown and missing features are
  counted by the dict path;
* a value that is not a JSON scalar (a list or object where a scalar goes), an integer outside
  int64 (orjson reads those as floats) or past float range, NaN literals, lone surrogates: what
  orjson reads differently or not at all;
* two models or versions, a prediction or id or timestamp the per-record path would reject.

A scalar is decoded to the same Python value orjson gives (int stays int, true stays True), so
every column and every check downstream is the dict path's. tests/test_decode_typed.py holds the
two equal on seeded hostile bodies.
"""

from __future__ import annotations

import functools
import operator
import re
from dataclasses import dataclass
from typing import Annotated, Any, Union

import msgspec

from exporter.config.model import MlmonConfig, ModelConfig

# Exactly what orjson reads as the same Python value: an int within int64 (orjson reads larger
# ones as floats, or as ints up to 2**64: either way not this path), a finite float, a string.
Int = Annotated[int, msgspec.Meta(ge=-(2**63), le=2**63 - 1)]
Scalar = Union[bool, Int, float, str, None]
ScalarOrObject = Union[dict[str, Scalar], Scalar]  # segments, attributions: read like the dict path reads them

MODEL_HINT = re.compile(rb'"model"\s*:\s*"([^"\\]{1,256})"')  # the first record's model, to pick its struct
HINT_BYTES = 65_536
JSON_ARRAY = re.compile(rb"[ \t\r\n]*\[")
RECORD_FIELDS = ("model", "model_version", "prediction", "id", "timestamp", "label", "segments", "attributions")


@dataclass(slots=True)
class TypedRecords:
    """The decoded records' fields as columns (C-level attribute gathers), and their feature structs."""

    models: list[Any]
    versions: list[Any]
    predictions: list[Any]
    ids: list[Any]
    timestamps: list[Any]
    labels: list[Any]
    segments: list[Any]
    attributions: list[Any]
    features: list[Any]  # one struct per record; feature_rows gives its values in config order

    @property
    def size(self) -> int:
        return len(self.models)


@functools.lru_cache(maxsize=64)
def _decoders(feature_names: tuple[str, ...]) -> tuple[msgspec.json.Decoder, msgspec.json.Decoder]:
    """(array-of-records decoder, one-record decoder) for a model's features; bounded: configs are few."""
    # Fields are f0, f1, ... renamed to the features' names: a config name need not be a Python
    # identifier ("page.views", "x-rate") and may clash with a class attribute ("__slots__").
    fields = [f"f{i}" for i in range(len(feature_names))]
    features = msgspec.defstruct("Features", [(field, Scalar) for field in fields],
                                 rename=dict(zip(fields, feature_names)), forbid_unknown_fields=True, gc=False)
    record = msgspec.defstruct(
        "Record",
        [("model", Scalar), ("model_version", Scalar), ("features", features), ("prediction", Scalar),
         ("id", Scalar, None), ("timestamp", Scalar, None), ("label", Scalar, None),
         ("segments", ScalarOrObject, None), ("attributions", ScalarOrObject, None)],
        forbid_unknown_fields=True,
        gc=False,  # decoded JSON holds no reference cycles; untracked structs are cheaper to make and free
    )
    return msgspec.json.Decoder(list[record]), msgspec.json.Decoder(record)


class Backoff:
    """Which models' bodies to try on this path: a model whose bodies keep giving up is tried less often.

    Giving up costs the partial decode, up to a whole one when the first thing this path does not
    take is in the last record (~+50 % on such a body). A model server whose bodies always carry,
    say, an extra feature now and then would pay that on every request; so after k give-ups in a
    row the next min(2**(k-1), max_skip) bodies of that model go straight to the dict path, and
    one body taken resets it. Either path gives the same answer: this only moves the cost. Keyed
    by config model names (bounded by the config); racing threads only make it try one body more
    or less.
    """

    def __init__(self, max_skip: int = 32) -> None:
        self.max_skip = max_skip
        self._state: dict[str, list[int]] = {}  # model -> [give-ups in a row, bodies left to skip]

    def should_try(self, model: str) -> bool:
        state = self._state.get(model)
        if state is None or state[1] <= 0:
            return True
        state[1] -= 1
        return False

    def record(self, model: str, taken: bool) -> None:
        if taken:
            self._state.pop(model, None)
            return
        if len(self._state) > 1024:  # models of configs reloaded away
            self._state.clear()
        state = self._state.setdefault(model, [0, 0])
        state[0] += 1
        state[1] = min(2 ** min(state[0] - 1, 30), self.max_skip)


BACKOFF = Backoff()


def is_array(body: bytes) -> bool:
    """Whether a JSON body is an array (of records), by its first character after white space."""
    return JSON_ARRAY.match(body) is not None


def model_for(body: bytes, config: MlmonConfig) -> ModelConfig | None:
    """The model whose struct to try: the only one, or the one the first record names."""
    if len(config.models) == 1:
        return config.models[0]
    match = MODEL_HINT.search(body, 0, HINT_BYTES)
    if match is None:
        return None
    return config.model(match[1].decode("utf-8", "replace"))


def decode_array(body: bytes, model: ModelConfig) -> TypedRecords | None:
    """A JSON array of records of `model`, or None when the body is anything this path does not take."""
    try:
        records = _decoders(_names(model))[0].decode(body)
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return _columns(records)


def decode_lines(lines: list[bytes], model: ModelConfig) -> TypedRecords | None:
    """NDJSON lines (a final empty one is the closing newline); any blank or bad line gives up."""
    if lines and not lines[-1]:
        lines = lines[:-1]
    try:
        records = list(map(_decoders(_names(model))[1].decode, lines))
    except (msgspec.ValidationError, msgspec.DecodeError):
        return None
    return _columns(records)


def _names(model: ModelConfig) -> tuple[str, ...]:
    return tuple(feature.name for feature in model.features)


def _columns(records: list[Any]) -> TypedRecords | None:
    if not records:
        return None
    fields = [list(map(operator.attrgetter(name), records)) for name in RECORD_FIELDS]
    return TypedRecords(*fields, features=list(map(operator.attrgetter("features"), records)))


def feature_rows(structs: list[Any]) -> list[tuple[Any, ...]]:
    """Each record's feature values in config order."""
    return list(map(msgspec.structs.astuple, structs))
