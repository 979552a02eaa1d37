"""Multivariate drift: PCA reconstruction error of each record against the reference's.

Per-feature scores miss a change in how features move *together* (two features that were
correlated stop being so, each marginal unchanged; a category and a number that shift together,
each slightly). A PCA basis fitted on the encoded, standardised features of the reference captures
the reference's joint structure; a record that breaks it reconstructs badly. At profile build the
encoding, the basis and the reference distribution of the reconstruction error are stored in
``Profile.extras["pca"]`` (format 2; docs/drift.md, "Multivariate drift").

Encoding (one block of columns per feature):

- numeric: the value, standardised by the reference mean and standard deviation;
- categorical: one indicator per top-K category of the profile (a value outside the top K, the
  profile's ``__other__``, is all zeros); boolean: one indicator of ``true``. The indicators are
  centred by their reference frequencies and all divided by the square root of the block's total
  reference variance (sum of p(1-p)), so a categorical feature weighs as much as a numeric one,
  whatever its number of categories, and a rare category cannot dominate the error;
- missing values (null, absent, a type error) are imputed with the reference mean: the block's
  standardised value is 0, so the record still counts on its other features.

Component rule: the fewest components that explain ``EXPLAINED`` = 65% of the standardised
variance (NannyML's default), capped at half the encoded dimensions (rounded down, at least 1), so
at least half of the directions are residual and watched. The old rule (80%, no cap) kept 3 of 4
numeric components and watched one direction; tests/test_multivariate.py measures both.

Windowed state stays O(bins): each record's error is binned against equal-mass edges of the
reference errors (10 bins plus under/overflow, as a numeric feature); the window histogram is
compared with the reference one by PSI (the score) and binned KS (the p-value), and the verdict is
the univariate rule (p < alpha and PSI >= min_effect, N >= min_samples). The window's mean error
(a float sum beside the counts) is exported with the reference mean and standard deviation.

    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(2000, 1)); data = np.hstack([x, x + 0.1 * rng.normal(size=(2000, 1))])
    >>> basis = fit_pca(data, ("a", "b"))
    >>> basis.components.shape
    (1, 2)
    >>> float(basis.errors(np.array([[1.0, 1.0]]))[0]) < float(basis.errors(np.array([[1.0, -1.0]]))[0])
    True
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Sequence

import numpy as np

from exporter.profiles.profile import Binning, Profile, ProfileError, canonical_category, numeric_binning

EXTRAS_KEY = "pca"
PCA_FORMAT = 2
MIN_ROWS = 50  # fewer reference rows than this give no stable basis: no multivariate drift
EXPLAINED = 0.65  # keep the fewest components that explain this share of the standardised variance...
RESIDUAL_SHARE = 0.5  # ...but never more than half of the encoded dimensions (at least 1 residual)
ERROR_BINS = 10
KINDS = ("numeric", "categorical", "boolean")
NUMBER_TYPES = (int, float)


@dataclass(frozen=True)
class Field:
    """One feature in the encoding: its kind and, for categorical/boolean, its indicator categories."""

    name: str
    kind: str = "numeric"
    categories: tuple[str, ...] = ()

    @property
    def width(self) -> int:
        return 1 if self.kind == "numeric" else len(self.categories)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {"name": self.name, "kind": self.kind}
        if self.kind != "numeric":
            out["categories"] = list(self.categories)
        return out


def n_components(eigen: np.ndarray, d: int, explained: float = EXPLAINED, residual_share: float = RESIDUAL_SHARE) -> int:
    """The component rule: fewest components reaching `explained` of the variance, capped so that at
    least `residual_share` of the `d` dimensions stay residual (always 1 <= k <= d - 1)."""
    share = np.cumsum(eigen) / max(float(eigen.sum()), 1e-300)
    k = int(np.searchsorted(share, explained - 1e-12) + 1)
    cap = max(1, int(np.floor(d * (1 - residual_share))))
    return int(max(1, min(k, cap, d - 1)))


@dataclass(frozen=True)
class PcaBasis:
    """Encoding, standardisation, principal axes, and the reference distribution of the error."""

    fields: tuple[Field, ...]
    mean: np.ndarray
    scale: np.ndarray
    components: np.ndarray  # k x d, orthonormal rows (d = encoded width)
    error_binning: Binning
    explained: float = 0.0  # share of the standardised variance the kept components explain

    @property
    def features(self) -> tuple[str, ...]:
        return tuple(f.name for f in self.fields)

    @property
    def width(self) -> int:
        return sum(f.width for f in self.fields)

    def encode_raw(self, raw_columns: Sequence[Sequence[Any]]) -> np.ndarray:
        """Rows x encoded width from raw JSON values (one list per field); missing values are NaN."""
        blocks = []
        for field, raw in zip(self.fields, raw_columns):
            if field.kind == "numeric":
                blocks.append(_numbers(raw)[:, None])
            else:
                # numpy and pandas columns hold np.str_ / np.int64, which are not categories
                # (canonical_category takes Python's own types); tolist() gives those.
                values = raw.tolist() if isinstance(raw, np.ndarray) or hasattr(raw, "to_numpy") else raw
                blocks.append(_indicators(_codes(values, field.kind, field.categories), len(field.categories)))
        return np.hstack(blocks) if blocks else np.zeros((0, 0))

    def standardise(self, matrix: np.ndarray) -> np.ndarray:
        """z-scores against the reference; a missing value (NaN) is imputed with the reference mean (z = 0)."""
        with np.errstate(invalid="ignore", over="ignore"):
            z = (matrix - self.mean) / self.scale
        return np.where(np.isnan(z), 0.0, z)

    def errors(self, matrix: np.ndarray) -> np.ndarray:
        """Squared distance of each standardised row from the principal subspace: |z|^2 - |V z|^2."""
        z = self.standardise(np.asarray(matrix, dtype=np.float64))
        with np.errstate(over="ignore", invalid="ignore"):
            projected = z @ self.components.T
            return np.maximum((z * z).sum(axis=1) - (projected * projected).sum(axis=1), 0.0)

    def to_json(self) -> dict[str, Any]:
        return {
            "format": PCA_FORMAT,
            "rule": {"explained": EXPLAINED, "residual_share": RESIDUAL_SHARE},
            "explained": self.explained,
            "features": [f.to_json() for f in self.fields],
            "mean": self.mean.tolist(),
            "scale": self.scale.tolist(),
            "components": self.components.tolist(),
            "error": self.error_binning.to_json(),
        }

    @classmethod
    def from_json(cls, data: Any) -> PcaBasis:
        """The basis from a profile's extras, shape and values checked: a bad basis would fail every ingest."""
        if not isinstance(data, dict):
            raise ProfileError("extras.pca must be an object")
        if data.get("format") != PCA_FORMAT:
            raise ProfileError(f"extras.pca is not format {PCA_FORMAT} (encoded features); rebuild the profile")
        raw_fields = data.get("features")
        if not isinstance(raw_fields, list) or len(raw_fields) < 2:
            raise ProfileError("extras.pca.features must list at least 2 features")
        fields = tuple(_field(f) for f in raw_fields)
        if len({f.name for f in fields}) != len(fields):
            raise ProfileError("extras.pca.features must name each feature once")
        d = sum(f.width for f in fields)
        mean, scale, components = (_matrix(data.get(key), key) for key in ("mean", "scale", "components"))
        if mean.shape != (d,) or scale.shape != (d,):
            raise ProfileError(f"extras.pca: mean and scale must hold {d} numbers, one per encoded column")
        if components.ndim != 2 or components.shape[1] != d or not 1 <= components.shape[0] < d:
            raise ProfileError(f"extras.pca.components must be k x {d} with 1 <= k < {d}")
        if not (scale > 0).all():
            raise ProfileError("extras.pca.scale must be positive")
        explained = data.get("explained", 0.0)
        if not isinstance(explained, (int, float)) or isinstance(explained, bool) or not 0 <= explained <= 1:
            raise ProfileError("extras.pca.explained must be a share between 0 and 1")
        error_binning = Binning.from_json("extras.pca.error", data.get("error"))
        if error_binning.kind != "numeric":
            raise ProfileError("extras.pca.error must be a numeric binning")
        return cls(fields, mean, scale, components, error_binning, float(explained))


