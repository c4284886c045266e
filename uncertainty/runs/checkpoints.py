"""A run's epoch checkpoints: which exist, whether they verify, and their weights.

A checkpoint is trusted when every tensor reads back with the CRC32C checksum
TensorFlow stored beside it (`checkpoint_problem`). `recover` verifies the newest one
and walks back only on damage (or, asked to, verifies them all); the others need only
be whole in shape: an index that parses and data files at least as large as the
tensors it lists. A checkpoint's identity (`checkpoint_digest`) is recorded as it is
written (`save`), so that reading it back costs its small index file, not its weights.
Step checkpoints (`step_positions`) hold training's state inside an epoch; they last
until that epoch's checkpoint is written, and no analysis reads them.

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

from uncertainty import models
from uncertainty.infra import files
from uncertainty.infra.errors import UserError, reason
from uncertainty.models import flipout
from uncertainty.runs import layout


def epochs(run_dir: str) -> list[int]:
    """The epochs (1-based) that have a checkpoint, ascending."""
    pattern = os.path.join(layout.checkpoints_dir(run_dir), f"{layout.CHECKPOINT_NAME}-*.index")
    paths = files.glob(pattern)
    if not paths:
        layout.check_format(run_dir)
    found = (int(re.search(rf"{layout.CHECKPOINT_NAME}-(\d+)\.index$", p).group(1))
             for p in paths)
    return sorted(epoch for epoch in found if epoch > 0)


def _check_epoch(run_dir: str, epoch: int | None) -> int:
    """`epoch` (the last if None) if the run has its checkpoint; else a UserError."""
    if epoch is not None and files.exists(layout.checkpoint_prefix(run_dir, epoch) + ".index"):
        return epoch  # one look at its index file, not a glob of them all
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
    return files.exists(layout.checkpoint_prefix(run_dir, 0) + ".index")


def save(manager: tf.train.CheckpointManager, epoch: int, run_dir: str | None) -> None:
    """Saves the checkpoint of `epoch` with `manager`; with `run_dir` (the chief's
    copy), records its identity in checkpoints/digests/ (`checkpoint_digest`)."""
    manager.save(checkpoint_number=epoch)
    if run_dir is not None:
        _record_digest(run_dir, epoch)


def _record_digest(run_dir: str, epoch: int) -> None:
    """Records the identity of the checkpoint of `epoch` (`checkpoint_digest`)."""
    digest, index_digest = _hash_files(run_dir, epoch)
    files.write_text(layout.digest_path(run_dir, epoch),
                     json.dumps({"sha1": digest, "index_sha1": index_digest}))


def checkpoint_digest(run_dir: str, epoch: int) -> str:
    """SHA-1 of the files of the checkpoint of `epoch`: the identity of its weights.
    It is read from the record `save` made when the record's SHA-1 of the index file
    matches the index there (the index holds every tensor's CRC32C, which restoring
    checks), and computed from the files otherwise."""
    epoch = _check_epoch(run_dir, epoch)
    return _recorded_digest(run_dir, epoch) or _hash_files(run_dir, epoch)[0]


def _recorded_digest(run_dir: str, epoch: int) -> str | None:
    """The recorded identity of the checkpoint of `epoch` if its record matches the
    index there, else None (no record: a run written before the records, or a process
    stopped between a save and its record; an unreadable or stale record)."""
    try:
        recorded = json.loads(files.read_bytes(layout.digest_path(run_dir, epoch)))
        index = files.read_bytes(layout.checkpoint_prefix(run_dir, epoch) + ".index")
        if recorded["index_sha1"] == hashlib.sha1(index).hexdigest():
            return recorded["sha1"]
    except (tf.errors.NotFoundError, ValueError, KeyError, TypeError):
        pass
    return None


def _hash_files(run_dir: str, epoch: int) -> tuple[str, str]:
    """(SHA-1 of all files of the checkpoint of `epoch`, in name order; SHA-1 of its
    index file)."""
    digest, index_digest = hashlib.sha1(), hashlib.sha1()
    for path in files.glob(layout.checkpoint_prefix(run_dir, epoch) + ".*"):
        content = files.read_bytes(path)
        digest.update(content)
        if path.endswith(".index"):
            index_digest.update(content)
    return digest.hexdigest(), index_digest.hexdigest()


def _shape_problem(run_dir: str, epoch: int) -> str | None:
    """Why the checkpoint of `epoch` is not whole in shape (its index does not parse,
    a data shard is missing or shorter than the numeric tensors the index lists), or
    None. Reads the index only."""
    prefix = layout.checkpoint_prefix(run_dir, epoch)
    shards = files.glob(prefix + ".data-*")
    expected = {f"{prefix}.data-{i:05d}-of-{len(shards):05d}" for i in range(len(shards))}
    if not shards or set(shards) != expected:
        return f"its data files are not all there ({len(shards)} found)"

    def numeric_bytes(reader):
        dtypes = reader.get_variable_to_dtype_map()
        return sum(int(np.prod(shape)) * dtypes[name].size
                   for name, shape in reader.get_variable_to_shape_map().items()
                   if dtypes[name] != tf.string)

    numeric, problem = _read(prefix, numeric_bytes)
    if problem is not None:
        return problem
    size = sum(files.gfile.stat(path).length for path in shards)
    if size < numeric:
        return f"its data files hold {size} bytes, its tensors need {numeric}"
    return None


def checkpoint_problem(run_dir: str, epoch: int) -> str | None:
    """Why the checkpoint of `epoch` cannot be trusted, or None when every tensor in
    it reads back and matches the CRC32C checksum TensorFlow stored with it."""
    return _read(layout.checkpoint_prefix(run_dir, epoch), _read_every_tensor)[1]


def _read_every_tensor(reader) -> None:
    for name in reader.get_variable_to_shape_map():
        reader.get_tensor(name)


def _read(prefix: str, use):
    """(`use(reader)` of the checkpoint at `prefix`, None), or (None, why it cannot
    be read); a storage failure that is not the file's fault is a UserError."""
    try:
        return use(tf.compat.v1.train.NewCheckpointReader(prefix)), None  # any filesystem
    except Exception as e:  # noqa: BLE001 (the reader raises several types)
        message = reason(e)
        if getattr(e, "error_code", None) in _TRANSIENT:  # not the file's fault
            raise UserError(f"cannot read {prefix} now ({message}); try again") from None
        return None, message


