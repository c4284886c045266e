"""Run directories: config, per-epoch checkpoints, and flat weight vectors.

Layout of a run made by `baselines/train.py`:
  config.json          the resolved flags (identity of the run), and the model's input
                       shape and class count
  checkpoints/ckpt-N   a standard `tf.train.Checkpoint` after epoch N (1-based; N = 0
                       is the initialisation), every one kept (`CheckpointManager`):
                       the model (its input preprocessing included, as the
                       `normalizer` layer's weights; a variational run's posterior),
                       the optimizer, the dropout and noise generators, and the
                       number of epochs done (the input position: batches are a
                       function of seed and epoch). Readable with
                       `tf.train.load_checkpoint` / `tf.train.list_variables`.
  history.json         per-epoch training scalars; summaries/ the same for TensorBoard
  metrics.json         final metrics, written last: its presence marks a finished run
  status.json          training, failed (diverged: why, where) or complete
  *.json.sha256        each JSON file's checksum (`sha256sum -c` checks it by hand)
  .lock                while a process writes the run (`uncertainty.locks`)
A checkpoint is trusted when every tensor reads back with the CRC32C checksum
TensorFlow stored beside it (`checkpoint_problem`); resuming keeps the longest run of
trusted checkpoints from the initialisation on and sets the rest aside in
checkpoints/set_aside/ (`recover`).
Runs written before (legacy) hold checkpoints/init.npz and epoch_NNN.npz (all model
weights; for a variational run its deterministic twin's and the kernels' std) and
normalizer.npz; they are read the same way.

The weights of a checkpoint are read as the run's deterministic network's
`model.weights` (a variational run: its twin holding the posterior means); a weight
vector is its trainable weights, each flattened, concatenated in `trainable_weights`
order (kernels and biases of every layer), float32.
"""

import functools
import hashlib
import json
import os
import re
import time

import numpy as np
import tensorflow as tf
from absl import logging

from uncertainty import files
from uncertainty.errors import UserError, reason

# Config fields that say where things are, not what the run is; they may change on resume.
# (and how it runs: steps per host call)
LOCATION_FIELDS = ("output_dir", "data_dir", "manual_dir", "fashion_mnist_dir", "download",
                   "strategy", "tpu", "steps_per_loop", "cache_data_mb", "max_loss")
# Config fields the dataset determines (recorded so a checkpoint can be read alone).
DERIVED_FIELDS = ("input_shape", "num_classes")
CONFIG, METRICS, HISTORY, NORMALIZER, STATUS = ("config.json", "metrics.json",
                                               "history.json", "normalizer.npz",
                                               "status.json")
SET_ASIDE = "set_aside"  # checkpoints/set_aside/: damaged or superseded checkpoints
CHECKPOINT_NAME = "ckpt"  # checkpoints/ckpt-<epoch>


def checkpoints_dir(run_dir: str) -> str:
    return os.path.join(run_dir, "checkpoints")


def checkpoint_prefix(run_dir: str, epoch: int) -> str:
    """The `tf.train.Checkpoint` of `epoch` (0 = initialisation)."""
    return os.path.join(checkpoints_dir(run_dir), f"{CHECKPOINT_NAME}-{epoch}")


def checkpoint_name(epoch: int) -> str:
    """A checkpoint's name in caches and logs: init, epoch_001, ..."""
    return "init" if epoch == 0 else f"epoch_{epoch:03d}"


def is_legacy(run_dir: str) -> bool:
    """Whether the run was written with .npz weight files (before tf.train checkpoints)."""
    return files.exists(_legacy_path(run_dir, 0))


def _legacy_path(run_dir: str, epoch: int) -> str:
    return os.path.join(checkpoints_dir(run_dir), f"{checkpoint_name(epoch)}.npz")


