"""Flags and start-up shared by every binary in baselines/ (scripts, not a package):
the shared flag definitions, data loading from flags, and one-line errors."""

import logging as std_logging
import os
import sys

from absl import app, flags, logging


class _NativeStderr:
    """Hides what TensorFlow's C++ side prints at start-up, so that a user's error is
    the one line they see. Why not TensorFlow's documented controls: with TF 2.21 its
    oneDNN and CUDA notices are written through absl's C++ log *before*
    absl::InitializeLog runs (at import and in absl's init callbacks), where
    TF_CPP_MIN_LOG_LEVEL (0-3), ABSL_MIN_LOG_LEVEL and GLOG_minloglevel have no effect
    (each tried); only the stderr descriptor can silence them. TF_CPP_MIN_LOG_LEVEL=0
    keeps the notices."""

    saved = None

    @classmethod
    def mute(cls):
        if os.environ.get("TF_CPP_MIN_LOG_LEVEL") == "0" or cls.saved is not None:
            return
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
        sys.stderr.flush()
        cls.saved = os.dup(2)
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 2)

    @classmethod
    def restore(cls):
        if cls.saved is not None:
            os.dup2(cls.saved, 2)
            os.close(cls.saved)
            cls.saved = None


_NativeStderr.mute()
try:
    import tensorflow  # noqa: F401
finally:
    _NativeStderr.restore()

from uncertainty import UserError, datasets, distribute, progress  # noqa: E402

FLAGS = flags.FLAGS


def _once(define, name: str, *args, **kwargs) -> None:
    """Defines a shared flag unless another binary in this process already did."""
    if name not in FLAGS:
        define(name, *args, **kwargs)


def define_data_flags(dataset: bool = True) -> None:
    """Where data come from; with `dataset`, also which dataset and validation split
    (binaries that analyse runs take those from the runs instead)."""
    if dataset:
        _once(flags.DEFINE_string, "dataset", "fashion_mnist",
              f"One of {', '.join(datasets.NAMES)}.")
        _once(flags.DEFINE_integer, "validation_examples", None,
              "The last this-many training examples form the validation set (recipe: "
              "500, as the paper).")
    _once(flags.DEFINE_string, "data_dir", None, "TFDS data directory (prepared datasets).")
    _once(flags.DEFINE_string, "manual_dir", None,
          "Folder holding official archives for TFDS to build from offline "
          "(cifar-10-binary.tar.gz, cifar-100-binary.tar.gz, CIFAR-10-C.tar).")
    _once(flags.DEFINE_string, "fashion_mnist_dir", None,
          "Folder with Fashion-MNIST IDX files (default: the Debian package's "
          "/usr/share/datasets/fashion-mnist).")
    _once(flags.DEFINE_bool, "download", True, "Let TFDS download data that is not prepared.")
    _once(flags.DEFINE_integer, "cache_data_mb", 1024,
          "Splits whose raw inputs take at most this many MB are read once into host "
          "memory (through the same TFDS reader) and gathered from there; larger ones "
          "stream from disk at every pass; 0 streams everything.")


def define_progress_flags() -> None:
    """--progress and --progress_seconds, which every binary has (`run` applies them)."""
    _once(flags.DEFINE_bool, "progress", True,
          "Show the progress of long work (training, predicting many functions, grids) "
          "with rate and ETA: a bar on a terminal, else a log line every "
          "--progress_seconds.")
    _once(flags.DEFINE_float, "progress_seconds", progress.LOG_SECONDS,
          "Seconds between progress log lines when stderr is not a terminal.")


define_progress_flags()


def define_output_flags() -> None:
    """--output_dir and --seed, which every binary has."""
    _once(flags.DEFINE_string, "output_dir", None,
          "Directory to write (train.py: the run, resumed if it exists).")
    _once(flags.DEFINE_integer, "seed", 0, "Random seed.")


def define_analysis_flags(split: bool = True) -> None:
    """--prediction_batch_size, --strategy and --split, for the binaries that analyse
    runs. Every analysis reports on the test split by default: the validation split is
    where subspace.py's acceptance rule selects."""
    define_strategy_flags()
    _once(flags.DEFINE_bool, "allow_failed_runs", False,
          "Analyse runs whose training failed (diverged), up to their last good "
          "checkpoint; refused by default.")
    if split:
        _once(flags.DEFINE_enum, "split", "test", ["validation", "test"],
              "Evaluation split the results are reported on.")
    _once(flags.DEFINE_integer, "prediction_batch_size", 500, "Batch size for predictions.")


def define_shift_flags() -> None:
    """--corruptions and --intensities: the corrupted test sets to evaluate."""
    _once(flags.DEFINE_list, "corruptions", ["all"], "Corruption types of the dataset's "
          "corrupted test sets: all, a list, or none (clean test set only).")
    _once(flags.DEFINE_list, "intensities", ["1", "2", "3", "4", "5"],
          "Corruption intensities (the clean test set is intensity 0 and always "
          "included).")


