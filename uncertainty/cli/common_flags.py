"""The flags the binaries in baselines/ share, and the values they resolve to.

Each `define_*` function defines one group of flags in absl's global registry when a
binary calls it (importing this module defines nothing). A group is defined at most
once per process: several binaries share a process in the tests and in notebooks; a
flag name defined by two groups still fails (absl's DuplicateFlagError)."""

import functools

from absl import flags, logging

from uncertainty import datasets
from uncertainty.infra import distribute, progress
from uncertainty.infra.errors import UserError
from uncertainty.samplers import catalog

FLAGS = flags.FLAGS


def define_data_flags(dataset: bool = True) -> None:
    """Where data come from; with `dataset`, also which dataset and validation split
    (binaries that analyse runs take those from the runs instead). TFDS's ArrayRecord
    reader, which every dataset is read through, defines absl flags of its own when
    first imported: it is imported here, with the binary's flags, so that it is not
    first imported while flags are being saved and restored (absl's flagsaver)."""
    from array_record.python import array_record_data_source  # noqa: F401

    if dataset:
        _define_dataset_flags()
    _define_data_location_flags()


@functools.cache
def _define_dataset_flags() -> None:
    flags.DEFINE_string("dataset", "fashion_mnist", f"One of {', '.join(datasets.NAMES)}.")
    flags.DEFINE_integer(
        "validation_examples",
        None,
        "The last this-many training examples form the validation set "
        "(recipe: 500, as the paper).",
    )


@functools.cache
def _define_data_location_flags() -> None:
    flags.DEFINE_string("data_dir", None, "TFDS data directory (prepared datasets).")
    flags.DEFINE_string(
        "manual_dir",
        None,
        "Folder holding official archives for TFDS to build from offline "
        "(cifar-10-binary.tar.gz, cifar-100-binary.tar.gz, CIFAR-10-C.tar).",
    )
    flags.DEFINE_string(
        "fashion_mnist_dir",
        None,
        "Folder with Fashion-MNIST IDX files (default: the Debian "
        "package's /usr/share/datasets/fashion-mnist).",
    )
    flags.DEFINE_bool("download", True, "Let TFDS download data that is not prepared.")
    flags.DEFINE_integer(
        "cache_data_mb",
        1024,
        "Splits whose raw inputs take at most this many MB are read once "
        "into host memory (through the same TFDS reader) and gathered "
        "from there; larger ones stream from disk at every pass; 0 "
        "streams everything.",
    )


@functools.cache
def define_progress_flags() -> None:
    """--progress and --progress_seconds, which every binary has (`run` applies them)."""
    flags.DEFINE_bool(
        "progress",
        True,
        "Show the progress of long work (training, predicting many functions, grids) "
        "with rate and ETA: a bar on a terminal, else a log line every "
        "--progress_seconds.",
    )
    flags.DEFINE_float(
        "progress_seconds",
        progress.LOG_SECONDS,
        "Seconds between progress log lines when stderr is not a terminal.",
    )


@functools.cache
def define_output_dir_flag() -> None:
    """--output_dir, which every binary has."""
    flags.DEFINE_string(
        "output_dir", None, "Directory to write: train.py's run (resumed if it exists), an "
        "analysis's results, export.py's SavedModel (new or empty), reproduce.py's study "
        "(runs/, analyses/, report/; default results/<scale>).")


@functools.cache
def define_output_flags() -> None:
    """--output_dir and --seed, which the binaries that train or analyse runs have."""
    define_output_dir_flag()
    flags.DEFINE_integer("seed", 0, "Random seed.")


def define_analysis_flags(split: bool = True) -> None:
    """--prediction_batch_size, --strategy, --allow_failed_runs and, with `split`,
    --split, for the binaries that analyse runs. Every analysis reports on the test
    split by default: the validation split is where subspace.py's acceptance rule
    selects."""
    define_strategy_flags()
    _define_analysis_flags()
    if split:
        _define_split_flag()


@functools.cache
def _define_analysis_flags() -> None:
    flags.DEFINE_bool(
        "allow_failed_runs",
        False,
        "Analyse runs whose training failed (diverged), up to their last good "
        "checkpoint; refused by default.",
    )
    flags.DEFINE_integer("prediction_batch_size", 500, "Batch size for predictions.")


@functools.cache
def _define_split_flag() -> None:
    flags.DEFINE_enum(
        "split",
        "test",
        ["validation", "test"],
        "Evaluation split the results are reported on.",
    )


@functools.cache
def define_shift_flags() -> None:
    """--corruptions and --intensities: the corrupted test sets to evaluate."""
    flags.DEFINE_list(
        "corruptions",
        ["all"],
        "Corruption types of the dataset's "
        "corrupted test sets: all, a list, or none (clean test set only).",
    )
    flags.DEFINE_list(
        "intensities",
        ["1", "2", "3", "4", "5"],
        "Corruption intensities (the clean test set is intensity 0 and always included).",
    )


