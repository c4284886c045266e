r"""Trains one network and records its whole trajectory (one checkpoint per epoch).

Flags left unset take the model's recipe (uncertainty/train/recipes.py). Re-running the same
command resumes from the last complete epoch; a finished run only reports its metrics.

  python baselines/train.py --dataset=fashion_mnist --model=small_cnn --seed=0 \
      --output_dir=runs/small_cnn/seed0

--method=variational trains the model's variational twin (mean-field Gaussian weights,
Flipout; uncertainty/models/flipout.py) on NLL + KL / N with the KL term annealed,
and reports its posterior predictive (test/accuracy, ...) and posterior mean
(test/posterior_mean/accuracy, ...); every analysis reads its checkpoints as the
deterministic model holding the posterior means.

--eval_only evaluates an existing run's checkpoints (--eval_epochs, default the last)
on its clean, corrupted and out-of-distribution test sets and writes eval.json:

  python baselines/train.py --eval_only --output_dir=runs/small_cnn/seed0 \
      --corruptions=all --eval_epochs=1,10

--steps=N is a dry run: it trains N steps twice (the first pass compiles), writes
nothing, and prints the throughput, the run's step count and its training time at
that rate, for planning a paper-scale study (run_scripts/paper_scale.sh):

  python baselines/train.py --dataset=imagenet2012 --model=resnet50 --strategy=tpu \
      --steps=200
"""

from uncertainty.cli import startup

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import contextlib
import json
import os

import tensorflow as tf
from absl import flags

from uncertainty import datasets, models
from uncertainty.analyses import evaluation
from uncertainty.cli import app, common_flags
from uncertainty.datasets import PREPROCESSING
from uncertainty.infra import distribute, files, locks
from uncertainty.infra.errors import UserError
from uncertainty.models import flipout
from uncertainty.runs import layout
from uncertainty.runs.layout import RUNTIME_FIELDS
from uncertainty.train import recipes, train_config, trainer
from uncertainty.train.train_config import TrainConfig
from uncertainty.train.trainer import train

# Seconds of training between saves inside an epoch on a GPU or TPU, by default.
DEFAULT_CHECKPOINT_SECONDS = 600

common_flags.define_data_flags()
common_flags.define_output_flags()  # --seed seeds initialisation, data order, dropout, crops
common_flags.define_strategy_flags()
flags.DEFINE_string("model", "small_cnn", f"One of {', '.join(models.NAMES)}.")
flags.DEFINE_integer("train_epochs", None, "Epochs (recipe default).")
flags.DEFINE_integer("batch_size", None, "Global batch size over all replicas (recipe "
                     "default).")
flags.DEFINE_integer("per_core_batch_size", None, "Batch size per replica, as "
                     "uncertainty-baselines: the global batch is this x the strategy's "
                     "replicas (instead of --batch_size).")
flags.DEFINE_float("base_learning_rate", None, "Learning rate per reference_batch_size "
                   "images (the recipe's reference: 256 for ResNet-50, 128 otherwise); "
                   "the run's rate is base x global batch / reference.")
flags.DEFINE_float("learning_rate", None, "The learning rate itself, whatever the batch "
                   "(overrides --base_learning_rate's scaling).")
flags.DEFINE_string("lr_schedule", None, f"One of {', '.join(recipes.LR_SCHEDULES)}.")
flags.DEFINE_integer("lr_halving_epochs", None, "Epochs between halvings (halving schedule).")
flags.DEFINE_string("optimizer", None, f"One of {', '.join(recipes.OPTIMIZERS)}.")
flags.DEFINE_float("momentum", None, "Momentum for --optimizer=sgd.")
flags.DEFINE_float("l2", None, "L2 coefficient on kernels (sum of squares).")
flags.DEFINE_float("dropout_rate", None, "Dropout rate (CNNs; training only).")
flags.DEFINE_bool("augment", None, "Pad-4 random crop + horizontal flip (images).")
flags.DEFINE_string("preprocessing", None, f"One of {', '.join(PREPROCESSING)}.")
flags.DEFINE_bool("sample_with_replacement", None,
                  "Draw each batch uniformly with replacement (paper's CNNs) instead of "
                  "permuting every epoch.")
