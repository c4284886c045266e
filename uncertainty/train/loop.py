"""The one training loop: `fit(config, model, optimizer, batches, steps, ...)`.

It trains any Keras model that maps a batch's inputs to logits: distributed steps,
`steps_per_loop` of them per host call, the recipe's learning-rate schedule, per-epoch
scalars, and a stop with `Diverged` at the first non-finite or too large loss. The
runs (`trainer`) and the connectors between them (`analyses.connectors`) both train
through it.
"""
import dataclasses
import time
from typing import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras

from uncertainty.infra import interrupts, progress
from uncertainty.infra.errors import UserError
from uncertainty.models.flipout import is_variational, point_estimates
from uncertainty.train import recipes, train_config


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9
                   ) -> keras.optimizers.Optimizer:
    """The recipe's optimizer: adam, or sgd with (Nesterov) momentum."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=momentum,
                                nesterov=name == "sgd_nesterov")


class Diverged(UserError):
    """Training stopped: the loss at a step was not finite or above the bound."""

    def __init__(self, loss: float, epoch: int, step: int, step_in_epoch: int,
                 steps: int, learning_rate: float, max_loss: float | None):
        self.loss, self.epoch, self.step = loss, epoch, step
        bound = (f", above --max_loss={max_loss:g}" if np.isfinite(loss) and max_loss
                 is not None else "")
        self.reason = (f"the training loss was {loss:.4g}{bound} at step {step} "
                       f"(epoch {epoch}, step {step_in_epoch} of {steps})")
        self.learning_rate = learning_rate
        super().__init__(self.advice("the learning rate"))

    def advice(self, flag: str) -> str:
        return (f"training diverged: {self.reason}; the learning rate "
                f"({self.learning_rate:.3g}) is the likely cause: lower {flag}, or check "
                f"the inputs for NaN or inf")


@dataclasses.dataclass
class Position:
    """Where training is inside epoch `epoch` (0-based): `step` of its steps done, and
    the sums of its scalars so far (`SUMS`)."""

    epoch: int
    step: int
    sums: np.ndarray  # float64, one value per SUMS name


# What an epoch sums over its steps, in a Position's `sums`.
SUMS = ("loss", "correct", "regularization", "seconds")


@dataclasses.dataclass(frozen=True)
class MidEpoch:
    """Saves inside an epoch: `save(position)` runs between host calls every
    `every_steps` steps (the loop's host calls end on those steps, so the sums are
    the same in an uninterrupted run), after `every_seconds` of training since the
    last save (0: neither), and, with `on_stop`, when a stop request arrives; then
    the request raises `interrupts.Interrupted`."""

    save: Callable[[Position], None]
    every_steps: int = 0
    every_seconds: float = 0.0
    on_stop: bool = True


def fit(config: train_config.TrainConfig, model: keras.Model, optimizer: keras.optimizers.Optimizer,
        batches: Callable[[int, tf.distribute.InputContext | None, int], tf.data.Dataset],
        steps: int, strategy: tf.distribute.Strategy | None = None,
        start: int | Position = 0, end_of_epoch: Callable[[int, dict], None] | None = None,
        steps_per_loop: int = train_config.STEPS_PER_LOOP, max_loss: float | None = None,
        what: str = "training", mid_epoch: MidEpoch | None = None) -> list[dict]:
    """The one loop: epochs `start` .. `config.train_epochs` - 1 (0-based) of `steps`
    steps each, minimising the cross-entropy of `model`'s logits (plus `model.losses`)
    over `model.trainable_variables` with `optimizer`, at the learning rate of
    `config`'s schedule, set at every step (`recipes.epoch_learning_rates`). `start`
    may be a `Position` inside an epoch (a resumed epoch: its sums carry on).

    For a variational model the losses are its KL / N terms, scaled by
    min(1, step / (`config.kl_annealing_epochs` x `steps`)) (linear annealing, step
    1-based, as uncertainty-baselines), plus `config.variational_l2` x sum(v^2) over
    its point estimates (biases, batch norm: `flipout.point_estimates`), not annealed.

    The steps run on the device `steps_per_loop` at a time, inside one `tf.function`
    (the host is called once per loop: what a TPU needs), with the loss and accuracy
    summed there; the weights are the same for any `steps_per_loop`. A stop request
    (`infra.interrupts`) during a host call takes effect after it: `mid_epoch` saves
    the position there.

    `batches(epoch, input_context, first_step)` gives an epoch's per-replica pipeline
    of (inputs, labels) from step `first_step` on, with `config.batch_size` examples
    per global batch; `inputs` is whatever `model` takes. After every epoch
    `end_of_epoch(epoch, scalars)` may add to or save the epoch's scalars (learning
    rate, seconds, training loss, running accuracy, the mean regularisation term).
    Returns the scalars of every epoch it ran.

    A step whose mean loss is not finite, or above `max_loss`, raises `Diverged`
    (at the end of its host call) before anything else of its epoch happens.
    Progress (`infra.progress`) is reported as `what`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    variational = is_variational(model)
    annealing_steps = config.kl_annealing_epochs * steps if variational else 0
    point_l2 = config.variational_l2 if variational else 0.0
    train_loop = _make_train_loop(model, optimizer, strategy, config.batch_size,
                                  annealing_steps, point_l2)
    bound = tf.constant(np.inf if max_loss is None else max_loss, tf.float64)
    examples = steps * config.batch_size
    resumed = (start if isinstance(start, Position) else
               Position(start, 0, np.zeros(len(SUMS))))
    every = mid_epoch.every_steps if mid_epoch else 0
    history = []
    meter = progress.Progress((config.train_epochs - resumed.epoch) * steps - resumed.step,
                              what, "step")
    for epoch in range(resumed.epoch, config.train_epochs):
        rates = np.float32(recipes.epoch_learning_rates(
            config.lr_schedule, config.learning_rate, epoch, steps,
            config.lr_halving_epochs, config.train_epochs))
        here = (resumed if epoch == resumed.epoch else
                Position(epoch, 0, np.zeros(len(SUMS))))
        iterator = iter(strategy.distribute_datasets_from_function(
            lambda ctx, e=epoch, first=here.step: batches(e, ctx, first)))
        began = last_save = time.time()
        sums = here.sums.copy()
        done = here.step
        while done < steps:
            n = min(steps_per_loop, steps - done)
            if every:  # a host call ends on every save step
                n = min(n, every - done % every)
            # padded to one shape, so that the loop is traced once
            loop_rates = np.pad(rates[done:done + n], (0, steps_per_loop - n))
            with interrupts.deferred():
                *loop_sums, bad_step, bad_loss = [float(v) for v in train_loop(
                    iterator, tf.constant(n), tf.constant(loop_rates), bound)]
            if bad_step >= 0:
                meter.close()
                at = done + int(bad_step) + 1  # 1-based
                raise Diverged(bad_loss, epoch + 1, epoch * steps + at, at, steps,
                               float(rates[at - 1]), max_loss)
            sums[:3] += loop_sums
            done += n
            meter.update(n)
            stop = interrupts.requested() is not None
            due = done < steps and (every and done % every == 0 or mid_epoch and
                                    mid_epoch.every_seconds and
                                    time.time() - last_save >= mid_epoch.every_seconds)
            if mid_epoch and (due or stop and mid_epoch.on_stop):
                now = time.time()
                mid_epoch.save(Position(epoch, done, np.append(
                    sums[:3], here.sums[3] + now - began)))
                last_save = now
            interrupts.check()  # a stop request: the position is saved
        scalars = {"epoch": epoch + 1, "learning_rate": float(rates[-1]),
                   "epoch_seconds": here.sums[3] + time.time() - began,
                   "train/loss": sums[0] / examples,
                   "train/running_accuracy": sums[1] / examples,
                   "train/regularization_loss": sums[2] / steps}
        if end_of_epoch is not None:
            end_of_epoch(epoch, scalars)
        history.append(scalars)
    meter.close()
    return history


