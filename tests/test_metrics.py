"""Metrics against oracles that share no code with them: scikit-learn, scipy, TFP,
brute-force loops and hand-worked cases."""

import itertools

import numpy as np
import pytest
import tensorflow_probability as tfp
from scipy.spatial.distance import cosine as scipy_cosine_distance
from scipy.spatial.distance import jensenshannon
from scipy.special import softmax as scipy_softmax
from scipy.stats import entropy as scipy_entropy
from sklearn.metrics import accuracy_score, brier_score_loss, log_loss

from uncertainty.core import metrics


@pytest.fixture
def sample():
    """Logits of 4 functions on 300 examples of 7 classes, their probabilities computed
    by scipy, and labels."""
    rng = np.random.default_rng(0)
    logits = rng.normal(0, 2.5, size=(4, 300, 7))
    return logits, scipy_softmax(logits, axis=-1), rng.integers(0, 7, 300)


def test_accuracy_nll_brier_match_sklearn(sample):
    logits, probs, labels = sample
    for z, p in zip(logits, probs):
        assert np.isclose(metrics.accuracy(z, labels), accuracy_score(labels, p.argmax(-1)))
        assert np.isclose(metrics.nll(z, labels), log_loss(labels, p, labels=range(7)))
        # sklearn's multiclass Brier divides by nothing either: sum over classes.
        assert np.isclose(metrics.brier(z, labels),
                          brier_score_loss(labels, p, labels=list(range(7))))
    # [M, N, C] gives one value per function.
    np.testing.assert_allclose(metrics.nll(logits, labels),
                               [log_loss(labels, p, labels=range(7)) for p in probs])


def test_hand_worked_values():
    # log-probabilities are logits: these rows are log(0.5, 0.5, ~0), log(0.25, 0.75, ~0).
    logits = np.log(np.array([[0.5, 0.5, 1e-300], [0.25, 0.75, 1e-300]]))
    labels = np.array([0, 1])
    assert np.isclose(metrics.nll(logits, labels), -(np.log(0.5) + np.log(0.75)) / 2)
    # Brier: (0.25 + 0.25), (0.0625 + 0.0625) -> mean (0.5 + 0.125) / 2.
    assert np.isclose(metrics.brier(logits, labels), (0.5 + 0.125) / 2)
    # argmax ties go to the first class, as numpy's argmax: both correct.
    assert metrics.accuracy(logits, labels) == 1.0


def test_a_confidently_wrong_prediction_costs_its_true_nll():
    """Logits (0, 200): the label-0 probability is e^-200 / (1 + e^-200), NLL 200 (plus
    log(1 + e^-200)); float32 probabilities would saturate near 87.3."""
    logits = np.array([[0.0, 200.0]], np.float32)
    assert metrics.nll(logits, np.array([0])) == pytest.approx(200.0, abs=1e-9)
    assert metrics.nll(logits, np.array([1])) == pytest.approx(0.0, abs=1e-12)
    # An ensemble of that function and a sure-right one: -log(mean p) = log 2 - log(1+..)
    members = np.array([[[0.0, 200.0]], [[200.0, 0.0]]])
    assert metrics.nll(metrics.ensemble(members), np.array([0])) == pytest.approx(
        np.log(2.0))


def test_ensembles_average_probabilities_not_logits(sample):
    logits, probs, labels = sample
    averaged = probs.mean(axis=0)
    np.testing.assert_allclose(np.exp(metrics.ensemble(logits)), averaged, rtol=1e-12)
    assert np.isclose(metrics.nll(metrics.ensemble(logits), labels),
                      log_loss(labels, averaged, labels=range(7)))
    assert np.isclose(metrics.accuracy(metrics.ensemble(logits), labels),
                      accuracy_score(labels, averaged.argmax(-1)))


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
def test_ece_matches_brute_force_and_tfp(sample, bins):
    logits, probs, labels = sample
    for z, p in zip(logits, probs):
        ours = metrics.ece(z, labels, bins)
        assert np.isclose(ours, brute_force_ece(p, labels, bins))
        reference = tfp.stats.expected_calibration_error(
            bins, logits=z.astype(np.float32), labels_true=labels.astype(np.int32))
        assert np.isclose(ours, float(reference), atol=1e-5)  # TFP works in float32


def test_ece_boundary_confidence_falls_in_the_lower_bin():
    # 0.6 belongs to (0.5, 0.6], even though 0.6 * 10 is 6.000...01 in floating point.
    logits = np.log(np.array([[0.6, 0.4], [0.55, 0.45]]))
    labels = np.array([0, 1])
    # One bin holding both: accuracy 0.5, confidence 0.575 -> ECE 0.075.
    assert np.isclose(metrics.ece(logits, labels, 10), 0.075)


