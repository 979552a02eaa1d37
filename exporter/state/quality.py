"""Per model-version quality accumulators: mergeable sums, kept cumulatively and per time window.

Two flat float vectors per version, laid out once from the config (``QualityLayout``):

* ``labelled`` — updated when a label joins a prediction: the confusion matrix (binary or
  multiclass), Brier and log-loss sums and per-class score histograms (binary), error sums
  (regression), and per-segment confusion counts (binary: every attribute; multiclass: the class
  confusion matrix of each value of the attributes with ``quality: true``) or error sums (regression,
  the same attributes: SEGMENT_REGRESSION_SUMS per value);
* ``predicted`` — updated for every prediction (binary only): the expected confusion matrix and
  score histogram behind the label-free estimates, and per-segment selection counts.

Each vector is a cumulative counter (exported as ``_total`` series, mergeable across replicas)
and a ``WindowRing`` per quality window (the windowed gauges), so state is O(classes^2 or
score bins + segments) x window slots per version, whatever the traffic. Windows of labelled
sums are by label arrival time.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np

from exporter.stats.bias import SegmentCodec
from exporter.config.model import ModelConfig
from exporter.stats.quality_math import LOG_LOSS_EPS
from exporter.state.windows import WindowRing
from exporter.stats.calibration import Calibration
from exporter.stats.error_model import ERROR_BINS, ErrorModel

CONFUSION = ("tp", "fp", "tn", "fn")
# Multiclass label-free sums per class c (one-vs-rest, from calibrated probabilities q_c):
# predicted: rows predicted c; etp: sum q_c over them; efn: sum q_c over the other rows;
# var_pos / var_neg: sum q_c (1 - q_c) over the same two groups (the variance of the realised TP and FN).
CLASS_ESTIMATES = ("predicted", "etp", "efn", "var_pos", "var_neg")
REGRESSION_SUMS = ("over", "under", "squared", "ape", "nonzero", "label_pos", "label_neg", "label_squared",
                   "squared_log", "log_pairs")  # MSLE: (log1p(prediction) - log1p(label))^2 over pairs both >= 0
# Per segment value (regression, attributes with quality: true): labelled pairs, error by direction, squared
# error, and the MSLE sums (squared log error over the pairs both >= 0, and their count).
SEGMENT_REGRESSION_SUMS = ("count", "over", "under", "squared", "squared_log", "log_pairs")
MULTICLASS_SLOT_FLOATS = 8_000  # per-class score histograms of one window slot: 50 classes get 40 bins each
LOGIT_RANGE = 8.0  # score bins are evenly spaced in logit(p) over [-8, 8], i.e. p in [0.0003, 0.9997]


class FloatRing(WindowRing):
    """A WindowRing of float sums (error sums and expected counts are not integers)."""

    def __init__(self, seconds: int, slots: int, width: int) -> None:
        super().__init__(seconds, slots, width)
        self.counts = np.zeros((slots, width), dtype=np.float64)


def score_edges(bins: int) -> np.ndarray:
    """Inner edges of ``bins`` score bins, evenly spaced in logit so rare-event scores near 0 still resolve."""
    return 1 / (1 + np.exp(-np.linspace(-LOGIT_RANGE, LOGIT_RANGE, bins - 1)))


@dataclass(frozen=True)
class QualityLayout:
    """Where each sum sits in the labelled and predicted vectors of a model."""

    task: str
    bins: int
    classes: tuple[str, ...]
    codec: SegmentCodec
    # Regression and multiclass: the codec's attributes with quality: true (their values get labelled sums)
    segment_attributes: tuple[int, ...] = ()

    @classmethod
    def of(cls, model: ModelConfig) -> QualityLayout:
        codec = SegmentCodec([(s.attribute, tuple(s.values)) for s in model.segments])
        bins = model.quality.score_bins
        if model.task == "multiclass_classification":  # 4 histograms per class: keep a slot within 8,000 floats
            bins = min(bins, max(10, MULTICLASS_SLOT_FLOATS // (4 * max(len(model.quality_classes), 1))))
        chosen = () if model.task == "binary_classification" else \
            tuple(a for a, s in enumerate(model.segments) if s.quality)
        return cls(model.task, bins, model.quality_classes, codec, chosen)

    # per segment value quality (regression, multiclass): a cell of sums per value of each chosen attribute
    @property
    def segment_rows(self) -> int:
        """Values (with __other__) over the attributes with quality: true."""
        return int(sum(int(self.codec.sizes[a]) for a in self.segment_attributes))

    @property
    def segment_cell(self) -> int:
        """Sums per segment value: the class confusion matrix (multiclass) or SEGMENT_REGRESSION_SUMS."""
        if self.task == "multiclass_classification":
            return self.k * self.k
        return len(SEGMENT_REGRESSION_SUMS) if self.task == "regression" else 0

    def segment_row_offsets(self) -> list[int]:
        """Where each chosen attribute's values start among the segment rows."""
        sizes = [int(self.codec.sizes[a]) for a in self.segment_attributes]
        return [int(x) for x in np.concatenate([[0], np.cumsum(sizes)])[:-1]] if sizes else []

    def segment_rows_of(self, codes: np.ndarray) -> np.ndarray:
        """(records x chosen attributes) segment rows of packed segment codes."""
        values = self.codec.decode(codes)[:, list(self.segment_attributes)]
        return values + np.asarray(self.segment_row_offsets(), dtype=np.int64)[None, :]

    def segment_sums(self) -> slice:
        """The per-segment block of the labelled vector (regression, multiclass), rows x cell."""
        if self.task == "multiclass_classification":
            start = self.k * self.k + 2 * len(self.classes) * self.bins
        else:
            start = len(REGRESSION_SUMS)
        return slice(start, start + self.segment_rows * self.segment_cell)

    # labelled vector
    @property
    def k(self) -> int:
        return len(self.classes) + 1  # configured classes + __other__

    @property
    def labelled_width(self) -> int:
        if self.task == "binary_classification":
            return 6 + 2 * self.bins + 4 * self.codec.width
        if self.task == "multiclass_classification":
            # confusion matrix | per class: score histogram of its actual members, then of everyone else
            return self.k * self.k + 2 * len(self.classes) * self.bins + self.segment_rows * self.segment_cell
        return len(REGRESSION_SUMS) + self.segment_rows * self.segment_cell

    # multiclass labelled vector: one-vs-rest score histograms (rows with per-class scores only)
    def class_positive_hist(self) -> slice:
        start = self.k * self.k
        return slice(start, start + len(self.classes) * self.bins)

    def class_negative_hist(self) -> slice:
        start = self.k * self.k + len(self.classes) * self.bins
        return slice(start, start + len(self.classes) * self.bins)

    def positive_hist(self) -> slice:
        return slice(6, 6 + self.bins)

    def negative_hist(self) -> slice:
        return slice(6 + self.bins, 6 + 2 * self.bins)

    def segment_confusion(self) -> slice:
        start = 6 + 2 * self.bins
        return slice(start, start + 4 * self.codec.width)

    # predicted vector (binary only): expected tp, fp, tn, fn | bin counts | bin score sums | segment n, positive
    # | sum of q(1 - q) over predicted positives and negatives (the variance of the realised TP and FN)
    @property
    def predicted_width(self) -> int:
        if self.task == "multiclass_classification":
            return len(CLASS_ESTIMATES) * len(self.classes) + 2 * len(self.classes) * self.bins
        if self.task == "regression":
            return ERROR_BINS  # predictions per bin of the profile's error model (exporter/stats/error_model.py)
        return 4 + 2 * self.bins + 2 * self.codec.width + 2

    def count_hist(self) -> slice:
        return slice(4, 4 + self.bins)

    def score_sum_hist(self) -> slice:
        return slice(4 + self.bins, 4 + 2 * self.bins)

    def segment_selection(self) -> slice:
        start = 4 + 2 * self.bins
        return slice(start, start + 2 * self.codec.width)

    def bernoulli_variance(self) -> slice:
        start = 4 + 2 * self.bins + 2 * self.codec.width
        return slice(start, start + 2)

    # predicted vector (multiclass, rows with per-class scores): CLASS_ESTIMATES x classes | per class the
    # count histogram of its raw scores, then the sum of its calibrated probabilities per bin
    def class_estimates(self) -> slice:
        return slice(0, len(CLASS_ESTIMATES) * len(self.classes))

    def class_count_hist(self) -> slice:
        start = len(CLASS_ESTIMATES) * len(self.classes)
        return slice(start, start + len(self.classes) * self.bins)

    def class_score_sum_hist(self) -> slice:
        start = len(CLASS_ESTIMATES) * len(self.classes) + len(self.classes) * self.bins
        return slice(start, start + len(self.classes) * self.bins)


