"""The subspace around one solution and one draw from it (paper Sec. 4).

`fit(run_dir, num_checkpoints)` collects a run's final weights (the solution theta) and
its last K checkpoints (`Subspace`: their mean, standard deviation and PCA);
`sample(space, spec, scale, rng)` draws one flat weight vector of a method of
`catalog`; `regenerate(space, params)` draws it again from a record's parameters.
Every sample's randomness (its scale, its direction or mask) comes from its own stream
of `core.seeding`, built from the user's seed, the base run, the method and the
sample's index, so samples around different runs never share a perturbation. The
Gaussians are TensorFlow Probability distributions, imported by the first one drawn
(a process that draws none starts without TFP).
"""
import dataclasses
import functools
from typing import TYPE_CHECKING, Callable

import numpy as np

from uncertainty import models
from uncertainty.core import seeding
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, layout
from uncertainty.samplers import catalog

if TYPE_CHECKING:
    import tensorflow_probability as tfp


@dataclasses.dataclass(frozen=True)
class Subspace:
    """A run's solution and the last K checkpoints that give the moments."""

    solution: np.ndarray  # [D], the final checkpoint
    checkpoints: np.ndarray  # [K, D]
    epochs: tuple[int, ...]
    run: str = ""  # the base run's identity (`layout.identity`): seeds its streams
    digests: tuple[str, ...] = ()  # the checkpoints' content, for cache keys
    model: str = ""
    training_method: str = "deterministic"  # or variational
    posterior_std: np.ndarray | None = None  # [D], a variational run's last epoch
    dropout_rate: float = 0.0  # the run's training dropout rate

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


def fit(run_dir: str, num_checkpoints: int = catalog.NUM_CHECKPOINTS) -> Subspace:
    """The subspace of a run from its last `num_checkpoints` epoch checkpoints."""
    epochs = checkpoints.epochs(run_dir)
    if len(epochs) < num_checkpoints:
        raise UserError(f"{run_dir} has {len(epochs)} epoch checkpoints but the subspace "
                        f"needs the last {num_checkpoints}; train longer or lower "
                        f"--num_checkpoints")
    last = tuple(epochs[-num_checkpoints:])
    weights = np.stack([checkpoints.load_weights(run_dir, e) for e in last])
    config = layout.read_config(run_dir)
    method = layout.method(run_dir)
    return Subspace(solution=weights[-1], checkpoints=weights, epochs=last,
                    run=layout.identity(run_dir),
                    digests=tuple(checkpoints.checkpoint_digest(run_dir, e) for e in last),
                    model=config["model"], training_method=method,
                    posterior_std=(checkpoints.load_posterior(run_dir, last[-1])[1]
                                   if method == "variational" else None),
                    dropout_rate=config.get("dropout_rate", 0.0))


def resolve(space: Subspace, spec: catalog.SamplerSpec, run: str = "the base run"
            ) -> catalog.SamplerSpec:
    """`spec` for sampling around `space`: refuses a model method the run cannot give
    (variational samples need a variational run; MC dropout a deterministic run with
    dropout layers) and sets MC dropout's rate 0 to the run's training rate."""
    if spec.method == "variational" and space.training_method != "variational":
        raise UserError(f"variational samples need a variational run, but {run} is "
                        f"{space.training_method}; train one with --method=variational "
                        f"or leave variational out of --methods")
    if spec.method == "mc_dropout":
        if space.training_method != "deterministic":
            raise UserError(f"mc_dropout evaluates a deterministic network's dropout, but "
                            f"{run} is {space.training_method}; use the variational "
                            f"method for it, or a deterministic run")
        if not models.has_dropout(space.model):
            raise UserError(f"{space.model} has no dropout layers for mc_dropout; leave "
                            f"mc_dropout out of --methods")
        rate = spec.scale or space.dropout_rate
        if not rate:
            raise UserError(f"{run} was trained without dropout; pass --mc_dropout_rate "
                            f"to evaluate MC dropout at a rate of your choice")
        spec = dataclasses.replace(spec, scale=rate)
    return spec


@dataclasses.dataclass(frozen=True)
class LowRankGaussian:
    """mean + z @ axes with z ~ `latent`, a TFP MultivariateNormalDiag over the rank-k
    coordinates: a proper distribution (finite `log_prob`) in the subspace, mapped into
    weight space by the orthonormal `axes` [k, D]."""

    mean: np.ndarray
    axes: np.ndarray
    latent: "tfp.distributions.MultivariateNormalDiag"

    def sample(self, seed) -> np.ndarray:
        z = self.latent.sample(seed=seed).numpy().astype(np.float64)
        return (self.mean + z @ self.axes).astype(np.float32)


def low_rank_gaussian(subspace: Subspace, rank: int, scale: float,
                      scaling: str = "unit") -> LowRankGaussian:
    """The low-rank Gaussian of `subspace` at `scale` (see the module docstring)."""
    import tensorflow_probability as tfp

    axes, stds = subspace.pca(rank)
    widths = scale * (stds if scaling == "swag" else np.ones(rank))
    latent = tfp.distributions.MultivariateNormalDiag(
        loc=np.zeros(rank), scale_diag=np.asarray(widths, np.float64))
    return LowRankGaussian(mean=subspace.mean.astype(np.float64),
                           axes=axes.astype(np.float64), latent=latent)


