"""Out-of-distribution detection: how well a set of functions tells test examples of
its own dataset (in-distribution) from those of another (out-of-distribution).

Scores, per example, for M functions [M, N, C] (M = 1: a single model), higher
meaning "more likely out of distribution":
  max_probability     1 - max_c p(c), p the functions' mean probability (Hendrycks &
                      Gimpel 2017's maximum softmax probability, negated)
  entropy             H(p), the predictive entropy
  mutual_information  H(p) - mean_m H(p_m): the paper's Jensen-Shannon divergence per
                      example, the disagreement of the functions (0 for one model)

Metrics against one out-of-distribution dataset <ood> (keys: `names.ood_key`):
  uncertainty-baselines' (baselines/cifar/ood_utils.py): out-of-distribution examples
  are the positives and max_probability the score, with Keras's AUC and
  SpecificityAtSensitivity over 100,000 evenly spaced thresholds (computed here in
  numpy the same way, `keras_curves`):
    ood/<ood>_auroc             area under the ROC curve (trapezoids)
    ood/<ood>_auprc             area under the precision-recall curve (Davis &
                                Goadrich's interpolation, as Keras's AUC(curve="PR"))
    ood/<ood>_(1-fpr)@95tpr     the largest specificity (in-distribution examples not
                                flagged) at a threshold that flags >= 95% of the
                                out-of-distribution examples
  exact (scikit-learn's definitions, `detection`), for every score s, beside them:
    ood/<ood>_<s>_auroc         ROC AUC, out-of-distribution as positive
    ood/<ood>_<s>_auprc_out     average precision, out-of-distribution as positive
    ood/<ood>_<s>_auprc_in      average precision, in-distribution as positive
    ood/<ood>_<s>_fpr_at_95_in_recall   Hendrycks & Gimpel's FPR95: the fraction of
                                out-of-distribution examples accepted at the threshold
                                that accepts 95% of the in-distribution examples (not
                                uncertainty-baselines' (1-fpr)@95tpr)
"""

import functools

import numpy as np

from uncertainty.core import metrics, names

SCORES = ("max_probability", "entropy", "mutual_information")
UB_SCORE = "max_probability"
UB_THRESHOLDS = 100_000
UB_SENSITIVITY = 0.95
_KERAS_EPSILON = 1e-7


def scores(logits: np.ndarray) -> dict[str, np.ndarray]:
    """Every OOD score [N] of the functions' logits [M, N, C] (or [N, C]: one)."""
    logits = np.asarray(logits)
    return scores_of_members(*member_terms(logits[None] if logits.ndim == 2 else logits))


def member_terms(logits: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities, entropies) of functions' logits [..., N, C]: what
    `scores_of_members` takes per function, computed once for any subset of them."""
    probs = metrics.softmax(logits)
    return probs, metrics.entropy(probs)


def scores_of_members(probs: np.ndarray, entropies: np.ndarray) -> dict[str, np.ndarray]:
    """`scores` of functions given by their `member_terms`, probabilities [M, N, C] and
    entropies [M, N]; [S, M, N, C] and [S, M, N] give S sets' scores, each [S, N]."""
    return scores_of_means(probs.mean(axis=-3), entropies.mean(axis=-2))


def scores_of_means(probs: np.ndarray, entropy: np.ndarray) -> dict[str, np.ndarray]:
    """`scores` of sets of functions given by their mean probabilities [..., N, C] (the
    sets' predictive probabilities) and their members' mean entropy [..., N]."""
    predictive = metrics.entropy(probs)
    return {"max_probability": 1.0 - probs.max(axis=-1),
            "entropy": predictive,
            "mutual_information": predictive - entropy}  # the set's JS


def detection(inside: np.ndarray, outside: np.ndarray) -> dict[str, float]:
    """The exact metrics of one score on in-distribution (`inside`) and
    out-of-distribution (`outside`) examples, higher scores meaning out of
    distribution: {auroc, auprc_out, auprc_in, fpr_at_95_in_recall}. The areas are
    scikit-learn's `roc_auc_score` and `average_precision_score` (ties grouped), in
    numpy from one sort: the same values up to float rounding, without the per-call
    validation that dominated the study's scoring."""
    inside = np.asarray(inside, np.float64)
    outside = np.asarray(outside, np.float64)
    values = np.concatenate([inside, outside])
    is_out = np.concatenate([np.zeros(len(inside)), np.ones(len(outside))])
    order = np.argsort(-values, kind="stable")  # most out-of-distribution first
    ordered, labels = values[order], is_out[order]
    # the last position of each group of equal scores: the curves' thresholds
    ends = np.append(np.flatnonzero(np.diff(ordered)), len(ordered) - 1)
    out_flagged = np.cumsum(labels)[ends]
    in_flagged = (ends + 1) - out_flagged
    # The lowest threshold that accepts (score <= threshold) at least 95% of the
    # in-distribution examples: the ceil(0.95 N)-th smallest of their scores.
    threshold = np.sort(inside)[(95 * len(inside) + 99) // 100 - 1]
    return {"auroc": _roc_area(out_flagged, in_flagged),
            "auprc_out": _average_precision(out_flagged, in_flagged),
            "auprc_in": _average_precision(*_from_the_other_end(in_flagged, out_flagged)),
            "fpr_at_95_in_recall": float(np.mean(outside <= threshold))}


def _after_zero(counts: np.ndarray) -> np.ndarray:
    """[0, *counts] in float64 (np.r_'s result, without its parsing of the index)."""
    return np.concatenate([[0.0], counts])


def _roc_area(positives: np.ndarray, negatives: np.ndarray) -> float:
    """Trapezoidal ROC AUC from cumulative counts at descending thresholds."""
    tpr = _after_zero(positives) / positives[-1]
    fpr = _after_zero(negatives) / negatives[-1]
    return float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))


