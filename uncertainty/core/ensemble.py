"""Ensembles of functions given by their logits (paper Sec. 5): every ensemble
averages its members' probabilities, never their logits (`metrics.ensemble`; scored
here from the members' probabilities directly), and every ensemble size is scored over
subsets of the members.

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
    return scored_by_size(members, labels, max_size, max_subsets, seed)[0]


def scored_by_size(members: np.ndarray, labels: np.ndarray, max_size: int | None = None,
                   max_subsets: int | None = None, seed: int = 0) -> tuple[dict, dict]:
    """(`by_size`'s table, {k: `example_means` of size k}) from one pass over the
    subsets."""
    max_size = min(max_size or len(members), len(members))
    probs, at_label = _member_terms(members, labels)
    table, examples = {}, {}
    for size in range(1, max_size + 1):
        table[size], examples[size] = _score_size(
            probs, at_label, labels, subsets(len(members), size, max_subsets, seed))
    return table, examples


def example_means(members: np.ndarray, labels: np.ndarray, size: int,
                  max_subsets: int | None = None, seed: int = 0) -> dict[str, np.ndarray]:
    """{metric: [N]}: each example's accuracy, NLL and Brier score
    (`metrics.PER_EXAMPLE`) averaged over the `size`-subsets of the members [M, N, C]
    that `by_size` scores; their means over examples are `by_size`'s values."""
    return _score_size(*_member_terms(members, labels), labels,
                       subsets(len(members), size, max_subsets, seed))[1]


# Bytes of the members stacked for one batch of subsets' ensembles (`_subset_batches`).
SUBSET_BATCH_BYTES = 64 << 20


def _member_terms(members: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(probabilities [M, N, C], the labels' log-probabilities [M, N]) of member
    logits: computed once, every subset's ensemble is made of them."""
    log_probs = metrics.log_softmax(members)
    return np.exp(log_probs), metrics.at_labels(log_probs, labels)


def _score_size(probs: np.ndarray, at_label: np.ndarray, labels: np.ndarray,
                chosen: list[tuple[int, ...]]) -> tuple[dict[str, float], dict]:
    """({metric: mean over the subsets}, {per-example metric: [N] mean over the
    subsets}) of the ensembles of the subsets in `chosen` (all of one size), from the
    members' `_member_terms`, a batch of subsets at a time. An ensemble's
    probabilities are its members' mean; its label's log-probability is their
    log-mean-exp (`metrics.ensemble`'s value, finite where the mean underflows)."""
    values = {name: [] for name in METRICS}
    sums = dict.fromkeys(metrics.PER_EXAMPLE, 0.0)
    for index in _subset_batches(probs, chosen):
        per_example, calibration = metrics.probability_scores(
            _member_mean(probs, index), _member_log_mean_exp(at_label, index), labels)
        for name, rows in per_example.items():
            values[name].append(np.mean(rows, axis=-1))
            for row in rows:  # summed a subset at a time, in order
                sums[name] = sums[name] + row
        values["ece"].append(calibration)
    return ({name: float(np.mean(np.concatenate(v))) for name, v in values.items()},
            {name: total / len(chosen) for name, total in sums.items()})


def _member_mean(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """values[index].mean(axis=1) for members' values [M, ...] and subsets [S, k]: the
    same sums in the same order (member by member), without stacking the members."""
    total = values[index[:, 0]]
    for j in range(1, index.shape[1]):
        total += values[index[:, j]]
    return total / index.shape[1]


def _member_log_mean_exp(values: np.ndarray, index: np.ndarray) -> np.ndarray:
    """metrics.logsumexp(values[index], axis=1) - log(k) for members' log-values
    [M, ...] and subsets [S, k] (the same operations in the same order, member by
    member): finite where the mean of the exponentials underflows."""
    rows = [values[index[:, j]] for j in range(index.shape[1])]
    top = rows[0]
    for row in rows[1:]:
        top = np.maximum(top, row)
    top = np.where(np.isfinite(top), top, 0.0)
    total = np.exp(rows[0] - top)
    for row in rows[1:]:
        total += np.exp(row - top)
    with np.errstate(divide="ignore"):  # log(0) = -inf where every term is -inf
        return np.log(total) + top - np.log(index.shape[1])


def _subset_batches(members: np.ndarray, chosen: list[tuple[int, ...]]):
    """The subsets of `chosen` (all of one size) as index arrays [S, k], in order, S
    such that the members [M, ...] they stack fit SUBSET_BATCH_BYTES."""
    if not chosen:
        return
    step = max(1, SUBSET_BATCH_BYTES // (len(chosen[0]) * members[0].nbytes))
    for start in range(0, len(chosen), step):
        yield np.array(chosen[start:start + step])


def score(independent: np.ndarray, trajectory: np.ndarray,
          samples: dict[str, list[np.ndarray]], labels: np.ndarray,
          max_size: int | None = None, max_subsets: int | None = None, seed: int = 0
          ) -> tuple[dict, dict, dict]:
    """Every set of functions of the paper's Sec. 5 scored on one evaluation set.

    All arrays are logits. independent [M, N, C]: the final solutions of M runs;
    trajectory [K, N, C]: the last checkpoints of one run; samples {method: [one
    [S, N, C] per run]}: subspace samples around each run. The sets are independent,
    trajectory, <method> (one run's samples ensembled, the metrics averaged over runs)
    and independent+<method> (ensembles whose members are each run's samples
    ensembled; with weight_average, ensembles of weight averages).

    Returns ({name: {size: {metric: value}}}, {name: JS divergence} (a method's: its
    samples in groups of M, `metrics.grouped_js_divergence`), the per-example values
    behind them). The per-example values are what the claims' intervals resample,
    each [R, N] (R = 1 for a set that is one ensemble, the number of runs for a
    method's sets of one run's samples):
    "<set>/<k>/<metric>" for the independent runs at every size k, every other set at
    its largest size, "independent/members/<metric>" (each run alone),
    "<method>/predictive/<metric>" (each run's samples all ensembled) and "<set>/js"
    (per-example JS divergence, as the JS divergences group the sets).
    """
    size = min(max_size or len(independent), len(independent))
    predictives = _predictives(samples)
    found = _sets(independent, trajectory, samples, predictives, lambda members:
                  scored_by_size(members, labels, max_size, max_subsets, seed))
    tables = {name: _mean_table([table for table, _ in results])
              for name, results in found.items()}
    examples = {f"independent/members/{name}": v
                for name, v in metrics.example_scores(independent, labels).items()}
    for name, results in found.items():
        members = (trajectory if name == "trajectory" else
                   independent if name.startswith("independent") else samples[name][0])
        largest = min(size, len(members))
        for k in (range(1, size + 1) if name == "independent" else [largest]):
            examples.update({f"{name}/{k}/{metric}": np.stack([e[k][metric]
                                                               for _, e in results])
                             for metric in metrics.PER_EXAMPLE})
    examples["independent/js"] = metrics.mutual_information(independent)[None]
    examples["trajectory/js"] = metrics.mutual_information(trajectory)[None]
    for method, per_run in samples.items():
        examples.update({f"{method}/predictive/{name}": v for name, v in
                         metrics.example_scores(predictives[method], labels).items()})
        if len(per_run[0]) > 1:
            examples[f"{method}/js"] = np.stack([
                metrics.grouped_mutual_information(s, len(independent)) for s in per_run])
    return (tables, js_divergences(independent, trajectory, samples),
            {key: np.asarray(v, np.float32) for key, v in examples.items()})


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
    found = _sets(independent, trajectory, samples, _predictives(samples),
                  lambda members: ood_by_size(members[:, :count], members[:, count:],
                                              dataset, max_size, max_subsets, seed))
    return ({name: _mean_table(tables) for name, tables in found.items()},
            js_divergences(*outside))


def ood_by_size(inside: np.ndarray, outside: np.ndarray, dataset: str,
                max_size: int | None = None, max_subsets: int | None = None,
                seed: int = 0) -> dict[int, dict]:
    """{k: {ood metric key: mean over k-subsets}} of members' logits on in- [M, N, C]
    and out-of-distribution [M, N', C] examples of `dataset` (`ood.evaluate`: mutual
    information from k = 2), over the subsets `by_size` uses."""
    max_size = min(max_size or len(inside), len(inside))
    inside, outside = ood.member_terms(inside), ood.member_terms(outside)  # once
    table = {}
    for size in range(1, max_size + 1):
        found = {}
        chosen = subsets(len(inside[0]), size, max_subsets, seed)
        for batch_in, batch_out in zip(subset_scores(*inside, chosen),
                                       subset_scores(*outside, chosen)):
            for i in range(len(next(iter(batch_in.values())))):
                for key, value in ood.evaluate_scores(
                        {s: v[i] for s, v in batch_in.items()},
                        {s: v[i] for s, v in batch_out.items()}, dataset,
                        single=size == 1).items():
                    found.setdefault(key, []).append(value)
        table[size] = {name: float(np.mean(v)) for name, v in found.items()}
    return table


def subset_scores(probs: np.ndarray, entropies: np.ndarray, chosen: list[tuple[int, ...]]):
    """`ood.scores` {score: [S, N]} of the members in each subset of `chosen`, from
    their `ood.member_terms` (probabilities [M, N, C], entropies [M, N]), in batches
    as `_score_size` takes them."""
    for index in _subset_batches(probs, chosen):
        yield ood.scores_of_means(_member_mean(probs, index), _member_mean(entropies, index))


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


def _predictives(samples: dict[str, list[np.ndarray]]) -> dict[str, np.ndarray]:
    """{method: [R, N, C]}: each run's samples ensembled (`metrics.ensemble`), the
    members of the set independent+<method>."""
    return {method: np.stack([metrics.ensemble(s) for s in per_run])
            for method, per_run in samples.items()}


def _sets(independent, trajectory, samples, predictives, scored) -> dict[str, list]:
    """{set name: [scored(members)]} for `score`'s sets of functions (`predictives`:
    `_predictives(samples)`): one entry, or one per run for a method alone."""
    found = {"independent": [scored(independent)], "trajectory": [scored(trajectory)]}
    for method, per_run in samples.items():
        found[method] = [scored(s) for s in per_run]
        found[f"independent+{method}"] = [scored(predictives[method])]
    return found


def _mean_table(tables: list[dict]) -> dict:
    """{size: {metric: mean over `tables`}} (one table: itself)."""
    if len(tables) == 1:
        return tables[0]
    return {size: {name: float(np.mean([t[size][name] for t in tables]))
                   for name in tables[0][size]} for size in tables[0]}
