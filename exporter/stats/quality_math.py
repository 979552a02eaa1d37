"""Quality metrics from counts: confusion matrices, score histograms and error sums -> numbers.

Everything here takes summed counters (over a window, or over replicas) and never raw samples,
so the same formulas work in the exporter and, written in PromQL, fleet-wide. A metric whose
denominator is zero is NaN ("undefined"), and the exporter omits NaN series rather than
inventing a value.

    >>> round(wilson_interval(8, 10)[0], 4), round(wilson_interval(8, 10)[1], 4)
    (0.4902, 0.9433)
    >>> auc_from_histograms(np.array([0, 1, 1]), np.array([1, 1, 0]))  # one tie in the middle bin
    0.875
"""

from __future__ import annotations

import math

import numpy as np

Z_95 = 1.959963984540054  # two-sided 95% normal quantile
LOG_LOSS_EPS = 1e-15      # probabilities are clipped to [eps, 1 - eps] so one confident miss is finite
NAN = float("nan")


def ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator > 0 else NAN


def wilson_interval(successes: float, trials: float, z: float = Z_95) -> tuple[float, float]:
    """Wilson score interval of a binomial proportion; well-behaved at 0, 1 and small n (unlike Wald)."""
    if trials <= 0:
        return NAN, NAN
    p = successes / trials
    z2 = z * z
    centre = (p + z2 / (2 * trials)) / (1 + z2 / trials)
    half = z / (1 + z2 / trials) * math.sqrt(p * (1 - p) / trials + z2 / (4 * trials * trials))
    return max(0.0, centre - half), min(1.0, centre + half)


def f1(precision: float, recall: float) -> float:
    if math.isnan(precision) or math.isnan(recall) or precision + recall == 0:
        return NAN if math.isnan(precision) or math.isnan(recall) else 0.0
    return 2 * precision * recall / (precision + recall)


# Binary ratios that are binomial proportions: (metric, successes, trials) from tp, fp, tn, fn.
PROPORTIONS = {
    "accuracy": lambda tp, fp, tn, fn: (tp + tn, tp + fp + tn + fn),
    "precision": lambda tp, fp, tn, fn: (tp, tp + fp),
    "recall": lambda tp, fp, tn, fn: (tp, tp + fn),
    "specificity": lambda tp, fp, tn, fn: (tn, tn + fp),
    "false_positive_rate": lambda tp, fp, tn, fn: (fp, fp + tn),
    "false_negative_rate": lambda tp, fp, tn, fn: (fn, fn + tp),
}


def binary_ratios(tp: float, fp: float, tn: float, fn: float) -> dict[str, float]:
    """accuracy, precision, recall, specificity, FPR, FNR and F1 from a confusion matrix."""
    out = {name: ratio(*split(tp, fp, tn, fn)) for name, split in PROPORTIONS.items()}
    out["f1"] = f1(out["precision"], out["recall"])
    return out


def binary_intervals(tp: float, fp: float, tn: float, fn: float) -> dict[str, tuple[float, float]]:
    """Wilson 95% bounds for each proportion in PROPORTIONS (F1 and AUC are not proportions)."""
    return {name: wilson_interval(*split(tp, fp, tn, fn)) for name, split in PROPORTIONS.items()}


def auc_from_histograms(positives: np.ndarray, negatives: np.ndarray) -> float:
    """ROC AUC = P(score of a positive > score of a negative), ties (same bin) counting one half.

    Exact (equal to the trapezoidal ROC AUC) when every score in a bin is the same; otherwise
    within-bin order is unknown and counted as ties, a bias bounded by the bin width.
    Weights may be fractional (expected positives/negatives; see estimation.py).
    """
    positives = np.asarray(positives, dtype=np.float64)
    negatives = np.asarray(negatives, dtype=np.float64)
    total = positives.sum() * negatives.sum()
    if total <= 0:
        return NAN
    below = np.cumsum(negatives) - negatives  # negatives in strictly lower bins
    return float((positives * (below + 0.5 * negatives)).sum() / total)


def expected_cost(fn: float, fp: float, n: float, cost_fn: float, cost_fp: float) -> float:
    """Business cost per prediction: (cost_fn * FN + cost_fp * FP) / N."""
    return ratio(cost_fn * fn + cost_fp * fp, n)


