"""Reference profiles: the bins live traffic is counted in, and the reference fractions it is compared to.

A profile is a small JSON file versioned next to the model. Numeric features get bin edges at
reference quantiles (equal-mass bins) plus an underflow and an overflow bin; categorical and
boolean features keep their top-K categories plus ``__other__``. Each feature (and the
prediction) becomes a :class:`Binning`, which turns a column of values into bin indices with
numpy and knows the reference count of every bin.

    >>> binning = numeric_binning("amount", np.arange(100.0), bins=4)
    >>> binning.labels
    ('00', '01', '02', '03', '04', '05')
    >>> binning.assign(np.array([-5.0, 0.0, 50.0, 99.0, 120.0])).tolist()
    [0, 1, 3, 4, 5]
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any, Literal

import numpy as np

PROFILE_FORMAT = 1
OTHER = "__other__"
BOOLEAN_CATEGORIES = ("false", "true")

Kind = Literal["numeric", "categorical", "boolean"]


_DECIMAL_ZEROS = re.compile(r"-?[0-9]+\.0+")


def canonical_category(value: Any) -> str | None:
    """One text per category however it arrives (None: not a category value).

    Strings stay as they are, except the text of an integral float ("4.0", "-2.00") which becomes
    "4" / "-2", the way a CSV or pandas writes an integer column that held a null; integers are
    their decimal text; an integral float is the integer's text (4.0 -> "4"). Other floats (0.5,
    NaN), booleans and other types are not categories (a type error at ingest).
    """
    kind = type(value)
    if kind is str:
        return value[: value.index(".")] if _DECIMAL_ZEROS.fullmatch(value) else value
    if kind is int:
        return str(value)
    if kind is float and value.is_integer():
        return str(int(value))
    return None


class ProfileError(Exception):
    """A profile file is missing, malformed, or does not match the config."""


@dataclass(frozen=True)
class Binning:
    """How one column is binned, and the reference distribution over those bins.

    Numeric: ``edges`` are the reference quantiles from min to max; bin 0 is underflow
    (< min), bins 1..len(edges)-1 are [edge[i-1], edge[i]) (the last one closed at max),
    and the last bin is overflow (> max). Categorical: bin i is ``categories[i]``, the last
    bin is ``__other__``.
    """

    name: str
    kind: Kind
    reference_counts: np.ndarray
    edges: np.ndarray | None = None
    categories: tuple[str, ...] = ()
    stats: dict[str, float] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind == "numeric":
            if self.edges is None or len(self.edges) < 2:
                raise ProfileError(f"{self.name}: a numeric binning needs at least 2 edges")
            expected = len(self.edges) + 1
        else:
            expected = len(self.categories) + 1
        if len(self.reference_counts) != expected:
            raise ProfileError(f"{self.name}: {len(self.reference_counts)} reference counts for {expected} bins")
        # Category lookup for the ingest path; built once.
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.categories)})

    @property
    def n_bins(self) -> int:
        return len(self.reference_counts)

    @property
    def labels(self) -> tuple[str, ...]:
        """Bin label values: zero-padded indices for numeric (sort right in Grafana), names for categories."""
        if self.kind == "numeric":
            return tuple(f"{i:02d}" for i in range(self.n_bins))
        return (*self.categories, OTHER)

    @property
    def reference_ratio(self) -> np.ndarray:
        total = self.reference_counts.sum()
        return self.reference_counts / total if total else np.zeros(self.n_bins)

    @property
    def reference_total(self) -> int:
        return int(self.reference_counts.sum())

    def assign(self, values: np.ndarray) -> np.ndarray:
        """Bin indices for finite floats (numeric) or category strings (categorical/boolean)."""
        if self.kind == "numeric":
            assert self.edges is not None
            inner = self.edges[1:-1]
            index = np.searchsorted(inner, values, side="right") + 1
            index[values < self.edges[0]] = 0
            index[values > self.edges[-1]] = self.n_bins - 1
            return index
        if len(values) == 0:
            return np.zeros(0, dtype=np.int64)
        other = self.n_bins - 1
        if not self.categories:
            return np.full(len(values), other, dtype=np.int64)
        # Binary search in the sorted categories, then confirm the hit: O(n log K) in numpy,
        # about 2x cheaper than np.unique (a full sort of the column) on this path.
        ordered = self.__dict__.get("_ordered")
        if ordered is None:  # built once per binning (a benign race: both threads build the same)
            order = np.argsort(np.asarray(self.categories, dtype=str), kind="stable")
            ordered = (np.asarray(self.categories, dtype=str)[order], order.astype(np.int64))
            object.__setattr__(self, "_ordered", ordered)
        sorted_categories, order = ordered
        strings = np.asarray(values, dtype=str)
        position = np.searchsorted(sorted_categories, strings)
        position[position == len(sorted_categories)] = 0
        found = sorted_categories[position] == strings
        return np.where(found, order[position], other)

    def bin_bounds(self) -> list[tuple[float, float]]:
        """(lower, upper) of every numeric bin; -inf/inf for underflow and overflow."""
        assert self.edges is not None
        edges = self.edges.tolist()
        return [(-np.inf, edges[0])] + list(zip(edges[:-1], edges[1:])) + [(edges[-1], np.inf)]

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {"type": self.kind}
        if self.kind == "numeric":
            data["edges"] = [float(e) for e in self.edges]  # type: ignore[union-attr]
        else:
            data["categories"] = list(self.categories)
        data["counts"] = [int(c) for c in self.reference_counts]
        data["stats"] = self.stats
        return data

    @classmethod
    def from_json(cls, name: str, data: Any) -> Binning:
        """A binning from its JSON form, checked value by value: a bad profile is refused, never served."""
        if not isinstance(data, dict):
            raise ProfileError(f"{name}: must be an object with `type`, `counts` and `edges` or `categories`")
        kind = data.get("type")
        if kind not in ("numeric", "categorical", "boolean"):
            raise ProfileError(f"{name}: unknown type {str(kind)[:32]!r}")
        counts = _counts(name, data.get("counts"))
        stats = _stats(name, data.get("stats", {}))
        if kind == "numeric":
            return cls(name, kind, counts, edges=_edges(name, data.get("edges")), stats=stats)
        return cls(name, kind, counts, categories=_categories(name, data.get("categories")), stats=stats)


def _counts(name: str, value: Any) -> np.ndarray:
    """Reference counts: a list of non-negative integers (a negative count makes every ratio meaningless)."""
    if not isinstance(value, list) or not all(type(c) is int for c in value):
        raise ProfileError(f"{name}: counts must be a list of integers")
    if any(c < 0 or c >= 2**62 for c in value):
        raise ProfileError(f"{name}: counts must be non-negative (and below 2^62)")
    return np.asarray(value, dtype=np.int64)


def _edges(name: str, value: Any) -> np.ndarray:
    """Bin edges: at least two finite numbers, strictly increasing (np.searchsorted needs sorted edges)."""
    if not isinstance(value, list) or not all(type(e) in (int, float) for e in value):
        raise ProfileError(f"{name}: edges must be a list of numbers")
    edges = np.asarray(value, dtype=np.float64)
    if len(edges) < 2:
        raise ProfileError(f"{name}: edges must hold at least 2 values (min and max), got {len(edges)}")
    if not np.isfinite(edges).all():
        raise ProfileError(f"{name}: edges must be finite (no NaN or Infinity)")
    if np.any(np.diff(edges) <= 0):
        raise ProfileError(f"{name}: edges must be strictly increasing")
    return edges


def _categories(name: str, value: Any) -> tuple[str, ...]:
    if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
        raise ProfileError(f"{name}: categories must be a list of strings")
    if len(set(value)) != len(value):
        raise ProfileError(f"{name}: categories must be distinct")
    return tuple(value)


def _stats(name: str, value: Any) -> dict[str, float]:
    """Summary stats (the drift report reads `std` as the reference spread): finite numbers by name."""
    if not isinstance(value, dict) or not all(
        type(v) is int or (type(v) is float and math.isfinite(v)) for v in value.values()
    ):
        raise ProfileError(f"{name}: stats must be an object of finite numbers")
    return value


def numeric_binning(name: str, values: np.ndarray, bins: int) -> Binning:
    """Equal-mass bins at the reference quantiles (repeated quantiles merged); or, when the feature has
    no more distinct values than `bins`, one bin per distinct value (stats["discrete"] = 1).

    Discrete edges are the distinct values themselves plus the float just above the largest: bin i is
    [v_i, v_i+1), the last [v_d, v_d], so each reference value has its own bin (equal-mass quantile
    edges would put, say, 4 and 5 of a door count in one bin and hide a shift between them).
    """
    values = np.asarray(values, dtype=np.float64)
    values = values[np.isfinite(values)]
    if len(values) == 0:
        raise ProfileError(f"{name}: no finite reference values to build bins from")
    distinct = np.unique(values)
    discrete = len(distinct) <= bins
    if discrete:
        edges = np.append(distinct, np.nextafter(distinct[-1], np.inf))
    else:
        edges = np.unique(np.quantile(values, np.linspace(0.0, 1.0, bins + 1)))
    binning = Binning(name, "numeric", np.zeros(len(edges) + 1, dtype=np.int64), edges=edges)
    counts = np.bincount(binning.assign(values), minlength=binning.n_bins)
    stats = {
        "count": int(len(values)),
        "mean": float(values.mean()),
        "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0,
        "min": float(values.min()),
        "p25": float(np.quantile(values, 0.25)),
        "p50": float(np.quantile(values, 0.5)),
        "p75": float(np.quantile(values, 0.75)),
        "max": float(values.max()),
    }
    if discrete:
        stats["discrete"] = 1  # one bin per distinct reference value
        stats["distinct"] = int(len(distinct))
    return Binning(name, "numeric", counts.astype(np.int64), edges=edges, stats=stats)


def categorical_binning(name: str, values: list[str] | np.ndarray, max_categories: int, kind: Kind = "categorical") -> Binning:
    """Top-K categories by frequency (ties broken by name, so profiles are reproducible)."""
    strings = np.asarray(values, dtype=str)
    uniques, counts = np.unique(strings, return_counts=True)
    order = sorted(range(len(uniques)), key=lambda i: (-counts[i], uniques[i]))
    if kind == "boolean":
        categories = BOOLEAN_CATEGORIES
    else:
        categories = tuple(str(uniques[i]) for i in order[:max_categories])
    binning = Binning(name, kind, np.zeros(len(categories) + 1, dtype=np.int64), categories=categories)
    ref = np.bincount(binning.assign(strings), minlength=binning.n_bins) if len(strings) else np.zeros(binning.n_bins)
    stats = {"count": int(len(strings)), "distinct": int(len(uniques))}
    return Binning(name, kind, ref.astype(np.int64), categories=categories, stats=stats)


@dataclass(frozen=True)
class Profile:
    """The reference of one model: a Binning per feature and one for the prediction."""

    model: str
    rows: int
    features: dict[str, Binning]
    prediction: Binning
    extras: dict[str, Any] = field(default_factory=dict)  # e.g. the PCA basis for multivariate drift
    source: str = ""

    def content(self) -> dict[str, Any]:
        return {
            "mlmon_profile": PROFILE_FORMAT,
            "model": self.model,
            "rows": self.rows,
            "source": self.source,
            "features": {name: b.to_json() for name, b in self.features.items()},
            "prediction": {"name": self.prediction.name, **self.prediction.to_json()},
            "extras": self.extras,
        }

    @cached_property
    def content_hash(self) -> str:
        """sha256 of the canonical JSON content: identical references hash identically anywhere.

        Cached: it serialises the whole profile, and the profile never changes (it is frozen).
        """
        canonical = json.dumps(self.content(), sort_keys=True, separators=(",", ":"))
        return "sha256:" + hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def short_hash(self) -> str:
        return self.content_hash.removeprefix("sha256:")[:12]

    def to_json(self) -> dict[str, Any]:
        return {**self.content(), "content_hash": self.content_hash}

    def write(self, path: str | Path) -> None:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        Path(path).write_text(json.dumps(self.to_json(), indent=1, sort_keys=True) + "\n", encoding="utf-8")

    @classmethod
    def from_json(cls, data: Any) -> Profile:
        if not isinstance(data, dict) or data.get("mlmon_profile") != PROFILE_FORMAT:
            raise ProfileError(f"not an mlmon profile of format {PROFILE_FORMAT} (missing 'mlmon_profile': 1)")
        features, prediction = data.get("features"), data.get("prediction")
        if not isinstance(features, dict):
            raise ProfileError("malformed profile: `features` must be an object {name: binning}")
        if not isinstance(prediction, dict) or not isinstance(prediction.get("name"), str):
            raise ProfileError("malformed profile: `prediction` must be an object with a `name`")
        rows, model = data.get("rows"), data.get("model")
        if type(rows) is not int or rows < 0:
            raise ProfileError("malformed profile: `rows` must be a non-negative integer")
        if not isinstance(model, str):
            raise ProfileError("malformed profile: `model` must be a string")
        extras, source = data.get("extras", {}), data.get("source", "")
        if not isinstance(extras, dict) or not isinstance(source, str):
            raise ProfileError("malformed profile: `extras` must be an object and `source` a string")
        prediction = dict(prediction)
        profile = cls(
            model=model,
            rows=rows,
            features={str(n): Binning.from_json(str(n), f) for n, f in features.items()},
            prediction=Binning.from_json(prediction.pop("name"), prediction),
            extras=extras,
            source=source,
        )
        stored = data.get("content_hash")
        if stored and stored != profile.content_hash:
            raise ProfileError("content_hash does not match the content (edited by hand? rebuild the profile)")
        return profile

    @classmethod
    def read(cls, path: str | Path) -> Profile:
        """A profile from a file, for tools and tests; `mlmon serve` reads through exporter/profiles/load.py."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except OSError as error:
            raise ProfileError(f"{path}: cannot read ({error.strerror})") from None
        except (ValueError, RecursionError) as error:  # JSONDecodeError, UnicodeDecodeError, deep nesting
            raise ProfileError(f"{path}: not JSON ({str(error)[:200]})") from None
        try:
            return cls.from_json(data)
        except ProfileError as error:
            raise ProfileError(f"{path}: {error}") from None