def _make_train_loop(model, optimizer, strategy, global_batch: int,
                     annealing_steps: int = 0, point_l2: float = 0.0):
    """A tf.function running `n` distributed steps on batches (inputs, labels) from a
    distributed iterator, step i at learning rate `rates[i]`; returns the sums over
    them of the examples' cross-entropies, the number correct, and the regularisation
    term, then the index of the first step whose mean loss is not finite or above
    `max_loss` (-1: none) and that loss (float64). With
    `annealing_steps` the regularisation (KL) term is annealed, and `point_l2` x
    sum(v^2) over a variational model's point estimates is added to it unannealed;
    under a mixed-float16
    policy the loss is scaled (`keras.mixed_precision.LossScaleOptimizer`)."""
    scaled = isinstance(optimizer, keras.mixed_precision.LossScaleOptimizer)

    def step(inputs, labels):
        with tf.GradientTape() as tape:
            logits = tf.cast(model(inputs, training=True), tf.float32)
            per_example = keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)
            loss = tf.nn.compute_average_loss(per_example, global_batch_size=global_batch)
            regularization = tf.constant(0.0)
            if model.losses:
                regularization = tf.add_n([tf.cast(term, tf.float32) for term in model.losses])
                if annealing_steps:
                    regularization *= tf.minimum(1.0, tf.cast(
                        optimizer.iterations + 1, tf.float32) / annealing_steps)
            if point_l2:
                regularization += point_l2 * tf.add_n(
                    [tf.reduce_sum(tf.square(tf.cast(v, tf.float32)))
                     for v in point_estimates(model)])
            if model.losses or point_l2:
                loss += tf.nn.scale_regularization_loss(regularization)
            if scaled:
                loss = optimizer.get_scaled_loss(loss)
        grads = tape.gradient(loss, model.trainable_variables)
        if scaled:
            grads = optimizer.get_unscaled_gradients(grads)
        optimizer.apply_gradients(zip(grads, model.trainable_variables))
        correct = tf.equal(tf.argmax(logits, -1, output_type=labels.dtype), labels)
        return (tf.reduce_sum(per_example), tf.reduce_sum(tf.cast(correct, tf.float32)),
                regularization)

    def reduced(batch, rate):
        optimizer.learning_rate.assign(rate)
        loss, correct, regularization = strategy.run(step, args=batch)
        return [tf.cast(strategy.reduce(op, value, axis=None), tf.float64) for op, value in
                ((tf.distribute.ReduceOp.SUM, loss), (tf.distribute.ReduceOp.SUM, correct),
                 (tf.distribute.ReduceOp.MEAN, regularization))]

    def first_bad(found, sums, i, max_loss):
        """[index, loss] of the first bad step so far, given step i's `sums`."""
        loss = sums[0] / global_batch
        bad = tf.logical_or(tf.logical_not(tf.math.is_finite(loss + sums[2])),
                            loss > max_loss)
        return tf.where(tf.logical_and(found[0] < 0, bad),
                        tf.stack([tf.cast(i, tf.float64), loss]), found)

    @tf.function
    def train_loop(iterator, n, rates, max_loss):
        sums = reduced(next(iterator), rates[0])
        found = first_bad(tf.constant([-1.0, 0.0], tf.float64), sums, 0, max_loss)
        for i in tf.range(1, n):
            step_sums = reduced(next(iterator), rates[i])
            found = first_bad(found, step_sums, i, max_loss)
            sums = [a + b for a, b in zip(sums, step_sums)]
        return sums + [found[0], found[1]]

    return train_loop

