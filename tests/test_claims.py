"""The claims' statistics and rules: bootstrap intervals against known answers, the
per-example values behind them against the scored tables, the whole-trajectory
comparison against numpy, and each rule's three verdicts on hand-built results."""

import numpy as np
import pytest
from scipy import stats

from uncertainty.analyses import similarity
from uncertainty.core import ensemble, intervals, metrics
from uncertainty.study import claims


def test_interval_of_a_bernoulli_mean_matches_the_binomial_interval():
    draws = np.random.default_rng(0).random(2000) < 0.3
    found = intervals.mean(draws.astype(float), "bernoulli")
    exact = stats.binomtest(int(draws.sum()), len(draws)).proportion_ci(0.95, "wilson")
    assert found["value"] == pytest.approx(draws.mean())
    assert found["interval"][0] == pytest.approx(exact.low, abs=0.004)
    assert found["interval"][1] == pytest.approx(exact.high, abs=0.004)


def test_paired_difference_is_narrower_than_unpaired_and_verdicts_follow_the_sign():
    rng = np.random.default_rng(1)
    shared = rng.normal(size=3000)
    a, b = shared + 0.05 + 0.1 * rng.normal(size=3000), shared + 0.1 * rng.normal(size=3000)
    paired = intervals.difference(a, b, "paired")
    apart = intervals.difference(a, b, "apart", paired=False)
    # the paired interval against the t interval of the differences
    t = stats.ttest_1samp(a - b, 0).confidence_interval(0.95)
    assert paired["interval"] == pytest.approx([t.low, t.high], abs=0.003)
    assert np.diff(apart["interval"])[0] > 5 * np.diff(paired["interval"])[0]
    assert intervals.verdict(paired["interval"]) == intervals.HOLDS
    assert intervals.verdict(paired["interval"], direction=-1) == intervals.DOES_NOT_HOLD
    assert intervals.verdict(apart["interval"]) == intervals.INCONCLUSIVE
    assert intervals.verdict(None) == intervals.INCONCLUSIVE


def test_runs_are_resampled_from_three_and_a_quantity_without_examples_needs_them():
    per_run = np.array([[0.9, 0.8], [0.5, 0.4], [0.1, 0.2]])  # [runs, epochs]
    three = intervals.mean(per_run, "runs", examples=False)
    assert three["interval"][0] < 0.3 and three["interval"][1] > 0.7  # runs vary
    assert intervals.mean(per_run[:2], "two", examples=False)["interval"] is None
    assert intervals.combine([intervals.HOLDS, intervals.HOLDS]) == intervals.HOLDS
    assert intervals.combine([intervals.HOLDS, intervals.INCONCLUSIVE]) == \
        intervals.INCONCLUSIVE
    assert intervals.combine([intervals.INCONCLUSIVE, intervals.DOES_NOT_HOLD]) == \
        intervals.DOES_NOT_HOLD
    assert intervals.combine([]) == intervals.NOT_RUN


def test_per_example_values_average_to_the_scored_tables():
    rng = np.random.default_rng(2)
    labels = rng.integers(0, 4, 300)
    independent, trajectory = rng.normal(size=(3, 300, 4)), rng.normal(size=(3, 300, 4))
    samples = {"random": [rng.normal(size=(4, 300, 4)) for _ in range(3)]}
    tables, js, found = ensemble.score(independent, trajectory, samples, labels)
    for name, k in (("independent", 1), ("independent", 3), ("trajectory", 3),
                    ("random", 3), ("independent+random", 3)):
        for metric in ("accuracy", "nll", "brier"):
            assert found[f"{name}/{k}/{metric}"].mean() == pytest.approx(
                tables[name][k][metric], rel=1e-5), (name, k, metric)
    for name in ("independent", "trajectory", "random"):
        assert found[f"{name}/js"].mean() == pytest.approx(js[name], rel=1e-5)
    # one run's predictive: all its samples ensembled, by hand in numpy
    probs = np.exp(samples["random"][1]) / np.exp(samples["random"][1]).sum(-1, keepdims=True)
    hand = -np.log(probs.mean(0)[np.arange(300), labels])
    assert found["random/predictive/nll"][1] == pytest.approx(hand, rel=1e-5)
    assert found["independent/members/accuracy"].shape == (3, 300)


