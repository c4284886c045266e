"""Metrics against scikit-learn and hand-worked values."""

import numpy as np
from sklearn.metrics import accuracy_score, log_loss

from uncertainty import metrics


def test_accuracy_and_nll_match_sklearn():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(200, 7))
    probs = np.exp(logits) / np.exp(logits).sum(-1, keepdims=True)
    labels = rng.integers(0, 7, 200)
    assert np.isclose(metrics.accuracy(probs, labels),
                      accuracy_score(labels, probs.argmax(-1)))
    assert np.isclose(metrics.nll(probs, labels), log_loss(labels, probs, labels=range(7)))


def test_nll_hand_worked_and_zero_probability_is_finite():
    probs = np.array([[0.5, 0.5], [0.25, 0.75]])
    assert np.isclose(metrics.nll(probs, np.array([0, 1])),
                      -(np.log(0.5) + np.log(0.75)) / 2)
    value = metrics.nll(np.array([[1.0, 0.0]]), np.array([1]))
    assert np.isfinite(value) and value > 80  # -log(float32 tiny) ~ 87.3