flags.DEFINE_integer("train_examples", None, "Use only the first N training examples (0=all).")
flags.DEFINE_bool("deterministic", None,
                  "Deterministic ops: the same seed gives bit-identical weights.")
flags.DEFINE_enum("dtype", None, list(recipes.DTYPES),
                  "Precision policy: float32 (recipe), mixed_bfloat16 (TPU, recent CPUs) or "
                  "mixed_float16 (GPU, with loss scaling); weights stay float32.")
flags.DEFINE_float("max_loss", None, "Stop training (the run marked failed, its last good "
                   "checkpoint kept) when a step's mean training loss exceeds this; a loss "
                   "that is not finite always stops it.")
flags.DEFINE_bool("verify_checkpoints", False, "On resume, verify every checkpoint's "
                  "tensors against their checksums and continue from the last one before "
                  "the first damaged one (by default only the newest is read whole, and "
                  "the others' index files).")
flags.DEFINE_integer("steps_per_loop", train_config.STEPS_PER_LOOP,
                     "Training steps per host call, run on the device inside one "
                     "tf.function (an execution setting: the weights do not depend on "
                     "it, and it may change on resume).")
flags.DEFINE_integer("checkpoint_every_steps", 0, "Save training's state every this many "
                     "steps inside an epoch (0: off), besides the epoch checkpoints the "
                     "analyses read; a resumed run continues from it bit-identically, and "
                     "the epoch's checkpoint removes it. A stop request (Ctrl-C, SIGTERM) "
                     "always saves the step it lands on.")
flags.DEFINE_float("checkpoint_every_seconds", None, "Save training's state after this "
                   "many seconds of training since the last save (0: off; default 600 "
                   "on a GPU or TPU, off on CPUs, where an epoch takes minutes). One "
                   "worker only: with several, use --checkpoint_every_steps.")
flags.DEFINE_enum("method", None, list(recipes.METHODS),
                  "deterministic (default) or variational (TFP Flipout, mean-field).")
flags.DEFINE_enum("prior", None, list(flipout.PRIORS), "Variational: the weight "
                  "prior, N(posterior mean, s^2) (tied_mean: only the posterior's std is "
                  "penalised; recipe, uncertainty-baselines') or N(0, s^2) (zero_mean).")
flags.DEFINE_float("prior_stddev", None, "Variational: the prior's std s (recipe 0.1, "
                   "uncertainty-baselines').")
flags.DEFINE_float("variational_l2", None, "Variational: L2 coefficient on the biases and "
                   "batch-norm parameters, which stay point estimates (recipe 4e-4, "
                   "uncertainty-baselines').")
flags.DEFINE_float("posterior_init_stddev", None, "Variational: the posterior std every "
                   "weight starts near (recipe 1e-3; jittered as uncertainty-baselines').")
flags.DEFINE_integer("kl_annealing_epochs", None, "Variational: epochs over which the KL "
                     "term's weight rises linearly to 1 (recipe: 80% of the epochs).")
common_flags.define_posterior_samples_flag()
flags.DEFINE_bool("eval_only", False, "Train nothing: evaluate the run in --output_dir "
                  "on its clean and corrupted test sets (--corruptions, --intensities) "
                  "and its out-of-distribution set, and write eval.json there.")
flags.DEFINE_list("eval_epochs", None, "--eval_only: the epochs whose checkpoints to "
                  "evaluate (default: the last; 0 = initialisation).")
flags.DEFINE_integer("steps", None, "Dry run: time this many training steps (after as "
                     "many that compile), print the throughput and the run's ETA, and "
                     "write nothing.")
flags.DEFINE_bool("eval_train_split", True, "Score the whole training split when the run "
                  "ends (train/accuracy, ...); turn off at ImageNet scale.")
