"""`mlmon profile build`: stream a reference data set (CSV, JSON lines, Parquet) into a Profile.

Files are read in chunks, so a file larger than memory works: exact counts of missing values
are kept over the whole stream, and a uniform reservoir sample of at most ``sample_rows`` rows
(exact when the file is smaller) gives the quantile edges, category frequencies and the PCA
basis. Columns are matched by name: one per feature and one for the prediction.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import orjson

from exporter.config.model import ModelConfig
from exporter.profiles.profile import Binning, Profile, ProfileError, canonical_category, categorical_binning, numeric_binning
from exporter.profiles.pca import EXTRAS_KEY as PCA_KEY, field_of, fit_pca
from exporter.profiles.attributions import EXTRAS_KEY as ATTRIBUTIONS_KEY, attribution_extras
from exporter.stats.calibration import EXTRAS_KEY as CALIBRATION_KEY, REFERENCE_QUALITY_KEY, fit_isotonic, reference_quality

CHUNK_ROWS = 50_000
TRUE_TEXT = {"true", "1", "yes", "t", "y"}
FALSE_TEXT = {"false", "0", "no", "f", "n"}


def column_specs(model: ModelConfig) -> list[tuple[str, str]]:
    """(column name, kind) for every feature and then the prediction."""
    specs = [(f.name, f.type) for f in model.features]
    specs.append((model.prediction.name, "numeric" if model.prediction.type == "numeric" else "categorical"))
    return specs


def _numeric(values: list[Any]) -> np.ndarray:
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        if value is None or value == "" or isinstance(value, bool):
            continue
        try:
            out[i] = float(value)
        except (TypeError, ValueError):
            pass
    return out


def _category(values: list[Any], kind: str) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    for i, value in enumerate(values):
        if value is None or value == "":
            out[i] = None
        elif kind == "boolean":
            text = str(value).strip().lower()
            out[i] = "true" if text in TRUE_TEXT else "false" if text in FALSE_TEXT else None
        elif isinstance(value, dict):  # per-class scores: the predicted class
            out[i] = max(value, key=value.__getitem__) if value else None
        else:  # one canonical text: 4, 4.0 and "4.0" are all "4" (exporter/profiles/profile.py)
            text = canonical_category(value)
            out[i] = text if text is not None else str(value)
    return out


def _chunked(rows: Iterator[dict[str, Any]]) -> Iterator[list[dict[str, Any]]]:
    """Rows in lists of CHUNK_ROWS, so columns are converted with numpy a chunk at a time."""
    chunk: list[dict[str, Any]] = []
    for row in rows:
        chunk.append(row)
        if len(chunk) >= CHUNK_ROWS:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def _rows_csv(handle: io.TextIOBase) -> Iterator[list[dict[str, Any]]]:
    return _chunked(csv.DictReader(handle))


def _rows_jsonl(handle: io.TextIOBase, prediction_name: str) -> Iterator[list[dict[str, Any]]]:
    """Flat objects, or mlmon prediction records (their `features` and `prediction` are flattened)."""

    def rows() -> Iterator[dict[str, Any]]:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                row = orjson.loads(line)
            except orjson.JSONDecodeError as error:
                raise ProfileError(f"line {number}: not JSON ({error})") from None
            if isinstance(row.get("features"), dict):
                row = {**row["features"], prediction_name: row.get("prediction")}
            yield row

    return _chunked(rows())


def _rows_parquet(path: Path) -> Iterator[list[dict[str, Any]]]:
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise ProfileError("reading Parquet needs pyarrow: pip install 'mlmon[parquet]'") from None
    for batch in pq.ParquetFile(path).iter_batches(batch_size=CHUNK_ROWS):
        yield batch.to_pylist()


def read_chunks(path: Path, prediction_name: str, progress: bool, what: str = "profiling") -> Iterator[list[dict[str, Any]]]:
    """Rows of a CSV, JSON-lines or Parquet file in chunks of dicts (also what `mlmon labels send` reads);
    mlmon prediction records in JSON lines are flattened, their prediction named `prediction_name`."""
    suffix = "".join(path.suffixes[-2:]).lower()
    if suffix.endswith(".parquet"):
        yield from _rows_parquet(path)
        return
    size = path.stat().st_size
    from tqdm import tqdm

    with open(path, "rb") as raw, tqdm(
        total=size, unit="B", unit_scale=True, desc=f"{what} {path.name}", disable=not progress, leave=False
    ) as bar:
        handle = io.TextIOWrapper(raw, encoding="utf-8", newline="")
        last = 0
        chunks = _rows_csv(handle) if suffix.endswith(".csv") else _rows_jsonl(handle, prediction_name)
        for chunk in chunks:
            position = raw.tell()
            bar.update(position - last)
            last = position
            yield chunk


class Reservoir:
    """A uniform sample of at most `capacity` rows over a stream of column chunks (Algorithm R, vectorised)."""

    def __init__(self, capacity: int, seed: int = 0) -> None:
        self.capacity = capacity
        self.seen = 0
        self.columns: list[np.ndarray] | None = None
        self.rng = np.random.default_rng(seed)

    def add(self, columns: list[np.ndarray]) -> None:
        n = len(columns[0])
        if self.columns is None:
            self.columns = [c[: self.capacity].copy() for c in columns]
            head = min(n, self.capacity)
        else:
            room = self.capacity - len(self.columns[0])
            head = min(n, max(room, 0))
            if head:
                self.columns = [np.concatenate([kept, c[:head]]) for kept, c in zip(self.columns, columns)]
        self.seen += head
        if head == n:
            return
        # Row t (1-based position in the stream) replaces a random slot with probability capacity / t.
        positions = self.seen + np.arange(1, n - head + 1)
        slots = self.rng.integers(0, positions)
        take = slots < self.capacity
        for kept, c in zip(self.columns, columns):
            kept[slots[take]] = c[head:][take]
        self.seen += n - head


MIN_CALIBRATION_ROWS = 100


def _silent(message: str) -> None:
    pass


def _binary_labels(values: list[Any]) -> np.ndarray:
    """Reference labels of a binary model as 1.0 / 0.0 (1, "1", true, "yes"...); anything else NaN."""
    out = np.full(len(values), np.nan)
    for i, value in enumerate(values):
        text = str(value).strip().lower() if value is not None else ""
        if text in TRUE_TEXT or text in ("1", "1.0"):
            out[i] = 1.0
        elif text in FALSE_TEXT or text in ("0", "0.0"):
            out[i] = 0.0
    return out


def calibration_extras(model: ModelConfig, scores: np.ndarray, labels: np.ndarray, say: Callable[[str], None]) -> dict[str, Any]:
    """The calibration map of a binary model's scores and the reference's realised quality (profile extras)."""
    if model.task != "binary_classification":
        say(f"note: --label-column: calibration is built for binary classification; {model.task} keeps raw estimates")
        return {}
    scores = np.asarray(scores, dtype=np.float64)
    usable = np.isfinite(scores) & np.isfinite(labels)
    if usable.sum() < MIN_CALIBRATION_ROWS:
        say(f"note: only {int(usable.sum())} rows with a score and a label; no calibration (needs {MIN_CALIBRATION_ROWS})")
        return {}
    calibration = fit_isotonic(scores[usable], labels[usable])
    quality = reference_quality(scores, labels, model.quality.decision_threshold)
    say(f"calibration: {len(calibration.x)} knots from {calibration.rows} labelled rows "
        f"(compression tolerance {calibration.tolerance:.2g}); reference accuracy {quality.get('accuracy', float('nan')):.4f}")
    return {CALIBRATION_KEY: calibration.to_json(), REFERENCE_QUALITY_KEY: quality}


def build_profile(
    path: str | Path, model: ModelConfig, sample_rows: int = 1_000_000, progress: bool = False,
    say: Callable[[str], None] = _silent, label_column: str | None = None,
) -> Profile:
    """Stream `path` and return the model's reference profile.

    `say` gets one line per phase and one per surprise (a feature that got fewer bins than asked),
    so a build in a CI log is not silent where the progress bar (a terminal only) cannot show it.
    """
    path = Path(path)
    if not path.exists():
        raise ProfileError(f"{path}: no such file")
    specs = column_specs(model)
    reservoir = Reservoir(sample_rows)
    rows = 0
    missing = np.zeros(len(specs), dtype=np.int64)
    attributed: list[str] = []  # features with a reference attribution column <prefix><feature> (docs/explainability.md)
    for chunk in read_chunks(path, model.prediction.name, progress):
        if rows == 0:
            attributed = [f.name for f in model.features if model.attributions.prefix + f.name in chunk[0]]
            absent = [name for name, _ in specs if name not in chunk[0]]
            if label_column is not None and label_column not in chunk[0]:
                absent.append(label_column)
            if absent:
                raise ProfileError(f"{path}: no column(s) {', '.join(absent)} (the config's feature and prediction names)")
        columns = []
        for i, (name, kind) in enumerate(specs):
            raw = [row.get(name) for row in chunk]
            column = _numeric(raw) if kind == "numeric" else _category(raw, kind)
            missing[i] += int(np.isnan(column).sum()) if kind == "numeric" else int(sum(v is None for v in column))
            columns.append(column)
        columns += [_numeric([row.get(model.attributions.prefix + name) for row in chunk]) for name in attributed]
        if label_column is not None:  # row-aligned with the scores in the reservoir
            columns.append(_binary_labels([row.get(label_column) for row in chunk]))
        reservoir.add(columns)
        rows += len(chunk)
    if rows == 0 or reservoir.columns is None:
        raise ProfileError(f"{path}: no rows")
    say(f"read {rows} rows; binning {len(specs)} columns from a sample of {len(reservoir.columns[0])}")
    binnings: list[Binning] = []
    configs = [*model.features, model.prediction]
    for (name, kind), column, config, absent in zip(specs, reservoir.columns, configs, missing):
        if kind == "numeric":
            binning = numeric_binning(name, column[~np.isnan(column.astype(float))], config.bins)
            if binning.stats.get("discrete"):
                say(f"note: {name}: {binning.n_bins - 2} distinct values, one bin each ({config.bins} bins asked for)")
            elif binning.n_bins - 2 < config.bins:  # repeated quantiles merge
                say(f"note: {name}: {binning.n_bins - 2} bins instead of the {config.bins} asked for "
                    "(repeated quantiles of a feature with many repeated values are merged)")
        else:
            top_k = getattr(config, "max_categories", None) or len(getattr(config, "classes", None) or ()) or 50
            values = [v for v in column if v is not None]
            binning = categorical_binning(name, values, top_k, kind)
        binning.stats["missing"] = int(absent)
        binnings.append(binning)
    features = {b.name: b for b in binnings[:-1]}
    # Multivariate drift (exporter/profiles/pca.py): a PCA basis of every feature (categorical and
    # boolean one-hot over their top-K categories), fitted on the same row-aligned reservoir.
    fields = [field_of(features[name]) for name, _ in specs[:-1]]
    if len(fields) >= 2:
        say(f"fitting the PCA basis of {len(fields)} features for multivariate drift")
    basis = fit_pca([reservoir.columns[i] for i in range(len(fields))], fields) if len(fields) >= 2 else None
    if basis is not None:
        say(f"PCA: {len(basis.components)} of {basis.width} encoded dimensions kept "
            f"({basis.explained:.0%} of the variance); {basis.width - len(basis.components)} residual dimensions watched")
    extras = {PCA_KEY: basis.to_json()} if basis is not None else {}
    if attributed:
        phi = dict(zip(attributed, reservoir.columns[len(specs):len(specs) + len(attributed)]))
        extras[ATTRIBUTIONS_KEY] = attribution_extras(phi, model.attributions.bins)
        say(f"attributions: reference importance of {len(attributed)} feature(s) from columns "
            f"{model.attributions.prefix}<feature>")
    if label_column is not None:
        extras.update(calibration_extras(model, reservoir.columns[len(specs) - 1], reservoir.columns[-1], say))
    profile = Profile(model.name, rows, features, binnings[-1], extras=extras, source=path.name)
    return profile