class QualityMath:
    """What a model's quality sums are made of: pure functions of predictions and labels, no state.

    Batches are turned into sum vectors here before any state changes (decode, then apply), so
    adding a vector to a version's state is the only step under its lock and cannot fail halfway.
    """

    snapshot_skip = ("max_abs", "max_length")  # from the running config (exporter/state/snapshot.py)

    def __init__(self, model: ModelConfig, calibration: Calibration | tuple[Calibration, ...] | ErrorModel | None = None,
                 max_abs: float = 1e15, max_length: int = 256) -> None:
        self.model = model
        # Scores become probabilities through the reference's calibration map before estimation (CBPE):
        # one map (binary) or one per configured class (multiclass, one-vs-rest, then renormalised);
        # regression: the reference's error per prediction bin; None: the raw scores are taken as
        # probabilities (no labelled reference), and regression has no estimate.
        self.calibration = calibration
        self.layout = QualityLayout.of(model)
        self.threshold = model.quality.decision_threshold
        self.edges = score_edges(self.layout.bins)
        self.class_index = {c: i for i, c in enumerate(self.layout.classes)}
        self.max_abs = max_abs        # larger predictions and labels are never summed (saturation)
        self.max_length = max_length  # longer class labels are invalid (numpy strings are fixed-width)

    # ---- label and prediction values -------------------------------------------------------
    def clean_labels(self, raw: list[Any]) -> tuple[np.ndarray, np.ndarray]:
        """(usable labels, mask of raw values that were usable) for this task.

        A regression label beyond max_abs is not usable: summed, its square would poison the
        error sums (1.7e308 squared is +Inf) until a restart.
        """
        task = self.model.task
        kinds = set(map(type, raw))  # one C-level pass: plain numbers take the vectorised way
        if task != "multiclass_classification" and kinds <= ({int, float, bool} if task == "binary_classification"
                                                            else {int, float}):
            try:
                values = np.asarray(raw, dtype=np.float64)
            except OverflowError:  # an integer too large for a float: the checks below say which
                pass
            else:
                if task == "binary_classification":
                    ok = (values == 0) | (values == 1)
                else:
                    ok = (values >= -self.max_abs) & (values <= self.max_abs)  # NaN compares False
                return values[ok], ok
        if task == "binary_classification":
            ok = [v is True or v is False or (type(v) in (int, float) and v in (0, 1)) for v in raw]
            values = [float(v) for v, good in zip(raw, ok) if good]
        elif task == "multiclass_classification":
            limit, digits = self.max_length, 10 ** min(self.max_length, 4000)
            ok = [(isinstance(v, str) and len(v) <= limit) or (type(v) is int and -digits < v < digits) for v in raw]
            values = [str(v) for v, good in zip(raw, ok) if good]
        else:
            bound = self.max_abs
            ok = [type(v) in (int, float) and -bound <= v <= bound for v in raw]  # NaN compares False
            values = [float(v) for v, good in zip(raw, ok) if good]
        dtype = object if task == "multiclass_classification" else np.float64
        return np.asarray(values, dtype=dtype), np.asarray(ok, dtype=bool)

    def score_bins(self, scores: np.ndarray) -> np.ndarray:
        return np.searchsorted(self.edges, scores, side="right")

    # ---- the model's own decision and per-class scores ---------------------------------------
    def extras(self, decisions: list[Any], class_scores: list[Any], rows: int) -> np.ndarray | None:
        """What a batch says beyond its predictions, as numbers: binary a vector of the model's own decisions
        (1 positive, 0 negative, NaN: decide by decision_threshold), multiclass a rows x classes matrix of
        per-class scores (NaN rows: a class was sent without scores); None when the batch has neither."""
        task = self.model.task
        if task == "binary_classification" and decisions:
            return np.array([np.nan if d is None else float(d) for d in decisions], dtype=np.float64)
        if task == "multiclass_classification" and class_scores:
            out = np.full((rows, len(self.layout.classes)), np.nan)
            for i, row in enumerate(class_scores):
                if row is not None:
                    out[i] = row
            return out
        return None

    def pack(self, predictions: list[Any], extras: np.ndarray | None) -> list[Any]:
        """Predictions as the label store keeps them: plain, or [prediction, decision] / [class, *scores]
        where a row has extras (JSON-safe, so the Redis store and snapshots keep them as they are)."""
        if extras is None:
            return predictions
        if extras.ndim == 1:
            return [p if np.isnan(d) else [p, d] for p, d in zip(predictions, extras.tolist())]
        return [p if np.isnan(row[0]) else [p, *row] for p, row in zip(predictions, extras.tolist())]

    def unpack(self, stored: list[Any]) -> tuple[list[Any], np.ndarray | None]:
        """The inverse of pack: (predictions, extras or None)."""
        if list not in set(map(type, stored)):
            return stored, None
        plain = [v[0] if type(v) is list else v for v in stored]
        if self.model.task == "multiclass_classification":
            width = len(self.layout.classes)
            extras = np.full((len(stored), width), np.nan)
            for i, v in enumerate(stored):
                if type(v) is list and len(v) == width + 1:
                    extras[i] = v[1:]
        else:
            extras = np.array([v[1] if type(v) is list and len(v) == 2 else np.nan for v in stored], dtype=np.float64)
        return plain, extras

    def decided_positive(self, p: np.ndarray, decisions: np.ndarray | None) -> np.ndarray:
        """Binary: the model's own decision where it sent one, else score >= decision_threshold."""
        positive = p >= self.threshold
        if decisions is not None:
            own = ~np.isnan(decisions)
            positive[own] = decisions[own] == 1
        return positive

    def class_probabilities(self, scores: np.ndarray) -> np.ndarray:
        """Multiclass: per-class scores -> probabilities: each class's one-vs-rest calibration map when the
        profile has them, then rows renormalised to sum to 1 (NannyML's multiclass CBPE); raw scores are
        only renormalised. A row of zeros stays zero (it is left out of the estimates)."""
        q = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
        if isinstance(self.calibration, tuple):
            q = np.column_stack([cal(q[:, c]) for c, cal in enumerate(self.calibration)])
        total = q.sum(axis=1, keepdims=True)
        return np.divide(q, total, out=np.zeros_like(q), where=total > 0)

    # ---- sum vectors ------------------------------------------------------------------------
    def prediction_vector(self, scores: np.ndarray, segment_codes: np.ndarray,
                          extras: np.ndarray | None = None) -> np.ndarray | None:
        """Binary: expected confusion, score histogram and segment selection counts of a batch; multiclass:
        the per-class label-free sums of its rows with per-class scores (``extras``)."""
        if self.model.task == "multiclass_classification":
            return self._multiclass_predicted(scores, extras)
        if self.model.task == "regression":
            if not isinstance(self.calibration, ErrorModel) or len(scores) == 0:
                return None
            values = np.asarray(scores, dtype=np.float64)
            return np.bincount(self.calibration.assign(values), minlength=ERROR_BINS).astype(np.float64)
        if len(scores) == 0:
            return None
        layout = self.layout
        p = np.clip(np.asarray(scores, dtype=np.float64), 0.0, 1.0)
        positive = self.decided_positive(p, extras)  # the model's own decision, made on the raw score
        q = self.calibration(p) if self.calibration is not None else p  # P(label = 1 | score)
        vector = np.zeros(layout.predicted_width)
        vector[0] = q[positive].sum()
        vector[1] = (1 - q[positive]).sum()
        vector[2] = (1 - q[~positive]).sum()
        vector[3] = q[~positive].sum()
        spread = q * (1 - q)
        vector[layout.bernoulli_variance()] = spread[positive].sum(), spread[~positive].sum()
        bins = self.score_bins(p)  # ranked by the raw score; calibration is monotone, so the order is the same
        vector[layout.count_hist()] = np.bincount(bins, minlength=layout.bins)
        vector[layout.score_sum_hist()] = np.bincount(bins, weights=q, minlength=layout.bins)
        if layout.codec.width:
            columns = layout.codec.columns(segment_codes) * 2
            selection = np.bincount(columns.ravel(), minlength=2 * layout.codec.width)
            selection += np.bincount((columns + 1)[positive].ravel(), minlength=2 * layout.codec.width)
            vector[layout.segment_selection()] = selection
        return vector

    def _multiclass_predicted(self, predictions: np.ndarray, extras: np.ndarray | None) -> np.ndarray | None:
        if extras is None:
            return None
        scored = ~np.isnan(extras[:, 0])
        if not scored.any():
            return None
        layout = self.layout
        raw = np.clip(extras[scored], 0.0, 1.0)
        q = self.class_probabilities(raw)
        kept = q.sum(axis=1) > 0
        raw, q = raw[kept], q[kept]
        predicted = self._class_indices(np.asarray(predictions, dtype=object)[scored][kept])
        k = len(layout.classes)
        own = predicted[:, None] == np.arange(k)[None, :]  # rows x classes: the row predicted this class
        spread = q * (1 - q)
        sums = np.stack([own.sum(axis=0), (q * own).sum(axis=0), (q * ~own).sum(axis=0),
                         (spread * own).sum(axis=0), (spread * ~own).sum(axis=0)])
        vector = np.zeros(layout.predicted_width)
        vector[layout.class_estimates()] = sums.ravel()
        bins = self.score_bins(raw) + np.arange(k)[None, :] * layout.bins  # ranked by each class's raw score
        vector[layout.class_count_hist()] = np.bincount(bins.ravel(), minlength=k * layout.bins)
        vector[layout.class_score_sum_hist()] = np.bincount(bins.ravel(), weights=q.ravel(), minlength=k * layout.bins)
        return vector

    def label_vector(self, predictions: np.ndarray, labels: np.ndarray, segment_codes: np.ndarray,
                     extras: np.ndarray | None = None) -> np.ndarray:
        """The labelled sums of (prediction, label) pairs that are all usable; ``extras`` as from ``extras()``."""
        task = self.model.task
        if task == "binary_classification":
            return self._binary(np.asarray(predictions, dtype=np.float64), labels, segment_codes, extras)
        if task == "multiclass_classification":
            return self._multiclass(predictions, labels, extras, segment_codes)
        return self._regression(np.asarray(predictions, dtype=np.float64), labels, segment_codes)

    def _binary(self, scores: np.ndarray, labels: np.ndarray, segment_codes: np.ndarray,
                decisions: np.ndarray | None = None) -> np.ndarray:
        layout = self.layout
        p = np.clip(scores, 0.0, 1.0)
        y = labels.astype(bool)
        predicted = self.decided_positive(p, decisions)
        outcome = np.where(predicted, np.where(y, 0, 1), np.where(y, 3, 2))  # tp, fp, tn, fn
        vector = np.zeros(layout.labelled_width)
        vector[:4] = np.bincount(outcome, minlength=4)
        vector[4] = ((p - y) ** 2).sum()
        clipped = np.clip(p, LOG_LOSS_EPS, 1 - LOG_LOSS_EPS)
        vector[5] = -(np.log(clipped[y]).sum() + np.log1p(-clipped[~y]).sum())
        bins = self.score_bins(p)
        vector[layout.positive_hist()] = np.bincount(bins[y], minlength=layout.bins)
        vector[layout.negative_hist()] = np.bincount(bins[~y], minlength=layout.bins)
        if layout.codec.width:
            columns = layout.codec.columns(segment_codes) * 4 + outcome[:, None]
            vector[layout.segment_confusion()] = np.bincount(columns.ravel(), minlength=4 * layout.codec.width)
        return vector

    def _class_indices(self, values: np.ndarray) -> np.ndarray:
        other = len(self.layout.classes)
        uniques, inverse = np.unique(np.asarray(values, dtype=str), return_inverse=True)
        codes = np.asarray([self.class_index.get(u, other) for u in uniques.tolist()], dtype=np.int64)
        return codes[inverse.reshape(-1)]

    def _multiclass(self, predictions: np.ndarray, labels: np.ndarray, scores: np.ndarray | None = None,
                    segment_codes: np.ndarray | None = None) -> np.ndarray:
        layout = self.layout
        k = layout.k
        actual = self._class_indices(labels)
        vector = np.zeros(layout.labelled_width)
        cells = actual * k + self._class_indices(predictions)
        vector[:k * k] = np.bincount(cells, minlength=k * k)
        if layout.segment_rows and segment_codes is not None and len(cells):  # the matrix per segment value
            rows = layout.segment_rows_of(segment_codes) * (k * k) + cells[:, None]
            vector[layout.segment_sums()] = np.bincount(rows.ravel(), minlength=layout.segment_rows * k * k)
        if scores is not None:  # one-vs-rest histograms of each class's raw score: realised ROC AUC per class
            scored = ~np.isnan(scores[:, 0])
            classes, bins = len(layout.classes), layout.bins
            cells = self.score_bins(np.clip(scores[scored], 0.0, 1.0)) + np.arange(classes)[None, :] * bins
            member = actual[scored][:, None] == np.arange(classes)[None, :]
            width = classes * bins
            vector[layout.class_positive_hist()] = np.bincount(cells[member], minlength=width)
            vector[layout.class_negative_hist()] = np.bincount(cells[~member], minlength=width)
        return vector

    def _regression(self, predictions: np.ndarray, labels: np.ndarray,
                    segment_codes: np.ndarray | None = None) -> np.ndarray:
        """Error sums; callers pass values within max_abs, so every term but APE is finite.

        APE divides by the label: a label of 1e-320 would make it infinite, so such a pair counts
        like a zero label (left out of the APE sum and its count).
        """
        error = predictions - labels
        with np.errstate(divide="ignore", over="ignore", invalid="ignore"):
            ape = np.abs(error) / np.abs(labels)
        nonzero = (labels != 0) & np.isfinite(ape)
        # MSLE is defined for non-negative values: a pair with a negative prediction or label is left out of
        # it (and counted: labelled pairs - log_pairs), not clipped to 0, which would invent an error.
        logged = (predictions >= 0) & (labels >= 0)
        log_error = np.log1p(predictions[logged]) - np.log1p(labels[logged])
        vector = np.zeros(self.layout.labelled_width)
        layout = self.layout
        if layout.segment_rows and segment_codes is not None and len(labels):
            squared_log = np.zeros(len(labels))
            squared_log[logged] = log_error * log_error
            terms = (np.ones(len(labels)), np.maximum(error, 0.0), np.maximum(-error, 0.0), error * error,
                     squared_log, logged.astype(np.float64))
            rows = layout.segment_rows_of(segment_codes)  # records x chosen attributes
            flat = (rows * len(terms)).ravel()
            block = np.zeros(layout.segment_rows * len(terms))
            for j, term in enumerate(terms):
                weights = np.broadcast_to(term[:, None], rows.shape).ravel()
                block += np.bincount(flat + j, weights=weights, minlength=len(block))
            vector[layout.segment_sums()] = block
        vector[:len(REGRESSION_SUMS)] = [
            error[error > 0].sum(),
            -error[error < 0].sum(),
            (error * error).sum(),
            ape[nonzero].sum(),
            nonzero.sum(),
            labels[labels > 0].sum(),
            -labels[labels < 0].sum(),
            (labels * labels).sum(),
            (log_error * log_error).sum(),
            logged.sum(),
        ]
        return vector


