"""Ensembles of functions given by their logits (paper Sec. 5): every ensemble
averages its members' probabilities through `metrics.ensemble` (never their logits),
and every ensemble size is scored over subsets of the members.

For size k the metrics are averaged over all k-subsets of the M members, or over
`max_subsets` distinct random ones when there are more, drawn from the stream
(seed, "ensemble_subsets", M, k) of `seeding`.
"""

import itertools
import math

import numpy as np

from uncertainty.core import metrics, ood, seeding

METRICS = {"accuracy": metrics.accuracy, "nll": metrics.nll, "brier": metrics.brier,
           "ece": metrics.ece}


def subsets(num_members: int, size: int, max_subsets: int | None = None, seed: int = 0
            ) -> list[tuple[int, ...]]:
    """The `size`-subsets of range(num_members): all of them in lexicographic order, or
    `max_subsets` distinct random ones (sorted) when there are more."""
    if max_subsets is not None and max_subsets < 1:
        raise ValueError(f"max_subsets must be positive, got {max_subsets}")
    if max_subsets is None or math.comb(num_members, size) <= max_subsets:
        return list(itertools.combinations(range(num_members), size))
    rng = seeding.rng(seed, "ensemble_subsets", num_members, size)
    chosen = set()
    while len(chosen) < max_subsets:
        chosen.add(tuple(sorted(rng.choice(num_members, size, replace=False).tolist())))
    return sorted(chosen)


def by_size(members: np.ndarray, labels: np.ndarray, max_size: int | None = None,
            max_subsets: int | None = None, seed: int = 0) -> dict[int, dict[str, float]]:
    """{k: {metric: mean over k-subsets}} for k = 1..max_size of member logits
    [M, N, C]; a subset's ensemble is `metrics.ensemble` of its members."""
    max_size = min(max_size or len(members), len(members))
    log_probs = metrics.log_softmax(members)  # once, not once per subset
    table = {}
    for size in range(1, max_size + 1):
        scores = {name: [] for name in METRICS}
        for logits in subset_ensembles(log_probs, subsets(len(members), size,
                                                          max_subsets, seed)):
            for name, values in metrics.scores(logits, labels).items():  # METRICS'
                scores[name].append(np.atleast_1d(values))
        table[size] = {name: float(np.mean(np.concatenate(values)))
                       for name, values in scores.items()}
    return table


# Bytes of the members stacked for one batch of subsets' ensembles (`subset_ensembles`).
SUBSET_BATCH_BYTES = 64 << 20


def subset_ensembles(log_probs: np.ndarray, chosen: list[tuple[int, ...]]):
    """The ensembles [S, N, C] (`metrics.ensemble`) of the member log-probabilities
    [M, N, C] in each subset of `chosen` (all of one size), in order, in batches of
    subsets whose stacked members fit SUBSET_BATCH_BYTES: one numpy call per batch
    rather than per subset, with the same values."""
    for index in _subset_batches(log_probs, chosen):
        yield metrics.ensemble(log_probs[index], normalized=True, axis=1)