def epochs(run_dir: str) -> list[int]:
    """The epochs (1-based) that have a checkpoint, ascending."""
    if is_legacy(run_dir):
        paths = files.glob(os.path.join(checkpoints_dir(run_dir), "epoch_*.npz"))
        return sorted(int(re.search(r"epoch_(\d+)\.npz$", p).group(1)) for p in paths)
    paths = files.glob(os.path.join(checkpoints_dir(run_dir), f"{CHECKPOINT_NAME}-*.index"))
    found = (int(re.search(rf"{CHECKPOINT_NAME}-(\d+)\.index$", p).group(1)) for p in paths)
    return sorted(epoch for epoch in found if epoch > 0)


def _check_epoch(run_dir: str, epoch: int | None) -> int:
    """`epoch` (the last if None) if the run has its checkpoint; else a UserError."""
    available = epochs(run_dir)
    if epoch is None:
        if not available:
            raise UserError(f"{run_dir} has no epoch checkpoints; train it with "
                            f"baselines/train.py first")
        return available[-1]
    if epoch not in available and not (epoch == 0 and _has_init(run_dir)):
        raise UserError(f"{run_dir} has no checkpoint for epoch {epoch}; it has epochs "
                        f"{available}")
    return epoch


def _has_init(run_dir: str) -> bool:
    return is_legacy(run_dir) or files.exists(checkpoint_prefix(run_dir, 0) + ".index")


def checkpoint_digest(run_dir: str, epoch: int) -> str:
    """SHA-1 of the files of the checkpoint of `epoch`: the identity of its weights."""
    epoch = _check_epoch(run_dir, epoch)
    if is_legacy(run_dir):
        return hashlib.sha1(files.read_bytes(_legacy_path(run_dir, epoch))).hexdigest()
    digest = hashlib.sha1()
    for path in files.glob(checkpoint_prefix(run_dir, epoch) + ".*"):
        digest.update(files.read_bytes(path))
    return digest.hexdigest()


def checkpoint_problem(run_dir: str, epoch: int) -> str | None:
    """Why the checkpoint of `epoch` cannot be trusted, or None when every tensor in
    it reads back and matches the CRC32C checksum TensorFlow stored with it."""
    prefix = checkpoint_prefix(run_dir, epoch)
    try:
        reader = tf.train.load_checkpoint(prefix)
        for name in reader.get_variable_to_shape_map():
            reader.get_tensor(name)
    except Exception as e:  # noqa: BLE001: the reader raises several types
        message = reason(e)
        if getattr(e, "error_code", None) in _TRANSIENT:  # not the file's fault
            raise UserError(f"cannot read {prefix} now ({message}); try again") from None
        return message
    return None


# Errors that say the storage failed to answer, not that a checkpoint is damaged.
_TRANSIENT = {tf.errors.UNAVAILABLE, tf.errors.DEADLINE_EXCEEDED,
              tf.errors.RESOURCE_EXHAUSTED, tf.errors.ABORTED, tf.errors.CANCELLED,
              tf.errors.PERMISSION_DENIED, tf.errors.UNAUTHENTICATED}


