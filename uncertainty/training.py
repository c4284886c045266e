"""The one training loop: a run's trajectory, checkpointed every epoch, resumable.

`fit(config, model, optimizer, batches, steps, ...)` is the loop itself (distributed
steps, `steps_per_loop` of them per host call, the recipe's learning-rate schedule,
per-epoch scalars) for any Keras model that maps a batch's inputs to logits; the runs
and the connectors between them (`uncertainty.connectors`) both train through it.

`train(config, data, run_dir, strategy)` trains one network from its seed and writes
the run directory described in `uncertainty.trajectory`; with `config.method =
"variational"` the network is the model's variational twin (`models.variational`),
trained on NLL + KL / N with the KL term annealed, and the run reports its posterior
predictive and its posterior mean. Re-running it on the same
directory continues from the last complete epoch's `tf.train.Checkpoint`; with
`config.deterministic` the result is bit-identical to an uninterrupted run (data
order, dropout masks and augmentation are all functions of the seed and the epoch,
and the dropout generator is part of the checkpoint). `config.dtype` builds the model
under a Keras mixed-precision policy.
"""

import contextlib
import dataclasses
import os
import tempfile
import time
from typing import Callable

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from uncertainty import (distribute, files, locks, metrics, models, predictions, progress,
                         recipes, trajectory, variational)
from uncertainty.models.variational import is_variational, twin_weights
from uncertainty.datasets import Dataset
from uncertainty.errors import UserError, reason

# Config fields that say where things are, not what the run is; they may change on resume.
LOCATION_FIELDS = trajectory.LOCATION_FIELDS
# Training steps per host call (`fit`); measured below in benchmarks/train_vs_fit.py.
STEPS_PER_LOOP = 100


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run: the model's recipe (`recipes.RECIPES`, where
    every default lives) with the user's overrides; build it with `from_recipe`."""

    dataset: str
    model: str
    seed: int
    train_epochs: int
    batch_size: int  # global, over all replicas
    learning_rate: float
    lr_schedule: str
    optimizer: str
    l2: float
    dropout_rate: float
    augment: bool
    preprocessing: str
    sample_with_replacement: bool
    validation_examples: int
    lr_halving_epochs: int
    momentum: float  # for sgd
    train_examples: int  # 0 = the whole training split
    deterministic: bool
    dtype: str  # Keras precision policy (recipes.DTYPES)
    method: str  # deterministic, or variational: the fields below are its settings
    prior_stddev: float
    posterior_init_stddev: float
    kl_annealing_epochs: int
    num_posterior_samples: int

    def record(self) -> dict:
        """The fields that define the run, for config.json: a deterministic run's
        omit the variational settings, a float32 run its dtype (so runs made before
        they existed still match, with the same identity)."""
        fields = dataclasses.asdict(self)
        if self.method == "deterministic":
            for name in ("method",) + recipes.VARIATIONAL_FIELDS:
                del fields[name]
        if self.dtype == "float32":
            del fields["dtype"]
        return fields

    @classmethod
    def from_recipe(cls, dataset: str, model: str, seed: int, **overrides
                    ) -> "TrainConfig":
        """`model`'s recipe with the overrides that are not None."""
        models.check(model)
        return cls(dataset=dataset, model=model, seed=seed,
                   **recipes.resolve(model, **overrides))

    @classmethod
    def of_run(cls, run_dir: str) -> "TrainConfig":
        """The config the run in `run_dir` was trained with (the recipe's values for
        fields its config.json predates)."""
        saved = trajectory.read_config(run_dir)
        return cls.from_recipe(saved["dataset"], saved["model"], saved["seed"],
                               **{k: saved.get(k) for k in recipes.RECIPES[saved["model"]]})


