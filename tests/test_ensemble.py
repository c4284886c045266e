"""Ensemble subsets and averaging against brute force."""

import itertools

import numpy as np
import pytest
from sklearn.metrics import log_loss

from uncertainty import ensemble


def test_all_subsets_when_few():
    assert ensemble.subsets(5, 2) == list(itertools.combinations(range(5), 2))
    assert ensemble.subsets(4, 4) == [(0, 1, 2, 3)]
    assert len(ensemble.subsets(6, 3, max_subsets=20)) == 20  # C(6, 3) = 20: all


def test_random_subsets_are_distinct_seeded_and_capped():
    drawn = ensemble.subsets(10, 4, max_subsets=15, seed=3)
    assert len(drawn) == 15 == len(set(drawn))
    assert all(len(set(s)) == 4 and all(0 <= i < 10 for i in s) for s in drawn)
    assert drawn == ensemble.subsets(10, 4, max_subsets=15, seed=3)
    assert drawn != ensemble.subsets(10, 4, max_subsets=15, seed=4)


@pytest.fixture
def members():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(5, 0.5), size=(4, 200))
    return probs, rng.integers(0, 5, 200)


def test_by_size_matches_brute_force(members):
    probs, labels = members
    table = ensemble.by_size(probs, labels)
    assert sorted(table) == [1, 2, 3, 4]
    for size in (1, 2, 3, 4):
        accuracy, nll = [], []
        for subset in itertools.combinations(range(4), size):
            mean = sum(probs[i] for i in subset) / size  # probabilities, not logits
            accuracy.append(np.mean(mean.argmax(1) == labels))
            nll.append(log_loss(labels, mean, labels=range(5)))
        assert np.isclose(table[size]["accuracy"], np.mean(accuracy))
        assert np.isclose(table[size]["nll"], np.mean(nll))
    assert np.isclose(table[1]["brier"], np.mean(
        [np.mean(((p - np.eye(5)[labels]) ** 2).sum(1)) for p in probs]))
    assert ensemble.by_size(probs, labels, max_size=2).keys() == {1, 2}
