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


def score(independent: np.ndarray, trajectory: np.ndarray,
          samples: dict[str, list[np.ndarray]], labels: np.ndarray,
          max_size: int | None = None, max_subsets: int | None = None, seed: int = 0
          ) -> tuple[dict, dict]:
    """Every set of functions of the paper's Sec. 5 scored on one evaluation set.

    independent [M, N, C]: the final solutions of M runs; trajectory [K, N, C]: the last
    checkpoints of one run; samples {method: [one [S, N, C] per run]}: subspace samples
    around each run. Returns ({name: {size: {metric: value}}}, {name: JS divergence})
    for the names independent, trajectory, <method> (one run's samples ensembled, the
    metrics averaged over runs) and independent+<method> (ensembles whose members are
    each run's samples averaged; with weight_average, ensembles of weight averages).
    """
    def scored(members):
        return by_size(members, labels, max_size, max_subsets, seed)

    tables = {"independent": scored(independent), "trajectory": scored(trajectory)}
    js = {"independent": metrics.js_divergence(independent),
          "trajectory": metrics.js_divergence(trajectory)}
    for method, per_run in samples.items():
        alone = [scored(s) for s in per_run]
        tables[method] = {size: {name: float(np.mean([t[size][name] for t in alone]))
                                 for name in METRICS} for size in alone[0]}
        tables[f"independent+{method}"] = scored(np.stack([s.mean(axis=0) for s in per_run]))
        if len(per_run[0]) > 1:
            js[method] = float(np.mean([metrics.js_divergence(s) for s in per_run]))
    return tables, js


def metric_key(metric: str, kind: str | None, intensity: int) -> str:
    """uncertainty-baselines' name of a test metric: test/nll on the clean set,
    test/nll_<type>_<intensity> on a corrupted one."""
    return f"test/{metric}" if kind is None else f"test/{metric}_{kind}_{intensity}"


def aggregate_corrupted(values: dict[str, float], metric: str, kinds, intensities
                        ) -> dict[str, float]:
    """test/<metric>_mean_<intensity> (mean over types) for each intensity, and
    test/<metric>_mean_corrupted (mean of those), as uncertainty-baselines names them."""
    means = {f"test/{metric}_mean_{s}": float(np.mean(
        [values[metric_key(metric, kind, s)] for kind in kinds])) for s in intensities}
    if means:
        means[f"test/{metric}_mean_corrupted"] = float(np.mean(list(means.values())))
    return means


def at_intensity(values: dict[str, float], metric: str, intensity: int) -> float:
    """A metric at one intensity: the clean value at 0, the mean over types above."""
    return values[f"test/{metric}" if intensity == 0 else f"test/{metric}_mean_{intensity}"]
