"""A variational run's posterior predictive, which the run reports when it ends.

A run trained with method "variational" checkpoints its variational model every
epoch; `runs.checkpoints.load_posterior` reads a checkpoint as the posterior means and
standard deviations, flat in the deterministic twin's `checkpoints.load_weights`
order. A draw of weights, mean + std * eps, is a weight vector of the twin, evaluated
by the predictions path like a subspace sample: the sampling method "variational"
(`samplers.catalog`), whose records make the draws reproducible, so the analyses draw
the same functions. The posterior predictive averages the probabilities of
`num_samples` draws.

The variational layers themselves are `models.flipout`.
"""


import numpy as np
import tensorflow as tf

from uncertainty.core import metrics
from uncertainty.datasets import Dataset
from uncertainty.runs.predictions import RunPredictions
from uncertainty.samplers import catalog, draw, subspace

# The seed of the draws a run reports in its metrics; ensemble.py draws the same ones
# by default (--seed=0). For models with batch norm ensemble.py re-estimates each
# draw's statistics, so its numbers differ from metrics.json's there.
PREDICTIVE_SEED = 0


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