def _check(config: TrainConfig, data: Dataset, replicas: int) -> None:
    """Refuses a config the data cannot serve, before anything is written."""
    models.check(config.model, data.input_shape, config.dropout_rate,
                 variational=config.method == "variational")
    if "train" not in data.splits:
        raise UserError(f"{data.name} has no training split; train on its clean dataset "
                        f"and evaluate on this one")
    if config.augment and len(data.input_shape) != 3:
        raise UserError(f"--augment applies to images; {data.name} has inputs of shape "
                        f"{data.input_shape}")
    if config.batch_size > data.num_examples("train"):
        raise UserError(f"--batch_size {config.batch_size} exceeds the "
                        f"{data.num_examples('train')} training examples; lower it")
    if config.method == "variational" and config.dtype != "float32":
        raise UserError(f"--dtype={config.dtype} is for deterministic networks; train "
                        f"--method=variational in float32")
    if config.batch_size % replicas:
        raise UserError(f"--batch_size {config.batch_size} must be divisible by the "
                        f"{replicas} replicas")


def make_optimizer(name: str, learning_rate: float, momentum: float = 0.9
                   ) -> keras.optimizers.Optimizer:
    """The recipe's optimizer: adam, or sgd with (Nesterov) momentum."""
    if name == "adam":
        return keras.optimizers.Adam(learning_rate)
    return keras.optimizers.SGD(learning_rate, momentum=momentum,
                                nesterov=name == "sgd_nesterov")


