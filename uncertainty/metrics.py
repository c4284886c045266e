"""Metrics over predicted probabilities and weight vectors: plain, vectorised numpy.

`probs` is [N, C] (rows sum to 1) for one function or [M, N, C] for M functions;
`labels` is [N] of integer classes. Functions of one `probs` accept both shapes and
return a float or an [M] array. Nothing takes log(0) or divides by zero.
"""

import numpy as np

_TINY = np.finfo(np.float32).tiny  # log(0) guard for probabilities that underflowed
JS_EPSILON = 1e-5  # the paper's entropy: -sum p log(p + 1e-5)


def _scalar(x):
    return float(x) if np.ndim(x) == 0 else x


def _label_probs(probs: np.ndarray, labels: np.ndarray) -> np.ndarray:
    index = np.broadcast_to(labels.astype(np.int64)[:, None], probs.shape[:-1] + (1,))
    return np.take_along_axis(probs, index, axis=-1)[..., 0]


def accuracy(probs: np.ndarray, labels: np.ndarray):
    """Fraction of examples whose argmax class is the label."""
    return _scalar(np.mean(np.argmax(probs, axis=-1) == labels, axis=-1))


def nll(probs: np.ndarray, labels: np.ndarray):
    """Mean negative log-likelihood of the labels."""
    return _scalar(-np.mean(np.log(np.maximum(_label_probs(probs, labels), _TINY)), axis=-1))


def brier(probs: np.ndarray, labels: np.ndarray):
    """Mean over examples of sum_c (p_c - onehot_c)^2 (the paper's; not divided by C)."""
    squares = np.sum(probs ** 2, axis=-1) - 2 * _label_probs(probs, labels) + 1
    return _scalar(np.mean(squares, axis=-1))


def ece(probs: np.ndarray, labels: np.ndarray, num_bins: int = 15):
    """Expected calibration error: equal-width bins over the max probability,
    sum_b |B|/N * |accuracy(B) - confidence(B)|; empty bins contribute nothing.
    Bin b holds confidences in (b/num_bins, (b+1)/num_bins] (the first also 0)."""
    if probs.ndim == 3:
        return np.array([ece(p, labels, num_bins) for p in probs])
    confidence = np.max(probs, axis=-1)
    correct = (np.argmax(probs, axis=-1) == labels).astype(np.float64)
    inner_edges = np.linspace(0.0, 1.0, num_bins + 1)[1:-1]
    bins = np.searchsorted(inner_edges, confidence, side="left")  # (lo, hi] per bin
    gap = np.abs(np.bincount(bins, correct, num_bins) - np.bincount(bins, confidence, num_bins))
    return float(np.sum(gap) / max(len(labels), 1))


def _one_hot_argmax(probs: np.ndarray) -> np.ndarray:
    return np.eye(probs.shape[-1], dtype=np.float32)[np.argmax(probs, axis=-1)]


def disagreement(probs: np.ndarray, other: np.ndarray | None = None):
    """Fraction of examples on which the argmax labels differ.

    disagreement(p [N, C], q [N, C]) -> float; disagreement(P [M, N, C], q [N, C]) -> [M];
    disagreement(P [M, N, C]) -> the [M, M] matrix between all pairs.
    """
    if other is not None:
        return _scalar(np.mean(np.argmax(probs, -1) != np.argmax(other, -1), axis=-1))
    onehot = _one_hot_argmax(probs).reshape(len(probs), -1)  # [M, N * C]
    agree = onehot.astype(np.float64) @ onehot.T.astype(np.float64)
    return 1.0 - agree / probs.shape[1]


def normalized_diversity(probs: np.ndarray, base: np.ndarray, labels: np.ndarray):
    """Disagreement with a base function divided by the function's own error rate
    (the paper's diversity axis); NaN where the function makes no error."""
    d = np.asarray(disagreement(probs, base), np.float64)
    error = 1.0 - np.asarray(accuracy(probs, labels), np.float64)
    out = np.divide(d, error, out=np.full_like(d, np.nan), where=error > 0)
    return _scalar(out)


def entropy(probs: np.ndarray, epsilon: float = JS_EPSILON) -> np.ndarray:
    """Per-example entropy -sum_c p log(p + epsilon)."""
    return -np.sum(probs * np.log(probs + epsilon), axis=-1)


def js_divergence(probs: np.ndarray) -> float:
    """Jensen-Shannon divergence of M functions [M, N, C]: H(mean_m p) - mean_m H(p),
    averaged over examples (the paper's definition, entropies with log(p + 1e-5))."""
    return float(np.mean(entropy(np.mean(probs, axis=0)) - np.mean(entropy(probs), axis=0)))


def kl_divergence(p: np.ndarray, q: np.ndarray) -> float:
    """Mean over examples of KL(p || q) = sum_c p log(p / q); 0 log 0 = 0."""
    ratio = np.log(np.maximum(p, _TINY)) - np.log(np.maximum(q, _TINY))
    return float(np.mean(np.sum(np.where(p > 0, p * ratio, 0.0), axis=-1)))


def ensemble_nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """NLL of the ensemble's mean probability over M functions [M, N, C]."""
    return nll(np.mean(probs, axis=0), labels)


def cosine_similarity(vectors: np.ndarray, other: np.ndarray | None = None):
    """a.b / (|a||b|) of flat weight vectors: a float for two vectors, the [M, M]
    matrix for [M, D]. A zero vector has cosine 0 with everything."""
    if other is not None:
        return float(cosine_similarity(np.stack([vectors, other]))[0, 1])
    v = np.asarray(vectors, np.float64)
    norms = np.linalg.norm(v, axis=1)
    unit = np.divide(v, norms[:, None], out=np.zeros_like(v), where=norms[:, None] > 0)
    return np.clip(unit @ unit.T, -1.0, 1.0)