# Errors that say the storage failed to answer, not that a checkpoint is damaged.
_TRANSIENT = {tf.errors.UNAVAILABLE, tf.errors.DEADLINE_EXCEEDED,
              tf.errors.RESOURCE_EXHAUSTED, tf.errors.ABORTED, tf.errors.CANCELLED,
              tf.errors.PERMISSION_DENIED, tf.errors.UNAUTHENTICATED}


def recover(run_dir: str, set_aside: bool = True, verify_all: bool = False) -> int | None:
    """The epoch training resumes from: the newest checkpoint that verifies
    (`checkpoint_problem`) among those that follow the initialisation without a gap,
    each whole in shape (`_shape_problem`); None if none does. With `verify_all`,
    every checkpoint is verified and the last of the unbroken run of sound ones from
    the initialisation on is the answer. Every later checkpoint (damaged, or after a
    damaged one: retraining replaces it) is moved to checkpoints/set_aside/ with a log
    line, as are TensorFlow's temporary folders and a checkpoint-state file that
    cannot be parsed, and the answer's identity is recorded if it was not; with
    `set_aside=False` (a worker that only reads) nothing moves or is written."""
    directory = layout.checkpoints_dir(run_dir)
    found = [0] * _has_init(run_dir) + epochs(run_dir)
    chain = []  # 0, 1, 2, ... while each is whole in shape
    for epoch in found:
        problem = (_shape_problem(run_dir, epoch) if epoch == len(chain)
                   else f"epoch {len(chain)} has no checkpoint")
        if problem is not None:
            logging.warning("%s: checkpoint of epoch %d is damaged (%s)", run_dir, epoch,
                            problem)
            break
        chain.append(epoch)
    good = None
    for epoch in chain if verify_all else reversed(chain):
        problem = checkpoint_problem(run_dir, epoch)
        if problem is not None:
            logging.warning("%s: checkpoint of epoch %d is damaged (%s)", run_dir, epoch,
                            problem)
            if verify_all:
                break
        else:
            good = epoch
            if not verify_all:
                break
    if not set_aside or not files.isdir(directory):
        return good
    if good is not None and _recorded_digest(run_dir, good) is None:
        _record_digest(run_dir, good)  # stopped between its save and its record
    later = [e for e in found if good is None or e > good]
    leftovers = [n for n in files.listdir(directory) if "_temp" in n]
    if files.exists(os.path.join(directory, "checkpoint")) and (
            good is None or not _state_readable(directory)):
        leftovers.append("checkpoint")
    if not later and not leftovers:
        return good
    aside = os.path.join(directory, layout.SET_ASIDE,
                         time.strftime("%Y%m%d-%H%M%S-") + os.urandom(3).hex())
    files.makedirs(aside)
    for epoch in later:
        for path in files.glob(layout.checkpoint_prefix(run_dir, epoch) + ".*"):
            files.gfile.rename(path, os.path.join(aside, os.path.basename(path)))
        record = layout.digest_path(run_dir, epoch)
        if files.exists(record):
            files.gfile.rename(record, os.path.join(aside, f"digest-{os.path.basename(record)}"))
    for name in leftovers:
        files.gfile.rename(os.path.join(directory, name), os.path.join(aside, name))
    if good is not None:  # the state file lists what is left
        tf.compat.v1.train.update_checkpoint_state(
            directory, layout.checkpoint_prefix(run_dir, good),
            [layout.checkpoint_prefix(run_dir, e) for e in range(good + 1)])
    logging.warning("%s: set aside in %s: checkpoints of epochs %s%s (training resumes "
                    "from epoch %s); delete that folder once the run is complete",
                    run_dir, aside, later, f" and {leftovers}" if leftovers else "",
                    "0" if good is None else good)
    return good