def shift_sets() -> tuple[tuple[str, ...] | None, tuple[int, ...]]:
    """(corruptions: None for all, () for none; intensities) from the shift flags."""
    try:
        intensities = tuple(sorted({int(i) for i in FLAGS.intensities}))
    except ValueError:
        intensities = ()
    if not intensities or not set(intensities) <= {1, 2, 3, 4, 5}:
        raise UserError(
            f"--intensities are integers 1..5, got {','.join(FLAGS.intensities)}"
        )
    kinds = FLAGS.corruptions
    if not kinds or len(kinds) > 1 and {"all", "none"} & set(kinds):
        raise UserError("--corruptions is all, none, or a list of corruption types")
    return (
        None if kinds == ["all"] else () if kinds == ["none"] else tuple(kinds),
        intensities,
    )


@functools.cache
def define_batchnorm_flag() -> None:
    flags.DEFINE_bool(
        "reestimate_bn",
        True,
        "Re-estimate the batch-norm statistics of every function analysed (base, "
        "optima, samples) on the runs' training data, so all share one policy (models "
        "with batch norm only); else use the checkpoints' statistics.",
    )


@functools.cache
def define_runs_flag() -> None:
    flags.DEFINE_list("runs", None, "Run directories, or folders holding them.")


@functools.cache
def define_methods_flag() -> None:
    flags.DEFINE_list(
        "methods",
        list(catalog.PAPER_METHODS),
        f"Methods, any of {', '.join(catalog.METHODS)} (default: the paper's five "
        f"subspace samplers). variational: posterior draws of a variational run; "
        f"mc_dropout: passes with the network's own dropout on (not 'dropout', which "
        f"drops the solution's weights).",
    )


@functools.cache
def define_posterior_samples_flag() -> None:
    flags.DEFINE_integer(
        "num_posterior_samples",
        None,
        "Posterior draws per variational run averaged for its posterior predictive "
        "(ensemble.py: also MC-dropout passes per run); default 10 (the recipe's).",
    )


@functools.cache
def define_mc_dropout_flag() -> None:
    flags.DEFINE_float(
        "mc_dropout_rate",
        None,
        "MC dropout's rate on the activations (default: the run's training rate).",
    )


@functools.cache
def define_strategy_flags() -> None:
    flags.DEFINE_enum(
        "strategy",
        "default",
        distribute.STRATEGIES,
        "tf.distribute strategy: default (one device), mirrored (local GPUs), "
        "multi_worker (TF_CONFIG cluster), tpu.",
    )
    flags.DEFINE_string("tpu", None, "TPU name or address for --strategy=tpu.")
    flags.DEFINE_bool("allow_cpu_fallback", False, "Let --strategy=mirrored mirror over "
                      "the CPU devices when there is no GPU (an error otherwise).")
    flags.DEFINE_integer("logical_cpus", 0, "Split the CPU into this many logical devices "
                         "(with --strategy=mirrored --allow_cpu_fallback: a dry run of "
                         "several replicas on one machine); 0: as TensorFlow finds it.")


def load_dataset(name: str, validation_examples: int) -> datasets.Dataset:
    """The dataset `name` with the data-location flags."""
    if FLAGS.cache_data_mb < 0:
        raise UserError(f"--cache_data_mb must be >= 0, got {FLAGS.cache_data_mb}")
    return datasets.load(
        name,
        validation_examples=validation_examples,
        data_dir=FLAGS.data_dir,
        manual_dir=FLAGS.manual_dir,
        fashion_mnist_dir=FLAGS.fashion_mnist_dir,
        download=FLAGS.download,
        cache_bytes=FLAGS.cache_data_mb << 20,
    )


def load_run_data(shared: dict) -> datasets.Dataset:
    """The dataset runs were trained on (`shared`: `discovery.check_runs`' result):
    their validation split and, when they trained on their first N examples, the
    training split cut to those, so that batch-norm re-estimation and connectors use
    what the runs saw."""
    data = load_dataset(shared["dataset"], shared["validation_examples"])
    if shared.get("train_examples"):
        data = data.head("train", shared["train_examples"])
    return data


def strategy():
    """The --strategy of this process (made once per flag values)."""
    return _strategy(FLAGS.strategy, FLAGS.tpu, FLAGS.allow_cpu_fallback, FLAGS.logical_cpus)


@functools.cache
def _strategy(name: str, tpu: str | None, allow_cpu_fallback: bool, logical_cpus: int):
    if logical_cpus:
        distribute.split_cpu(logical_cpus)
    return distribute.get_strategy(name, tpu, allow_cpu_fallback)


def devices() -> dict:
    """`distribute.describe` of this process's --strategy (for config.json), its line
    logged: the binaries call it when their inputs are checked and the work starts."""
    found = distribute.describe(FLAGS.strategy, strategy())
    logging.info("%s", found["line"])
    return found