def _field(data: Any) -> Field:
    if not isinstance(data, dict) or not isinstance(data.get("name"), str) or data.get("kind") not in KINDS:
        raise ProfileError("extras.pca.features: each must be {name, kind: numeric|categorical|boolean}")
    if data["kind"] == "numeric":
        if "categories" in data:
            raise ProfileError(f"extras.pca.features: numeric {data['name']!r} has no categories")
        return Field(data["name"])
    categories = data.get("categories")
    if not isinstance(categories, list) or not categories or not all(isinstance(c, str) for c in categories) \
            or len(set(categories)) != len(categories):
        raise ProfileError(f"extras.pca.features: {data['name']!r} needs a list of distinct category texts")
    return Field(data["name"], data["kind"], tuple(categories))


def _matrix(value: Any, key: str) -> np.ndarray:
    """A finite float array from nested JSON lists; ragged or non-numeric lists are refused."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise ProfileError(f"extras.pca.{key} must be numbers (a list, or a list of equal-length lists)") from None
    if not np.isfinite(array).all():
        raise ProfileError(f"extras.pca.{key} must be finite")
    return array


def _numbers(raw: Sequence[Any]) -> np.ndarray:
    """Floats from raw values: numbers (not booleans) as they are, anything else (or non-finite) NaN."""
    if isinstance(raw, np.ndarray) and raw.dtype.kind == "f":
        values = raw.astype(np.float64)
    elif len(raw) and {type(v) for v in raw} <= {float, int}:
        try:
            values = np.asarray(raw, dtype=np.float64)
        except OverflowError:  # an int past float range: value by value
            values = np.array([_float(v) for v in raw], dtype=np.float64)
    else:
        values = np.array([_float(v) for v in raw], dtype=np.float64) if len(raw) else np.zeros(0)
    return np.where(np.isfinite(values), values, np.nan)


def _float(value: Any) -> float:
    if type(value) not in NUMBER_TYPES:
        return np.nan
    try:
        return float(value)
    except OverflowError:
        return np.inf  # then NaN: not finite


def _text(value: Any, kind: str) -> str | None:
    """A raw value as its canonical category text (None when missing or not a category)."""
    if kind == "boolean":
        if value is True or value is False:
            return "true" if value else "false"
        if type(value) is int and value in (0, 1):
            return "true" if value else "false"
        return value if value in ("true", "false") else None
    return canonical_category(value)


MISSING_CODE, OTHER_CODE = -1, -2


def _codes(raw: Sequence[Any], kind: str, categories: tuple[str, ...]) -> np.ndarray:
    """Per value: the index of its canonical category text in `categories`, OTHER_CODE for a category
    outside them, MISSING_CODE when missing or not a category. Vectorised for the common columns
    (all plain strings, or all booleans); value by value otherwise."""
    n = len(raw)
    if n and kind == "boolean" and all(type(v) is bool for v in raw) and categories == ("true",):
        return np.where(np.asarray(raw, dtype=bool), 0, OTHER_CODE)
    # A text longer than every category (plus room for "4.000") cannot be one: it is OTHER, and it
    # never widens a numpy text array (one 50,000-character value would make every row 200 KB).
    cap = max(max(len(c) for c in categories), 32)
    if n and kind != "boolean" and all(type(v) is str and len(v) <= cap for v in raw):
        texts = np.asarray(raw, dtype=str)
        dotted = np.flatnonzero(np.strings.endswith(texts, "0") & (np.strings.find(texts, ".") >= 0))
        if len(dotted):  # only "4.0"-like texts change
            texts = texts.astype(object)
            for i in dotted:
                texts[i] = canonical_category(str(texts[i]))
            texts = np.asarray(texts, dtype=str)
        return _lookup(texts, categories)
    texts = [_text(v, kind) for v in raw]
    present = np.array([t is not None for t in texts], dtype=bool)
    codes = np.full(n, MISSING_CODE, dtype=np.int64)
    short = np.array([t is not None and len(t) <= cap for t in texts], dtype=bool)
    codes[present & ~short] = OTHER_CODE
    if short.any():
        codes[short] = _lookup(np.asarray([t for t, keep in zip(texts, short) if keep], dtype=str), categories)
    return codes


def _lookup(texts: np.ndarray, categories: tuple[str, ...]) -> np.ndarray:
    order = np.argsort(np.asarray(categories, dtype=str))
    ranked = np.asarray(categories, dtype=str)[order]
    position = np.minimum(np.searchsorted(ranked, texts), len(ranked) - 1)
    return np.where(ranked[position] == texts, order[position], OTHER_CODE)


def _indicators(codes: np.ndarray, width: int) -> np.ndarray:
    """One column per category: 1.0 where the value is that category, NaN in every column where missing."""
    out = np.zeros((len(codes), width))
    rows = np.flatnonzero(codes >= 0)
    out[rows, codes[rows]] = 1.0
    out[codes == MISSING_CODE] = np.nan
    return out


def field_of(binning: Binning) -> Field:
    """The encoding of a profiled feature: numeric as is; categorical/boolean by its top-K categories."""
    if binning.kind == "numeric":
        return Field(binning.name)
    categories = tuple(binning.categories or ())
    if binning.kind == "boolean":
        categories = ("true",)
    return Field(binning.name, binning.kind, categories)


def fit_pca(columns: Any, fields: Sequence[Field | str], explained: float = EXPLAINED,
            residual_share: float = RESIDUAL_SHARE) -> PcaBasis | None:
    """Fit on the reference; None with fewer than 2 features or MIN_ROWS rows with any value.

    `columns` is one raw column per field (floats with NaN, or category texts with None), or a
    rows x features float matrix when every field is numeric (a field given by name is numeric).
    """
    fields = tuple(f if isinstance(f, Field) else Field(f) for f in fields)
    fields = tuple(f for f in fields if f.width > 0)
    if isinstance(columns, np.ndarray) and columns.ndim == 2:
        columns = [columns[:, i] for i in range(columns.shape[1])]
    if len(fields) < 2:
        return None
    skeleton = PcaBasis(fields, np.zeros(0), np.ones(0), np.zeros((0, 0)), numeric_binning("__pca_error__", np.zeros(1), 1))
    raw = skeleton.encode_raw(list(columns))
    raw = raw[~np.isnan(raw).all(axis=1)]
    if len(raw) < MIN_ROWS:
        return None
    mean = np.nanmean(raw, axis=0)
    mean = np.where(np.isfinite(mean), mean, 0.0)
    var = np.nanvar(raw, axis=0)
    var = np.where(np.isfinite(var), var, 0.0)
    scale, start = np.ones(raw.shape[1]), 0
    for field in fields:
        block = slice(start, start + field.width)
        total = float(var[block].sum()) if field.kind != "numeric" else float(var[block][0])
        scale[block] = np.sqrt(total) if total > 0 else 1.0  # a constant feature contributes nothing, not NaN
        start += field.width
    z = np.where(np.isnan(raw), 0.0, (raw - mean) / scale)
    _, singular, vt = np.linalg.svd(z, full_matrices=False)
    eigen = singular**2
    k = n_components(eigen, z.shape[1], explained, residual_share)
    share = float(eigen[:k].sum() / max(float(eigen.sum()), 1e-300))
    basis = PcaBasis(fields, mean, scale, vt[:k], skeleton.error_binning, share)
    return PcaBasis(fields, mean, scale, vt[:k], numeric_binning("__pca_error__", basis.errors(raw), ERROR_BINS), share)


def basis_of(profile: Profile | None) -> PcaBasis | None:
    data = profile.extras.get(EXTRAS_KEY) if profile is not None else None
    return PcaBasis.from_json(data) if data else None