def step_positions(run_dir: str) -> list[tuple[int, int]]:
    """(epochs done, step) of every step checkpoint (`layout.step_prefix`), ascending."""
    pattern = os.path.join(layout.steps_dir(run_dir), f"{layout.CHECKPOINT_NAME}-*-*.index")
    found = (re.search(r"-(\d+)-(\d+)\.index$", p) for p in files.glob(pattern))
    return sorted((int(m.group(1)), int(m.group(2))) for m in found if m)


def recover_step(run_dir: str, epoch: int | None, remove: bool = True) -> int | None:
    """The step to resume the epoch after the checkpoint of `epoch` from: that of its
    newest step checkpoint that verifies (`checkpoint_problem`), or None. With `remove`
    every other step checkpoint goes (older ones, damaged ones, and those of other
    epochs, which training no longer continues from), with a log line for the damaged."""
    found = None
    for done, step in reversed(step_positions(run_dir)):
        if done != epoch or found is not None:
            continue
        problem = _read(layout.step_prefix(run_dir, done, step), _read_every_tensor)[1]
        if problem is None:
            found = step
        else:
            logging.warning("%s: the checkpoint at step %d of epoch %d is damaged (%s); "
                            "that epoch resumes from an earlier point", run_dir, step,
                            done + 1, problem)
    if remove:
        remove_steps(run_dir, keep=None if found is None else (epoch, found))
    return found


def remove_steps(run_dir: str, keep: tuple[int, int] | None = None) -> None:
    """Removes the step checkpoints (and the leftovers of cut-off writes) but `keep`'s."""
    directory = layout.steps_dir(run_dir)
    kept = None if keep is None else os.path.basename(layout.step_prefix(run_dir, *keep))
    for name in files.listdir(directory) if files.isdir(directory) else []:
        if kept is None or not name.startswith(kept + "."):
            path = os.path.join(directory, name)
            if files.isdir(path):
                files.gfile.rmtree(path)
            else:
                files.gfile.remove(path)


def _state_readable(directory: str) -> bool:
    """Whether the CheckpointManager's state file in `directory` parses (TensorFlow
    reads one that does not as no state, with a warning)."""
    try:
        return tf.train.get_checkpoint_state(directory) is not None
    except Exception:  # noqa: BLE001 (cut off or overwritten)
        return False


def model_shape(run_dir: str) -> tuple[tuple[int, ...], int]:
    """(input shape, number of classes) of the run's model."""
    config = layout.read_config(run_dir)
    return tuple(config["input_shape"]), config["num_classes"]


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
    index = files.read_bytes(layout.checkpoint_prefix(run_dir, epoch) + ".index")
    return _checkpoint_arrays(run_dir, epoch, hashlib.sha1(index).hexdigest())


