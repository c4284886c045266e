"""The sampling methods by name and how each draws (`SamplerSpec`), with the paper's
two presets (`PRESETS`: the ensemble one and the diversity-plane one).

  random              theta + t * v / |v|, v ~ N(0, I), t = the scale
  dropout             theta * mask / (1 - p), mask ~ Bernoulli(1 - p) per weight, p = scale
  diagonal_gaussian   N(mean, (scale * std)^2) per weight over the K checkpoints
  low_rank_gaussian   mean + sum_i z_i a_i over the top-`rank` PCA axes a_i of the K
                      checkpoints, z ~ N(0, diag(w^2)) in the rank-k space with w = scale
                      (unit-norm axes, the notebook) or scale times the checkpoints' std
                      along each axis (SWAG)
  weight_average      the mean of the K checkpoints (SWA-like); deterministic
  variational         theta + scale * std * eps, eps ~ N(0, I): a draw from a
                      variational run's posterior (mean theta, std per weight; scale 1
                      = the posterior itself, `train.posteriors`)
  mc_dropout          not a weight vector: the network with its own dropout layers
                      active on the activations at inference, rate = scale (0: the
                      run's training rate), one pass = one function (Gal & Ghahramani
                      2016). Not to be confused with "dropout" above, which drops
                      weights of the solution (the paper's sampler).

The last two are the model's own randomness (`MODEL_METHODS`): they use only the last
checkpoint, and need a variational run (variational) or a deterministic one with
dropout layers (mc_dropout).
"""
import dataclasses

import numpy as np

from uncertainty.infra.errors import UserError

PAPER_METHODS = ("random", "dropout", "diagonal_gaussian", "low_rank_gaussian",
                 "weight_average")


MODEL_METHODS = ("variational", "mc_dropout")


METHODS = PAPER_METHODS + MODEL_METHODS


LOW_RANK_SCALINGS = ("unit", "swag")


NUM_CHECKPOINTS = 10  # the last 10 epoch checkpoints give the moments (the paper's)


SELECTION_SPLIT = "validation"  # where the acceptance rule looks; never the reported split


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
    """How one method draws its samples.

    scale: the method's scale (t, p or s), or its maximum when `uniform` (value x U(0,1)
    per sample); rank, low_rank_scaling: the low-rank Gaussian's; accept_threshold:
    redraw a sample whose validation accuracy is below it, up to `accept_tries` times
    (the notebook's rule for random samples)."""

    method: str
    scale: float = 0.0
    uniform: bool = False
    rank: int = 5
    low_rank_scaling: str = "unit"
    accept_threshold: float | None = None
    accept_tries: int = 5

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"unknown subspace method {self.method!r}; choose one of "
                            f"{', '.join(METHODS)}")
        if self.scale < 0:
            flag = "mc_dropout_rate" if self.method == "mc_dropout" else f"{self.method}_scale"
            raise UserError(f"--{flag} must be >= 0, got {self.scale}")
        if self.method == "dropout" and self.scale >= 1:
            raise UserError(f"--dropout_scale must be below 1, got {self.scale}")
        if self.method == "mc_dropout" and self.scale >= 1:
            raise UserError(f"--mc_dropout_rate must be below 1, got {self.scale}")
        if self.low_rank_scaling not in LOW_RANK_SCALINGS:
            raise UserError(f"unknown low-rank scaling {self.low_rank_scaling!r}; choose "
                            f"one of {', '.join(LOW_RANK_SCALINGS)}")
        if self.accept_threshold is not None and not 0 <= self.accept_threshold <= 1:
            raise UserError(f"--accept_threshold is an accuracy in [0, 1], got "
                            f"{self.accept_threshold}")
        if self.rank < 1 or self.accept_tries < 1:
            raise UserError("--rank and --accept_tries must be positive")

    def draw_scale(self, rng: np.random.Generator) -> float:
        return float(self.scale * rng.uniform()) if self.uniform else float(self.scale)


def _presets(**scales) -> dict[str, SamplerSpec]:
    defaults = {"variational": (1.0, False)}  # mc_dropout 0: the run's training rate
    return {m: SamplerSpec(m, *scales.get(m, defaults.get(m, (0.0, False))))
            for m in METHODS}


# "ensemble": the paper's scales for ensembling; "plane": widened to cover the accuracy
# range of the diversity-accuracy plane (random 70 U, diagonal 10 U, low-rank s = 6).
PRESETS = {
    "ensemble": _presets(random=(10.0, True), dropout=(0.1, True),
                         diagonal_gaussian=(1.0, False), low_rank_gaussian=(1.0, False)),
    "plane": _presets(random=(70.0, True), dropout=(0.1, True),
                      diagonal_gaussian=(10.0, True), low_rank_gaussian=(6.0, False)),
}


def add_method(name: str) -> None:
    """Names a new weight-space method (`subspace.register` calls it): it is accepted
    by `SamplerSpec` and present in every preset at scale 0."""
    global METHODS
    if name in METHODS:
        raise ValueError(f"sampling method {name!r} exists")
    METHODS = METHODS + (name,)
    for preset in PRESETS.values():
        preset[name] = SamplerSpec(name)
