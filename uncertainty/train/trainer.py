"""A run's life: `train(config, data, run_dir, strategy)` trains one network from
its seed into the run directory (`runs.layout`), checkpointing every epoch.

With `config.method = "variational"` the network is the model's variational twin
(`models.flipout`), trained on NLL + KL / N with the KL term annealed, and the run
reports its posterior predictive and its posterior mean. Re-running it on the same
directory continues from the newest epoch checkpoint that verifies; with
`config.deterministic` the result is bit-identical to an uninterrupted run (data
order, dropout masks and augmentation are functions of the seed and the epoch, and the
dropout generator is part of the checkpoint). `config.dtype` builds the model under a
Keras mixed-precision policy.
"""
import contextlib
import dataclasses
import os
import signal
import tempfile
import time

import tensorflow as tf
import tf_keras as keras
from absl import logging

from uncertainty import models
from uncertainty.core import ensemble, names
from uncertainty.datasets import Dataset
from uncertainty.infra import distribute, files, interrupts, locks
from uncertainty.infra.errors import UserError, reason
from uncertainty.models.flipout import is_variational, twin_weights
from uncertainty.runs import checkpoints, layout, predictions
from uncertainty.train import loop, posteriors, train_config


def train(config: train_config.TrainConfig, data: Dataset, run_dir: str,
          strategy: tf.distribute.Strategy | None = None, extra_config: dict | None = None,
          steps_per_loop: int = train_config.STEPS_PER_LOOP, eval_train: bool = True,
          max_loss: float | None = None, verify_checkpoints: bool = False,
          checkpoint_every_steps: int = 0, checkpoint_every_seconds: float = 0.0) -> dict:
    """Trains (or resumes, or just reports) the run in `run_dir`; returns its metrics.

    `extra_config` (locations, strategy) is recorded in config.json but may differ when
    the run is resumed. With several workers, `run_dir` must be on a filesystem that
    all of them see: every worker resumes from it, only the chief writes to it. The
    final metrics score the validation and test splits and, with `eval_train`, the
    whole training split (a pass over ImageNet's 1.28M images: off at that scale).

    The chief holds the directory's lock (`locks.hold`) throughout. Resuming continues
    from the newest checkpoint that verifies (`checkpoints.recover`), reading only it
    and the earlier ones' index files; `verify_checkpoints` verifies every one and
    continues from the last before the first damaged one. A finished run is reported
    only when its checkpoints pass that check. A training loss that is not finite, or
    above `max_loss`, stops the run (`Diverged`, naming the step) and marks it failed
    in status.json; its last good checkpoint is kept. When another worker of a
    multi-worker run is gone, this one stops with `distribute.PeerLost` (TensorFlow's
    coordination service notices the missing heartbeats within seconds).

    Inside an epoch the state is saved every `checkpoint_every_steps` steps, after
    `checkpoint_every_seconds` of training (0: neither), and when a stop request
    (SIGINT, SIGTERM) arrives, at the end of the host call it lands in (one worker
    only: with several, every worker would have to save at that step). Resuming
    continues from there bit-identically; the epoch's checkpoint removes these.
    """
    strategy = strategy or tf.distribute.get_strategy()
    if config.train_examples:
        data = data.head("train", config.train_examples)
    train_config.check(config, data, strategy.num_replicas_in_sync)
    chief = distribute.is_chief(strategy)
    with locks.hold(run_dir) if chief else contextlib.nullcontext():
        try:
            return _train(config, data, run_dir, strategy, chief, extra_config or {},
                          steps_per_loop, eval_train, max_loss, verify_checkpoints,
                          checkpoint_every_steps, checkpoint_every_seconds)
        except distribute.PEER_ERRORS as e:
            lost = distribute.peer_lost(e, strategy)
            if lost is None:
                raise
            if chief:
                done = checkpoints.epochs(run_dir)
                layout.write_status(run_dir, "interrupted", reason=str(lost),
                                    epochs_done=done[-1] if done else 0)
            raise lost from None