@functools.lru_cache(maxsize=2)
def _checkpoint_arrays(run_dir: str, epoch: int, index_digest: str):
    """`_read_checkpoint` of the checkpoint whose index file has SHA-1 `index_digest`
    (the index holds every tensor's checksum, so it names the content): the last two
    read are kept, read-only, for the many functions made from one checkpoint."""
    model = _restore(run_dir, epoch)
    if flipout.is_variational(model):
        weights = flipout.twin_weights(model)
    else:
        trainable = {id(w) for w in model.trainable_weights}
        weights = [(w.name, w.numpy(), None, id(w) in trainable) for w in model.weights]
    for _, value, std, _ in weights:
        for array in (value, std):
            if array is not None:
                array.setflags(write=False)
    return ([value for _, value, _, _ in weights], [t for _, _, _, t in weights],
            [std for _, _, std, _ in weights])


def restore(run_dir: str, epoch: int | None = None):
    """The run's model (a variational run's variational model) holding the weights of
    the checkpoint of `epoch` (the last if None). The model object is shared by the
    runs of one architecture: each call restores into it."""
    epoch = _check_epoch(run_dir, epoch)
    return _restore(run_dir, epoch)


def _restore(run_dir: str, epoch: int):
    """`restore` of an epoch already checked."""
    config = layout.read_config(run_dir)
    fields = ("model", "method", *layout.DERIVED_FIELDS)
    if config.get("method") == "variational":  # its layers take the prior and the seed
        fields += ("prior_stddev", "posterior_init_stddev", "seed")
    model = _reader(json.dumps({k: config.get(k) for k in fields}, sort_keys=True))
    prefix = layout.checkpoint_prefix(run_dir, epoch)
    try:
        tf.train.Checkpoint(model=model).read(prefix).expect_partial()
    except (tf.errors.OpError, ValueError, IndexError) as e:
        raise files.CorruptFile(prefix, reason(e), _RETRAIN.format(run_dir=run_dir)) from None
    return model


_RETRAIN = ("re-run baselines/train.py with --output_dir={run_dir} --verify_checkpoints and "
            "the run's flags: it retrains from the last checkpoint before the damage")


@functools.lru_cache(maxsize=8)
def _reader(architecture: str):
    """A model to restore checkpoints of runs of one `architecture` (JSON of the
    config fields that shape the model) into: one for every seed of a deterministic
    architecture (a ResNet-50 takes ~5 s to build on a CPU)."""
    spec = json.loads(architecture)
    layers = None
    if spec["method"] == "variational":
        layers = models.Variational(spec["prior_stddev"], spec["posterior_init_stddev"],
                                    num_train_examples=1, seed=spec["seed"])
    return models.build(spec["model"], spec["input_shape"], spec["num_classes"],
                        variational=layers)


def load_posterior(run_dir: str, epoch: int | None = None
                   ) -> tuple[np.ndarray, np.ndarray]:
    """A variational run's posterior mean and standard deviation (0 where a weight is
    a point estimate) of every trainable weight, flat in `load_weights` order."""
    if layout.method(run_dir) != "variational":
        raise UserError(f"{run_dir} is a {layout.method(run_dir)} run and has no posterior; "
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


# Where `tf.train.Checkpoint(model=...)` stores the input normaliser's weights: the
# model's first layer with weights (`models.build`).
_NORMALIZER_KEY = "model/layer_with_weights-0/{}/.ATTRIBUTES/VARIABLE_VALUE"


def read_normalizer(run_dir: str) -> tuple[np.ndarray, np.ndarray]:
    """The (shift, scale) the run's inputs are normalised with (its model's first
    weights, the `normalizer` layer's), read alone from the initial checkpoint."""
    prefix = layout.checkpoint_prefix(run_dir, _check_epoch(run_dir, 0))
    try:
        reader = tf.compat.v1.train.NewCheckpointReader(prefix)  # the prefix itself:
        # tf.train.load_checkpoint takes it for a folder where a store says it is one
        return tuple(reader.get_tensor(_NORMALIZER_KEY.format(name))
                     for name in ("shift", "scale"))
    except (tf.errors.OpError, ValueError) as e:
        raise files.CorruptFile(prefix, reason(e), _RETRAIN.format(run_dir=run_dir)) from None

