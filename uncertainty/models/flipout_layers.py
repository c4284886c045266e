"""TFP's Flipout layers with resumable noise, and the posteriors, priors and KL terms
of `flipout.Variational`: the part of the variational twins that needs TensorFlow
Probability, imported when a variational model is built (`flipout` has the rest)."""

import numpy as np
import tensorflow as tf
import tensorflow_probability as tfp
import tf_keras as keras

from uncertainty.core import seeding

tfd = tfp.distributions
STDDEV_INIT_JITTER = 0.1  # uncertainty-baselines': the std of rho's truncated normal


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


LAYERS = {"conv1d": Conv1DFlipout, "conv2d": Conv2DFlipout, "dense": DenseFlipout}


def softplus_inverse(x: float) -> float:
    return float(np.log(np.expm1(x)))


def make(spec, kind: str, *args, name: str, kernel_initializer, bias_initializer,
         **kwargs):
    """A Flipout layer of `kind` (`LAYERS`) named `name`, with the posterior, prior and
    KL term of `spec` (a `flipout.Variational`) and its noise seeded from it."""
    layer = LAYERS[kind](
        *args, name=name,
        kernel_posterior_fn=_posterior(spec, kernel_initializer, name),
        kernel_prior_fn=lambda dtype, shape, *_: _prior(spec, dtype, shape),
        kernel_divergence_fn=lambda posterior, prior, _: _divergence(spec, posterior, prior),
        bias_posterior_fn=_posterior(spec, bias_initializer, name, singular=True),
        **kwargs)
    layer._make_generator(seeding.integer(spec.seed, "flipout", name))
    return layer


def _posterior(spec, initializer, name: str, singular: bool = False):
    scale = keras.initializers.TruncatedNormal(
        mean=softplus_inverse(spec.posterior_init_stddev), stddev=STDDEV_INIT_JITTER,
        seed=seeding.integer(spec.seed, "posterior_init", name))
    return tfp.layers.default_mean_field_normal_fn(
        is_singular=singular, loc_initializer=keras.initializers.get(initializer),
        untransformed_scale_initializer=scale)


def _prior(spec, dtype, shape):
    return tfd.Independent(tfd.Normal(tf.zeros(shape, dtype),
                                      tf.constant(spec.prior_stddev, dtype)),
                           reinterpreted_batch_ndims=len(shape))


def _divergence(spec, posterior, prior):
    if spec.prior == "zero_mean":
        return tfd.kl_divergence(posterior, prior) / spec.num_train_examples
    sigma = tf.convert_to_tensor(posterior.distribution.scale)
    ratio = sigma / tf.constant(spec.prior_stddev, sigma.dtype)
    return tf.reduce_sum(0.5 * tf.square(ratio) - tf.math.log(ratio) - 0.5
                         ) / spec.num_train_examples
