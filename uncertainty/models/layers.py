"""Layers shared by the architectures, and the factory that makes their weight layers.

Builders take `layers=` (a `Deterministic` here, or `models.flipout.Variational`)
and ask it for every convolution and dense layer, so one builder defines an
architecture and its variational twin, layer for layer under the same names.
"""

import contextlib
import dataclasses
import math
import threading

import numpy as np
import tensorflow as tf
import tf_keras as keras


class Normalizer(keras.layers.Layer):
    """The run's input preprocessing inside the model: (raw - shift) / scale in float32.

    `shift` and `scale` (`Dataset.normalizer`) are non-trainable weights, so a
    checkpoint or an exported model takes raw inputs (pixels 0..255, signals) and
    carries its own preprocessing; left None they start at 0 and 1 (to be restored).
    """

    def __init__(self, shift: np.ndarray | None = None, scale: np.ndarray | None = None,
                 **kwargs):
        super().__init__(dtype="float32", **kwargs)  # full precision under mixed policies
        self._values = (shift, scale)

    def build(self, input_shape):
        shift, scale = self._values
        self.shift = self.add_weight(
            "shift", tuple(input_shape[1:]), trainable=False,
            initializer="zeros" if shift is None else keras.initializers.Constant(shift))
        self.scale = self.add_weight(
            "scale", tuple(input_shape[1:]), trainable=False,
            initializer="ones" if scale is None else keras.initializers.Constant(scale))

    def call(self, inputs):
        return (tf.cast(inputs, tf.float32) - self.shift) / self.scale


class Dropout(keras.layers.Dropout):
    """Keras dropout whose random-number state is saved in checkpoints.

    Keras keeps the dropout generator out of checkpoints, so a resumed run would draw
    different masks than an uninterrupted one. Exposing the generator as a checkpoint
    dependency makes resumption bit-exact.

    `always_on` keeps dropout active at inference too (MC dropout: the network's own
    dropout on activations, one mask per pass); `reseed` restarts the masks' stream,
    and `given_masks` lets a traced call take its keep masks instead of drawing them.
    """

    def __init__(self, rate: float, seed: int | None = None, always_on: bool = False,
                 **kwargs):
        super().__init__(rate, seed=seed, rng_type="stateful", **kwargs)
        self.always_on = always_on

    def call(self, inputs, training=None):
        if not self.always_on or self.rate == 0:
            return super().call(inputs, training=True if self.always_on else training)
        # Keras's dropout (tf.nn.experimental.general_dropout's operations), its keep
        # mask drawn from the same generator or given
        masks = getattr(_MASKS, "by_layer", {}).get(id(self), {"given": None})
        keep = masks["given"]
        if keep is None:
            self._random_generator._maybe_init()
            shape = self._get_noise_shape(inputs)
            noise = self._random_generator._generator.uniform(
                tf.shape(inputs) if shape is None else shape, dtype=inputs.dtype)
            keep = masks["drawn"] = noise >= self.rate
        scale = tf.convert_to_tensor(1 / (1 - self.rate), dtype=inputs.dtype)
        return tf.where(keep, inputs * scale, tf.zeros((), inputs.dtype))

    def reseed(self, seed: int) -> None:
        """Masks from now on come from the stream of `seed`: the state
        `tf.random.Generator.reset_from_seed` sets (the integer cut into 64-bit words,
        lowest first), made on the host and assigned in one op, where TF's own makes it
        in a dozen eager ops (MC dropout reseeds every layer on every pass)."""
        self._random_generator._maybe_init()
        state = self._random_generator._generator.state
        words = [(int(seed) >> (64 * i)) & (2**64 - 1) for i in range(state.shape[0])]
        state.assign(np.array([w - 2**64 if w >= 2**63 else w for w in words], np.int64))

    def _trackable_children(self, save_type="checkpoint", **kwargs):
        children = super()._trackable_children(save_type, **kwargs)
        generator = getattr(self._random_generator, "_generator", None)
        if save_type == "checkpoint" and generator is not None:
            children["rng"] = generator
        return children


def mc_dropout_layers(model: keras.Model) -> list[Dropout]:
    """The model's dropout layers that stay on at inference, in order."""
    return [layer for layer in model.layers
            if isinstance(layer, Dropout) and layer.always_on and layer.rate > 0]


@contextlib.contextmanager
def given_masks(model: keras.Model, masks: tuple | None = None):
    """While a call of `model` is traced inside: its MC-dropout layers
    (`mc_dropout_layers`) drop by `masks` (one boolean keep mask per layer) when given,
    else draw them; after the call the yielded list holds the masks used."""
    layers = mc_dropout_layers(model)
    _MASKS.by_layer = {id(layer): {"given": mask, "drawn": None}
                       for layer, mask in zip(layers, masks or (None,) * len(layers))}
    used = []
    try:
        yield used
    finally:
        used.extend(entry["given"] if entry["given"] is not None else entry["drawn"]
                    for entry in _MASKS.by_layer.values())
        _MASKS.by_layer = {}


# Inside `given_masks`, per thread (a strategy's replicas trace on threads of their
# own): {id(layer): {"given": keep mask or None, "drawn": the mask the call drew}}.
_MASKS = threading.local()


def glorot_bias(units: int) -> keras.initializers.Initializer:
    """Glorot-uniform for a bias of `units`, as TF1's xavier init saw the notebook's
    [1, 1, units] bias: fan_in = 1, fan_out = units."""
    limit = math.sqrt(6.0 / (1 + units))
    return keras.initializers.RandomUniform(-limit, limit)


@dataclasses.dataclass(frozen=True)
class Deterministic:
    """Keras's Conv1D/Conv2D/Dense with an L2 penalty on kernels when `l2` > 0."""

    def conv(self, rank: int, filters: int, kernel_size: int, name: str, strides: int = 1,
             kernel_initializer="glorot_uniform", bias_initializer="zeros", l2: float = 0.0):
        layer = {1: keras.layers.Conv1D, 2: keras.layers.Conv2D}[rank]
        return layer(filters, kernel_size, strides=strides, padding="same", name=name,
                     kernel_initializer=kernel_initializer,
                     bias_initializer=bias_initializer,
                     kernel_regularizer=keras.regularizers.l2(l2) if l2 else None)

    def dense(self, units: int, name: str, kernel_initializer="glorot_uniform",
              bias_initializer="zeros", l2: float = 0.0):
        return keras.layers.Dense(units, name=name, kernel_initializer=kernel_initializer,
                                  bias_initializer=bias_initializer,
                                  kernel_regularizer=keras.regularizers.l2(l2) if l2 else None)