def recover(run_dir: str, set_aside: bool = True) -> int | None:
    """The last epoch N such that the checkpoints of epochs 0..N all verify
    (`checkpoint_problem`), None if the initialisation's does not. Every later
    checkpoint (damaged, or after a damaged one: retraining replaces it) is moved to
    checkpoints/set_aside/ with a log line, as are TensorFlow's temporary folders
    and a checkpoint-state file that cannot be parsed; with `set_aside=False` (a
    worker that only reads) nothing moves."""
    directory = checkpoints_dir(run_dir)
    found = [0] * _has_init(run_dir) + epochs(run_dir)
    good = None
    for epoch in found:
        problem = checkpoint_problem(run_dir, epoch)
        if problem is not None:
            logging.warning("%s: checkpoint of epoch %d is damaged (%s)", run_dir, epoch,
                            problem)
            break
        if epoch != (0 if good is None else good + 1):
            break  # a gap
        good = epoch
    if not set_aside or not files.isdir(directory):
        return good
    later = [e for e in found if good is None or e > good]
    leftovers = [n for n in files.listdir(directory) if "_temp" in n]
    if files.exists(os.path.join(directory, "checkpoint")) and (
            good is None or not _state_readable(directory)):
        leftovers.append("checkpoint")
    if not later and not leftovers:
        return good
    aside = os.path.join(directory, SET_ASIDE,
                         time.strftime("%Y%m%d-%H%M%S-") + os.urandom(3).hex())
    files.makedirs(aside)
    for epoch in later:
        for path in files.glob(checkpoint_prefix(run_dir, epoch) + ".*"):
            files.gfile.rename(path, os.path.join(aside, os.path.basename(path)))
    for name in leftovers:
        files.gfile.rename(os.path.join(directory, name), os.path.join(aside, name))
    if good is not None:  # the state file lists what is left
        tf.compat.v1.train.update_checkpoint_state(
            directory, checkpoint_prefix(run_dir, good),
            [checkpoint_prefix(run_dir, e) for e in range(good + 1)])
    logging.warning("%s: set aside in %s: checkpoints of epochs %s%s (training resumes "
                    "from epoch %s); delete that folder once the run is complete",
                    run_dir, aside, later, f" and {leftovers}" if leftovers else "",
                    "0" if good is None else good)
    return good


def _state_readable(directory: str) -> bool:
    """Whether the CheckpointManager's state file in `directory` parses (TensorFlow
    reads one that does not as no state, with a warning)."""
    try:
        return tf.train.get_checkpoint_state(directory) is not None
    except Exception:  # noqa: BLE001: cut off or overwritten
        return False


def model_shape(run_dir: str) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of the run's model."""
    config = read_config(run_dir)
    if "input_shape" in config:
        return tuple(config["input_shape"]), config["num_classes"]
    arrays, _, _ = _read_legacy(run_dir, 0)  # legacy: the normaliser's and logits' shapes
    return arrays[0].shape, arrays[-1].shape[-1]


def load_arrays(run_dir: str, epoch: int | None = None,
                trainable_only: bool = False) -> list[np.ndarray]:
    """The weight arrays of `epoch` (the last if None; 0 = initialisation), in
    `model.weights` order, or only the trainable ones."""
    arrays, trainable, _ = _read_checkpoint(run_dir, epoch)
    return [a for a, t in zip(arrays, trainable) if t or not trainable_only]


def _read_checkpoint(run_dir: str, epoch: int | None
                     ) -> tuple[list[np.ndarray], list[bool], list[np.ndarray | None]]:
    """All weight arrays of `epoch` (the last if None), which are trainable, and each
    one's posterior std (None where there is none)."""
    epoch = _check_epoch(run_dir, epoch)
    if is_legacy(run_dir):
        return _read_legacy(run_dir, epoch)
    from uncertainty.models import variational  # TFP: imported only when reading

    model = _restore(run_dir, epoch)
    if variational.is_variational(model):
        weights = variational.twin_weights(model)
    else:
        trainable = {id(w) for w in model.trainable_weights}
        weights = [(w.name, w.numpy(), None, id(w) in trainable) for w in model.weights]
    return ([value for _, value, _, _ in weights], [t for _, _, _, t in weights],
            [std for _, _, std, _ in weights])


def restore(run_dir: str, epoch: int | None = None):
    """The run's model (a variational run's variational model) holding the weights of
    the checkpoint of `epoch` (the last if None). The model object is shared by the
    runs of one architecture: each call restores into it."""
    epoch = _check_epoch(run_dir, epoch)
    if is_legacy(run_dir):
        raise UserError(f"{run_dir} holds .npz checkpoints of an older version; read its "
                        f"weights with trajectory.load_arrays")
    return _restore(run_dir, epoch)