def multiclass_metrics(confusion: np.ndarray, classes: int) -> tuple[dict[str, np.ndarray], dict[str, float]]:
    """Per-class precision/recall/F1 and averages from a KxK matrix (rows actual, columns predicted).

    The first ``classes`` rows/columns are the configured classes; the last is __other__, which
    is never scored itself but its errors count against the configured classes. Specificity of
    class c is one-vs-rest: TN_c / (N - actual_c) with TN_c = N - actual_c - (predicted_c - TP_c).
    Averages (macro,
    micro) run over the configured classes present in the window (as actual or predicted), the
    way scikit-learn averages over the labels it sees; an undefined per-class value counts as 0
    in the macro average (scikit-learn's zero_division=0).
    """
    confusion = np.asarray(confusion, dtype=np.float64)
    tp = np.diag(confusion)[:classes]
    predicted = confusion.sum(axis=0)[:classes]
    actual = confusion.sum(axis=1)[:classes]
    n = confusion.sum()
    # One-vs-rest: every row that is not class c (its __other__ row included) is a negative of c.
    negatives = n - actual
    true_negatives = negatives - (predicted - tp)
    with np.errstate(divide="ignore", invalid="ignore"):
        precision = np.where(predicted > 0, tp / predicted, np.nan)
        recall = np.where(actual > 0, tp / actual, np.nan)
        f1s = 2 * precision * recall / (precision + recall)
        specificity = np.where(negatives > 0, true_negatives / negatives, np.nan)
    f1s = np.where(precision + recall == 0, 0.0, f1s)  # NaN (undefined) stays NaN
    per_class = {"precision": precision, "recall": recall, "f1": f1s, "specificity": specificity}
    present = (predicted > 0) | (actual > 0)
    averages = {"accuracy": ratio(float(np.trace(confusion)), n)}
    if present.any():
        for name, values in per_class.items():
            averages[f"macro_{name}"] = float(np.nan_to_num(values[present], nan=0.0).mean())
        micro_p = ratio(tp.sum(), predicted.sum())
        micro_r = ratio(tp.sum(), actual.sum())
        averages["micro_f1"] = f1(micro_p, micro_r)
    return per_class, averages


def ovr_auc(positives: np.ndarray, negatives: np.ndarray) -> tuple[np.ndarray, float]:
    """Multiclass ROC AUC, one-vs-rest: (per-class AUC, macro mean over the classes where it is defined).

    ``positives[c]`` is the histogram of class c's score over the rows whose label is c, ``negatives[c]``
    over every other row (labels outside the configured classes included); each row is
    auc_from_histograms, so the binning error is the binary one. The macro mean is scikit-learn's
    ``roc_auc_score(multi_class="ovr", average="macro")`` when every class has positives and negatives.
    """
    per_class = np.array([auc_from_histograms(p, n) for p, n in zip(positives, negatives)], dtype=np.float64)
    defined = ~np.isnan(per_class)
    return per_class, float(per_class[defined].mean()) if defined.any() else NAN


def regression_metrics(sums: dict[str, float], n: float) -> dict[str, float]:
    """MAE, RMSE, MAPE, bias (mean of prediction - label), R2, MSLE and RMSLE from error sums.

    ``sums`` holds over, under (positive and negative parts of the error), squared, ape and
    nonzero (MAPE skips labels of exactly 0), label_pos, label_neg and label_squared (for R2's
    total sum of squares: sum(y^2) - (sum y)^2 / n), squared_log and log_pairs (MSLE over the
    pairs whose prediction and label are both >= 0; the others are left out and counted).
    """
    if n <= 0:
        return {}
    label_sum = sums["label_pos"] - sums["label_neg"]
    total_ss = sums["label_squared"] - label_sum * label_sum / n
    return {
        "mae": (sums["over"] + sums["under"]) / n,
        "rmse": math.sqrt(sums["squared"] / n),
        "mape": ratio(sums["ape"], sums["nonzero"]),
        "bias": (sums["over"] - sums["under"]) / n,
        # Relative round-off of the two big sums bounds how small a variance is still meaningful.
        "r2": 1 - sums["squared"] / total_ss if total_ss > 1e-12 * max(sums["label_squared"], 1.0) else NAN,
        "msle": ratio(sums.get("squared_log", 0.0), sums.get("log_pairs", 0.0)),
        "rmsle": math.sqrt(ratio(sums.get("squared_log", 0.0), sums.get("log_pairs", 0.0)))
        if sums.get("log_pairs", 0.0) > 0 else NAN,
    }


def segment_regression_metrics(sums: dict[str, float]) -> dict[str, float]:
    """MAE, RMSE, bias and RMSLE of one segment value from its sums (count, over, under, squared, squared_log,
    log_pairs); {} without pairs, RMSLE NaN without pairs both >= 0."""
    n = sums["count"]
    if n <= 0:
        return {}
    pairs = sums["log_pairs"]
    return {
        "mae": (sums["over"] + sums["under"]) / n,
        "rmse": math.sqrt(sums["squared"] / n),
        "bias": (sums["over"] - sums["under"]) / n,
        "rmsle": math.sqrt(sums["squared_log"] / pairs) if pairs > 0 else NAN,
    }
