"""Variational twins of the architectures: mean-field Gaussian weights trained with
Flipout (Wen et al. 2018) from TensorFlow Probability's layers.

`Variational(...)` is a layer factory (`models.layers`): every conv and dense kernel
becomes a `tfp.layers` Flipout layer with
- posterior q(w) = N(mu, sigma^2) per weight, sigma = softplus(rho); mu starts at the
  deterministic model's initialiser, rho at softplus^-1(`posterior_init_stddev`) plus
  a truncated normal jitter of std 0.1 (uncertainty-baselines' TrainableHeNormal
  stddev initialiser);
- prior, `prior` = "tied_mean" (the default, uncertainty-baselines' edward2
  NormalKLDivergenceWithTiedMean): p(w) = N(mu, `prior_stddev`^2), its mean tied to
  the posterior's, so that only sigma is penalised:
  KL = sum log(prior_stddev / sigma) + sigma^2 / (2 prior_stddev^2) - 1/2;
  or "zero_mean": p(w) = N(0, `prior_stddev`^2), which also penalises mu^2 /
  (2 prior_stddev^2) per weight (an L2 on the means);
- KL(q || p) divided by `num_train_examples`, added to the model's losses, so that the
  training loss is NLL + KL / N (the training loop anneals it).
Biases and batch normalisation stay deterministic (point estimates, as in
uncertainty-baselines' variational ResNets), with their own L2 penalty in the training
loop (`point_estimates`, the recipe's `variational_l2`); the kernels' L2 penalty is
replaced by the prior. Layer names are the deterministic twin's, and `twin_weights`
exports a model as the twin's weights (posterior means) with the posterior standard
deviations beside them, so that a draw of weights is evaluated by the deterministic
twin.

Resumable randomness: TFP's Flipout layers seed their sign flips with Python integers
(stateful ops, whose position is lost when a run resumes). These subclasses draw the
kernel noise and the signs with stateless ops from a `tf.random.Generator` that is
saved with the model, so a resumed run draws exactly what an uninterrupted one does.
"""

import dataclasses
import weakref

import numpy as np
import tensorflow as tf
import tf_keras as keras

# TFP's layers create their variables through Keras's deprecated `add_variable`, which
# warns at every build; `models.build` hides this warning, and only it, while it builds.
ADD_VARIABLE_WARNING = "`layer.add_variable` is deprecated"


PRIORS = ("tied_mean", "zero_mean")


@dataclasses.dataclass(frozen=True)
class Variational:
    """Makes Flipout layers (see the module docstring); `seed` seeds their noise and
    the jitter of their posterior's initial standard deviations."""

    prior_stddev: float
    posterior_init_stddev: float
    num_train_examples: int
    seed: int = 0
    prior: str = "tied_mean"

    def __post_init__(self):
        if self.prior not in PRIORS:
            raise ValueError(f"unknown prior {self.prior!r}; choose one of {PRIORS}")

    def conv(self, rank: int, filters: int, kernel_size: int, name: str, strides: int = 1,
             kernel_initializer="glorot_uniform", bias_initializer="zeros", l2: float = 0.0):
        return self._layer(f"conv{rank}d", filters, kernel_size, strides=strides,
                           padding="same", name=name, kernel_initializer=kernel_initializer,
                           bias_initializer=bias_initializer)

    def dense(self, units: int, name: str, kernel_initializer="glorot_uniform",
              bias_initializer="zeros", l2: float = 0.0):
        return self._layer("dense", units, name=name, kernel_initializer=kernel_initializer,
                           bias_initializer=bias_initializer)

    def _layer(self, kind: str, *args, **kwargs):
        from uncertainty.models import flipout_layers  # TFP: once a variational model is built
        return flipout_layers.make(self, kind, *args, **kwargs)


def has_posterior(layer) -> bool:
    """Whether `layer` is a variational layer: one with a kernel posterior (TFP's
    Flipout layers, `flipout_layers`, which this module leaves unimported until a
    variational model is built)."""
    return hasattr(layer, "kernel_posterior")


def is_variational(model: keras.Model) -> bool:
    """Whether `model` has Flipout layers (remembered per model: walking a model's
    submodules takes ~10 ms, and every checkpoint read asks)."""
    if model not in _VARIATIONAL:
        _VARIATIONAL[model] = any(has_posterior(layer) for layer in model.submodules)
    return _VARIATIONAL[model]


_VARIATIONAL: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def point_estimates(model: keras.Model) -> list[tf.Variable]:
    """The trainable variables of a variational model that are not a kernel's
    posterior: biases and batch-norm parameters, which uncertainty-baselines keeps as
    point estimates with an L2 penalty."""
    return [v for v in model.trainable_variables if "kernel_posterior" not in v.name]


def twin_weights(model: keras.Model) -> list[tuple[str, np.ndarray, np.ndarray | None, bool]]:
    """(name, value, posterior std or None, trainable) of each weight of the
    deterministic twin, in its `model.weights` order: a Flipout layer gives the twin's
    kernel (posterior mean, with its std) and bias (deterministic); every other layer
    its own weights."""
    weights = []
    for layer in model.layers:
        if has_posterior(layer):
            kernel = layer.kernel_posterior.distribution
            bias = layer.bias_posterior.distribution
            weights += [(f"{layer.name}/kernel:0", kernel.loc.numpy(),
                         tf.convert_to_tensor(kernel.scale).numpy(), True),
                        (f"{layer.name}/bias:0", tf.convert_to_tensor(bias.loc).numpy(),
                         None, True)]
        else:
            trainable = {id(w) for w in layer.trainable_weights}
            weights += [(w.name, w.numpy(), None, id(w) in trainable)
                        for w in layer.weights]
    return weights
