"""Metrics against scikit-learn, scipy, brute-force loops and hand-worked cases."""

import itertools

import numpy as np
import pytest
from scipy.spatial.distance import cosine as scipy_cosine_distance
from scipy.stats import entropy as scipy_kl
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from uncertainty import metrics


@pytest.fixture
def sample():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(7, 0.3), size=(4, 300))  # 4 functions, 300 examples
    labels = rng.integers(0, 7, 300)
    return probs, labels


def test_accuracy_nll_brier_match_sklearn(sample):
    probs, labels = sample
    for p in probs:
        assert np.isclose(metrics.accuracy(p, labels), accuracy_score(labels, p.argmax(-1)))
        assert np.isclose(metrics.nll(p, labels), log_loss(labels, p, labels=range(7)))
        assert np.isclose(metrics.brier(p, labels),
                          brier_score_loss(labels, p, labels=list(range(7))))
    # [M, N, C] gives one value per function.
    np.testing.assert_allclose(metrics.nll(probs, labels),
                               [metrics.nll(p, labels) for p in probs])
    np.testing.assert_allclose(metrics.brier(probs, labels),
                               [metrics.brier(p, labels) for p in probs])


def test_hand_worked_values():
    probs = np.array([[0.5, 0.5, 0.0], [0.25, 0.75, 0.0], [0.0, 0.0, 1.0]])
    labels = np.array([0, 1, 2])
    assert np.isclose(metrics.nll(probs, labels), -(np.log(0.5) + np.log(0.75) + 0) / 3)
    # Brier: (0.25 + 0.25), (0.0625 + 0.0625), 0 -> mean 0.625 / 3.
    assert np.isclose(metrics.brier(probs, labels), (0.5 + 0.125 + 0.0) / 3)
    # argmax ties go to the first class, as numpy's argmax: all three correct.
    assert metrics.accuracy(probs, labels) == 1.0


def test_exact_zeros_and_a_single_class_are_finite():
    probs = np.array([[1.0, 0.0], [1.0, 0.0]])
    labels = np.array([1, 1])  # one class present, predicted with probability 0
    assert np.isfinite(metrics.nll(probs, labels)) and metrics.nll(probs, labels) > 80
    assert metrics.brier(probs, labels) == 2.0
    assert metrics.ece(probs, labels) == 1.0
    assert np.isfinite(metrics.kl_divergence(probs, probs[:, ::-1]))
    assert metrics.kl_divergence(probs, probs) == 0.0


def brute_force_ece(probs, labels, bins):
    total = 0.0
    for b in range(bins):
        lo, hi = b / bins, (b + 1) / bins
        members = [i for i, p in enumerate(probs)
                   if (lo < p.max() <= hi) or (b == 0 and p.max() == 0)]
        if members:
            acc = np.mean([probs[i].argmax() == labels[i] for i in members])
            conf = np.mean([probs[i].max() for i in members])
            total += len(members) / len(probs) * abs(acc - conf)
    return total


@pytest.mark.parametrize("bins", [15, 10, 3])
def test_ece_matches_brute_force(sample, bins):
    probs, labels = sample
    for p in probs:
        assert np.isclose(metrics.ece(p, labels, bins), brute_force_ece(p, labels, bins))


def test_ece_boundary_confidence_falls_in_the_lower_bin():
    # 0.6 belongs to (0.5, 0.6], even though 0.6 * 10 is 6.000...01 in floating point.
    probs = np.array([[0.6, 0.4], [0.55, 0.45]])
    labels = np.array([0, 1])
    # One bin holding both: accuracy 0.5, confidence 0.575 -> ECE 0.075.
    assert np.isclose(metrics.ece(probs, labels, 10), 0.075)


def test_ece_with_empty_bins_hand_worked():
    # Confidences 0.9 (right) and 0.6 (wrong): bins of 0.9 and 0.6 only, others empty.
    probs = np.array([[0.9, 0.1], [0.4, 0.6]])
    labels = np.array([0, 0])
    assert np.isclose(metrics.ece(probs, labels, 10), 0.5 * 0.1 + 0.5 * 0.6)


def test_disagreement_matrix_vector_and_pair(sample):
    probs, _ = sample
    matrix = metrics.disagreement(probs)
    for i, j in itertools.product(range(4), repeat=2):
        brute = np.mean([probs[i, n].argmax() != probs[j, n].argmax() for n in range(300)])
        assert np.isclose(matrix[i, j], brute)
        assert np.isclose(metrics.disagreement(probs[i], probs[j]), brute)
    np.testing.assert_allclose(metrics.disagreement(probs, probs[0]), matrix[:, 0])


def test_normalized_diversity(sample):
    probs, labels = sample
    for p in probs:
        d = np.mean(p.argmax(-1) != probs[0].argmax(-1))
        err = 1 - np.mean(p.argmax(-1) == labels)
        assert np.isclose(metrics.normalized_diversity(p, probs[0], labels), d / err)
    perfect = np.eye(3)[[0, 1, 2]]
    assert np.isnan(metrics.normalized_diversity(perfect, perfect, np.array([0, 1, 2])))


def test_js_divergence_brute_force_and_identical_functions(sample):
    probs, _ = sample

    def h(p):
        return -sum(pc * np.log(pc + 1e-5) for pc in p)

    brute = np.mean([h(probs[:, n].mean(0)) - np.mean([h(probs[m, n]) for m in range(4)])
                     for n in range(300)])
    assert np.isclose(metrics.js_divergence(probs), brute)
    assert abs(metrics.js_divergence(np.stack([probs[0]] * 3))) < 1e-12
    # Two confident functions that disagree: JS = log 2 (up to the 1e-5 smoothing).
    assert np.isclose(metrics.js_divergence(np.array([[[1.0, 0.0]], [[0.0, 1.0]]])),
                      np.log(2), atol=1e-4)


def test_kl_and_ensemble_nll(sample):
    probs, labels = sample
    expected = np.mean([scipy_kl(probs[0, n], probs[1, n]) for n in range(300)])
    assert np.isclose(metrics.kl_divergence(probs[0], probs[1]), expected)
    assert np.isclose(metrics.ensemble_nll(probs, labels),
                      log_loss(labels, probs.mean(0), labels=range(7)))


def test_cosine_similarity_against_scipy():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(5, 50))
    matrix = metrics.cosine_similarity(vectors)
    for i, j in itertools.product(range(5), repeat=2):
        assert np.isclose(matrix[i, j], 1 - scipy_cosine_distance(vectors[i], vectors[j]))
    assert np.isclose(metrics.cosine_similarity(vectors[0], -2 * vectors[0]), -1.0)
    with_zero = metrics.cosine_similarity(np.stack([np.zeros(50), vectors[0]]))
    assert np.all(np.isfinite(with_zero)) and with_zero[0, 1] == 0.0