def _subset_batches(log_probs: np.ndarray, chosen: list[tuple[int, ...]]):
    """The subsets of `chosen` (all of one size) as index arrays [S, k], in order, S
    such that the members they stack fit SUBSET_BATCH_BYTES."""
    if not chosen:
        return
    step = max(1, SUBSET_BATCH_BYTES // (len(chosen[0]) * log_probs[0].nbytes))
    for start in range(0, len(chosen), step):
        yield np.array(chosen[start:start + step])


def score(independent: np.ndarray, trajectory: np.ndarray,
          samples: dict[str, list[np.ndarray]], labels: np.ndarray,
          max_size: int | None = None, max_subsets: int | None = None, seed: int = 0
          ) -> tuple[dict, dict]:
    """Every set of functions of the paper's Sec. 5 scored on one evaluation set.

    All arrays are logits. independent [M, N, C]: the final solutions of M runs;
    trajectory [K, N, C]: the last checkpoints of one run; samples {method: [one
    [S, N, C] per run]}: subspace samples around each run. Returns ({name: {size:
    {metric: value}}}, {name: JS divergence}) (a method's JS: its samples in groups of
    M, `metrics.grouped_js_divergence`) for the names independent, trajectory,
    <method> (one run's samples ensembled, the metrics averaged over runs) and
    independent+<method> (ensembles whose members are each run's samples ensembled;
    with weight_average, ensembles of weight averages).
    """
    return (_tables(independent, trajectory, samples, lambda members: by_size(
        members, labels, max_size, max_subsets, seed)),
        js_divergences(independent, trajectory, samples))


def example_means(members: np.ndarray, labels: np.ndarray, size: int,
                  max_subsets: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """{metric: [N]}: each example's accuracy, NLL and Brier score
    (`metrics.PER_EXAMPLE`) averaged over the `size`-subsets of the members [M, N, C]
    that `by_size` scores; their means over examples are `by_size`'s values."""
    log_probs = metrics.log_softmax(members)
    chosen = subsets(len(members), size, max_subsets, seed)
    sums = {name: 0.0 for name in metrics.PER_EXAMPLE}
    for batch in subset_ensembles(log_probs, chosen):
        for name, rows in metrics.example_scores(batch, labels).items():
            for values in rows:  # summed a subset at a time, in order
                sums[name] = sums[name] + values
    return {name: total / len(chosen) for name, total in sums.items()}


def per_example(independent: np.ndarray, trajectory: np.ndarray,
                samples: dict[str, list[np.ndarray]], labels: np.ndarray,
                max_size: int | None = None, max_subsets: int | None = None, seed: int = 0
                ) -> dict[str, np.ndarray]:
    """The per-example values behind `score`'s numbers that the claims' intervals
    resample, each [R, N] (R = 1 for a set that is one ensemble, the number of runs for
    a method's sets of one run's samples):
    "<set>/<k>/<metric>" for the independent runs at every size k, every other set at
    its largest size, "independent/members/<metric>" (each run alone),
    "<method>/predictive/<metric>" (each run's samples all ensembled) and "<set>/js"
    (per-example JS divergence, as `js_divergences` groups the sets)."""
    size = min(max_size or len(independent), len(independent))
    out = {f"independent/members/{name}": metric(independent, labels)
           for name, metric in metrics.PER_EXAMPLE.items()}

    def add(name, members_per_run):
        k = min(size, len(members_per_run[0]))
        found = [example_means(m, labels, k, max_subsets, seed) for m in members_per_run]
        out.update({f"{name}/{k}/{metric}": np.stack([f[metric] for f in found])
                    for metric in metrics.PER_EXAMPLE})

    for k in range(1, size + 1):
        out.update({f"independent/{k}/{metric}": v[None] for metric, v in example_means(
            independent, labels, k, max_subsets, seed).items()})
    add("trajectory", [trajectory])
    out["independent/js"] = metrics.mutual_information(independent)[None]
    out["trajectory/js"] = metrics.mutual_information(trajectory)[None]
    for method, per_run in samples.items():
        add(method, per_run)
        predictives = np.stack([metrics.ensemble(s) for s in per_run])  # each run's
        out.update({f"{method}/predictive/{name}": metric(predictives, labels)
                    for name, metric in metrics.PER_EXAMPLE.items()})
        add(f"independent+{method}", [predictives])
        if len(per_run[0]) > 1:
            out[f"{method}/js"] = np.stack([
                metrics.grouped_mutual_information(s, len(independent)) for s in per_run])
    return {key: np.asarray(v, np.float32) for key, v in out.items()}


def score_ood(inside: tuple, outside: tuple, dataset: str, max_size: int | None = None,
              max_subsets: int | None = None, seed: int = 0) -> tuple[dict, dict]:
    """The sets of functions of `score` detecting out-of-distribution examples:
    `inside` and `outside` are `score`'s (independent, trajectory, samples) logits on
    the in- and out-of-distribution test sets, `dataset` names the latter. Returns
    ({name: {size: {ood metric key: value}}}, {name: JS divergence on the
    out-of-distribution set})."""
    count = inside[0].shape[1]  # in-distribution examples come first

    def joined(a, b):
        return np.concatenate([a, b], axis=1)

    independent, trajectory = joined(inside[0], outside[0]), joined(inside[1], outside[1])
    samples = {m: [joined(a, b) for a, b in zip(inside[2][m], outside[2][m])]
               for m in inside[2]}
    return (_tables(independent, trajectory, samples, lambda members: ood_by_size(
        members[:, :count], members[:, count:], dataset, max_size, max_subsets, seed)),
        js_divergences(*outside))


def ood_by_size(inside: np.ndarray, outside: np.ndarray, dataset: str,
                max_size: int | None = None, max_subsets: int | None = None,
                seed: int = 0) -> dict[int, dict]:
    """{k: {ood metric key: mean over k-subsets}} of members' logits on in- [M, N, C]
    and out-of-distribution [M, N', C] examples of `dataset` (`ood.evaluate`: mutual
    information from k = 2), over the subsets `by_size` uses."""
    max_size = min(max_size or len(inside), len(inside))
    inside, outside = metrics.log_softmax(inside), metrics.log_softmax(outside)  # once
    table = {}
    for size in range(1, max_size + 1):
        found = {}
        chosen = subsets(len(inside), size, max_subsets, seed)
        for batch_in, batch_out in zip(subset_scores(inside, chosen),
                                       subset_scores(outside, chosen)):
            for i in range(len(next(iter(batch_in.values())))):
                for key, value in ood.evaluate_scores(
                        {s: v[i] for s, v in batch_in.items()},
                        {s: v[i] for s, v in batch_out.items()}, dataset,
                        single=size == 1).items():
                    found.setdefault(key, []).append(value)
        table[size] = {name: float(np.mean(v)) for name, v in found.items()}
    return table


def subset_scores(log_probs: np.ndarray, chosen: list[tuple[int, ...]]):
    """`ood.scores` {score: [S, N]} of the members' log-probabilities [M, N, C] in each
    subset of `chosen`, in batches as `subset_ensembles` (each member's probabilities
    and entropies computed once)."""
    terms = ood.member_terms(log_probs)
    for index in _subset_batches(log_probs, chosen):
        yield ood.scores_of_members(log_probs[index], *(t[index] for t in terms))


def js_divergences(independent: np.ndarray, trajectory: np.ndarray,
                   samples: dict[str, list[np.ndarray]]) -> dict[str, float]:
    """{name: JS divergence} of `score`'s sets (a method's: its samples in groups as
    large as the independent set, averaged over runs; none for single samples)."""
    js = {"independent": metrics.js_divergence(independent),
          "trajectory": metrics.js_divergence(trajectory)}
    for method, per_run in samples.items():
        if len(per_run[0]) > 1:
            js[method] = float(np.mean([metrics.grouped_js_divergence(s, len(independent))
                                        for s in per_run]))
    return js


def _tables(independent, trajectory, samples, scored) -> dict:
    """{set name: scored(members)} for `score`'s sets of functions; a method alone is
    averaged over the runs."""
    tables = {"independent": scored(independent), "trajectory": scored(trajectory)}
    for method, per_run in samples.items():
        alone = [scored(s) for s in per_run]
        tables[method] = {size: {name: float(np.mean([t[size][name] for t in alone]))
                                 for name in alone[0][size]} for size in alone[0]}
        tables[f"independent+{method}"] = scored(np.stack([metrics.ensemble(s)
                                                           for s in per_run]))
    return tables