common_flags.define_shift_flags()
common_flags.define_analysis_flags(split=False)
FLAGS = flags.FLAGS


def resolve_config(replicas: int = 1) -> TrainConfig:
    """Flags over the model's recipe (a flag left unset takes the recipe's value), with
    the global batch of --per_core_batch_size on `replicas`, validated; raises
    UserError on bad values."""
    models.check(FLAGS.model, variational=FLAGS.method == "variational")
    batch_size = FLAGS.batch_size
    if FLAGS.per_core_batch_size is not None:
        if batch_size is not None:
            raise UserError("pass --batch_size (global) or --per_core_batch_size, not both")
        if FLAGS.per_core_batch_size < 1:
            raise UserError(f"--per_core_batch_size must be positive, got "
                            f"{FLAGS.per_core_batch_size}")
        batch_size = FLAGS.per_core_batch_size * replicas
    if FLAGS.method != "variational":
        for name in recipes.VARIATIONAL_FIELDS:
            if getattr(FLAGS, name) is not None:
                raise UserError(f"--{name} applies to --method=variational only; add "
                                f"--method=variational or leave it out")
    config = TrainConfig.from_recipe(
        FLAGS.dataset, FLAGS.model, FLAGS.seed,
        **{name: getattr(FLAGS, name) for name in recipes.RECIPES[FLAGS.model]
           if name in FLAGS and name != "batch_size"}, batch_size=batch_size)
    checks = [
        (config.train_epochs > 0, f"--train_epochs must be positive, got "
                                  f"{config.train_epochs}"),
        (config.batch_size > 0, f"--batch_size must be positive, got {config.batch_size}"),
        (config.learning_rate > 0, f"--learning_rate must be positive, got "
                                   f"{config.learning_rate}"),
        (config.base_learning_rate > 0, f"--base_learning_rate must be positive, got "
                                        f"{config.base_learning_rate}"),
        (config.lr_schedule in recipes.LR_SCHEDULES,
         f"unknown --lr_schedule {config.lr_schedule!r}; choose one of "
         f"{', '.join(recipes.LR_SCHEDULES)}"),
        (config.lr_halving_epochs > 0, "--lr_halving_epochs must be positive"),
        (config.optimizer in recipes.OPTIMIZERS,
         f"unknown --optimizer {config.optimizer!r}; choose one of "
         f"{', '.join(recipes.OPTIMIZERS)}"),
        (config.l2 >= 0, f"--l2 must be >= 0, got {config.l2}"),
        (0 <= config.dropout_rate < 1, f"--dropout_rate must be in [0, 1), got "
                                       f"{config.dropout_rate}"),
        (config.preprocessing in PREPROCESSING,
         f"unknown --preprocessing {config.preprocessing!r}; choose one of "
         f"{', '.join(PREPROCESSING)}"),
        (config.train_examples >= 0, "--train_examples must be >= 0 (0 = all)"),
        (config.prior_stddev > 0, f"--prior_stddev must be positive, got "
                                  f"{config.prior_stddev}"),
        (config.posterior_init_stddev > 0, f"--posterior_init_stddev must be positive, "
                                           f"got {config.posterior_init_stddev}"),
        (config.variational_l2 >= 0, f"--variational_l2 must be >= 0, got "
                                     f"{config.variational_l2}"),
        (config.kl_annealing_epochs >= 0, "--kl_annealing_epochs must be >= 0 (0: no "
                                          "annealing)"),
        (config.num_posterior_samples > 0, f"--num_posterior_samples must be positive, "
                                           f"got {config.num_posterior_samples}"),
        (FLAGS.output_dir or FLAGS.steps, "--output_dir is required: the run directory "
                                          "to write"),
        (FLAGS.steps is None or FLAGS.steps > 0, f"--steps must be positive, got "
                                                 f"{FLAGS.steps}"),
        (FLAGS.steps_per_loop > 0, f"--steps_per_loop must be positive, got "
                                   f"{FLAGS.steps_per_loop}"),
        (FLAGS.max_loss is None or FLAGS.max_loss > 0, f"--max_loss must be positive, "
                                                       f"got {FLAGS.max_loss}"),
        (FLAGS.checkpoint_every_steps >= 0, f"--checkpoint_every_steps must be >= 0 (0: "
                                            f"off), got {FLAGS.checkpoint_every_steps}"),
        (FLAGS.checkpoint_every_seconds is None or FLAGS.checkpoint_every_seconds >= 0,
         f"--checkpoint_every_seconds must be >= 0 (0: off), got "
         f"{FLAGS.checkpoint_every_seconds}"),
    ]
    for ok, message in checks:
        if not ok:
            raise UserError(message)
    return config


