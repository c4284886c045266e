"""A variational run's posterior as functions the analyses use like any other.

A run trained with method "variational" checkpoints its variational model every
epoch; `runs.checkpoints` reads a checkpoint as the deterministic twin's weights set to
the posterior means, with the posterior standard deviations beside them.
`posterior(run_dir, epoch)` returns both as flat vectors in the twin's
`checkpoints.load_weights` order; a draw of weights, mean + std * eps, is a weight
vector of the twin, evaluated by the predictions path (and cached by the analyses)
like a subspace sample: the sampling method "variational" (`samplers.catalog`), whose
records make the draws reproducible. The posterior predictive averages the probabilities of
`num_samples` draws.

The variational layers themselves are `models.flipout`.
"""

import dataclasses

import numpy as np
import tensorflow as tf

from uncertainty.core import metrics
from uncertainty.datasets import Dataset
from uncertainty.runs import checkpoints
from uncertainty.runs.predictions import RunPredictions
from uncertainty.samplers import catalog, draw, subspace

# The seed of the draws a run reports in its metrics; ensemble.py draws the same ones
# by default (--seed=0). For models with batch norm ensemble.py re-estimates each
# draw's statistics, so its numbers differ from metrics.json's there.
PREDICTIVE_SEED = 0


@dataclasses.dataclass(frozen=True)
class Posterior:
    """Mean-field Gaussian over the twin's trainable weights: N(mean, std^2) each;
    std is 0 for weights kept as point estimates (biases, batch norm)."""

    mean: np.ndarray
    std: np.ndarray


def posterior(run_dir: str, epoch: int | None = None) -> Posterior:
    """The posterior of a variational run at `epoch` (the last if None); a UserError
    for a run of another method."""
    mean, std = checkpoints.load_posterior(run_dir, epoch)
    return Posterior(mean=mean, std=std)


def predictive(run_dir: str, data: Dataset, splits: tuple[str, ...], num_samples: int,
               batch_size: int = 500, strategy: tf.distribute.Strategy | None = None,
               seed: int = PREDICTIVE_SEED) -> dict[str, np.ndarray]:
    """{split: logits of the posterior predictive}: log of the mean probability of
    `num_samples` posterior draws of the last epoch, the draws the analyses make
    (`draw.draw_model_samples`), each drawn once for all `splits` and predicted
    without writing the run's cache (so that the workers of a multi-worker run make
    the same collective calls)."""
    predictor = RunPredictions(run_dir, batch_size, strategy)
    space, records = draw.draw_model_samples(
        run_dir, catalog.SamplerSpec("variational", scale=1.0), num_samples, seed)
    draws = [subspace.regenerate(space, r["params"]) for r in records]
    return {split: metrics.ensemble(np.stack([predictor.uncached(data, split, weights)
                                              for weights in draws]))
            for split in splits}