def test_whole_trajectories_against_loops_in_numpy():
    rng = np.random.default_rng(3)
    runs, epochs, n = 3, 4, 50
    weights = rng.normal(size=(runs, epochs, 20))
    labels = rng.integers(0, 3, (runs, epochs, n))  # predicted labels per checkpoint
    finals_w, finals_l = weights[:, -1], labels[:, -1]
    cosine = np.stack([metrics.cosine_similarity(np.concatenate([weights[b], finals_w]))
                       [:epochs, epochs:] for b in range(runs)])
    disagree = labels[:, :, None, :] != finals_l[None, None]
    whole, arrays = similarity.whole_trajectories(cosine, disagree)

    def cos(u, v):
        return u @ v / np.linalg.norm(u) / np.linalg.norm(v)

    for a in range(runs):
        for e in range(epochs):
            assert whole["weight_cosine"]["within"][a][e] == pytest.approx(
                cos(weights[a, e], weights[a, -1]))
            assert whole["weight_cosine"]["across"][a][e] == pytest.approx(np.mean(
                [cos(weights[b, e], weights[a, -1]) for b in range(runs) if b != a]))
            others = sum(labels[b, e] != labels[a, -1] for b in range(runs) if b != a)
            np.testing.assert_array_equal(arrays["disagreement_across_count"][a, e], others)
            np.testing.assert_array_equal(arrays["disagreement_within"][a, e],
                                          labels[a, e] != labels[a, -1])


# ---------------------------------------------------------------- rules on hand-built results

def _study(js_trajectory: float, trajectory_accuracy: float, ensemble_gain: float) -> dict:
    """An ensemble analysis of 3 runs on 2,000 examples: the independent runs' JS 0.2
    per example; one trajectory's `js_trajectory` with functions of
    `trajectory_accuracy`; the 3-ensemble right `ensemble_gain` more often than the
    best run (0.70)."""
    rng = np.random.default_rng(4)
    n = 2000

    def right(p):
        return (rng.random((1, n)) < p).astype(np.float32)

    def noisy(mean):
        return (mean + 0.05 * rng.normal(size=(1, n))).astype(np.float32)

    arrays = {"0/independent/members/accuracy": np.concatenate([right(0.70), right(0.68),
                                                               right(0.66)]),
              "0/independent/3/accuracy": right(0.70 + ensemble_gain),
              "0/independent/js": noisy(0.2), "0/trajectory/js": noisy(js_trajectory)}
    for metric in ("nll", "brier"):
        arrays[f"0/independent/members/{metric}"] = noisy(0.5).repeat(3, 0)
        arrays[f"0/independent/3/{metric}"] = noisy(0.5 - ensemble_gain)
    accuracy = "test/accuracy"
    result = {"runs": ["a", "b", "c"], "subspace_samples_per_run": {},
              "summary": {"ensemble_size": 3, "intensities": [0]},
              "metrics": {"independent": {"1": {accuracy: 0.68}},
                          "trajectory": {"1": {accuracy: trajectory_accuracy}}}}
    return {"ensemble": result, "ensemble/per_example": arrays}


def _verdict(study, start):
    return next(r for r in claims.claims(study) if r["claim"].startswith(start))


def test_diversity_rule_holds_fails_is_inconclusive_and_leaves_out_less_accurate_sets():
    diverse = "Independent runs are more diverse than one trajectory"
    assert _verdict(_study(0.05, 0.69, 0.05), diverse)["verdict"] == claims.HOLDS
    assert _verdict(_study(0.30, 0.69, 0.05), diverse)["verdict"] == claims.DOES_NOT_HOLD
    assert _verdict(_study(0.2, 0.69, 0.05), diverse)["verdict"] == claims.INCONCLUSIVE
    # a trajectory whose functions are 0.03 below the least accurate run is not counted
    row = _verdict(_study(0.30, 0.62, 0.05), diverse)
    assert row["verdict"] == claims.INCONCLUSIVE and row["comparisons"] == []
    assert row["outside_band"] == {"trajectory": 0.62}
    assert "outside the band: trajectory (accuracy 0.620)" in row["ours"]


def test_ensembling_rule_compares_with_the_best_run():
    ensembling = "Ensembling independent runs beats the best single run"
    assert _verdict(_study(0.05, 0.69, 0.05), ensembling)["verdict"] == claims.HOLDS
    row = _verdict(_study(0.05, 0.69, -0.05), ensembling)
    assert row["verdict"] == claims.DOES_NOT_HOLD
    accuracy = next(c for c in row["comparisons"] if c["name"].startswith("accuracy"))
    assert accuracy["value"] < 0 and accuracy["interval"][1] < 0
    assert _verdict(_study(0.05, 0.69, 0.0), ensembling)["verdict"] in (
        claims.INCONCLUSIVE, claims.DOES_NOT_HOLD)


def test_every_rule_is_not_run_without_results():
    rows = claims.claims({})
    assert len(rows) == 16
    assert all(r["verdict"] == claims.NOT_RUN for r in rows)