def _train(config, data, run_dir, strategy, chief, extra_config, steps_per_loop,
           eval_train, max_loss, verify_checkpoints, checkpoint_every_steps,
           checkpoint_every_seconds) -> dict:
    """`train` once the run directory is locked (by the chief)."""
    record = {**config.record(), "data_source": data.source,
              "input_shape": list(data.input_shape), "num_classes": data.num_classes,
              **extra_config}
    layout.prepare(run_dir, record, ignore=layout.RUNTIME_FIELDS + layout.DERIVED_FIELDS,
                   write=chief)
    good = checkpoints.recover(run_dir, set_aside=chief, verify_all=verify_checkpoints)
    metrics_path = os.path.join(run_dir, layout.METRICS)
    if good == config.train_epochs and layout.is_complete(run_dir):
        try:
            metrics = layout.read_metrics(run_dir)
            logging.info("%s is already trained; reporting its metrics", run_dir)
            return metrics
        except files.CorruptFile as e:
            logging.warning("%s; scoring the checkpoints again", e)
    if chief and files.exists(metrics_path):  # no longer describes the checkpoints
        files.remove(metrics_path)

    model, point, optimizer = _build(config, data, strategy)
    posterior = is_variational(model)
    steps = data.num_examples("train") // config.batch_size
    with strategy.scope():
        done = tf.Variable(0, dtype=tf.int64, trainable=False)  # complete epochs
    state = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=done)
    # Every worker saves (the save is collective); only the chief's copy is kept, the
    # others write to a local scratch folder.
    scratch_dir = (contextlib.nullcontext() if chief
                   else tempfile.TemporaryDirectory(prefix="worker-state-"))
    with scratch_dir as scratch:
        inside = _StepSaves(state, run_dir, steps, strategy, scratch)
        start = inside.resume(good)
        if start is None and good is not None:
            state.restore(layout.checkpoint_prefix(run_dir, good)
                          ).assert_existing_objects_matched()
        if chief:
            layout.write_status(run_dir, "training", epochs_done=good or 0)
        manager = tf.train.CheckpointManager(
            state, layout.checkpoints_dir(run_dir) if chief else scratch,
            max_to_keep=None, checkpoint_name=layout.CHECKPOINT_NAME)
        if good is None:
            _save(manager, 0, run_dir, chief, strategy)  # the initialisation, "epoch 0"
        mid_epoch = loop.MidEpoch(inside.save, checkpoint_every_steps,
                                  checkpoint_every_seconds,
                                  on_stop=not distribute.is_multi_worker(strategy))
        try:
            _train_epochs(config, data, model, point, optimizer, done, manager, run_dir,
                          strategy, chief, steps_per_loop, max_loss, start or good or 0,
                          mid_epoch)
        except KeyboardInterrupt as e:
            epochs_done = int(done.numpy())
            position = inside.last_in(epochs_done)
            if epochs_done < config.train_epochs:
                e.where = f" in epoch {epochs_done + 1}" + ("" if position is None else
                          f" (it resumes at its step {position.step} of {steps})")
            if chief:
                layout.write_status(run_dir, "interrupted", epochs_done=epochs_done,
                                    signal=signal.Signals(interrupts.signal_of(e)).name,
                                    **({} if position is None else {"step": position.step}))
            raise
        except loop.Diverged as e:
            kept = int(done.numpy())
            if chief:
                layout.write_status(run_dir, "failed", reason=e.reason, epoch=e.epoch,
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
        predictive = posteriors.predictive(
            run_dir, data, tuple(s for s in splits if s != "train"),
            config.num_posterior_samples, strategy=strategy)
        for split, logits in predictive.items():
            results.update(_scores(logits, data.labels(split), split))
    history = _read_history(run_dir) if chief else []
    if history:
        results["train/running_accuracy"] = history[-1]["train/running_accuracy"]
    if chief:
        files.write_json(metrics_path, results)
        layout.write_status(run_dir, "complete", epochs_done=config.train_epochs)
    logging.info("finished %s: %s", run_dir, results)
    return results


class _StepSaves:
    """Training's state inside an epoch (`layout.step_prefix`): `state`'s model,
    optimizer and epochs done, with the position, the epoch's partial sums and the
    epoch checkpoints' count of saves (so that the next epoch checkpoint is byte for
    byte an uninterrupted run's). A worker that is not the chief writes to `scratch`."""

    def __init__(self, state: tf.train.Checkpoint, run_dir: str, steps: int,
                 strategy: tf.distribute.Strategy, scratch: str | None):
        self.run_dir, self.steps, self.strategy = run_dir, steps, strategy
        self.chief, self.scratch = scratch is None, scratch
        self.step = tf.Variable(0, dtype=tf.int64)
        self.sums = tf.Variable(tf.zeros(len(loop.SUMS), tf.float64))
        self.checkpoint = tf.train.Checkpoint(
            model=state.model, optimizer=state.optimizer, epoch=state.epoch,
            step=self.step, sums=self.sums, epoch_saves=state.save_counter)
        self.saved = []  # the positions saved by this process

    def resume(self, epoch: int | None) -> loop.Position | None:
        """Restores the newest step checkpoint of the epoch after the checkpoint of
        `epoch` (None: no checkpoint yet) and returns its position; None if there is
        none (the chief removes every other)."""
        at = None if epoch is None else checkpoints.recover_step(self.run_dir, epoch,
                                                                 remove=self.chief)
        if at is None:
            if epoch is None and self.chief:
                checkpoints.remove_steps(self.run_dir)
            return None
        self.checkpoint.read(layout.step_prefix(self.run_dir, epoch, at)
                             ).assert_existing_objects_matched()
        logging.info("%s: epoch %d resumes at its step %d of %d", self.run_dir, epoch + 1,
                     at, self.steps)
        return loop.Position(epoch, at, self.sums.numpy())

    def save(self, position: loop.Position) -> None:
        """Saves `position` (a `loop.MidEpoch`'s save); the chief then removes the
        older step checkpoints and records the step in status.json."""
        self.step.assign(position.step)
        self.sums.assign(position.sums)
        prefix = layout.step_prefix(self.run_dir, position.epoch, position.step)
        try:
            self.checkpoint.write(prefix if self.chief else
                                  os.path.join(self.scratch, "step"))
        except tf.errors.OpError as e:
            if distribute.peer_lost(e, self.strategy) is not None:
                raise
            raise UserError(f"cannot write the checkpoint at step {position.step} of "
                            f"epoch {position.epoch + 1} in {self.run_dir} ({reason(e)}); "
                            f"free space there and re-run the same command to "
                            f"resume") from None
        if self.chief:
            checkpoints.remove_steps(self.run_dir, keep=(position.epoch, position.step))
            layout.write_status(self.run_dir, "training", epochs_done=position.epoch,
                                step=position.step)
        self.saved.append(position)
        logging.info("saved step %d of %d of epoch %d", position.step, self.steps,
                     position.epoch + 1)

    def last_in(self, epoch: int) -> loop.Position | None:
        """The last position this process saved inside the epoch after `epoch`."""
        return self.saved[-1] if self.saved and self.saved[-1].epoch == epoch else None


def _save(manager: tf.train.CheckpointManager, epoch: int, run_dir: str, chief: bool,
          strategy: tf.distribute.Strategy) -> None:
    """Saves the checkpoint of `epoch` (the chief's with its recorded identity); a
    failed write is one line (what was saved before stays: the checkpoint's index is
    written last, so a cut-off checkpoint is never counted)."""
    try:
        checkpoints.save(manager, epoch, run_dir if chief else None)
    except tf.errors.OpError as e:
        if distribute.peer_lost(e, strategy) is not None:
            raise  # a worker is gone, not the storage: `train` says so
        raise UserError(f"cannot write the checkpoint of epoch {epoch} in {run_dir} "
                        f"({reason(e)}); free space there and re-run the same "
                        f"command to resume") from None


def _build(config: train_config.TrainConfig, data: Dataset, strategy: tf.distribute.Strategy):
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
                                    data.num_examples("train"), config.seed, config.prior)
    with strategy.scope():
        model = models.build(config.model, data.input_shape, data.num_classes,
                             variational=layers, dropout_rate=config.dropout_rate,
                             l2=config.l2, seed=config.seed, normalizer=normalizer,
                             dtype=config.dtype)
        point = model if layers is None and config.dtype == "float32" else models.build(
            config.model, data.input_shape, data.num_classes,
            dropout_rate=config.dropout_rate, l2=config.l2, seed=config.seed,
            normalizer=normalizer)
        optimizer = loop.make_optimizer(config.optimizer, config.learning_rate, config.momentum)
        if config.dtype == "mixed_float16":
            optimizer = keras.mixed_precision.LossScaleOptimizer(optimizer)
        optimizer.build(model.trainable_variables)
    return model, point, optimizer