def _random(space: Subspace, spec: catalog.SamplerSpec, scale: float,
            rng: np.random.Generator, seed: np.ndarray) -> np.ndarray:
    direction = rng.standard_normal(space.solution.shape)
    return (space.solution + scale * direction / np.linalg.norm(direction)).astype(
        np.float32)


def _dropout(space, spec, scale, rng, seed) -> np.ndarray:
    keep = rng.random(space.solution.shape) >= scale
    return (space.solution * keep / (1.0 - scale)).astype(np.float32)


def _diagonal_gaussian(space, spec, scale, rng, seed) -> np.ndarray:
    import tensorflow_probability as tfp

    distribution = tfp.distributions.MultivariateNormalDiag(
        loc=space.mean, scale_diag=scale * space.std)
    return distribution.sample(seed=seed).numpy()


def _low_rank_gaussian(space, spec, scale, rng, seed) -> np.ndarray:
    return low_rank_gaussian(space, spec.rank, scale, spec.low_rank_scaling).sample(seed)


def _weight_average(space, spec, scale, rng, seed) -> np.ndarray:
    return space.mean.astype(np.float32)


def _variational(space, spec, scale, rng, seed) -> np.ndarray:
    noise = rng.standard_normal(space.solution.shape)
    return (space.solution + scale * space.posterior_std * noise).astype(np.float32)


# A weight-space sampler: (subspace, spec, scale, rng, seed) -> one flat float32 weight
# vector, where numpy draws come from `rng` and TensorFlow/TFP draws take the stateless
# `seed` (two int32), both from the sample's own stream.
Sampler = Callable[[Subspace, catalog.SamplerSpec, float, np.random.Generator, np.ndarray],
                   np.ndarray]
SAMPLERS: dict[str, Sampler] = {
    "random": _random, "dropout": _dropout, "diagonal_gaussian": _diagonal_gaussian,
    "low_rank_gaussian": _low_rank_gaussian, "weight_average": _weight_average,
    "variational": _variational}


def register(name: str, sampler: Sampler) -> None:
    """Adds a weight-space sampling method under `name` (see `Sampler`); from then on
    `catalog.SamplerSpec(name, scale)` draws with it everywhere samples are drawn (the
    plane, ensembles, caches)."""
    catalog.add_method(name)
    SAMPLERS[name] = sampler


def sample(subspace: Subspace, spec: catalog.SamplerSpec, scale: float,
           rng: np.random.Generator) -> np.ndarray:
    """One flat weight vector of `spec.method` at `scale`, all randomness from `rng`."""
    if spec.method == "mc_dropout":
        raise ValueError("an MC-dropout sample is a dropout pass, not a weight vector")
    seed = rng.integers(0, 2 ** 31 - 1, size=2).astype(np.int32)
    return SAMPLERS[spec.method](subspace, spec, scale, rng, seed)


def streams(seed: int, subspace: Subspace, method: str, index: int, attempt: int):
    """The (scale, sample) generators of one draw: its own streams of the user's seed,
    the base run, the method, the sample's index and the attempt."""
    parts = (subspace.run, method, index, attempt)
    return (seeding.rng(seed, "subspace_scale", *parts),
            seeding.rng(seed, "subspace_sample", *parts))


def regenerate(subspace: Subspace, params: dict) -> np.ndarray:
    """The weight vector of a sample recorded by `sample_functions` (its "params"), e.g.
    to predict it on other data."""
    if params["method"] == "mc_dropout":
        raise UserError("an MC-dropout sample is a dropout pass, not a weight vector; "
                        "get its logits with draw.sample_logits")
    if checkpoint_epochs(subspace, params["method"]) != params["epochs"]:
        if params["method"] in catalog.MODEL_METHODS:
            raise UserError(f"the sample was drawn from epoch {params['epochs'][-1]}, the "
                            f"run's last is now {subspace.epochs[-1]}; draw it again")
        raise UserError(f"the sample was drawn from epochs {params['epochs']}, this "
                        f"subspace has {list(subspace.epochs)}; fit it with the same "
                        f"--num_checkpoints")
    if subspace.run != params["run"]:
        raise UserError("the sample was drawn around another run than this subspace's; "
                        "fit the subspace of the sample's base run")
    spec = catalog.SamplerSpec(params["method"], rank=params.get("rank", 5),
                       low_rank_scaling=params.get("low_rank_scaling", "unit"))
    _, rng = streams(params["seed"], subspace, spec.method, params["index"],
                      params["attempt"])
    return sample(subspace, spec, params["scale"], rng)


def checkpoint_epochs(subspace: Subspace, method: str) -> list[int]:
    """The checkpoints a method's samples come from: the model methods' the last."""
    return list(subspace.epochs[-1:] if method in catalog.MODEL_METHODS else subspace.epochs)

