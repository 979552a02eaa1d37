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
from exporter.profiles.class_scores import class_score_extras, score_column
from exporter.stats.calibration import EXTRAS_KEY as CALIBRATION_KEY, REFERENCE_QUALITY_KEY, fit_isotonic, reference_quality
from exporter.stats.calibration import CLASS_EXTRAS_KEY as CLASS_CALIBRATION_KEY, fit_one_vs_rest, one_vs_rest_json
from exporter.stats.calibration import multiclass_reference_quality
from exporter.stats.error_model import ERROR_BINS, EXTRAS_KEY as ERROR_MODEL_KEY, fit_error_model

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


def _class_scores(model: ModelConfig, chunk: list[dict[str, Any]], columns: bool) -> list[np.ndarray]:
    """Per-class score columns of a chunk, in the config's class order: from `<prediction>_<class>` columns, or
    from a `{class: score}` / predict_proba prediction (JSON lines); NaN where a row has none."""
    classes = model.quality_classes
    if columns:
        return [_numeric([row.get(score_column(model, c)) for row in chunk]) for c in classes]
    out = np.full((len(classes), len(chunk)), np.nan)
    name = model.prediction.name
    for i, row in enumerate(chunk):
        value = row.get(name)
        if isinstance(value, dict):
            out[:, i] = [value.get(c, 0.0) if isinstance(value.get(c, 0.0), (int, float)) else np.nan for c in classes]
        elif isinstance(value, list) and len(value) == len(classes):
            out[:, i] = [v if isinstance(v, (int, float)) else np.nan for v in value]
    return list(out)


def _argmax_class(model: ModelConfig, value: dict[str, Any] | list[Any]) -> Any:
    """The predicted class of a reference row's per-class scores, as the exporter decides it live
    (exporter/ingest/decode.py check_prediction): the highest score, a tie to the class first in the config,
    between classes the config does not list to the smallest text; None for scores that are not numbers."""
    classes = model.quality_classes
    if isinstance(value, list):
        if len(value) != len(classes) or not all(type(v) in (int, float) for v in value):
            return None
        return classes[value.index(max(value))]
    scores = {k: v for k, v in value.items() if type(v) in (int, float)}
    if not scores or len(scores) != len(value):
        return None
    order = {c: i for i, c in enumerate(classes)}
    return min(scores, key=lambda k: (-scores[k], order.get(k, len(order)), k))


def _multiclass_labels(values: list[Any]) -> np.ndarray:
    """Reference labels of a multiclass model as canonical class text (None where absent)."""
    return _category(values, "categorical")


def enough_labelled_rows(usable: np.ndarray, having: str, fitted: str, say: Callable[[str], None]) -> bool:
    """Whether MIN_CALIBRATION_ROWS rows are usable to fit `fitted`; when not, says so and what it needs."""
    if usable.sum() >= MIN_CALIBRATION_ROWS:
        return True
    say(f"note: only {int(usable.sum())} rows with {having} and a label; no {fitted} (needs {MIN_CALIBRATION_ROWS})")
    return False


def multiclass_calibration_extras(model: ModelConfig, scores: list[np.ndarray] | None, labels: np.ndarray,
                                  predicted: np.ndarray, say: Callable[[str], None]) -> dict[str, Any]:
    """One isotonic map per class (one-vs-rest) and the reference's realised quality (profile extras)."""
    if scores is None:
        say("note: --label-column: a multiclass reference needs per-class scores (columns "
            f"{model.prediction.name}_<class>, or a {{class: score}} prediction) to calibrate; estimates are off")
        return {}
    classes = model.quality_classes
    usable = np.asarray([v is not None for v in labels]) & np.isfinite(np.column_stack(scores)).all(axis=1)
    if not enough_labelled_rows(usable, "class scores", "calibration", say):
        return {}
    maps = fit_one_vs_rest([s[usable] for s in scores], labels[usable], classes)
    quality = multiclass_reference_quality(predicted[usable], labels[usable], classes)
    say(f"calibration: one isotonic map per class ({', '.join(str(len(m.x)) for m in maps)} knots) from "
        f"{int(usable.sum())} labelled rows; reference accuracy {quality.get('accuracy', float('nan')):.4f}")
    return {CLASS_CALIBRATION_KEY: one_vs_rest_json(classes, maps), REFERENCE_QUALITY_KEY: quality}