def _average_precision(positives: np.ndarray, negatives: np.ndarray) -> float:
    """sum_k (R_k - R_{k-1}) P_k over descending thresholds, from cumulative counts."""
    precision = positives / (positives + negatives)
    recall = _after_zero(positives) / positives[-1]
    return float(np.sum(np.diff(recall) * precision))


def _from_the_other_end(positives: np.ndarray, negatives: np.ndarray):
    """Cumulative counts at the same thresholds taken in the opposite order (the
    scores negated): the totals minus the counts before each threshold."""
    before_p, before_n = _after_zero(positives[:-1]), _after_zero(negatives[:-1])
    return (positives[-1] - before_p)[::-1], (negatives[-1] - before_n)[::-1]


@functools.cache
def _keras_thresholds(num_thresholds: int) -> np.ndarray:
    """Keras's thresholds (-1e-7, 1/(T-1), ..., (T-2)/(T-1), 1 + 1e-7), float32."""
    thresholds = np.concatenate([[-_KERAS_EPSILON],
                                 np.arange(1, num_thresholds - 1) / (num_thresholds - 1),
                                 [1.0 + _KERAS_EPSILON]]).astype(np.float32)
    thresholds.setflags(write=False)
    return thresholds


def keras_curves(inside: np.ndarray, outside: np.ndarray,
                 num_thresholds: int = UB_THRESHOLDS) -> dict[str, np.ndarray]:
    """True and false positives and negatives at Keras's thresholds, out-of-distribution
    as positive and a score above a threshold as flagged; scores are in [0, 1] and
    compared in float32, as Keras. Only the thresholds where a count changes are kept
    (the first of each run of thresholds with equal counts, and the first threshold):
    the others add exact zeros to the areas and cannot change a maximum."""
    thresholds = _keras_thresholds(num_thresholds)
    inside = np.asarray(inside, np.float32)
    outside = np.asarray(outside, np.float32)
    # a score is flagged at the thresholds before its position among them
    first_not_flagged = [np.sort(np.searchsorted(thresholds, v, side="left"))
                         for v in (outside, inside)]
    kept = np.unique(np.concatenate([[0], *first_not_flagged]))
    kept = kept[kept < num_thresholds]
    tp, fp = ((len(p) - np.searchsorted(p, kept, side="right")).astype(np.float64)
              for p in first_not_flagged)
    return {"tp": tp, "fp": fp, "fn": len(outside) - tp, "tn": len(inside) - fp}


def _divide(a, b):
    return np.divide(a, b, out=np.zeros_like(a, dtype=np.float64), where=b != 0)


def ub_detection(inside: np.ndarray, outside: np.ndarray,
                 num_thresholds: int = UB_THRESHOLDS) -> dict[str, float]:
    """uncertainty-baselines' metrics of one score in [0, 1] (see the module doc):
    {auroc, auprc, (1-fpr)@95tpr}."""
    for values in (inside, outside):
        if len(values) and (np.min(values) < 0 or np.max(values) > 1):
            raise ValueError("uncertainty-baselines' OOD metrics take scores in [0, 1]")
    c = keras_curves(inside, outside, num_thresholds)
    tp, fp, fn, tn = c["tp"], c["fp"], c["fn"], c["tn"]
    recall, fpr = _divide(tp, tp + fn), _divide(fp, fp + tn)
    auroc = np.sum((fpr[:-1] - fpr[1:]) * (recall[:-1] + recall[1:]) / 2)
    # Precision-recall: precision interpolated between thresholds with TP and the
    # predicted positives P = TP + FP varying linearly (Keras's interpolate_pr_auc).
    dtp, p = tp[:-1] - tp[1:], tp + fp
    dp = p[:-1] - p[1:]
    slope = _divide(dtp, np.maximum(dp, 0))
    intercept = tp[1:] - slope * p[1:]
    both = (p[:-1] > 0) & (p[1:] > 0)
    ratio = np.where(both, _divide(p[:-1], np.maximum(p[1:], 0)), 1.0)
    log_ratio = np.log(np.where(ratio > 0, ratio, 1.0))
    auprc = np.sum(_divide(slope * (dtp + intercept * log_ratio),
                           np.maximum(tp[1:] + fn[1:], 0)))
    specificity = _divide(tn, tn + fp)
    feasible = recall >= UB_SENSITIVITY
    return {"auroc": float(auroc), "auprc": float(auprc),
            "(1-fpr)@95tpr": float(specificity[feasible].max() if feasible.any() else 0.0)}


def evaluate(inside_logits: np.ndarray, outside_logits: np.ndarray, dataset: str
             ) -> dict[str, float]:
    """{metric key: value} of functions' logits [M, N, C] on in- and out-of-
    distribution test sets, `dataset` naming the latter: uncertainty-baselines'
    three metrics and the exact ones of every score (mutual information only for
    M > 1)."""
    single = np.ndim(inside_logits) == 2 or len(inside_logits) == 1
    return evaluate_scores(scores(inside_logits), scores(outside_logits), dataset, single)


def evaluate_scores(inside: dict[str, np.ndarray], outside: dict[str, np.ndarray],
                    dataset: str, single: bool) -> dict[str, float]:
    """`evaluate` from the `scores` of the in- and out-of-distribution examples;
    `single`: of one function (no mutual information)."""
    found = {names.ood_key(dataset, metric): value for metric, value in
             ub_detection(inside[UB_SCORE], outside[UB_SCORE]).items()}
    for score in SCORES:
        if single and score == "mutual_information":
            continue
        found.update({names.ood_key(dataset, metric, score): value for metric, value in
                      detection(inside[score], outside[score]).items()})
    return found