class ModelQuality(QualityMath):
    """The quality state of one model version. Thread-safe; every update is a few numpy calls."""

    def __init__(self, model: ModelConfig, slots: int, calibration: Calibration | None = None) -> None:
        super().__init__(model, calibration)
        self.windows = model.quality_windows
        self.lock = threading.Lock()
        self.labelled = np.zeros(self.layout.labelled_width)
        self.labelled_count = 0
        self.predicted = np.zeros(self.layout.predicted_width)
        self.labelled_rings = [FloatRing(s, slots, self.layout.labelled_width) for s in self.windows]
        self.predicted_rings = [FloatRing(s, slots, self.layout.predicted_width) for s in self.windows]
        # Label delay histogram: upper bounds from quality.label_delay_buckets (default 1 s to 90 days).
        self.delay_bounds = np.asarray(model.quality.label_delay_buckets, dtype=np.float64)
        self.delay_buckets = np.zeros(len(self.delay_bounds) + 1, dtype=np.int64)
        self.delay_sum = 0.0

    def use_limits(self, math: QualityMath) -> None:
        """Take exporter.max_abs_value and max_string_length from the store's per-model math."""
        self.max_abs, self.max_length = math.max_abs, math.max_length

    # ---- updates: adding vectors computed beforehand ----------------------------------------
    def add_predictions(self, vector: np.ndarray | None, n: int, now: float) -> None:
        if vector is None:
            return
        with self.lock:
            self.predicted += vector
            for ring in self.predicted_rings:
                ring.add(vector, n, now)

    def add_labels(self, vector: np.ndarray, n: int, delays: np.ndarray | None, now: float) -> None:
        """``n`` joined pairs summed into ``vector``; ``delays`` in seconds, None for inline labels."""
        if n == 0:
            return
        if delays is not None and len(delays):
            delays = np.clip(np.asarray(delays, dtype=np.float64), 0.0, None)
            # Prometheus buckets are cumulative "le"; store per-bucket counts and cumsum at scrape time.
            buckets = np.bincount(
                np.searchsorted(self.delay_bounds, delays, side="left"), minlength=len(self.delay_bounds) + 1
            )
        with self.lock:
            self.labelled += vector
            self.labelled_count += n
            for ring in self.labelled_rings:
                ring.add(vector, n, now)
            if delays is not None and len(delays):
                self.delay_buckets += buckets
                self.delay_sum += float(delays.sum())

    def observe_predictions(self, scores: np.ndarray, segment_codes: np.ndarray, now: float,
                            extras: np.ndarray | None = None) -> None:
        """Every prediction: binary expected confusion, score histogram and segment selection counts;
        multiclass the label-free sums of rows with per-class scores."""
        n = len(scores) if extras is None or extras.ndim == 1 else int((~np.isnan(extras[:, 0])).sum())
        self.add_predictions(self.prediction_vector(scores, segment_codes, extras), n, now)

    def observe_labels(
        self, predictions: np.ndarray, labels: np.ndarray, segment_codes: np.ndarray, delays: np.ndarray | None,
        now: float, extras: np.ndarray | None = None,
    ) -> None:
        """Joined (prediction, label) pairs; ``delays`` in seconds, None for inline labels."""
        if len(labels):
            self.add_labels(self.label_vector(predictions, labels, segment_codes, extras), len(labels), delays, now)

    # ---- reads ------------------------------------------------------------------------------
    def window(self, seconds: int, now: float) -> tuple[np.ndarray, int, np.ndarray, int]:
        """(labelled sums, labelled count, predicted sums, prediction count) over a window."""
        index = self.windows.index(seconds)
        with self.lock:
            labelled, n_labelled = self.labelled_rings[index].totals(now)
            predicted, n_predicted = self.predicted_rings[index].totals(now)
        return labelled, n_labelled, predicted, n_predicted

    def cumulative(self) -> tuple[np.ndarray, int, np.ndarray, np.ndarray, float]:
        """(labelled sums, labelled count, predicted sums, delay bucket counts, delay sum), copied."""
        with self.lock:
            return self.labelled.copy(), self.labelled_count, self.predicted.copy(), self.delay_buckets.copy(), \
                self.delay_sum