def _restore(run_dir: str, epoch: int):
    """`restore` of an epoch already checked, in a run of tf.train checkpoints."""
    config = read_config(run_dir)
    model = _reader(json.dumps({k: config.get(k) for k in (
        "model", "method", "prior_stddev", "posterior_init_stddev", "seed",
        *DERIVED_FIELDS)}, sort_keys=True))
    prefix = checkpoint_prefix(run_dir, epoch)
    try:
        tf.train.Checkpoint(model=model).read(prefix).expect_partial()
    except (tf.errors.OpError, ValueError, IndexError) as e:
        raise files.CorruptFile(prefix, reason(e), _RETRAIN.format(run_dir=run_dir)) from None
    return model


_RETRAIN = ("re-run baselines/train.py with --output_dir={run_dir} and the run's flags: "
            "it retrains from the newest checkpoint that verifies")


@functools.lru_cache(maxsize=8)
def _reader(architecture: str):
    """A model to restore checkpoints of runs of one `architecture` (JSON of the
    config fields that shape the model) into."""
    from uncertainty import models

    spec = json.loads(architecture)
    layers = None
    if spec["method"] == "variational":
        layers = models.Variational(spec["prior_stddev"], spec["posterior_init_stddev"],
                                    num_train_examples=1, seed=spec["seed"])
    return models.build(spec["model"], spec["input_shape"], spec["num_classes"],
                        variational=layers)


def _read_legacy(run_dir: str, epoch: int
                 ) -> tuple[list[np.ndarray], list[bool], list[np.ndarray | None]]:
    """A legacy .npz checkpoint, with the normaliser's (shift, scale) first, where the
    model now holds them (its `normalizer` layer)."""
    path = _legacy_path(run_dir, epoch)
    try:
        with files.read_npz(path) as data:
            count = len(data["names"])
            arrays = [data[f"w{i:03d}"] for i in range(count)]
            stds = [data[f"std{i:03d}"] if f"std{i:03d}" in data else None
                    for i in range(count)]
            trainable = [bool(t) for t in data["trainable"]]
        path = os.path.join(run_dir, NORMALIZER)
        with files.read_npz(path) as saved:
            shift, scale = saved["shift"], saved["scale"]
    except Exception as e:  # noqa: BLE001: zip, CRC or format errors
        raise files.CorruptFile(path, f"{type(e).__name__}: {e}"[:200],
                                "restore it from a backup: a run of this older format "
                                "cannot be retrained in place") from None
    return [shift, scale, *arrays], [False, False, *trainable], [None, None, *stds]


def load_posterior(run_dir: str, epoch: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A variational run's posterior mean and standard deviation (0 where a weight is
    a point estimate) of every trainable weight, flat in `load_weights` order."""
    if method(run_dir) != "variational":
        raise UserError(f"{run_dir} is a {method(run_dir)} run and has no posterior; "
                        f"pass a run trained with --method=variational")
    arrays, trainable, stds = _read_checkpoint(run_dir, epoch)
    trained = [(a, s) for a, t, s in zip(arrays, trainable, stds) if t]
    return (flatten([a for a, _ in trained]),
            flatten([np.zeros_like(a) if s is None else s for a, s in trained]))


def load_weights(run_dir: str, epoch: int | None = None) -> np.ndarray:
    """All trainable weights and biases of `epoch` as one flat float32 vector."""
    return flatten(load_arrays(run_dir, epoch, trainable_only=True))


def with_vector(run_dir: str, vector: np.ndarray, epoch: int | None = None
                ) -> list[np.ndarray]:
    """All weight arrays of `epoch` with the trainable ones replaced by the flat
    `vector` (as `load_weights` orders them); non-trainable ones (batch-norm
    statistics) stay those of `epoch`."""
    arrays, trainable, _ = _read_checkpoint(run_dir, epoch)
    shapes = [a.shape for a, t in zip(arrays, trainable) if t]
    replacements = iter(unflatten(np.asarray(vector, np.float32), shapes))
    return [next(replacements) if t else a for a, t in zip(arrays, trainable)]


def flatten(arrays) -> np.ndarray:
    return np.concatenate([np.ravel(a) for a in arrays]).astype(np.float32)


def unflatten(vector: np.ndarray, shapes) -> list[np.ndarray]:
    """Inverse of `flatten` for arrays of `shapes`."""
    sizes = [int(np.prod(s)) for s in shapes]
    if sum(sizes) != vector.size:
        raise ValueError(f"vector has {vector.size} values, shapes need {sum(sizes)}")
    parts = np.split(vector, np.cumsum(sizes)[:-1])
    return [p.reshape(s) for p, s in zip(parts, shapes)]


def read_normalizer(run_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """The (shift, scale) the run's inputs are normalised with (its model's first
    weights, the `normalizer` layer's)."""
    shift, scale = load_arrays(run_dir, 0)[:2]
    return shift, scale


