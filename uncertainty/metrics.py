"""Metrics over predicted probabilities: plain, vectorised numpy.

`probs` is [N, C] (rows sum to 1) and `labels` is [N] of integer classes.
"""

import numpy as np

_TINY = np.finfo(np.float32).tiny  # log(0) guard for probabilities that underflowed


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    """Fraction of examples whose argmax class is the label."""
    return float(np.mean(np.argmax(probs, axis=-1) == labels))


def nll(probs: np.ndarray, labels: np.ndarray) -> float:
    """Mean negative log-likelihood of the labels."""
    picked = np.take_along_axis(probs, labels[:, None].astype(np.int64), axis=-1)[:, 0]
    return float(-np.mean(np.log(np.maximum(picked, _TINY))))
