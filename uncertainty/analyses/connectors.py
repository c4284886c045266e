"""Low-loss paths between two solutions (paper v2; Garipov et al. 2018).

  line(a, b, t)              the straight line a + t (b - a)
  bezier(a, bend, b, t)      the quadratic Bezier curve (1-t)^2 a + 2t(1-t) bend + t^2 b
  BezierCurve(base, a, b)    that curve as a Keras model whose only trainable weights are
                             the bend: called on (inputs, t) it runs the network `base`
                             with the weights of the curve's point at t
  train_bezier(run_a, ...)   trains the bend between two runs' solutions through the one
                             training loop (`loop.fit`), a random t per step
  trained_bend(..., path)    the same, read back from `path` if trained there before
"""

import contextlib
import dataclasses
import json

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from uncertainty import models
from uncertainty.core import seeding
from uncertainty.datasets import Dataset
from uncertainty.infra import files
from uncertainty.runs import checkpoints, layout
from uncertainty.train import loop, train_config

# Layer attributes that hold trainable weights, in the layers the models here use.
_WEIGHT_ATTRIBUTES = ("kernel", "bias", "gamma", "beta")


def _bezier(a, bend, b, t):
    """The curve's formula, for numpy arrays and tensors alike."""
    return (1 - t) ** 2 * a + 2 * t * (1 - t) * bend + t ** 2 * b


