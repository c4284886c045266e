"""A run directory's files, and reading and writing its small ones.

Layout of a run made by `baselines/train.py` (`trainer.train`):
  config.json          the resolved flags (identity of the run), and the model's input
                       shape and class count
  checkpoints/ckpt-N   a standard `tf.train.Checkpoint` after epoch N (1-based; N = 0
                       is the initialisation), every one kept (`checkpoints`): the
                       model (its input normaliser included; a variational run's
                       posterior), the optimizer, the dropout and noise generators, and
                       the number of epochs done (batches are a function of seed and
                       epoch). Readable with `tf.train.load_checkpoint`.
  checkpoints/digests/ckpt-N  the checkpoint's identity, recorded as it is written
                       (`checkpoints.checkpoint_digest`)
  checkpoints/set_aside/  damaged or superseded checkpoints (`checkpoints.recover`)
  history.json         per-epoch training scalars; summaries/ the same for TensorBoard
  metrics.json         final metrics, written last: its presence marks a finished run
  status.json          training, failed (diverged: why, where) or complete
  *.json.sha256        each JSON file's checksum (`sha256sum -c` checks it by hand)
  .lock                while a process writes the run (`infra.locks`)
  predictions/         cached logits of the run's functions (`predictions`)
"""
import os
import time

import tensorflow as tf

from uncertainty.infra import files
from uncertainty.infra.errors import UserError

# Config fields that say where a run's data and files are and how it executes (devices,
# steps per host call, divergence threshold), not what it is: they may change on resume
# and are left out of its identity.
RUNTIME_FIELDS = ("output_dir", "data_dir", "manual_dir", "fashion_mnist_dir", "download",
                  "strategy", "tpu", "allow_cpu_fallback", "logical_cpus", "devices",
                  "steps_per_loop", "cache_data_mb", "max_loss")
# Config fields the dataset determines (recorded so a checkpoint can be read alone).
# The learning rate's derivation is recorded beside it; the resolved learning_rate is
# what identifies the run.
DERIVED_FIELDS = ("input_shape", "num_classes", "base_learning_rate", "reference_batch_size")


CONFIG, METRICS, HISTORY, STATUS = ("config.json", "metrics.json", "history.json",
                                     "status.json")

SET_ASIDE = "set_aside"  # checkpoints/set_aside/: damaged or superseded checkpoints
CHECKPOINT_NAME = "ckpt"  # checkpoints/ckpt-<epoch>
DIGESTS = "digests"  # checkpoints/digests/ckpt-<epoch>: each checkpoint's recorded identity
STEPS = "steps"  # checkpoints/steps/ckpt-<epochs done>-<step>: inside an epoch, until it ends


def checkpoints_dir(run_dir: str) -> str:
    return os.path.join(run_dir, "checkpoints")


def checkpoint_prefix(run_dir: str, epoch: int) -> str:
    """The `tf.train.Checkpoint` of `epoch` (0 = initialisation)."""
    return os.path.join(checkpoints_dir(run_dir), f"{CHECKPOINT_NAME}-{epoch}")


def steps_dir(run_dir: str) -> str:
    """Where the step checkpoints (`step_prefix`) are."""
    return os.path.join(checkpoints_dir(run_dir), STEPS)


def step_prefix(run_dir: str, epoch: int, step: int) -> str:
    """The `tf.train.Checkpoint` saved after `step` steps of the epoch that follows the
    checkpoint of `epoch` (training's whole state, with the position and its sums)."""
    return os.path.join(steps_dir(run_dir), f"{CHECKPOINT_NAME}-{epoch}-{step}")


def digest_path(run_dir: str, epoch: int) -> str:
    """Where the identity of the checkpoint of `epoch` is recorded."""
    return os.path.join(checkpoints_dir(run_dir), DIGESTS, f"{CHECKPOINT_NAME}-{epoch}")


def check_format(run_dir: str) -> None:
    """Refuses a run directory of the .npz layout, which this library does not read (a
    UserError saying how to retrain it)."""
    if files.exists(os.path.join(checkpoints_dir(run_dir), "init.npz")):
        raise UserError(f"{run_dir} holds .npz checkpoints, a run layout this library "
                        f"does not read; train the run again with baselines/train.py in a "
                        f"new output directory")


def checkpoint_name(epoch: int) -> str:
    """A checkpoint's name in caches and logs: init, epoch_001, ..."""
    return "init" if epoch == 0 else f"epoch_{epoch:03d}"


def read_config(run_dir: str) -> dict:
    path = os.path.join(run_dir, CONFIG)
    if not files.exists(path):
        raise UserError(f"{run_dir} is not a run directory (no {CONFIG}); pass a "
                        f"directory written by baselines/train.py")
    return files.read_json(path, fix=_CONFIG_FIX)


_CONFIG_FIX = ("the run's settings cannot be trusted: restore the file from a backup "
               "(`sha256sum -c config.json.sha256` checks it) or train the run again in "
               "a new --output_dir")


def method(run_dir: str) -> str:
    """How the run was trained: deterministic (config.json records no method), or
    variational (a posterior per weight)."""
    return read_config(run_dir).get("method", "deterministic")


def identity(run_dir: str) -> str:
    """A digest of what the run is (its config without locations): the same for a run
    moved to another folder, different for runs of other seeds or settings. Random
    streams that concern a run derive from it (`seeding`)."""
    config = {k: v for k, v in read_config(run_dir).items()
              if k not in RUNTIME_FIELDS + DERIVED_FIELDS}
    return files.digest(config)


def prepare(run_dir: str, config: dict, ignore: tuple[str, ...] = (),
            write: bool = True) -> None:
    """Creates `run_dir` for `config`, or checks that it holds a run of the same config.

    Keys in `ignore` (where data live, how many devices) may differ. A directory with
    other content is refused. With `write=False` it only checks (non-chief
    workers).
    """
    if files.exists(run_dir) and not files.isdir(run_dir):
        raise UserError(f"--output_dir {run_dir} is a file; pass a directory")
    path = os.path.join(run_dir, CONFIG)
    if files.exists(path):
        old = files.read_json(path, fix=_CONFIG_FIX)
        diffs = [f"{k}: {old.get(k)!r} there, {config.get(k)!r} now"
                 for k in sorted(set(old) | set(config))
                 if k not in ignore and old.get(k) != config.get(k)]
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


def read_metrics(run_dir: str) -> dict:
    """A finished run's metrics.json."""
    return files.read_json(os.path.join(run_dir, METRICS), fix=(
        f"re-run baselines/train.py with --output_dir={run_dir} and the run's flags: it "
        f"scores the checkpoints again"))


def is_complete(run_dir: str) -> bool:
    """Whether the run finished (its metrics are written). `baselines/train.py` also
    checks its checkpoints before it believes that (`recover`)."""
    return files.exists(os.path.join(run_dir, METRICS))


def write_status(run_dir: str, state: str, **details) -> None:
    """Records the run's state: training (with the epochs done), interrupted (by which
    signal, after how many epochs), failed (with `details`: why, where) or complete."""
    files.write_json(os.path.join(run_dir, STATUS), {
        "state": state, "updated": time.strftime("%Y-%m-%d %H:%M:%S %Z"), **details})


def read_status(run_dir: str) -> dict:
    """The run's status.json ({} before training has started)."""
    path = os.path.join(run_dir, STATUS)
    if files.exists(path):
        return files.read_json(path, fix=f"it records whether training failed: re-run "
                                         f"baselines/train.py with --output_dir={run_dir} "
                                         f"and the run's flags to write it again")
    return {}

