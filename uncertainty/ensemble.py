"""Ensembles: average the members' probabilities (never logits) and score every
ensemble size over subsets of the members (paper Sec. 5).

For size k the metrics are averaged over all k-subsets of the M members, or over a
seeded random sample of `max_subsets` distinct subsets when there are more.
"""

import itertools
import math

import numpy as np

from uncertainty import metrics

METRICS = {"accuracy": metrics.accuracy, "nll": metrics.nll, "brier": metrics.brier,
           "ece": metrics.ece}


def subsets(num_members: int, size: int, max_subsets: int | None = None, seed: int = 0
            ) -> list[tuple[int, ...]]:
    """The `size`-subsets of range(num_members): all of them in lexicographic order, or
    `max_subsets` distinct ones drawn with `seed` when there are more."""
    total = math.comb(num_members, size)
    if max_subsets is None or total <= max_subsets:
        return list(itertools.combinations(range(num_members), size))
    rng = np.random.default_rng([seed, num_members, size])
    chosen = set()
    while len(chosen) < max_subsets:
        chosen.add(tuple(sorted(rng.choice(num_members, size, replace=False).tolist())))
    return sorted(chosen)


def by_size(members: np.ndarray, labels: np.ndarray, max_size: int | None = None,
            max_subsets: int | None = None, seed: int = 0) -> dict[int, dict[str, float]]:
    """{k: {metric: mean over k-subsets}} for k = 1..max_size of member probabilities
    [M, N, C]; each subset's ensemble is the mean of its members' probabilities."""
    max_size = min(max_size or len(members), len(members))
    table = {}
    for size in range(1, max_size + 1):
        scores = {name: [] for name in METRICS}
        for subset in subsets(len(members), size, max_subsets, seed):
            probs = members[list(subset)].mean(axis=0)
            for name, metric in METRICS.items():
                scores[name].append(metric(probs, labels))
        table[size] = {name: float(np.mean(values)) for name, values in scores.items()}
    return table
