"""Metrics of functions given by their logits, and of weight vectors: plain numpy.

A function is its `logits` [N, C] on N examples (any reals: log-probabilities are
logits too), or [M, N, C] for M functions; `labels` is [N] integer classes. Functions
of one `logits` accept both shapes and return a float or an [M] array. Everything is
computed in float64 from `log_softmax`, so a confidently wrong prediction costs its
true NLL (no clipping of probabilities).

An ensemble averages probabilities, never logits: `ensemble(member_logits)` returns the
log of the members' mean probability, which every metric here accepts as logits.
"""

import numpy as np

JS_EPSILON = 1e-5  # the paper's entropy: -sum p log(p + 1e-5)


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def logsumexp(z: np.ndarray, axis: int, keepdims: bool = False) -> np.ndarray:
    """log(sum(exp(z))) along `axis`, shifted by the maximum (finite for any finite z;
    scipy's is ~4x slower on these small arrays, and this runs once per subset)."""
    top = np.max(z, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(divide="ignore"):  # log(0) = -inf where every term is -inf
        out = np.log(np.sum(np.exp(z - top), axis=axis, keepdims=True)) + top
    return out if keepdims else np.squeeze(out, axis=axis)


def log_softmax(logits: np.ndarray) -> np.ndarray:
    """Log-probabilities (float64) of `logits` over the last axis."""
    z = np.asarray(logits, np.float64)
    return z - logsumexp(z, axis=-1, keepdims=True)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Probabilities (float64) of `logits` over the last axis."""
    return np.exp(log_softmax(logits))


def ensemble(member_logits: np.ndarray) -> np.ndarray:
    """log(mean_m softmax(logits_m)) of M members [M, N, C]: the ensemble's
    log-probabilities (its probabilities are the members' average)."""
    return logsumexp(log_softmax(member_logits), axis=0) - np.log(len(member_logits))


def at_labels(values: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """values[..., n, labels[..., n]]: each example's value at its label ([..., N, C] ->
    [..., N]); `labels` [N] are every function's, [..., N] each function's own (e.g.
    its argmax classes)."""
    index = np.broadcast_to(labels.astype(np.int64)[..., None], values.shape[:-1] + (1,))
    return np.take_along_axis(values, index, axis=-1)[..., 0]


def correct(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per example: 1.0 where the argmax class is the label, else 0.0."""
    return (np.argmax(logits, axis=-1) == labels).astype(np.float64)


def example_nll(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per example: -log_softmax(logits)[label]."""
    return -at_labels(log_softmax(logits), labels)


def example_brier(logits: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Per example: sum_c (p_c - onehot_c)^2 (the paper's; not divided by C)."""
    probs = softmax(logits)
    return np.sum(probs ** 2, axis=-1) - 2 * at_labels(probs, labels) + 1


def accuracy(logits: np.ndarray, labels: np.ndarray):
    """Fraction of examples whose argmax class is the label."""
    return _scalar(np.mean(correct(logits, labels), axis=-1))


def nll(logits: np.ndarray, labels: np.ndarray):
    """Mean negative log-likelihood of the labels, -log_softmax(logits)[label]."""
    return _scalar(np.mean(example_nll(logits, labels), axis=-1))


def brier(logits: np.ndarray, labels: np.ndarray):
    """Mean over examples of `example_brier`."""
    return _scalar(np.mean(example_brier(logits, labels), axis=-1))


# per-example versions of the metrics that are means over examples
PER_EXAMPLE = {"accuracy": correct, "nll": example_nll, "brier": example_brier}


def example_scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """{name: `PER_EXAMPLE[name](logits, labels)`}, the probabilities computed once."""
    log_probs = log_softmax(logits)
    return probability_scores(np.exp(log_probs), at_labels(log_probs, labels), labels)[0]


def probability_scores(probs: np.ndarray, label_log_probs: np.ndarray, labels: np.ndarray
                       ) -> tuple[dict[str, np.ndarray], float | np.ndarray]:
    """({accuracy, nll, brier}: per example [..., N], ECE: one per function) of
    functions given by their probabilities [..., N, C] and their labels'
    log-probabilities [..., N] (taken apart, so that a label's NLL stays finite and
    exact where its probability underflows)."""
    confidence, correct = _confidence_and_correct(probs, labels)
    return {"accuracy": correct,
            "nll": -label_log_probs,
            "brier": np.sum(probs ** 2, axis=-1) - 2 * at_labels(probs, labels) + 1
            }, _calibration_error(confidence, correct)


def ece(logits: np.ndarray, labels: np.ndarray, num_bins: int = 15):
    """Expected calibration error: equal-width bins over the max probability,
    sum_b |B|/N * |accuracy(B) - confidence(B)|; empty bins contribute nothing.
    Bin b holds confidences in (b/num_bins, (b+1)/num_bins] (the first also 0)."""
    return _calibration_error(*_confidence_and_correct(softmax(logits), labels), num_bins)


def _confidence_and_correct(probs: np.ndarray, labels: np.ndarray
                            ) -> tuple[np.ndarray, np.ndarray]:
    """Per example [..., N]: the largest probability (read at the argmax, not found by
    a second pass over the classes) and 1.0 where the argmax class is the label."""
    predicted = np.argmax(probs, axis=-1)
    return at_labels(probs, predicted), (predicted == labels).astype(np.float64)


def _calibration_error(confidence: np.ndarray, correct: np.ndarray, num_bins: int = 15):
    """`ece` of the functions' confidences and correctness [..., N] (a float for one
    function; one per function otherwise, binned together with offsets: the same sums,
    in the same order, as one by one)."""
    inner_edges = np.linspace(0.0, 1.0, num_bins + 1)[1:-1]
    bins = np.searchsorted(inner_edges, confidence, side="left")  # (lo, hi] per bin
    functions = int(np.prod(bins.shape[:-1]))
    bins = bins + num_bins * np.arange(functions).reshape(bins.shape[:-1] + (1,))
    length = functions * num_bins
    gap = np.abs(np.bincount(bins.ravel(), correct.ravel(), length)
                 - np.bincount(bins.ravel(), confidence.ravel(), length))
    out = np.sum(gap.reshape(bins.shape[:-1] + (num_bins,)), axis=-1) / max(
        confidence.shape[-1], 1)
    return float(out) if np.ndim(out) == 0 else out


def disagreement(logits: np.ndarray, other: np.ndarray | None = None):
    """Fraction of examples on which the argmax labels differ.

    disagreement(p [N, C], q [N, C]) -> float; disagreement(P [M, N, C], q [N, C]) -> [M];
    disagreement(P [M, N, C]) -> the [M, M] matrix between all pairs.
    """
    if other is not None:
        return _scalar(np.mean(np.argmax(logits, -1) != np.argmax(other, -1), axis=-1))
    labels = np.argmax(logits, axis=-1)  # [M, N]
    return np.stack([np.mean(labels != row, axis=-1) for row in labels])


def normalized_diversity(logits: np.ndarray, base: np.ndarray, labels: np.ndarray):
    """Disagreement with a base function divided by the function's own error rate
    (the paper's diversity axis); NaN where the function makes no error."""
    d = np.asarray(disagreement(logits, base), np.float64)
    error = 1.0 - np.asarray(accuracy(logits, labels), np.float64)
    out = np.divide(d, error, out=np.full_like(d, np.nan), where=error > 0)
    return _scalar(out)


def entropy(probs: np.ndarray, epsilon: float = JS_EPSILON) -> np.ndarray:
    """Per-example entropy of probabilities, -sum_c p log(p + epsilon)."""
    return -np.sum(probs * np.log(probs + epsilon), axis=-1)


def mutual_information(logits: np.ndarray, epsilon: float = JS_EPSILON) -> np.ndarray:
    """Per-example [N] Jensen-Shannon divergence of M functions [M, N, C] with equal
    weights, H(mean_m p) - mean_m H(p): the mutual information between the label and
    the function drawn uniformly from them (entropies with log(p + 1e-5))."""
    probs = softmax(logits)
    return entropy(probs.mean(axis=0), epsilon) - entropy(probs, epsilon).mean(axis=0)


def js_divergence(logits: np.ndarray, epsilon: float = JS_EPSILON) -> float:
    """Jensen-Shannon divergence of M functions [M, N, C], averaged over examples (the
    paper's definition; `mutual_information` per example)."""
    return float(np.mean(mutual_information(logits, epsilon)))


def grouped_mutual_information(logits: np.ndarray, size: int) -> np.ndarray:
    """Per example [N]: the mean `mutual_information` of consecutive disjoint groups
    of `size` of the functions [M, N, C] (one group of all M when M < size; a
    remainder is left out)."""
    size = min(size, len(logits))
    return np.mean([mutual_information(logits[i:i + size])
                    for i in range(0, len(logits) - size + 1, size)], axis=0)


def grouped_js_divergence(logits: np.ndarray, size: int) -> float:
    """Mean JS divergence of groups of `size` of the functions
    (`grouped_mutual_information`, averaged over examples). JS grows with the number of
    functions, so sets are compared at one size: a method's S samples in groups as
    large as the set of independent runs."""
    return float(np.mean(grouped_mutual_information(logits, size)))


def cosine_similarity(vectors: np.ndarray, other: np.ndarray | None = None):
    """a.b / (|a||b|) of flat weight vectors: a float for two vectors, the [M, M]
    matrix for [M, D]. A zero vector has cosine 0 with everything."""
    if other is not None:
        return float(cosine_similarity(np.stack([vectors, other]))[0, 1])
    v = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(v, axis=1)
    unit = np.divide(v, norms[:, None], out=np.zeros_like(v), where=norms[:, None] > 0)
    return np.clip(unit @ unit.T, -1.0, 1.0)