def measure_throughput(config: train_config.TrainConfig, data: Dataset, steps: int,
                       strategy: tf.distribute.Strategy | None = None,
                       steps_per_loop: int = train_config.STEPS_PER_LOOP) -> dict:
    """A dry run: trains `config`'s network for two passes of `steps` steps (at most an
    epoch's; the first compiles and fills the input pipeline), writes nothing, and
    returns the second
    pass's throughput with the whole run's step count and its training time at that
    rate (per-epoch validation, checkpoints and the final scoring come on top)."""
    strategy = strategy or tf.distribute.get_strategy()
    if config.train_examples:
        data = data.head("train", config.train_examples)
    train_config.check(config, data, strategy.num_replicas_in_sync)
    steps_per_epoch = data.num_examples("train") // config.batch_size
    steps = min(steps, steps_per_epoch)  # a permutation epoch has no more batches
    model, _, optimizer = _build(config, data, strategy)
    passes = loop.fit(dataclasses.replace(config, train_epochs=2), model, optimizer,
                 lambda epoch, context, first_step: data.train_pipeline(
                     config.batch_size, steps, config.seed, epoch,
                     with_replacement=config.sample_with_replacement,
                     augment=config.augment, input_context=context, first_step=first_step),
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
                  chief, steps_per_loop, max_loss, start, mid_epoch) -> None:
    """The epochs not done yet, from `start` (an epoch, or a `loop.Position` inside
    one); each ends with its history and checkpoint saved."""
    epochs_done = int(done.numpy())
    steps = data.num_examples("train") // config.batch_size
    history = _read_history(run_dir)[:epochs_done] if chief else []  # only the chief writes
    logging.info("%s: %s on %s, %d parameters, %d replicas, %d steps of %d per epoch; "
                 "epoch %d of %d done", run_dir, config.model, data.name,
                 models.num_parameters(model), strategy.num_replicas_in_sync, steps,
                 config.batch_size, epochs_done, config.train_epochs)
    writer = (tf.summary.create_file_writer(os.path.join(run_dir, "summaries")) if chief
              else tf.summary.create_noop_writer())

    def batches(epoch, input_context, first_step):
        return data.train_pipeline(
            config.batch_size, steps, config.seed, epoch,
            with_replacement=config.sample_with_replacement, augment=config.augment,
            input_context=input_context, first_step=first_step)

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
            files.write_json(os.path.join(run_dir, layout.HISTORY), history)
        done.assign(epoch + 1)
        _save(manager, epoch + 1, run_dir, chief, strategy)  # last: the epoch counts as done
        if chief:
            checkpoints.remove_steps(run_dir)
            layout.write_status(run_dir, "training", epochs_done=epoch + 1)
        with writer.as_default(step=epoch + 1):
            for name, value in scalars.items():
                if name != "epoch":
                    tf.summary.scalar(name, value)
        logging.info("epoch %d/%d  %s", epoch + 1, config.train_epochs,
                     "  ".join(f"{k}={v:.4g}" for k, v in scalars.items() if k != "epoch"))

    loop.fit(config, model, optimizer, batches, steps, strategy, start, end_of_epoch,
             steps_per_loop, max_loss, what=f"training {os.path.basename(run_dir)}",
             mid_epoch=mid_epoch)


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
    """uncertainty-baselines' names (`names.metric_key`): <split>/accuracy,
    <split>/negative_log_likelihood, <split>/ece, <split>/brier."""
    scores = {names.metric_key(metric, split=split): score(logits, labels)
              for metric, score in ensemble.METRICS.items()}
    return {**scores, f"{split}/num_examples": len(labels)}


def _read_history(run_dir: str) -> list:
    """The run's per-epoch scalars so far (the chief's: it writes them). A damaged
    history.json is set aside (as history.json.damaged, with a warning: its epochs'
    scalars remain in summaries/) and training goes on without them."""
    path = os.path.join(run_dir, layout.HISTORY)
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
                        "keep them)", e, layout.HISTORY)
        return []