def train(config: TrainConfig, data: Dataset, run_dir: str,
          strategy: tf.distribute.Strategy | None = None, extra_config: dict | None = None,
          steps_per_loop: int = STEPS_PER_LOOP, eval_train: bool = True,
          max_loss: float | None = None) -> dict:
    """Trains (or resumes, or just reports) the run in `run_dir`; returns its metrics.

    `extra_config` (locations, strategy) is recorded in config.json but may differ when
    the run is resumed. With several workers, `run_dir` must be on a filesystem that
    all of them see: every worker resumes from it, only the chief writes to it. The
    final metrics score the validation and test splits and, with `eval_train`, the
    whole training split (a pass over ImageNet's 1.28M images: off at that scale).

    The chief holds the directory's lock (`locks.hold`) throughout. Resuming verifies
    the checkpoints and continues from the newest one that every earlier one agrees
    with (`trajectory.recover`); a finished run is reported only when all of them
    verify. A training loss that is not finite, or above `max_loss`, stops the run
    (`Diverged`, naming the step) and marks it failed in status.json; its last good
    checkpoint is kept.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if config.train_examples:
        data = data.head("train", config.train_examples)
    _check(config, data, strategy.num_replicas_in_sync)
    chief = distribute.is_chief(strategy)
    with locks.hold(run_dir) if chief else contextlib.nullcontext():
        return _train(config, data, run_dir, strategy, chief, extra_config or {},
                      steps_per_loop, eval_train, max_loss)


def _train(config, data, run_dir, strategy, chief, extra_config, steps_per_loop,
           eval_train, max_loss) -> dict:
    """`train` once the run directory is locked (by the chief)."""
    record = {**config.record(), "data_source": data.source,
              "input_shape": list(data.input_shape), "num_classes": data.num_classes,
              **extra_config}
    trajectory.prepare(run_dir, record, ignore=LOCATION_FIELDS + trajectory.DERIVED_FIELDS,
                       write=chief, defaults=recipes.RECIPES[config.model])
    if trajectory.is_legacy(run_dir):
        if trajectory.is_complete(run_dir):
            return trajectory.read_metrics(run_dir)
        raise UserError(f"{run_dir} is an unfinished run in the .npz format of an older "
                        f"version, which cannot be resumed; train it again in a new "
                        f"--output_dir")
    good = trajectory.recover(run_dir, set_aside=chief)  # resume trusts nothing
    metrics_path = os.path.join(run_dir, trajectory.METRICS)
    if good == config.train_epochs and trajectory.is_complete(run_dir):
        try:
            metrics = trajectory.read_metrics(run_dir)
            logging.info("%s is already trained; reporting its metrics", run_dir)
            return metrics
        except files.CorruptFile as e:
            logging.warning("%s; scoring the checkpoints again", e)
    if chief and files.exists(metrics_path):  # no longer describes the checkpoints
        files.remove(metrics_path)

    model, point, optimizer = _build(config, data, strategy)
    posterior = is_variational(model)
    with strategy.scope():
        done = tf.Variable(0, dtype=tf.int64, trainable=False)  # complete epochs
    state = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=done)
    if good is not None:
        state.restore(trajectory.checkpoint_prefix(run_dir, good)
                      ).assert_existing_objects_matched()
    if chief:
        trajectory.write_status(run_dir, "training", epochs_done=good or 0)
    # Every worker saves (the save is collective); only the chief's copy is kept, the
    # others write to a local scratch folder.
    scratch_dir = (contextlib.nullcontext() if chief
                   else tempfile.TemporaryDirectory(prefix="worker-state-"))
    with scratch_dir as scratch:
        manager = tf.train.CheckpointManager(
            state, trajectory.checkpoints_dir(run_dir) if chief else scratch,
            max_to_keep=None, checkpoint_name=trajectory.CHECKPOINT_NAME)
        if good is None:
            _save(manager, 0, run_dir)  # the initialisation, "epoch 0"
        try:
            _train_epochs(config, data, model, point, optimizer, done, manager, run_dir,
                          strategy, chief, steps_per_loop, max_loss)
        except Diverged as e:
            kept = int(done.numpy())
            if chief:
                trajectory.write_status(run_dir, "failed", reason=e.reason, epoch=e.epoch,
                                        step=e.step, loss=e.loss, epochs_done=kept)
            raise UserError(f"{e.advice('--learning_rate')} (the last good checkpoint, "
                            f"epoch {kept}, is kept; status.json marks the run "
                            f"failed)") from None

    results = {"epochs": config.train_epochs,
               "train/steps_per_epoch": data.num_examples("train") // config.batch_size}
    splits = [split for split in ("train", "validation", "test")
              if split in data.splits and (eval_train or split != "train")]
    for split in splits:
        scores = _evaluate(_point_estimate(model, point), data, split, config, strategy)
        results.update(_as_posterior_mean(scores) if posterior else scores)
    if posterior:  # the predictive of the evaluation splits (not of train)
        predictive = variational.predictive(
            run_dir, data, tuple(s for s in splits if s != "train"),
            config.num_posterior_samples, strategy=strategy)
        for split, logits in predictive.items():
            results.update(_scores(logits, data.labels(split), split))
    history = _read_history(run_dir) if chief else []
    if history:
        results["train/running_accuracy"] = history[-1]["train/running_accuracy"]
    if chief:
        files.write_json(metrics_path, results)
        trajectory.write_status(run_dir, "complete", epochs_done=config.train_epochs)
    logging.info("finished %s: %s", run_dir, results)
    return results


def _save(manager: tf.train.CheckpointManager, epoch: int, run_dir: str) -> None:
    """Saves the checkpoint of `epoch`; a failed write is one line (what was saved
    before stays: the checkpoint's index is written last, so a cut-off checkpoint is
    never counted)."""
    try:
        manager.save(checkpoint_number=epoch)
    except tf.errors.OpError as e:
        raise UserError(f"cannot write the checkpoint of epoch {epoch} in {run_dir} "
                        f"({reason(e)}); free space there and re-run the same "
                        f"command to resume") from None


def _build(config: TrainConfig, data: Dataset, strategy: tf.distribute.Strategy):
    """The run's (model, point, optimizer) under `strategy`, from its seed: `point` is
    what the metrics evaluate, as every analysis reads the checkpoints (the model, or
    a float32 copy of a mixed-precision model, or a variational model's posterior
    mean)."""
    keras.utils.set_random_seed(config.seed)
    if config.deterministic:
        tf.config.experimental.enable_op_determinism()
    normalizer = data.normalizer(config.preprocessing)
    layers = None
    if config.method == "variational":
        layers = models.Variational(config.prior_stddev, config.posterior_init_stddev,
                                    data.num_examples("train"), config.seed)
    with strategy.scope():
        model = models.build(config.model, data.input_shape, data.num_classes,
                             variational=layers, dropout_rate=config.dropout_rate,
                             l2=config.l2, seed=config.seed, normalizer=normalizer,
                             dtype=config.dtype)
        point = model if layers is None and config.dtype == "float32" else models.build(
            config.model, data.input_shape, data.num_classes,
            dropout_rate=config.dropout_rate, l2=config.l2, seed=config.seed,
            normalizer=normalizer)
        optimizer = make_optimizer(config.optimizer, config.learning_rate, config.momentum)
        if config.dtype == "mixed_float16":
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    return model, point, optimizer


def measure_throughput(config: TrainConfig, data: Dataset, steps: int,
                       strategy: tf.distribute.Strategy | None = None,
                       steps_per_loop: int = STEPS_PER_LOOP) -> dict:
    """A dry run: trains `config`'s network for two passes of `steps` steps (at most an
    epoch's; the first compiles and fills the input pipeline), writes nothing, and
    returns the second
    pass's throughput with the whole run's step count and its training time at that
    rate (per-epoch validation, checkpoints and the final scoring come on top)."""
    strategy = strategy or tf.distribute.get_strategy()
    if config.train_examples:
        data = data.head("train", config.train_examples)
    _check(config, data, strategy.num_replicas_in_sync)
    steps_per_epoch = data.num_examples("train") // config.batch_size
    steps = min(steps, steps_per_epoch)  # a permutation epoch has no more batches
    model, _, optimizer = _build(config, data, strategy)
    passes = fit(dataclasses.replace(config, train_epochs=2), model, optimizer,
                 lambda epoch, context: data.train_pipeline(
                     config.batch_size, steps, config.seed, epoch,
                     with_replacement=config.sample_with_replacement,
                     augment=config.augment, input_context=context),
                 steps, strategy, steps_per_loop=steps_per_loop)
    seconds = passes[1]["epoch_seconds"]
    total = steps_per_epoch * config.train_epochs
    return {"dataset": data.name, "model": config.model, "batch_size": config.batch_size,
            "replicas": strategy.num_replicas_in_sync, "measured_steps": steps,
            "steps_per_second": steps / seconds,
            "examples_per_second": steps * config.batch_size / seconds,
            "steps_per_epoch": steps_per_epoch, "train_epochs": config.train_epochs,
            "total_steps": total, "train_hours": total / (steps / seconds) / 3600}


def _train_epochs(config, data, model, point, optimizer, done, manager, run_dir, strategy,
                  chief, steps_per_loop, max_loss) -> None:
    """The epochs not done yet; each ends with its history and checkpoint saved."""
    start = int(done.numpy())
    steps = data.num_examples("train") // config.batch_size
    history = _read_history(run_dir)[:start] if chief else []  # only the chief writes
    logging.info("%s: %s on %s, %d parameters, %d replicas, %d steps of %d per epoch; "
                 "epoch %d of %d done", run_dir, config.model, data.name,
                 models.num_parameters(model), strategy.num_replicas_in_sync, steps,
                 config.batch_size, start, config.train_epochs)
    writer = (tf.summary.create_file_writer(os.path.join(run_dir, "summaries")) if chief
              else tf.summary.create_noop_writer())

    def batches(epoch, input_context):
        return data.train_pipeline(
            config.batch_size, steps, config.seed, epoch,
            with_replacement=config.sample_with_replacement, augment=config.augment,
            input_context=input_context)

    def end_of_epoch(epoch, scalars):
        began = time.time()
        if "validation" in data.splits:
            scores = _evaluate(_point_estimate(model, point), data, "validation", config,
                               strategy)
            scalars.update(_as_posterior_mean(scores) if is_variational(model) else scores)
        # + validation and checkpoint
        scalars["epoch_total_seconds"] = scalars["epoch_seconds"] + time.time() - began
        history.append(scalars)
        if chief:
            files.write_json(os.path.join(run_dir, trajectory.HISTORY), history)
        done.assign(epoch + 1)
        _save(manager, epoch + 1, run_dir)  # last: the epoch now counts as done
        with writer.as_default(step=epoch + 1):
            for name, value in scalars.items():
                if name != "epoch":
                    tf.summary.scalar(name, value)
        logging.info("epoch %d/%d  %s", epoch + 1, config.train_epochs,
                     "  ".join(f"{k}={v:.4g}" for k, v in scalars.items() if k != "epoch"))

    fit(config, model, optimizer, batches, steps, strategy, start, end_of_epoch,
        steps_per_loop, max_loss, what=f"training {os.path.basename(run_dir)}")


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


def fit(config: TrainConfig, model: keras.Model, optimizer: keras.optimizers.Optimizer,
        batches: Callable[[int, tf.distribute.InputContext | None], tf.data.Dataset],
        steps: int, strategy: tf.distribute.Strategy | None = None, start: int = 0,
        end_of_epoch: Callable[[int, dict], None] | None = None,
        steps_per_loop: int = STEPS_PER_LOOP, max_loss: float | None = None,
        what: str = "training") -> list[dict]:
    """The one loop: epochs `start` .. `config.train_epochs` - 1 (0-based) of `steps`
    steps each, minimising the cross-entropy of `model`'s logits (plus `model.losses`)
    over `model.trainable_variables` with `optimizer`, at the learning rate of
    `config`'s schedule, set at every step (`recipes.epoch_learning_rates`).

    For a variational model the losses are its KL / N terms, scaled by
    min(1, step / (`config.kl_annealing_epochs` x `steps`)) (linear annealing, step
    1-based, as uncertainty-baselines).

    The steps run on the device `steps_per_loop` at a time, inside one `tf.function`
    (the host is called once per loop: what a TPU needs), with the loss and accuracy
    summed there; the weights are the same for any `steps_per_loop`.

    `batches(epoch, input_context)` gives an epoch's per-replica pipeline of
    (inputs, labels), with `config.batch_size` examples per global batch; `inputs` is
    whatever `model` takes. After every epoch `end_of_epoch(epoch, scalars)` may add to
    or save the epoch's scalars (learning rate, seconds, training loss, running
    accuracy, the mean regularisation term). Returns the scalars of every epoch it ran.

    A step whose mean loss is not finite, or above `max_loss`, raises `Diverged`
    (at the end of its host call) before anything else of its epoch happens.
    Progress (`uncertainty.progress`) is reported as `what`.
    """
    strategy = strategy or tf.distribute.get_strategy()
    annealing_steps = config.kl_annealing_epochs * steps if is_variational(model) else 0
    train_loop = _make_train_loop(model, optimizer, strategy, config.batch_size,
                                  annealing_steps)
    bound = tf.constant(np.inf if max_loss is None else max_loss, tf.float64)
    examples = steps * config.batch_size
    history = []
    meter = progress.Progress((config.train_epochs - start) * steps, what, "step")
    for epoch in range(start, config.train_epochs):
        rates = np.float32(recipes.epoch_learning_rates(
            config.lr_schedule, config.learning_rate, epoch, steps,
            config.lr_halving_epochs, config.train_epochs))
        iterator = iter(strategy.distribute_datasets_from_function(
            lambda ctx, e=epoch: batches(e, ctx)))
        began = time.time()
        sums, done = np.zeros(3), 0
        while done < steps:
            n = min(steps_per_loop, steps - done)
            # padded to one shape, so that the loop is traced once
            loop_rates = np.pad(rates[done:done + n], (0, steps_per_loop - n))
            *loop_sums, bad_step, bad_loss = [float(v) for v in train_loop(
                iterator, tf.constant(n), tf.constant(loop_rates), bound)]
            if bad_step >= 0:
                meter.close()
                at = done + int(bad_step) + 1  # 1-based
                raise Diverged(bad_loss, epoch + 1, epoch * steps + at, at, steps,
                               float(rates[at - 1]), max_loss)
            sums += loop_sums
            done += n
            meter.update(n)
        scalars = {"epoch": epoch + 1, "learning_rate": float(rates[-1]),
                   "epoch_seconds": time.time() - began,
                   "train/loss": sums[0] / examples,
                   "train/running_accuracy": sums[1] / examples,
                   "train/regularization_loss": sums[2] / steps}
        if end_of_epoch is not None:
            end_of_epoch(epoch, scalars)
        history.append(scalars)
    meter.close()
    return history


def _make_train_loop(model, optimizer, strategy, global_batch: int,
                     annealing_steps: int = 0):
    """A tf.function running `n` distributed steps on batches (inputs, labels) from a
    distributed iterator, step i at learning rate `rates[i]`; returns the sums over
    them of the examples' cross-entropies, the number correct, and the regularisation
    term, then the index of the first step whose mean loss is not finite or above
    `max_loss` (-1: none) and that loss (float64). With
    `annealing_steps` the regularisation (KL) term is annealed; under a mixed-float16
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
                regularization = tf.add_n([tf.cast(l, tf.float32) for l in model.losses])
                if annealing_steps:
                    regularization *= tf.minimum(1.0, tf.cast(
                        optimizer.iterations + 1, tf.float32) / annealing_steps)
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