def error_model_extras(predictions: np.ndarray, labels: np.ndarray, say: Callable[[str], None]) -> dict[str, Any]:
    """Regression: the reference's error per prediction bin (a light DLE) and its realised MAE and RMSE."""
    predictions = np.asarray(predictions, dtype=np.float64)
    usable = np.isfinite(predictions) & np.isfinite(labels)
    if not enough_labelled_rows(usable, "a prediction", "error model", say):
        return {}
    model = fit_error_model(predictions[usable], labels[usable])
    error = predictions[usable] - labels[usable]
    quality = {"mae": float(np.abs(error).mean()), "rmse": float(np.sqrt((error * error).mean()))}
    say(f"error model: {ERROR_BINS} prediction bins from {int(usable.sum())} labelled rows; reference MAE "
        f"{quality['mae']:.4g}, RMSE {quality['rmse']:.4g}")
    return {ERROR_MODEL_KEY: model.to_json(), REFERENCE_QUALITY_KEY: quality}


def calibration_extras(model: ModelConfig, scores: np.ndarray, labels: np.ndarray, say: Callable[[str], None]) -> dict[str, Any]:
    """The calibration map of a binary model's scores and the reference's realised quality (profile extras)."""
    if model.task != "binary_classification":
        say(f"note: --label-column: calibration is built for classifiers; {model.task} keeps raw estimates")
        return {}
    scores = np.asarray(scores, dtype=np.float64)
    usable = np.isfinite(scores) & np.isfinite(labels)
    if not enough_labelled_rows(usable, "a score", "calibration", say):
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
    multiclass = model.task == "multiclass_classification"
    score_columns = class_scores = False
    attributed: list[str] = []  # features with a reference attribution column <prefix><feature> (docs/explainability.md)
    for chunk in read_chunks(path, model.prediction.name, progress):
        if rows == 0:
            first = chunk[0]
            score_columns = multiclass and all(score_column(model, c) in first for c in model.quality_classes)
            class_scores = multiclass and (score_columns or isinstance(first.get(model.prediction.name), (dict, list)))
            attributed = [f.name for f in model.features if model.attributions.prefix + f.name in first]
            absent = [name for name, _ in specs if name not in chunk[0]]
            if label_column is not None and label_column not in chunk[0]:
                absent.append(label_column)
            if absent:
                raise ProfileError(f"{path}: no column(s) {', '.join(absent)} (the config's feature and prediction names)")
        columns = []
        for i, (name, kind) in enumerate(specs):
            raw = [row.get(name) for row in chunk]
            if multiclass and i == len(specs) - 1:  # per-class scores: the argmax, ties by config class order
                raw = [_argmax_class(model, v) if isinstance(v, (dict, list)) else v for v in raw]
            column = _numeric(raw) if kind == "numeric" else _category(raw, kind)
            missing[i] += int(np.isnan(column).sum()) if kind == "numeric" else int(sum(v is None for v in column))
            columns.append(column)
        columns += [_numeric([row.get(model.attributions.prefix + name) for row in chunk]) for name in attributed]
        if label_column is not None:  # row-aligned with the scores in the reservoir
            raw_labels = [row.get(label_column) for row in chunk]
            if multiclass:
                columns.append(_multiclass_labels(raw_labels))
            else:
                columns.append(_numeric(raw_labels) if model.task == "regression" else _binary_labels(raw_labels))
        if class_scores:  # per-class scores, after everything else
            columns.extend(_class_scores(model, chunk, score_columns))
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
    # The reservoir's columns: the specs (prediction last), the attribution columns, the label, the class scores.
    scores, label_at = reservoir.columns[len(specs) - 1], len(specs) + len(attributed)
    if attributed:
        phi = dict(zip(attributed, reservoir.columns[len(specs):label_at]))
        extras[ATTRIBUTIONS_KEY] = attribution_extras(phi, model.attributions.bins)
        say(f"attributions: reference importance of {len(attributed)} feature(s) from columns "
            f"{model.attributions.prefix}<feature>")
    if class_scores:
        k = len(model.quality_classes)
        score_matrix = reservoir.columns[-k:]
        extras.update(class_score_extras(model, score_matrix))
        say(f"per-class probability drift: {k} class score columns binned")
    if label_column is not None and multiclass:
        extras.update(multiclass_calibration_extras(model, score_matrix if class_scores else None,
                                                    reservoir.columns[label_at], scores, say))
    elif label_column is not None and model.task == "regression":
        extras.update(error_model_extras(scores, reservoir.columns[label_at], say))
    elif label_column is not None:
        extras.update(calibration_extras(model, scores, reservoir.columns[label_at], say))
    profile = Profile(model.name, rows, features, binnings[-1], extras=extras, source=path.name)
    return profile