def read_config(run_dir: str) -> dict:
    path = os.path.join(run_dir, CONFIG)
    if not files.exists(path):
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG}); pass a "
                        f"directory written by baselines/train.py")
    return files.read_json(path, fix=_CONFIG_FIX)


_CONFIG_FIX = ("the run's settings cannot be trusted: restore the file from a backup "
               "(`sha256sum -c config.json.sha256` checks it) or train the run again in "
               "a new --output_dir")


# What a config.json written before a field existed means by it.
_FIELD_DEFAULTS = {"method": "deterministic"}


def method(run_dir: str) -> str:
    """How the run was trained: deterministic, or variational (a posterior per weight)."""
    return read_config(run_dir).get("method", _FIELD_DEFAULTS["method"])


def identity(run_dir: str) -> str:
    """A digest of what the run is (its config without locations): the same for a run
    moved to another folder, different for runs of other seeds or settings. Random
    streams that concern a run derive from it (`seeding`)."""
    config = {k: v for k, v in read_config(run_dir).items()
              if k not in LOCATION_FIELDS + DERIVED_FIELDS}
    return files.digest(config)


def prepare(run_dir: str, config: dict, ignore: tuple[str, ...] = (),
            write: bool = True, defaults: dict | None = None) -> None:
    """Creates `run_dir` for `config`, or checks that it holds a run of the same config.

    Keys in `ignore` (where data live, how many devices) may differ; a key the saved
    config lacks (it predates the key) counts as its value in `defaults`. A directory
    with other content is refused. With `write=False` it only checks (non-chief
    workers).
    """
    defaults = defaults or {}
    if files.exists(run_dir) and not files.isdir(run_dir):
        raise UserError(f"--output_dir {run_dir} is a file; pass a directory")
    path = os.path.join(run_dir, CONFIG)
    if files.exists(path):
        old = files.read_json(path, fix=_CONFIG_FIX)
        diffs = [f"{k}: {old.get(k)!r} there, {config.get(k)!r} now"
                 for k in sorted(set(old) | set(config))
                 if k not in ignore and old.get(k, defaults.get(k)) != config.get(k)]
        if diffs:
            raise UserError(f"--output_dir {run_dir} holds a run made with different flags "
                            f"({'; '.join(diffs)}); use a new --output_dir or the original "
                            f"flags")
        return
    if files.isdir(run_dir) and any(not name.startswith((".lock", files.TMP_PREFIX))
                                    for name in files.listdir(run_dir)):
        raise UserError(f"--output_dir {run_dir} is not empty and holds no run; pass an "
                        f"empty or new directory")
    if write:
        try:
            files.write_json(path, config)
        except (OSError, tf.errors.OpError) as e:
            reason = e.strerror if isinstance(e, OSError) else e.message
            raise UserError(f"cannot write --output_dir {run_dir} ({reason}); pass a "
                            f"directory you can write to") from None


# Names runs written before the uncertainty-baselines names used; read as the new ones.
_OLD_METRIC_NAMES = {f"{split}/nll": f"{split}/negative_log_likelihood"
                     for split in ("train", "validation", "test")}


