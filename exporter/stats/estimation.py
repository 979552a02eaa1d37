"""Estimated performance without labels: confidence-based performance estimation (CBPE).

If a binary classifier's scores are calibrated — among predictions scored p, a fraction p are
positive — then a prediction scored p is, in expectation, p of a positive and 1 - p of a negative.
Summing over a window gives the expected confusion matrix, without waiting for a single label:

    expected TP = sum of p over predicted positives      expected FP = sum of 1 - p over them
    expected FN = sum of p over predicted negatives      expected TN = sum of 1 - p over them

and estimated accuracy, precision, recall and F1 follow from it as from a real confusion
matrix. ROC AUC is estimated the same way from a score histogram where each bin holds p
expected positives and 1 - p expected negatives per prediction. This is the method behind
NannyML's CBPE (https://nannyml.readthedocs.io/en/stable/how_it_works/performance_estimation.html).

The estimate is only as good as the calibration: it tracks performance changes caused by a
shift of the inputs (covariate shift) while P(label | score) stays put, and it is biased when
the scores are over- or under-confident, or when the relation between inputs and label changes
(concept drift), which no label-free method can see. Compare estimates with realised metrics
whenever labels do arrive (docs/quality.md).

    >>> etp, efp, etn, efn = expected_confusion(np.array([0.9, 0.6, 0.2]), threshold=0.5)
    >>> [round(v, 6) for v in (etp, efp, etn, efn)]
    [1.5, 0.5, 0.8, 0.2]
"""

from __future__ import annotations

import numpy as np

from exporter.stats.quality_math import auc_from_histograms, binary_ratios

ESTIMATED_METRICS = ("accuracy", "precision", "recall", "f1", "roc_auc")


def expected_confusion(scores: np.ndarray, threshold: float) -> tuple[float, float, float, float]:
    """(expected TP, FP, TN, FN) of calibrated scores with the given decision threshold."""
    scores = np.asarray(scores, dtype=np.float64)
    positive = scores >= threshold
    hit = scores[positive]
    miss = scores[~positive]
    return float(hit.sum()), float((1 - hit).sum()), float((1 - miss).sum()), float(miss.sum())


def estimated_auc(bin_counts: np.ndarray, bin_score_sums: np.ndarray) -> float:
    """ROC AUC from a score histogram: bin b holds sum(p) expected positives and n_b - sum(p) negatives."""
    expected_positives = np.asarray(bin_score_sums, dtype=np.float64)
    expected_negatives = np.asarray(bin_counts, dtype=np.float64) - expected_positives
    return auc_from_histograms(expected_positives, np.clip(expected_negatives, 0, None))


def estimated_metrics(
    etp: float, efp: float, etn: float, efn: float, bin_counts: np.ndarray, bin_score_sums: np.ndarray
) -> dict[str, float]:
    """Estimated accuracy, precision, recall, F1 and ROC AUC (NaN where undefined)."""
    ratios = binary_ratios(etp, efp, etn, efn)
    out = {name: ratios[name] for name in ESTIMATED_METRICS if name in ratios}
    out["roc_auc"] = estimated_auc(bin_counts, bin_score_sums)
    return out


def hanley_mcneil_se(auc: float, positives: float, negatives: float) -> float:
    """Standard error of an ROC AUC measured on `positives` and `negatives` (Hanley & McNeil, 1982)."""
    if not (positives > 1 and negatives > 1) or not np.isfinite(auc):
        return float("nan")
    q1, q2 = auc / (2 - auc), 2 * auc * auc / (1 + auc)
    variance = (auc * (1 - auc) + (positives - 1) * (q1 - auc * auc) + (negatives - 1) * (q2 - auc * auc)) / (
        positives * negatives
    )
    return float(np.sqrt(max(variance, 0.0)))


def estimated_standard_errors(
    etp: float, efp: float, etn: float, efn: float, var_positive: float, var_negative: float, auc: float
) -> dict[str, float]:
    """How far the realised metric of the window may be from the estimate when the calibrated scores are right.

    Given the scores, each predicted positive is a true positive with probability q, so the realised
    TP is a sum of Bernoulli(q) with mean `etp` and variance `var_positive` = sum q(1-q) over predicted
    positives; likewise FN over the predicted negatives. The predicted counts are known exactly.
    accuracy and precision are linear in TP and FN; recall and F1 use the delta method; ROC AUC uses
    Hanley & McNeil with the expected class counts. NaN where the metric is undefined.
    """
    predicted_pos, predicted_neg = etp + efp, etn + efn
    n = predicted_pos + predicted_neg
    out = {name: float("nan") for name in ESTIMATED_METRICS}
    if n > 0:
        out["accuracy"] = float(np.sqrt(var_positive + var_negative) / n)
    if predicted_pos > 0:
        out["precision"] = float(np.sqrt(var_positive) / predicted_pos)
    actual_pos = etp + efn
    if actual_pos > 0:
        out["recall"] = float(np.sqrt(efn**2 * var_positive + etp**2 * var_negative) / actual_pos**2)
    denominator = predicted_pos + etp + efn
    if denominator > 0:
        out["f1"] = float(
            2 * np.sqrt((predicted_pos + efn) ** 2 * var_positive + etp**2 * var_negative) / denominator**2
        )
    out["roc_auc"] = hanley_mcneil_se(auc, actual_pos, n - actual_pos)
    return out


