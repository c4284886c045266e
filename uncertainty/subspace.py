"""Functions sampled from subspaces around one solution (paper Sec. 4).

`fit(run_dir, num_checkpoints)` collects a run's final weights (the solution theta) and
its last K checkpoints; `sample(...)` draws one flat weight vector:

  random              theta + t * v / |v|, v ~ N(0, I), t = the scale
  dropout             theta * mask / (1 - p), mask ~ Bernoulli(1 - p) per weight, p = scale
  diagonal_gaussian   N(mean, (scale * std)^2) per weight over the K checkpoints
  low_rank_gaussian   mean + sum_i z_i a_i over the top-`rank` PCA axes a_i of the K
                      checkpoints, z_i ~ N(0, scale^2); axes unit-norm (the notebook)
                      or scaled by the checkpoints' std along them (SWAG)
  weight_average      the mean of the K checkpoints (SWA-like); deterministic

The Gaussians are TensorFlow Probability distributions. A `ScaleSpec` says how each
sample's scale is drawn (fixed, or max * U(0, 1)); `PRESETS` hold the paper's two sets.
"""

import dataclasses
import functools
import hashlib
import json

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
from absl import logging

from uncertainty import diversity, metrics, trajectory
from uncertainty.datasets import Dataset
from uncertainty.errors import UserError
from uncertainty.predictions import RunPredictions

METHODS = ("random", "dropout", "diagonal_gaussian", "low_rank_gaussian", "weight_average")
LOW_RANK_SCALINGS = ("unit", "swag")


@dataclasses.dataclass(frozen=True)
class ScaleSpec:
    """A sample's scale: `value`, or `value * U(0, 1)` when `uniform`."""

    value: float
    uniform: bool = False

    def draw(self, rng: np.random.Generator) -> float:
        return float(self.value * rng.uniform()) if self.uniform else float(self.value)


# "ensemble": the paper's scales for ensembling; "plane": widened to cover the accuracy
# range of the diversity-accuracy plane (random 70 U, diagonal 10 U, low-rank s = 6).
PRESETS = {
    "ensemble": {"random": ScaleSpec(10.0, True), "dropout": ScaleSpec(0.1, True),
                 "diagonal_gaussian": ScaleSpec(1.0), "low_rank_gaussian": ScaleSpec(1.0),
                 "weight_average": ScaleSpec(0.0)},
    "plane": {"random": ScaleSpec(70.0, True), "dropout": ScaleSpec(0.1, True),
              "diagonal_gaussian": ScaleSpec(10.0, True),
              "low_rank_gaussian": ScaleSpec(6.0), "weight_average": ScaleSpec(0.0)},
}


