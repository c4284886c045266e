"""Out-of-distribution detection: how well a set of functions tells test examples of
its own dataset (in-distribution) from those of another (out-of-distribution).

Scores, per example, for M functions [M, N, C] (M = 1: a single model), higher
meaning "more likely out of distribution":
  max_probability     1 - max_c p(c), p the functions' mean probability (Hendrycks &
                      Gimpel 2017's maximum softmax probability, negated)
  entropy             H(p), the predictive entropy
  mutual_information  H(p) - mean_m H(p_m): the paper's Jensen-Shannon divergence per
                      example, the disagreement of the functions (0 for one model)
Metrics (scikit-learn), named as uncertainty-baselines' `ood/...`:
  ood/auroc           area under the ROC curve, out-of-distribution as positive
  ood/auprc_in        average precision with in-distribution as positive (scored by
                      the negated score)
  ood/auprc_out       average precision with out-of-distribution as positive
  ood/fpr_at_95_tpr   the fraction of out-of-distribution examples taken for
                      in-distribution at the threshold that keeps 95% of the
                      in-distribution ones
"""

import numpy as np
from sklearn import metrics as sk_metrics

from uncertainty.core import metrics

SCORES = ("max_probability", "entropy", "mutual_information")


def scores(logits: np.ndarray) -> dict[str, np.ndarray]:
    """Every OOD score [N] of the functions' logits [M, N, C] (or [N, C]: one)."""
    logits = np.asarray(logits)
    logits = logits[None] if logits.ndim == 2 else logits
    mean = np.exp(metrics.log_softmax(metrics.ensemble(logits)))
    return {"max_probability": 1.0 - mean.max(axis=-1),
            "entropy": metrics.entropy(mean),
            "mutual_information": metrics.mutual_information(logits)}


def detection(inside: np.ndarray, outside: np.ndarray) -> dict[str, float]:
    """The metrics of one score on in-distribution (`inside`) and out-of-distribution
    (`outside`) examples, higher scores meaning out of distribution."""
    values = np.concatenate([inside, outside]).astype(np.float64)
    is_out = np.concatenate([np.zeros(len(inside)), np.ones(len(outside))])
    # The lowest threshold that accepts (score <= threshold) at least 95% of the
    # in-distribution examples: the ceil(0.95 N)-th smallest of their scores.
    threshold = np.sort(inside)[(95 * len(inside) + 99) // 100 - 1]
    return {"ood/auroc": float(sk_metrics.roc_auc_score(is_out, values)),
            "ood/auprc_in": float(sk_metrics.average_precision_score(1 - is_out, -values)),
            "ood/auprc_out": float(sk_metrics.average_precision_score(is_out, values)),
            "ood/fpr_at_95_tpr": float(np.mean(outside <= threshold))}


def evaluate(inside_logits: np.ndarray, outside_logits: np.ndarray
             ) -> dict[str, dict[str, float]]:
    """{score name: its metrics} of functions' logits [M, N, C] on in- and
    out-of-distribution test sets; mutual information only for M > 1."""
    inside, outside = scores(inside_logits), scores(outside_logits)
    single = np.ndim(inside_logits) == 2 or len(inside_logits) == 1
    return {name: detection(inside[name], outside[name]) for name in SCORES
            if not (single and name == "mutual_information")}
