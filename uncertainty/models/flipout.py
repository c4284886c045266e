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
import tensorflow_probability as tfp
import tf_keras as keras

from uncertainty.core import seeding

tfd = tfp.distributions
# TFP's layers create their variables through Keras's deprecated `add_variable`, which
# warns at every build; `models.build` hides this warning, and only it, while it builds.
ADD_VARIABLE_WARNING = "`layer.add_variable` is deprecated"


def _signs(shape, seed, dtype):
    """Random +-1 of `shape` (Rademacher) from a stateless seed."""
    bits = tf.random.stateless_uniform(shape, seed, minval=0, maxval=2, dtype=tf.int32)
    return tf.cast(2 * bits - 1, dtype)


class _Flipout:
    """Flipout's kernel: x * mu + ((x * s_in) * dW) * s_out, with dW ~ N(0, sigma^2)
    drawn once per batch and s_in, s_out random signs per example, all from the
    layer's checkpointed generator."""

    def _make_generator(self, seed: int) -> None:
        object.__setattr__(self, "_rng", tf.random.Generator.from_seed(seed))

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        if save_type == "checkpoint":
            children["rng"] = self._rng
        return children

    def _product(self, inputs, kernel):
        raise NotImplementedError

    def _sign_shapes(self, inputs):
        raise NotImplementedError

    def _apply_variational_kernel(self, inputs):
        posterior = self.kernel_posterior.distribution
        loc, scale = posterior.loc, tf.convert_to_tensor(posterior.scale)
        seeds = self._rng.make_seeds(3)
        noise = scale * tf.random.stateless_normal(tf.shape(loc), seeds[:, 0],
                                                   dtype=loc.dtype)
        shape_in, shape_out = self._sign_shapes(inputs)
        sign_in = _signs(shape_in, seeds[:, 1], inputs.dtype)
        sign_out = _signs(shape_out, seeds[:, 2], inputs.dtype)
        self.kernel_posterior_tensor = None  # the KL is analytic; no sample needed
        return (self._product(inputs, loc)
                + self._product(inputs * sign_in, noise) * sign_out)


class ConvFlipout(_Flipout):
    def _product(self, inputs, kernel):
        return self._convolution_op(inputs, kernel)

    def _sign_shapes(self, inputs):
        batch = tf.shape(inputs)[:1]
        ones = tf.ones([self.rank], tf.int32)  # broadcast over the spatial axes
        return (tf.concat([batch, ones, tf.shape(inputs)[-1:]], 0),
                tf.concat([batch, ones, [self.filters]], 0))


class Conv1DFlipout(ConvFlipout, tfp.layers.Convolution1DFlipout):
    pass


class Conv2DFlipout(ConvFlipout, tfp.layers.Convolution2DFlipout):
    pass


class DenseFlipout(_Flipout, tfp.layers.DenseFlipout):
    def _product(self, inputs, kernel):
        return tf.matmul(inputs, kernel)

    def _sign_shapes(self, inputs):
        shape = tf.shape(inputs)
        return shape, tf.concat([shape[:-1], [self.units]], 0)


FLIPOUT_LAYERS = (Conv1DFlipout, Conv2DFlipout, DenseFlipout)


PRIORS = ("tied_mean", "zero_mean")
STDDEV_INIT_JITTER = 0.1  # uncertainty-baselines': the std of rho's truncated normal


def softplus_inverse(x: float) -> float:
    return float(np.log(np.expm1(x)))


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

    def _posterior(self, initializer, name: str, singular: bool = False):
        scale = keras.initializers.TruncatedNormal(
            mean=softplus_inverse(self.posterior_init_stddev), stddev=STDDEV_INIT_JITTER,
            seed=seeding.integer(self.seed, "posterior_init", name))
        return tfp.layers.default_mean_field_normal_fn(
            is_singular=singular, loc_initializer=keras.initializers.get(initializer),
            untransformed_scale_initializer=scale)

    def _prior(self, dtype, shape, name, trainable, add_variable_fn):
        return tfd.Independent(tfd.Normal(tf.zeros(shape, dtype),
                                          tf.constant(self.prior_stddev, dtype)),
                               reinterpreted_batch_ndims=len(shape))

    def _divergence(self, posterior, prior, _):
        if self.prior == "zero_mean":
            return tfd.kl_divergence(posterior, prior) / self.num_train_examples
        sigma = tf.convert_to_tensor(posterior.distribution.scale)
        ratio = sigma / tf.constant(self.prior_stddev, sigma.dtype)
        return tf.reduce_sum(0.5 * tf.square(ratio) - tf.math.log(ratio) - 0.5
                             ) / self.num_train_examples

    def _make(self, layer_class, *args, name: str, kernel_initializer, bias_initializer,
              **kwargs):
        layer = layer_class(
            *args, name=name,
            kernel_posterior_fn=self._posterior(kernel_initializer, name),
            kernel_prior_fn=self._prior, kernel_divergence_fn=self._divergence,
            bias_posterior_fn=self._posterior(bias_initializer, name, singular=True),
            **kwargs)
        layer._make_generator(seeding.integer(self.seed, "flipout", name))
        return layer

    def conv(self, rank: int, filters: int, kernel_size: int, name: str, strides: int = 1,
             kernel_initializer="glorot_uniform", bias_initializer="zeros", l2: float = 0.0):
        layer_class = {1: Conv1DFlipout, 2: Conv2DFlipout}[rank]
        return self._make(layer_class, filters, kernel_size, strides=strides,
                          padding="same", name=name, kernel_initializer=kernel_initializer,
                          bias_initializer=bias_initializer)

    def dense(self, units: int, name: str, kernel_initializer="glorot_uniform",
              bias_initializer="zeros", l2: float = 0.0):
        return self._make(DenseFlipout, units, name=name,
                          kernel_initializer=kernel_initializer,
                          bias_initializer=bias_initializer)


def is_variational(model: keras.Model) -> bool:
    """Whether `model` has Flipout layers (remembered per model: walking a model's
    submodules takes ~10 ms, and every checkpoint read asks)."""
    if model not in _VARIATIONAL:
        _VARIATIONAL[model] = any(isinstance(layer, FLIPOUT_LAYERS)
                                  for layer in model.submodules)
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
        if isinstance(layer, FLIPOUT_LAYERS):
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