def read_metrics(run_dir: str) -> dict:
    """A finished run's metrics.json, with old metric names read as today's."""
    saved = files.read_json(os.path.join(run_dir, METRICS), fix=(
        f"re-run baselines/train.py with --output_dir={run_dir} and the run's flags: it "
        f"scores the checkpoints again"))
    return {_OLD_METRIC_NAMES.get(name, name): value for name, value in saved.items()}


def is_complete(run_dir: str) -> bool:
    """Whether the run finished (its metrics are written). `baselines/train.py` also
    verifies every checkpoint before it believes that (`recover`)."""
    return files.exists(os.path.join(run_dir, METRICS))


def write_status(run_dir: str, state: str, **details) -> None:
    """Records the run's state: training, failed (with `details`: why, where) or
    complete."""
    files.write_json(os.path.join(run_dir, STATUS), {
        "state": state, "updated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **details})


def read_status(run_dir: str) -> dict:
    """The run's status.json ({"state": "complete"} or {} for runs that predate it)."""
    path = os.path.join(run_dir, STATUS)
    if files.exists(path):
        return files.read_json(path, fix=f"it records whether training failed: re-run "
                                         f"baselines/train.py with --output_dir={run_dir} "
                                         f"and the run's flags to write it again")
    return {"state": "complete"} if is_complete(run_dir) else {}


# Config fields that must agree for runs to be compared on the same examples.
SAME_FIELDS = ("dataset", "data_source", "model", "validation_examples", "train_examples",
               "method")


def find_runs(paths: list[str]) -> list[str]:
    """Run directories named in `paths`: each a run, or a folder of runs (sorted)."""
    runs = []
    for path in paths:
        if files.exists(os.path.join(path, CONFIG)):
            runs.append(path)
        elif files.isdir(path):
            found = sorted(os.path.join(path, d) for d in files.listdir(path)
                           if files.exists(os.path.join(path, d, CONFIG)))
            if not found:
                raise UserError(f"{path} holds no run directories (no */config.json); "
                                f"pass runs made by baselines/train.py")
            runs.extend(found)
        else:
            raise UserError(f"{path} does not exist; pass run directories or a folder of "
                            f"them")
    return runs


def check_runs(runs: list[str], minimum: int = 2, allow_failed: bool = False) -> dict:
    """Refuses too few runs, runs that differ in SAME_FIELDS, gaps in checkpoints, or
    (unless `allow_failed`) runs whose training failed. Returns the shared config
    values."""
    if len(runs) < minimum:
        raise UserError(f"need at least {minimum} runs to compare, got {len(runs)}; "
                        f"train more seeds with baselines/train.py")
    for run in runs:
        status = read_status(run)
        if status.get("state") == "failed" and not allow_failed:
            raise UserError(f"{run} failed in training ({status.get('reason', '?')}); "
                            f"retrain it, leave it out, or pass --allow_failed_runs to "
                            f"analyse its checkpoints up to the failure")
    configs = {run: {**_FIELD_DEFAULTS, **read_config(run)} for run in runs}
    first = configs[runs[0]]
    for run, config in configs.items():
        for field in SAME_FIELDS:
            if config.get(field) != first.get(field):
                raise UserError(f"runs differ in {field}: {runs[0]} has {first.get(field)!r}, "
                                f"{run} has {config.get(field)!r}; compare runs of one setting")
        available = epochs(run)
        if available != list(range(1, len(available) + 1)) or not available:
            raise UserError(f"{run} has missing checkpoints (epochs {available}); finish or "
                            f"re-run it with baselines/train.py")
    return {field: first.get(field) for field in SAME_FIELDS}


def check_source(run: str, data) -> None:
    """Refuses data loaded from another source than the run's (other example order)."""
    source = read_config(run).get("data_source")
    if source != data.source:
        raise UserError(f"the runs were trained on {data.name} from {source!r} but here it "
                        f"loads from {data.source!r}, whose examples are in another order; "
                        f"point the data flags at the runs' source")
