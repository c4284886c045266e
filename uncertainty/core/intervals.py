"""95% percentile-bootstrap intervals and three-way verdicts for the claims.

A compared quantity is a mean over test examples (and over runs where a set has one
value per run): `values` [N] or [R, ..., N], examples on the last axis, runs on the
first. Each bootstrap replicate draws N examples with replacement (the same indices for
both sides of a paired difference) and, when a side has at least `MIN_RUNS` runs, R runs
with replacement; with fewer runs the runs are kept as they are, so the interval covers
the test set's sampling noise only.

A verdict reads the interval of a difference oriented so that positive is the paper's
direction: `HOLDS` when the interval lies above zero, `DOES_NOT_HOLD` when it lies
below, `INCONCLUSIVE` when it contains zero.
"""

from collections.abc import Callable, Sequence

import numpy as np

from uncertainty.core import seeding

LEVEL = 0.95
RESAMPLES = 1000
MIN_RUNS = 3
HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_RUN = (
    "holds", "does not hold", "inconclusive", "not run")
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_RUN)


def bootstrap(statistic: Callable, num_examples: Sequence[int | None],
              num_runs: Sequence[int] = (), purpose: str = "", seed: int = 0,
              resamples: int = RESAMPLES, level: float = LEVEL) -> list[float] | None:
    """The percentile interval of `statistic(examples, runs)` over `resamples`
    replicates: `examples` holds one index array per entry of `num_examples` (None for a
    side without an example axis or with one example), `runs` one per entry of
    `num_runs` (drawn only when it is at least MIN_RUNS). None when there is nothing to
    resample. The stream
    is (seed, "bootstrap", purpose)."""
    num_examples = [n if n is not None and n > 1 else None for n in num_examples]
    if all(n is None for n in num_examples) and all(r < MIN_RUNS for r in num_runs):
        return None
    rng = seeding.rng(seed, "bootstrap", purpose)
    replicates = np.empty(resamples)
    for i in range(resamples):
        examples = [None if n is None else rng.integers(0, n, n) for n in num_examples]
        runs = [rng.integers(0, r, r) if r >= MIN_RUNS else np.arange(r) for r in num_runs]
        replicates[i] = statistic(examples, runs)
    tail = 100 * (1 - level) / 2
    low, high = np.nanpercentile(replicates, [tail, 100 - tail])
    return [float(low), float(high)]


def _runs_first(values) -> np.ndarray:
    values = np.asarray(values, np.float64)
    return values[None] if values.ndim == 1 else values


def _mean(values: np.ndarray, runs: np.ndarray, examples: np.ndarray | None) -> float:
    chosen = values[runs]
    return float((chosen if examples is None else chosen[..., examples]).mean())


def mean(values, purpose: str = "", seed: int = 0, examples: bool = True) -> dict:
    """{"value", "interval"} of the mean of `values` ([N] or [R, ..., N]); without
    `examples` the last axis is not resampled (runs only)."""
    v = _runs_first(values)
    interval = bootstrap(lambda ex, runs: _mean(v, runs[0], ex[0]),
                         [v.shape[-1] if examples else None], [len(v)], purpose, seed)
    return {"value": float(v.mean()), "interval": interval}


def difference(a, b, purpose: str = "", seed: int = 0, paired: bool = True,
               examples: bool = True) -> dict:
    """{"value", "interval"} of mean(a) - mean(b). `paired`: a and b are on the same
    examples (resampled together); otherwise each side's examples are drawn apart;
    without `examples` only runs are resampled."""
    a, b = _runs_first(a), _runs_first(b)
    if paired and examples and a.shape[-1] != b.shape[-1]:
        raise ValueError(f"paired sides need the same examples, got {a.shape} and {b.shape}")
    sizes = ([None] if not examples else [a.shape[-1]] if paired else
             [a.shape[-1], b.shape[-1]])

    def statistic(ex, runs):
        return _mean(a, runs[0], ex[0]) - _mean(b, runs[1], ex[-1])

    return {"value": float(a.mean() - b.mean()),
            "interval": bootstrap(statistic, sizes, [len(a), len(b)], purpose, seed)}


def verdict(interval: Sequence[float] | None, direction: int = 1) -> str:
    """The verdict on a difference whose positive side (`direction` 1) or negative
    side (-1) is the paper's claim; INCONCLUSIVE without an interval (nothing to
    resample: fewer than MIN_RUNS runs of a quantity without examples)."""
    if interval is None:
        return INCONCLUSIVE
    low, high = sorted(direction * x for x in interval)
    return HOLDS if low > 0 else DOES_NOT_HOLD if high < 0 else INCONCLUSIVE


def combine(verdicts: Sequence[str]) -> str:
    """One verdict for a claim made of several comparisons: it holds when all hold,
    does not hold when any does not, is inconclusive otherwise (NOT_RUN when none was
    made)."""
    made = [v for v in verdicts if v != NOT_RUN]
    if not made:
        return NOT_RUN
    if DOES_NOT_HOLD in made:
        return DOES_NOT_HOLD
    return HOLDS if all(v == HOLDS for v in made) else INCONCLUSIVE


def proportion_difference(p: float, q: float, n: int, level: float = LEVEL) -> dict:
    """{"value", "interval"} of p - q for two accuracies on n examples each, by the
    normal approximation with the variances added (no pairing assumed: wider than a
    paired interval), for results that keep no per-example values."""
    from statistics import NormalDist

    z = NormalDist().inv_cdf(0.5 + level / 2)
    half = z * np.sqrt((p * (1 - p) + q * (1 - q)) / n)
    return {"value": p - q, "interval": [p - q - half, p - q + half]}