def shift_sets() -> tuple[tuple[str, ...] | None, tuple[int, ...]]:
    """(corruptions: None for all, () for none; intensities) from the shift flags."""
    try:
        intensities = tuple(sorted({int(i) for i in FLAGS.intensities}))
    except ValueError:
        intensities = ()
    if not intensities or not set(intensities) <= {1, 2, 3, 4, 5}:
        raise UserError(f"--intensities are integers 1..5, got "
                        f"{','.join(FLAGS.intensities)}")
    kinds = FLAGS.corruptions
    if not kinds or len(kinds) > 1 and {"all", "none"} & set(kinds):
        raise UserError("--corruptions is all, none, or a list of corruption types")
    return (None if kinds == ["all"] else () if kinds == ["none"] else tuple(kinds),
            intensities)


def define_batchnorm_flag() -> None:
    _once(flags.DEFINE_bool, "reestimate_bn", True,
          "Re-estimate the batch-norm statistics of every function analysed (base, "
          "optima, samples) on the runs' training data, so all share one policy (models "
          "with batch norm only); else use the checkpoints' statistics.")


def define_runs_flag() -> None:
    _once(flags.DEFINE_list, "runs", None, "Run directories, or folders holding them.")


def define_methods_flag() -> None:
    from uncertainty import subspace

    _once(flags.DEFINE_list, "methods", list(subspace.PAPER_METHODS),
          f"Methods, any of {', '.join(subspace.METHODS)} (default: the paper's five "
          f"subspace samplers). variational: posterior draws of a variational run; "
          f"mc_dropout: passes with the network's own dropout on (not 'dropout', which "
          f"drops the solution's weights).")


def define_posterior_samples_flag() -> None:
    _once(flags.DEFINE_integer, "num_posterior_samples", None,
          "Posterior draws per variational run averaged for its posterior predictive "
          "(ensemble.py: also MC-dropout passes per run); default 10 (the recipe's).")


def define_mc_dropout_flag() -> None:
    _once(flags.DEFINE_float, "mc_dropout_rate", None,
          "MC dropout's rate on the activations (default: the run's training rate).")


def define_strategy_flags() -> None:
    _once(flags.DEFINE_enum, "strategy", "default", distribute.STRATEGIES,
          "tf.distribute strategy: default (one device), mirrored (local GPUs), "
          "multi_worker (TF_CONFIG cluster), tpu.")
    _once(flags.DEFINE_string, "tpu", None, "TPU name or address for --strategy=tpu.")


def load_dataset(name: str, validation_examples: int) -> datasets.Dataset:
    """The dataset `name` with the data-location flags."""
    if FLAGS.cache_data_mb < 0:
        raise UserError(f"--cache_data_mb must be >= 0, got {FLAGS.cache_data_mb}")
    return datasets.load(name, validation_examples=validation_examples,
                         data_dir=FLAGS.data_dir, manual_dir=FLAGS.manual_dir,
                         fashion_mnist_dir=FLAGS.fashion_mnist_dir, download=FLAGS.download,
                         cache_bytes=FLAGS.cache_data_mb << 20)


def load_run_data(shared: dict) -> datasets.Dataset:
    """The dataset runs were trained on (`shared`: `trajectory.check_runs`' result):
    their validation split and, when they trained on their first N examples, the
    training split cut to those, so that batch-norm re-estimation and connectors use
    what the runs saw."""
    data = load_dataset(shared["dataset"], shared["validation_examples"])
    if shared.get("train_examples"):
        data = data.head("train", shared["train_examples"])
    return data


def strategy():
    return distribute.get_strategy(FLAGS.strategy, FLAGS.tpu)


def _no_tensorflow_info(record) -> bool:
    return record.levelno >= std_logging.WARNING or "/tensorflow/" not in record.pathname


def _parse_flags(argv):
    try:
        args = FLAGS(argv)
    except flags.Error as e:
        _fail(argv[0], str(e))
    _NativeStderr.mute()  # until main starts: absl's init callbacks probe the GPUs
    return args


def _fail(program: str, message: str, code: int = 2) -> None:
    print(f"{os.path.basename(program)}: error: {message}", file=sys.stderr)
    sys.exit(code)


def run(main) -> None:
    """absl's app.run, but a UserError or a bad flag ends in one line and exit code 2,
    an interrupt (Ctrl-C, SIGINT) in one line and exit code 130."""

    def guarded(argv):
        _NativeStderr.restore()
        logging.set_verbosity(logging.INFO)  # our progress lines ...
        logging.get_absl_logger().addFilter(_no_tensorflow_info)  # ... not TF's chatter
        progress.ENABLED, progress.LOG_SECONDS = FLAGS.progress, FLAGS.progress_seconds
        try:
            main(argv)
        except UserError as e:
            progress.close_all()
            _fail(argv[0], str(e))
        except KeyboardInterrupt:
            progress.close_all()
            _fail(argv[0], "interrupted; every file written so far is whole: run the same "
                           "command again to finish the work", code=130)
        finally:
            progress.close_all()

    try:
        app.run(guarded, flags_parser=_parse_flags)
    finally:
        _NativeStderr.restore()  # so that a crash before main is not silent