MULTICLASS_ESTIMATES = ("precision", "recall", "f1", "specificity", "roc_auc")


def multiclass_estimates(sums: np.ndarray, count_hist: np.ndarray, score_sum_hist: np.ndarray) -> tuple[
        dict[str, np.ndarray], dict[str, np.ndarray], dict[str, float], dict[str, float]]:
    """Multiclass CBPE, one-vs-rest: (per-class estimates, their standard errors, macro estimates, their SEs).

    ``sums`` is CLASS_ESTIMATES x classes (exporter/state/quality.py): per class c, the rows predicted c,
    the expected TP (sum of q_c over them), the expected FN (sum of q_c over the other rows) and the
    Bernoulli variances of both. Every other count follows from N (the rows with scores): FP = predicted
    - TP, TN = N - predicted - FN. Each class is then a binary problem: its ratios and their standard
    errors are the binary ones (specificity TN / (TN + FP) with Var = (TN^2 Vp + FP^2 Vn) / (TN+FP)^4),
    and its ROC AUC comes from the histogram of its raw scores weighted by q_c.

    Macro values are the mean over the classes present (predicted, or expected as label; an undefined
    per-class value counting 0 as the realised macro does). Their standard error is sqrt(sum SE_c^2) / K:
    exact for precision (disjoint rows per class), an approximation elsewhere (a row's chances of being
    c and d are negatively correlated, which this ignores). Accuracy is the expected share of rows whose
    predicted class is their label, with Var = sum q(1-q) over the rows' predicted class / N^2.
    """
    predicted, etp, efn, var_pos, var_neg = np.asarray(sums, dtype=np.float64)
    count_hist = np.asarray(count_hist, dtype=np.float64)
    n = float(count_hist[0].sum()) if len(count_hist) else 0.0
    per_class = {name: np.full(len(predicted), np.nan) for name in MULTICLASS_ESTIMATES}
    errors = {name: np.full(len(predicted), np.nan) for name in MULTICLASS_ESTIMATES}
    for c in range(len(predicted)):
        tp, fn = etp[c], efn[c]
        fp, tn = predicted[c] - tp, n - predicted[c] - fn
        ratios = binary_ratios(tp, fp, tn, fn)
        auc = estimated_auc(count_hist[c], score_sum_hist[c])
        se = estimated_standard_errors(tp, fp, tn, fn, var_pos[c], var_neg[c], auc)
        negatives = tn + fp
        spec_se = float(np.sqrt(tn**2 * var_pos[c] + fp**2 * var_neg[c]) / negatives**2) if negatives > 0 else np.nan
        for name, value, error in (("precision", ratios["precision"], se["precision"]),
                                   ("recall", ratios["recall"], se["recall"]), ("f1", ratios["f1"], se["f1"]),
                                   ("specificity", ratios["specificity"], spec_se), ("roc_auc", auc, se["roc_auc"])):
            per_class[name][c], errors[name][c] = value, error
    macro: dict[str, float] = {}
    macro_se: dict[str, float] = {}
    if n > 0:
        macro["accuracy"] = float(etp.sum() / n)
        macro_se["accuracy"] = float(np.sqrt(var_pos.sum()) / n)
    present = (predicted > 0) | (etp + efn > 0)
    if present.any():
        k = int(present.sum())
        for name in MULTICLASS_ESTIMATES:
            values = per_class[name][present]
            if name == "roc_auc":  # the realised macro AUC averages the classes where it is defined
                defined = ~np.isnan(values)
                if defined.any():
                    macro["macro_roc_auc"] = float(values[defined].mean())
                    macro_se["macro_roc_auc"] = float(np.sqrt(np.nansum(errors[name][present][defined] ** 2))
                                                      / defined.sum())
                continue
            macro[f"macro_{name}"] = float(np.nan_to_num(values, nan=0.0).mean())
            macro_se[f"macro_{name}"] = float(np.sqrt(np.nansum(errors[name][present] ** 2)) / k)
    return per_class, errors, macro, macro_se