def test_ece_with_empty_bins_hand_worked():
    # Confidences 0.9 (right) and 0.6 (wrong): bins of 0.9 and 0.6 only, others empty.
    logits = np.log(np.array([[0.9, 0.1], [0.4, 0.6]]))
    labels = np.array([0, 0])
    assert np.isclose(metrics.ece(logits, labels, 10), 0.5 * 0.1 + 0.5 * 0.6)


def test_disagreement_matrix_vector_and_pair(sample):
    logits, _, _ = sample
    matrix = metrics.disagreement(logits)
    for i, j in itertools.product(range(4), repeat=2):
        brute = np.mean([logits[i, n].argmax() != logits[j, n].argmax() for n in range(300)])
        assert np.isclose(matrix[i, j], brute)
        assert np.isclose(metrics.disagreement(logits[i], logits[j]), brute)
    np.testing.assert_allclose(metrics.disagreement(logits, logits[0]), matrix[:, 0])


def test_normalized_diversity(sample):
    logits, _, labels = sample
    for z in logits:
        d = np.mean(z.argmax(-1) != logits[0].argmax(-1))
        err = 1 - np.mean(z.argmax(-1) == labels)
        assert np.isclose(metrics.normalized_diversity(z, logits[0], labels), d / err)
    perfect = np.eye(3)[[0, 1, 2]]
    assert np.isnan(metrics.normalized_diversity(perfect, perfect, np.array([0, 1, 2])))


def test_js_divergence_against_scipy(sample):
    logits, probs, _ = sample
    # Without smoothing, the JS divergence of two functions is scipy's Jensen-Shannon
    # distance squared (natural log), averaged over examples.
    two = np.mean([jensenshannon(probs[0, n], probs[1, n]) ** 2 for n in range(300)])
    assert np.isclose(metrics.js_divergence(logits[:2], epsilon=0.0), two)
    # With the paper's smoothing, against scipy entropies of each example.
    def h(p):
        return scipy_entropy(p) - np.sum(p * (np.log(p + 1e-5) - np.log(p)))

    brute = np.mean([h(probs[:, n].mean(0)) - np.mean([h(probs[m, n]) for m in range(4)])
                     for n in range(300)])
    assert np.isclose(metrics.js_divergence(logits), brute)
    assert abs(metrics.js_divergence(np.stack([logits[0]] * 3))) < 1e-12
    # Two confident functions that disagree: JS = log 2 (up to the 1e-5 smoothing).
    assert np.isclose(metrics.js_divergence(np.array([[[50.0, 0.0]], [[0.0, 50.0]]])),
                      np.log(2), atol=1e-4)


def test_grouped_js_divergence_compares_sets_of_one_size(sample):
    logits, probs, _ = sample  # 4 functions

    def scipy_js(members):  # no smoothing: scipy's generalised JS via entropies
        return np.mean([scipy_entropy(probs[members, n].mean(0))
                        - np.mean([scipy_entropy(probs[m, n]) for m in members])
                        for n in range(300)])

    assert np.isclose(metrics.grouped_js_divergence(logits, 2),
                      np.mean([metrics.js_divergence(logits[:2]),
                               metrics.js_divergence(logits[2:])]))
    assert np.isclose(metrics.grouped_js_divergence(logits[:3], 2),
                      metrics.js_divergence(logits[:2]))  # the remainder is left out
    assert metrics.grouped_js_divergence(logits, 9) == metrics.js_divergence(logits)
    assert np.isclose(metrics.js_divergence(logits[2:], epsilon=0.0), scipy_js([2, 3]))
    # why groups: the same kind of functions give a larger JS in larger sets
    assert metrics.js_divergence(logits) > metrics.grouped_js_divergence(logits, 2)


def test_cosine_similarity_against_scipy():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(5, 50))
    matrix = metrics.cosine_similarity(vectors)
    for i, j in itertools.product(range(5), repeat=2):
        assert np.isclose(matrix[i, j], 1 - scipy_cosine_distance(vectors[i], vectors[j]))
    assert np.isclose(metrics.cosine_similarity(vectors[0], -2 * vectors[0]), -1.0)
    with_zero = metrics.cosine_similarity(np.stack([np.zeros(50), vectors[0]]))
    assert np.all(np.isfinite(with_zero)) and with_zero[0, 1] == 0.0


def test_metric_names_cover_what_every_set_reports():
    from uncertainty.core import ensemble, names

    assert names.METRICS == (*ensemble.METRICS, "js_divergence")
