"""Bootstrap intervals against intervals with a known answer."""

import numpy as np
import pytest
from scipy import stats

from uncertainty.core import intervals


def test_interval_of_a_bernoulli_mean_matches_the_binomial_interval():
    rng = np.random.default_rng(0)
    draws = (rng.random(2000) < 0.3).astype(float)
    found = intervals.mean(draws, resamples=4000, seed=1)
    k, n = int(draws.sum()), len(draws)
    exact = stats.binomtest(k, n).proportion_ci(0.95, method="wilson")
    assert found.estimate == pytest.approx(k / n)
    width = exact.high - exact.low
    assert found.low == pytest.approx(exact.low, abs=0.05 * width)
    assert found.high == pytest.approx(exact.high, abs=0.05 * width)


def test_paired_difference_is_narrower_than_its_parts():
    """Two per-example quantities sharing most of their noise: the interval of their
    mean difference is that of the differences (paired), much narrower than the two
    intervals' distance would suggest, and on the right side of zero."""
    rng = np.random.default_rng(2)
    shared = rng.normal(size=5000)
    a, b = shared + 0.05 + 0.01 * rng.normal(size=5000), shared
    difference = intervals.mean(a - b, seed=3)
    alone = intervals.mean(a, seed=3)
    assert difference.low > 0 and intervals.verdict(difference) == intervals.HOLDS
    assert difference.high - difference.low < 0.05 * (alone.high - alone.low)


def test_runs_are_resampled_when_there_are_three_or_more():
    rng = np.random.default_rng(4)
    per_run = rng.normal(size=(5, 400)) + rng.normal(scale=0.5, size=(5, 1))
    over_runs = intervals.mean(per_run, seed=5)
    examples_only = intervals.mean(per_run[:2], seed=5)
    assert over_runs.estimate == pytest.approx(per_run.mean())
    # run-to-run spread (scale 0.5 over 5 runs) dominates: the interval is wide
    assert over_runs.high - over_runs.low > 0.4
    assert examples_only.high - examples_only.low < 0.4


@pytest.mark.parametrize("low, high, expected", [
    (0.01, 0.2, intervals.HOLDS), (-0.2, -0.01, intervals.DOES_NOT_HOLD),
    (-0.01, 0.2, intervals.INCONCLUSIVE)])
def test_three_way_verdicts(low, high, expected):
    assert intervals.verdict(intervals.Interval(0.0, low, high)) == expected
    assert intervals.verdict(None) == intervals.NOT_RUN