def checkpoint_seconds(strategy) -> float:
    """--checkpoint_every_seconds, or its default: 600 on accelerators (one worker),
    off on CPUs."""
    seconds = FLAGS.checkpoint_every_seconds
    if seconds is None:
        accelerated = any(d.device_type in ("GPU", "TPU")
                          for d in tf.config.list_logical_devices())
        return (DEFAULT_CHECKPOINT_SECONDS if accelerated and
                not distribute.is_multi_worker(strategy) else 0.0)
    if seconds and distribute.is_multi_worker(strategy):
        raise UserError("--checkpoint_every_seconds cannot be used with several workers "
                        "(each would save at another step); use --checkpoint_every_steps")
    return seconds


def evaluate_only() -> None:
    """--eval_only: score the checkpoints of the run in --output_dir."""
    run_dir = FLAGS.output_dir
    if not run_dir:
        raise UserError("--output_dir is required: the run directory to evaluate")
    config = layout.read_config(run_dir)
    try:
        epochs = [int(e) for e in FLAGS.eval_epochs or []]
    except ValueError:
        raise UserError(f"--eval_epochs are integers, got {','.join(FLAGS.eval_epochs)}")
    corruptions, intensities = common_flags.shift_sets()
    strategy = common_flags.strategy()
    common_flags.devices()  # the device line, as the work starts
    chief = distribute.is_chief(strategy)
    with locks.hold(run_dir) if chief else contextlib.nullcontext():
        results = evaluation.evaluate(
            run_dir, lambda name: common_flags.load_dataset(name, config["validation_examples"]),
            epochs, corruptions, intensities, batch_size=FLAGS.prediction_batch_size,
            strategy=strategy)
        report = {layout.checkpoint_name(epoch): scores
                  for epoch, scores in results.items()}
        if chief:
            files.write_json(os.path.join(run_dir, "eval.json"), report)
    print(json.dumps(report, indent=2, sort_keys=True))


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if FLAGS.eval_only:
        return evaluate_only()
    # the strategy is made first only when the batch depends on its replicas
    config = resolve_config(common_flags.strategy().num_replicas_in_sync
                            if FLAGS.per_core_batch_size else 1)
    datasets.check(FLAGS.dataset)
    strategy = common_flags.strategy()
    data = common_flags.load_dataset(FLAGS.dataset, config.validation_examples)
    if FLAGS.steps:
        report = trainer.measure_throughput(config, data, FLAGS.steps, strategy,
                                             FLAGS.steps_per_loop)
        report.update(config=config.record(), devices=common_flags.devices())
        print(json.dumps(report, indent=2, sort_keys=True))
        return
    locations = {name: getattr(FLAGS, name) for name in RUNTIME_FIELDS if name in FLAGS}
    locations["devices"] = common_flags.devices()
    results = train(config, data, FLAGS.output_dir, strategy, extra_config=locations,
                    steps_per_loop=FLAGS.steps_per_loop, max_loss=FLAGS.max_loss,
                    eval_train=FLAGS.eval_train_split,
                    verify_checkpoints=FLAGS.verify_checkpoints,
                    checkpoint_every_steps=FLAGS.checkpoint_every_steps,
                    checkpoint_every_seconds=checkpoint_seconds(strategy))
    print(json.dumps({"output_dir": FLAGS.output_dir, **config.record(),
                      **results}, indent=2, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
