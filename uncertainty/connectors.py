"""Low-loss paths between two solutions (paper v2; Garipov et al. 2018): a quadratic
Bezier curve phi(t) = (1-t)^2 a + 2t(1-t) bend + t^2 b whose middle point `bend` is
trained so that the loss is low along the whole curve, for t ~ U(0, 1) at every step.
"""

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from uncertainty import models, training, trajectory
from uncertainty.datasets import Dataset


def bezier(a: np.ndarray, bend: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """The curve's point at t in [0, 1] (a at 0, b at 1)."""
    return ((1 - t) ** 2 * a + 2 * t * (1 - t) * bend + t ** 2 * b).astype(np.float32)


def line(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    """Linear interpolation a + t (b - a)."""
    return (a + t * (b - a)).astype(np.float32)


def train_bezier(run_a: str, run_b: str, data: Dataset, epochs: int, learning_rate: float,
                 seed: int = 0, batch_size: int | None = None) -> tuple[np.ndarray, list]:
    """Trains the bend between the final solutions of two runs of the same model, from
    their midpoint, with the runs' optimizer type, batch size and sampling, minimising
    the cross-entropy (plus the model's regularisers) at a random t per step.

    Returns the bend as a flat vector (as `trajectory.load_weights` orders it) and the
    mean training loss of every epoch."""
    config = trajectory.read_config(run_a)
    batch_size = batch_size or config["batch_size"]
    keras.utils.set_random_seed(seed)
    model = models.build(config["model"], data.input_shape, data.num_classes,
                         dropout_rate=config["dropout_rate"], l2=config["l2"], seed=seed)
    shapes = [tuple(v.shape) for v in model.trainable_variables]
    ends = [trajectory.unflatten(trajectory.load_weights(r), shapes) for r in (run_a, run_b)]
    model.set_weights(trajectory.load_arrays(run_a))  # BN statistics, refreshed by training
    bend = [tf.Variable((a + b) / 2, name=f"bend_{i}")
            for i, (a, b) in enumerate(zip(*ends))]
    ends = [[tf.constant(w) for w in e] for e in ends]
    optimizer = training.make_optimizer(config["optimizer"], learning_rate,
                                        config.get("momentum", 0.9))

    @tf.function
    def step(images, labels, t):
        for var, a, b, m in zip(model.trainable_variables, *ends, bend):
            var.assign((1 - t) ** 2 * a + 2 * t * (1 - t) * m + t ** 2 * b)
        with tf.GradientTape() as tape:
            logits = model(images, training=True)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True))
            if model.losses:
                loss += tf.add_n(model.losses)
        grads = tape.gradient(loss, model.trainable_variables)
        optimizer.apply_gradients([(2 * t * (1 - t) * g, m) for g, m in zip(grads, bend)])
        return loss

    normalizer = trajectory.read_normalizer(run_a)
    steps = data.num_examples("train") // batch_size
    rng = np.random.default_rng([seed, 23])
    history = []
    for epoch in range(epochs):
        batches = data.train_pipeline(batch_size, steps, seed + 1000, epoch, normalizer,
                                      with_replacement=config["sample_with_replacement"])
        losses = [float(step(images, labels, tf.constant(rng.uniform(), tf.float32)))
                  for images, labels in batches]
        history.append(float(np.mean(losses)))
        logging.info("connector epoch %d/%d: mean loss along the curve %.4f", epoch + 1,
                     epochs, history[-1])
    return trajectory.flatten([m.numpy() for m in bend]), history