def _point_estimate(model, point):
    """The network a run's metrics evaluate: the model itself, or its float32 copy
    `point` (a mixed-precision model's weights; a variational model's deterministic
    twin holding the posterior means)."""
    if point is not model:
        point.set_weights([value for _, value, _, _ in twin_weights(model)]
                          if is_variational(model) else model.get_weights())
    return point


def _as_posterior_mean(scores: dict) -> dict:
    """A variational model's point-estimate scores, named <split>/posterior_mean/...
    (the example count keeps its name)."""
    return {name if name.endswith("num_examples") else
            name.replace("/", "/posterior_mean/", 1): value for name, value in scores.items()}


def _evaluate(model, data, split, config, strategy) -> dict:
    logits = predictions.predict(model, data, split, config.batch_size, strategy)
    return _scores(logits, data.labels(split), split)


def _scores(logits, labels, split) -> dict:
    """uncertainty-baselines' names: <split>/accuracy, <split>/negative_log_likelihood,
    <split>/ece, <split>/brier."""
    return {f"{split}/accuracy": metrics.accuracy(logits, labels),
            f"{split}/negative_log_likelihood": metrics.nll(logits, labels),
            f"{split}/ece": metrics.ece(logits, labels),
            f"{split}/brier": metrics.brier(logits, labels),
            f"{split}/num_examples": len(labels)}


def _read_history(run_dir: str) -> list:
    """The run's per-epoch scalars so far (the chief's: it writes them). A damaged
    history.json is set aside (as history.json.damaged, with a warning: its epochs'
    scalars remain in summaries/) and training goes on without them."""
    path = os.path.join(run_dir, trajectory.HISTORY)
    if not files.exists(path):
        return []
    try:
        return files.read_json(path)
    except files.CorruptFile as e:
        files.gfile.rename(path, path + ".damaged", overwrite=True)
        if files.exists(path + files.CHECKSUM_SUFFIX):
            files.gfile.remove(path + files.CHECKSUM_SUFFIX)
        logging.warning("%s; set aside as %s.damaged, and the scalars of the epochs "
                        "before are missing from the new one (TensorBoard's summaries/ "
                        "keep them)", e, trajectory.HISTORY)
        return []
