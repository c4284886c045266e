"""OOD-detection scores and metrics against hand-worked cases, scipy and scikit-learn
computations written out here, and uncertainty-baselines' metrics against tf.keras's
AUC and SpecificityAtSensitivity on the same scores."""

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
                         two_class_logits(np.array([0.7, 0.55])), "other")
    assert found["ood/other_auroc"] == pytest.approx(0.75, abs=1e-4)  # UB's (bucketed)
    assert found["ood/other_max_probability_auroc"] == pytest.approx(0.75)  # exact
    assert not any("mutual_information" in key for key in found)  # one model: no MI


def test_hand_worked_uncertainty_baselines_metrics():
    """Scores (1 - max probability) 0.1, 0.2, 0.3, 0.6 in distribution and 0.4, 0.5,
    0.7, 0.8 out of it (out = positive). ROC: the out-of-distribution example ranks
    above 3, 3, 4, 4 of the 4 in-distribution ones: AUROC 14/16. Flagging >= 95% of
    the out-of-distribution examples needs a threshold below 0.4, which also flags
    0.6: specificity 3/4."""
    inside, outside = np.array([0.1, 0.2, 0.3, 0.6]), np.array([0.4, 0.5, 0.7, 0.8])
    found = ood.ub_detection(inside, outside)
    assert found["auroc"] == pytest.approx(14 / 16, abs=1e-4)
    assert found["(1-fpr)@95tpr"] == pytest.approx(3 / 4)
    # precision at the recall steps: 1/1, 2/2, 3/4, 4/5; interpolated as Keras does
    assert 0.85 < found["auprc"] < 0.95
    with pytest.raises(ValueError, match=r"scores in \[0, 1\]"):
        ood.ub_detection(np.array([1.5]), outside)


@pytest.mark.parametrize("rounding", [None, 2])
def test_uncertainty_baselines_metrics_equal_tf_keras(rounding):
    """UB's keys are tf.keras's AUC(ROC), AUC(PR) and SpecificityAtSensitivity(0.95),
    100,000 thresholds, out-of-distribution examples labelled 1 (ties included)."""
    import tf_keras as keras

    rng = np.random.default_rng(5)
    inside, outside = rng.beta(2, 5, 3000), rng.beta(3, 3, 2000)
    if rounding:
        inside, outside = np.round(inside, rounding), np.round(outside, rounding)
    found = ood.ub_detection(inside, outside)
    labels = np.r_[np.zeros(len(inside)), np.ones(len(outside))]
    scores = np.r_[inside, outside].astype(np.float32)
    for key, metric in (("auroc", keras.metrics.AUC(curve="ROC", num_thresholds=100000)),
                        ("auprc", keras.metrics.AUC(curve="PR", num_thresholds=100000)),
                        ("(1-fpr)@95tpr", keras.metrics.SpecificityAtSensitivity(
                            0.95, num_thresholds=100000))):
        metric.update_state(labels, scores)
        assert found[key] == pytest.approx(float(metric.result()), abs=1e-5), key


def test_hendrycks_fpr_at_95_in_recall_is_not_ubs_specificity():
    inside = np.arange(100) / 100.0  # 95% of them are <= 0.94
    outside = np.array([0.5, 0.94, 0.95, 2.0])  # two are taken for in-distribution
    assert ood.detection(inside, outside)["fpr_at_95_in_recall"] == 0.5


def test_metrics_against_scikit_learn_on_random_scores():
    rng = np.random.default_rng(0)
    inside, outside = rng.normal(0, 1, 700), rng.normal(1.2, 1.5, 300)
    found = ood.detection(inside, outside)
    truth = np.r_[np.ones(700), np.zeros(300)]  # in-distribution as positive
    confidence = -np.r_[inside, outside]
    assert found["auroc"] == pytest.approx(sk.roc_auc_score(truth, confidence))
    assert found["auprc_in"] == pytest.approx(sk.average_precision_score(truth, confidence))
    assert found["auprc_out"] == pytest.approx(
        sk.average_precision_score(1 - truth, -confidence))
    fpr, tpr, _ = sk.roc_curve(truth, confidence)
    assert found["fpr_at_95_in_recall"] == pytest.approx(fpr[np.argmax(tpr >= 0.95)])


@pytest.mark.parametrize("seed", range(5))
def test_metrics_against_scikit_learn_with_many_ties(seed):
    rng = np.random.default_rng(seed)  # scores on a coarse grid: most are tied
    inside = rng.integers(0, 6, 200) / 5.0
    outside = rng.integers(2, 9, 90) / 8.0
    found = ood.detection(inside, outside)
    is_out = np.r_[np.zeros(200), np.ones(90)]
    values = np.r_[inside, outside]
    assert found["auroc"] == pytest.approx(sk.roc_auc_score(is_out, values), abs=1e-12)
    assert found["auprc_out"] == pytest.approx(
        sk.average_precision_score(is_out, values), abs=1e-12)
    assert found["auprc_in"] == pytest.approx(
        sk.average_precision_score(1 - is_out, -values), abs=1e-12)


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
    found = ood.evaluate(agree, disagree, "other")
    assert found["ood/other_mutual_information_auroc"] > 0.99


def test_ensembles_by_size_against_a_brute_force_loop():
    rng = np.random.default_rng(4)
    inside, outside = rng.normal(0, 3, (3, 80, 5)), rng.normal(0, 1, (3, 60, 5))
    table = ensemble.ood_by_size(inside, outside, "other")
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
        assert table[k]["ood/other_max_probability_auroc"] == pytest.approx(np.mean(aurocs))
        assert table[k]["ood/other_auroc"] == pytest.approx(np.mean(aurocs), abs=1e-4)
        if k > 1:
            assert table[k]["ood/other_mutual_information_auroc"] == pytest.approx(
                np.mean(mis), abs=2e-3)  # the paper's log(p + 1e-5) vs exact logs
        else:
            assert "ood/other_mutual_information_auroc" not in table[k]