@dataclasses.dataclass(frozen=True)
class Subspace:
    """A run's solution and the last K checkpoints that give the moments."""

    solution: np.ndarray  # [D], the final checkpoint
    checkpoints: np.ndarray  # [K, D]
    epochs: tuple[int, ...]

    @functools.cached_property
    def mean(self) -> np.ndarray:
        return self.checkpoints.mean(axis=0)

    @functools.cached_property
    def std(self) -> np.ndarray:
        return self.checkpoints.std(axis=0)

    @functools.cached_property
    def _svd(self) -> tuple[np.ndarray, np.ndarray]:
        _, singular, axes = np.linalg.svd(self.checkpoints - self.mean, full_matrices=False)
        return singular, axes

    def pca(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`rank` principal axes [rank, D] (unit norm) of the centred checkpoints
        and the checkpoints' standard deviation along each (singular value/sqrt(K-1))."""
        k = len(self.checkpoints)
        if not 1 <= rank < k:
            raise UserError(f"low-rank Gaussian rank must be in 1..{k - 1} for {k} "
                            f"checkpoints, got {rank}")
        singular, axes = self._svd
        return axes[:rank], singular[:rank] / np.sqrt(k - 1)


def fit(run_dir: str, num_checkpoints: int = 10) -> Subspace:
    """The subspace of a run from its last `num_checkpoints` epoch checkpoints."""
    epochs = trajectory.epochs(run_dir)
    if len(epochs) < num_checkpoints:
        raise UserError(f"{run_dir} has {len(epochs)} epoch checkpoints but the subspace "
                        f"needs the last {num_checkpoints}; train longer or lower "
                        f"--num_checkpoints")
    last = tuple(epochs[-num_checkpoints:])
    checkpoints = np.stack([trajectory.load_weights(run_dir, e) for e in last])
    return Subspace(solution=checkpoints[-1], checkpoints=checkpoints, epochs=last)


def sample(subspace: Subspace, method: str, scale: float, seed, rank: int = 5,
           low_rank_scaling: str = "unit") -> np.ndarray:
    """One flat weight vector from `method` at `scale`; `seed` is anything
    `np.random.default_rng` takes, and the same seed gives the same vector."""
    rng = np.random.default_rng(seed)
    tfp_seed = tf.constant(rng.integers(0, 2 ** 31 - 1, size=2), tf.int32)
    if method == "random":
        direction = rng.standard_normal(subspace.solution.shape)
        return (subspace.solution + scale * direction / np.linalg.norm(direction)).astype(
            np.float32)
    if method == "dropout":
        if not 0 <= scale < 1:
            raise UserError(f"dropout rate must be in [0, 1), got {scale}")
        keep = rng.random(subspace.solution.shape) >= scale
        return (subspace.solution * keep / (1.0 - scale)).astype(np.float32)
    if method == "diagonal_gaussian":
        distribution = tfp.distributions.MultivariateNormalDiag(
            loc=subspace.mean, scale_diag=scale * subspace.std)
        return distribution.sample(seed=tfp_seed).numpy()
    if method == "low_rank_gaussian":
        if low_rank_scaling not in LOW_RANK_SCALINGS:
            raise UserError(f"unknown low-rank scaling {low_rank_scaling!r}; choose one of "
                            f"{', '.join(LOW_RANK_SCALINGS)}")
        axes, stds = subspace.pca(rank)
        widths = scale * (stds if low_rank_scaling == "swag" else np.ones(rank))
        distribution = tfp.distributions.MultivariateNormalDiagPlusLowRankCovariance(
            loc=subspace.mean.astype(np.float32),
            cov_diag_factor=np.zeros_like(subspace.mean, np.float32),
            cov_perturb_factor=(axes.T * widths).astype(np.float32))
        return distribution.sample(seed=tfp_seed).numpy()
    if method == "weight_average":
        return subspace.mean.astype(np.float32)
    raise UserError(f"unknown subspace method {method!r}; choose one of {', '.join(METHODS)}")


def regenerate(subspace: Subspace, params: dict) -> np.ndarray:
    """The weight vector of a sample recorded by `sample_functions` (its "params"), e.g.
    to predict it on other data."""
    if list(subspace.epochs) != params["epochs"]:
        raise UserError(f"the sample was drawn from epochs {params['epochs']}, this "
                        f"subspace has {list(subspace.epochs)}; fit it with the same "
                        f"--num_checkpoints")
    return sample(subspace, params["method"], params["scale"], tuple(params["seed"]),
                  params.get("rank", 5), params.get("low_rank_scaling", "unit"))


def sample_functions(predictor: RunPredictions, subspace: Subspace, method: str,
                     spec: ScaleSpec, num_samples: int, seed: int, data: Dataset,
                     splits: tuple[str, ...], base_probs: np.ndarray, rank: int = 5,
                     low_rank_scaling: str = "unit", accept_threshold: float | None = None,
                     tries: int = 5, train_data: Dataset | None = None) -> list[dict]:
    """Draws `num_samples` functions of `method` around the predictor's run and returns,
    for each, its scale, cache key and place on the diversity-accuracy plane on
    `splits[0]` (relative to `base_probs`); every split in `splits` is predicted (and
    cached). With `accept_threshold`, a draw whose validation accuracy is below it is
    redrawn, up to `tries` times, and dropped if none passes (the notebook's rule).
    `train_data` re-estimates batch-norm statistics for every sample.
    """
    labels = data.labels(splits[0])
    draws = 1 if method == "weight_average" else num_samples
    results = []
    for i in range(draws):
        for attempt in range(tries if accept_threshold is not None else 1):
            stream = (seed, METHODS.index(method), i, attempt)
            scale = spec.draw(np.random.default_rng(stream + (1,)))
            params = {"method": method, "scale": scale, "seed": list(stream),
                      "epochs": list(subspace.epochs),
                      "batchnorm_reestimated": train_data is not None}
            if method == "low_rank_gaussian":
                params.update(rank=rank, low_rank_scaling=low_rank_scaling)
            key = f"subspace/{method}/" + hashlib.sha1(
                json.dumps(params, sort_keys=True).encode()).hexdigest()[:16]
            vector = functools.cache(lambda: sample(subspace, method, scale, stream, rank,
                                                    low_rank_scaling))

            def probs_on(split):
                return predictor.vector(data, split, key, vector, train_data=train_data)

            if accept_threshold is not None:
                validation_accuracy = metrics.accuracy(probs_on("validation"),
                                                       data.labels("validation"))
                if validation_accuracy < accept_threshold:
                    logging.info("%s %d/%d: scale %.4g rejected (validation accuracy "
                                 "%.3f < %.3f, try %d)", method, i + 1, draws, scale,
                                 validation_accuracy, accept_threshold, attempt + 1)
                    continue
            probs = {split: probs_on(split) for split in splits}
            results.append({"method": method, "index": i, "tries": attempt + 1,
                            "scale": scale, "key": key, "params": params,
                            **diversity.point(probs[splits[0]], base_probs, labels)})
            logging.info("%s %d/%d: scale %.4g, accuracy %.4f, normalised diversity %.3f",
                         method, i + 1, draws, scale, results[-1]["accuracy"],
                         results[-1]["normalized_diversity"])
            break
    return results
