"""Layers shared by the architectures."""

import math

import tf_keras as keras


class Dropout(keras.layers.Dropout):
    """Keras dropout whose random-number state is saved in checkpoints.

    Keras keeps the dropout generator out of checkpoints, so a resumed run would draw
    different masks than an uninterrupted one. Exposing the generator as a checkpoint
    dependency makes resumption bit-exact.
    """

    def __init__(self, rate: float, seed: int | None = None, **kwargs):
        super().__init__(rate, seed=seed, rng_type="stateful", **kwargs)

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        generator = getattr(self._random_generator, "_generator", None)
        if save_type == "checkpoint" and generator is not None:
            children["rng"] = generator
        return children


def glorot_bias(units: int) -> keras.initializers.Initializer:
    """Glorot-uniform for a bias of `units`, as TF1's xavier init saw the notebook's
    [1, 1, units] bias: fan_in = 1, fan_out = units."""
    limit = math.sqrt(6.0 / (1 + units))
    return keras.initializers.RandomUniform(-limit, limit)
