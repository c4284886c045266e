"""Bootstrap intervals and the three-way verdicts of the paper's claims.

Every compared quantity of a claim is a statistic of per-example values on one test set
(accuracy, NLL, Brier, JS divergence are means over examples), so its uncertainty comes
from which test examples were drawn, and, for quantities over independent runs, from
which runs were trained. `bootstrap` resamples examples (and, given per-run values,
runs) with replacement and returns the percentile interval of the statistic; a
difference of two quantities is bootstrapped paired (the same resampled examples for
both), so their shared test set does not widen it.

A claim's verdict follows from the interval of the difference in the paper's
direction: "holds" when it lies above zero, "does not hold" when it lies below,
"inconclusive" when it contains zero, and "not run" when there is nothing to compare.
"""

import dataclasses
from typing import Callable

import numpy as np

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_RUN = ("holds", "does not hold", "inconclusive",
                                              "not run")
VERDICTS = (HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_RUN)
LEVEL = 0.95
RESAMPLES = 1000


@dataclasses.dataclass(frozen=True)
class Interval:
    """A statistic's value on the data as they are, and its bootstrap interval."""

    estimate: float
    low: float
    high: float
    level: float = LEVEL

    def as_dict(self) -> dict:
        return {"estimate": self.estimate, "low": self.low, "high": self.high,
                "level": self.level}


def bootstrap(statistic: Callable[[np.ndarray], float], num_examples: int,
              num_runs: int | None = None, resamples: int = RESAMPLES, seed: int = 0,
              level: float = LEVEL) -> Interval:
    """The percentile interval of `statistic` under resampling.

    Without `num_runs`, `statistic(examples)` gets an index array of examples (drawn
    with replacement, `num_examples` of them). With `num_runs`, `statistic(examples,
    runs)` also gets an index array of runs, drawn with replacement, so that the
    interval counts both the test set and the runs as samples."""
    rng = np.random.default_rng(seed)
    everything = np.arange(num_examples)
    if num_runs is None:
        estimate = statistic(everything)
        values = [statistic(rng.integers(0, num_examples, num_examples))
                  for _ in range(resamples)]
    else:
        estimate = statistic(everything, np.arange(num_runs))
        values = [statistic(rng.integers(0, num_examples, num_examples),
                            rng.integers(0, num_runs, num_runs))
                  for _ in range(resamples)]
    low, high = np.quantile(values, [(1 - level) / 2, (1 + level) / 2])
    return Interval(float(estimate), float(low), float(high), level)


def mean(values: np.ndarray, resamples: int = RESAMPLES, seed: int = 0,
         level: float = LEVEL) -> Interval:
    """The interval of the mean of per-example `values` [N], or of per-run per-example
    `values` [R, N] (the mean over runs of each run's mean; runs resampled too when
    there are at least 3)."""
    values = np.asarray(values, np.float64)
    if values.ndim == 1:
        return bootstrap(lambda e: values[e].mean(), len(values), None, resamples, seed,
                         level)
    if len(values) < 3:
        return bootstrap(lambda e: values[:, e].mean(), values.shape[1], None,
                         resamples, seed, level)
    return bootstrap(lambda e, r: values[np.ix_(r, e)].mean(), values.shape[1],
                     len(values), resamples, seed, level)


def verdict(interval: Interval | None) -> str:
    """The claim's verdict from the interval of its difference in the paper's
    direction (positive: the paper's finding)."""
    if interval is None:
        return NOT_RUN
    if interval.low > 0:
        return HOLDS
    if interval.high < 0:
        return DOES_NOT_HOLD
    return INCONCLUSIVE