def bezier(a: np.ndarray, bend: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The curve's point at t in [0, 1] (a at 0, b at 1), float32."""
    return np.asarray(_bezier(a, bend, b, t), np.float32)


def line(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation a + t (b - a), float32."""
    return (a + t * (b - a)).astype(np.float32)


def _weight_slots(model: keras.Model) -> list[tuple]:
    """(layer, attribute, variable) of each of `model.trainable_weights`, in order."""
    owners = {}
    for layer in model.submodules:
        for attribute in _WEIGHT_ATTRIBUTES:
            value = vars(layer).get(attribute)
            if isinstance(value, tf.Variable):
                owners[id(value)] = (layer, attribute, value)
    missing = [w.name for w in model.trainable_weights if id(w) not in owners]
    if missing:
        raise ValueError(f"{model.name}: weights {missing} are not held by a layer "
                         f"attribute in {_WEIGHT_ATTRIBUTES}; a curve cannot set them")
    return [owners[id(w)] for w in model.trainable_weights]


@contextlib.contextmanager
def _weights_replaced(slots: list[tuple], tensors: list[tf.Tensor]):
    """The layers compute with `tensors` instead of their variables (set behind Keras'
    attribute tracking, which would adopt them as weights), restored on exit."""
    try:
        for (layer, attribute, _), tensor in zip(slots, tensors):
            object.__setattr__(layer, attribute, tensor)
        yield
    finally:
        for layer, attribute, variable in slots:
            object.__setattr__(layer, attribute, variable)


class BezierCurve(keras.Model):
    """The quadratic Bezier curve from weights `a` to `b` (lists of arrays shaped as
    `base.trainable_weights`) through `base`'s weight space.

    Its trainable weights are the bend only (initially `bend`, default the midpoint of
    a and b); the ends are constants. Called on (inputs, t), t a scalar in [0, 1], it
    returns `base`'s logits with the curve's point at t as weights, and adds `base`'s
    weight regularisers evaluated at that point to its losses; gradients reach the bend
    through the point (times 2t(1-t)). `base` is not tracked: its own variables are not
    this model's and are not changed (except batch-norm statistics, in training mode).
    Not for use under a multi-replica strategy (the swap is not thread-safe).
    """

    def __init__(self, base: keras.Model, a: list[np.ndarray], b: list[np.ndarray],
                 bend: list[np.ndarray] | None = None, **kwargs):
        super().__init__(**kwargs)
        slots = _weight_slots(base)
        shapes = [tuple(v.shape) for _, _, v in slots]
        bend = bend if bend is not None else [(x + y) / 2 for x, y in zip(a, b)]
        for name, arrays in (("a", a), ("b", b), ("bend", bend)):
            if [tuple(np.shape(w)) for w in arrays] != shapes:
                raise ValueError(f"{name} does not have the shapes of {base.name}'s "
                                 f"trainable weights")
        object.__setattr__(self, "_base", base)  # untracked, see the class doc
        object.__setattr__(self, "_slots", slots)
        object.__setattr__(self, "_ends", [
            (tf.constant(x, tf.float32), tf.constant(y, tf.float32)) for x, y in zip(a, b)])
        self.bend = [self.add_weight(name=f"bend_{i}", shape=shape, dtype=tf.float32,
                                     initializer=keras.initializers.Constant(m))
                     for i, (shape, m) in enumerate(zip(shapes, bend))]
        self.built = True

    def point(self, t) -> list[tf.Tensor]:
        """The curve's weights at t, as tensors that depend on the bend."""
        t = tf.cast(tf.reshape(t, []), tf.float32)
        return [_bezier(a, m, b, t) for (a, b), m in zip(self._ends, self.bend)]

    def call(self, inputs, training=None):
        images, t = inputs
        weights = self.point(t)
        for (layer, attribute, _), w in zip(self._slots, weights):
            regularizer = getattr(layer, f"{attribute}_regularizer", None)
            if regularizer is not None:
                self.add_loss(regularizer(w))
        with _weights_replaced(self._slots, weights):
            return self._base(images, training=training)


def train_bezier(run_a: str, run_b: str, data: Dataset, epochs: int,
                 learning_rate: float | None = None, seed: int = 0
                 ) -> tuple[np.ndarray, list[float]]:
    """Trains the bend between the final solutions of two runs of one model, from
    their midpoint, with run a's recipe (optimizer, learning-rate schedule over
    `epochs`, batch size, sampling, augmentation; `learning_rate` replaces its rate)
    through `loop.fit`, at a t ~ U(0, 1) per step. `data` is the runs' dataset
    (`cli.common_flags.load_run_data`: its training split is what the runs trained on).

    Batch order, t draws and dropout masks derive from `seed` and the two runs'
    identities. Returns the bend as a flat vector (as `checkpoints.load_weights` orders
    it) and the mean training cross-entropy along the curve of every epoch."""
    config = train_config.TrainConfig.of_run(run_a)
    config = dataclasses.replace(config, train_epochs=epochs,
                                 learning_rate=learning_rate or config.learning_rate)
    if data.train_examples != config.train_examples:
        raise ValueError(f"{run_a} trained on {config.train_examples or 'all'} training "
                         f"examples, the data holds {data.num_examples('train')}")
    pair = (layout.identity(run_a), layout.identity(run_b))
    base = models.build(config.model, data.input_shape, data.num_classes,
                        dropout_rate=config.dropout_rate, l2=config.l2,
                        seed=seeding.integer(seed, "connector_dropout", *pair))
    base.set_weights(checkpoints.load_arrays(run_a))  # BN statistics: a's, then the batches'
    shapes = [tuple(w.shape) for w in base.trainable_weights]
    curve = BezierCurve(base, *(checkpoints.unflatten(checkpoints.load_weights(r), shapes)
                                for r in (run_a, run_b)), name="bezier_curve")
    optimizer = loop.make_optimizer(config.optimizer, config.learning_rate,
                                        config.momentum)
    steps = data.num_examples("train") // config.batch_size
    order = seeding.integer(seed, "connector_batches", *pair)

    def batches(epoch, input_context, first_step):
        examples = data.train_pipeline(
            config.batch_size, steps, order, epoch,
            with_replacement=config.sample_with_replacement, augment=config.augment,
            input_context=input_context, first_step=first_step)
        ts = seeding.rng(seed, "connector_t", *pair, epoch).uniform(size=steps)[first_step:]
        return tf.data.Dataset.zip((examples, tf.data.Dataset.from_tensor_slices(
            ts.astype(np.float32)))).map(lambda batch, t: ((batch[0], t), batch[1]))

    def report(epoch, scalars):
        logging.info("connector epoch %d/%d: mean loss along the curve %.4f", epoch + 1,
                     epochs, scalars["train/loss"])

    history = loop.fit(config, curve, optimizer, batches, steps, end_of_epoch=report,
                           what="training the connector")
    return (checkpoints.flatten([m.numpy() for m in curve.bend]),
            [scalars["train/loss"] for scalars in history])


def trained_bend(run_a: str, run_b: str, data: Dataset, epochs: int,
                 learning_rate: float | None, seed: int, path: str
                 ) -> tuple[np.ndarray, list[float]]:
    """`train_bezier`'s result, saved to `path` (npz) and read back from it, without
    training, when the same solutions, data and settings made it."""
    settings = json.dumps({
        "runs": [[layout.identity(r), checkpoints.checkpoint_digest(
            r, checkpoints.epochs(r)[-1])] for r in (run_a, run_b)],
        "data": data.identity("train"), "epochs": epochs, "learning_rate": learning_rate,
        "seed": seed}, sort_keys=True)
    saved = files.read_npz_if_intact(path)
    if saved is not None and str(saved.get("settings")) == settings:
        logging.info("connector read from %s", path)
        return saved["bend"], saved["history"].tolist()
    bend, history = train_bezier(run_a, run_b, data, epochs, learning_rate, seed)
    files.write_npz(path, settings=settings, bend=bend, history=np.array(history))
    return bend, history
