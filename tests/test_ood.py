"""OOD-detection scores and metrics against hand-worked cases, scipy and scikit-learn
computations written out here."""

import itertools

import numpy as np
import pytest
from scipy import special, stats
from sklearn import metrics as sk

from uncertainty.core import ensemble, metrics, ood


def two_class_logits(p):
    """Two-class logits whose maximum probability is p (> 0.5)."""
    return np.log(np.stack([p, 1 - p], axis=1))


def test_hand_worked_auroc_of_the_maximum_probability():
    # in-distribution max-probs 0.9, 0.6 vs outside 0.7, 0.55: 3 of 4 pairs ordered
    found = ood.evaluate(two_class_logits(np.array([0.9, 0.6])),
                         two_class_logits(np.array([0.7, 0.55])))
    assert found["max_probability"]["ood/auroc"] == pytest.approx(0.75)
    assert set(found) == {"max_probability", "entropy"}  # one model: no MI


def test_hand_worked_fpr_at_95_tpr():
    inside = np.arange(100) / 100.0  # 95% of them are <= 0.94
    outside = np.array([0.5, 0.94, 0.95, 2.0])  # two are taken for in-distribution
    assert ood.detection(inside, outside)["ood/fpr_at_95_tpr"] == 0.5


def test_metrics_against_scikit_learn_on_random_scores():
    rng = np.random.default_rng(0)
    inside, outside = rng.normal(0, 1, 700), rng.normal(1.2, 1.5, 300)
    found = ood.detection(inside, outside)
    truth = np.r_[np.ones(700), np.zeros(300)]  # in-distribution as positive
    confidence = -np.r_[inside, outside]
    assert found["ood/auroc"] == pytest.approx(sk.roc_auc_score(truth, confidence))
    assert found["ood/auprc_in"] == pytest.approx(
        sk.average_precision_score(truth, confidence))
    assert found["ood/auprc_out"] == pytest.approx(
        sk.average_precision_score(1 - truth, -confidence))
    fpr, tpr, _ = sk.roc_curve(truth, confidence)
    assert found["ood/fpr_at_95_tpr"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])


def test_scores_against_scipy():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (4, 50, 6))
    found = ood.scores(logits)
    members = special.softmax(logits, axis=-1)
    mean = members.mean(axis=0)
    np.testing.assert_allclose(found["max_probability"], 1 - mean.max(-1), rtol=1e-10)
    # the entropies with the paper's log(p + 1e-5)
    np.testing.assert_allclose(found["entropy"], stats.entropy(mean, axis=-1), atol=1e-3)
    mi = stats.entropy(mean, axis=-1) - stats.entropy(members, axis=-1).mean(axis=0)
    np.testing.assert_allclose(found["mutual_information"], mi, atol=1e-3)


def test_mutual_information_is_non_negative_and_the_paper_js_divergence():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 4, (5, 200, 10))
    mi = ood.scores(logits)["mutual_information"]
    assert mi.min() >= 0
    assert np.mean(mi) == pytest.approx(metrics.js_divergence(logits), rel=1e-12)
    same = np.repeat(logits[:1], 3, axis=0)  # identical functions do not disagree
    np.testing.assert_allclose(ood.scores(same)["mutual_information"], 0, atol=1e-12)


def test_disagreeing_functions_separate_what_they_disagree_on():
    rng = np.random.default_rng(3)
    agree = np.repeat(rng.normal(0, 2, (1, 300, 10)), 4, axis=0)  # in-distribution
    disagree = rng.normal(0, 2, (4, 300, 10))  # out: each function its own guess
    found = ood.evaluate(agree, disagree)
    assert found["mutual_information"]["ood/auroc"] > 0.99


def test_ensembles_by_size_against_a_brute_force_loop():
    rng = np.random.default_rng(4)
    inside, outside = rng.normal(0, 3, (3, 80, 5)), rng.normal(0, 1, (3, 60, 5))
    table = ensemble.ood_by_size(inside, outside)
    for k in (1, 2, 3):
        aurocs, mis = [], []
        for subset in itertools.combinations(range(3), k):
            p_in = special.softmax(inside[list(subset)], -1).mean(0)
            p_out = special.softmax(outside[list(subset)], -1).mean(0)
            confidence = np.r_[p_in.max(-1), p_out.max(-1)]
            aurocs.append(sk.roc_auc_score(np.r_[np.ones(80), np.zeros(60)], confidence))
            if k > 1:
                mi = [stats.entropy(p, axis=-1) - stats.entropy(
                    special.softmax(z[list(subset)], -1), axis=-1).mean(0)
                    for p, z in ((p_in, inside), (p_out, outside))]
                mis.append(sk.roc_auc_score(np.r_[np.zeros(80), np.ones(60)],
                                            np.r_[mi[0], mi[1]]))
        assert table[k]["ood/auroc_max_probability"] == pytest.approx(np.mean(aurocs))
        if k > 1:
            assert table[k]["ood/auroc_mutual_information"] == pytest.approx(
                np.mean(mis), abs=2e-3)  # the paper's log(p + 1e-5) vs exact logs
        else:
            assert "ood/auroc_mutual_information" not in table[k]
