r"""Bytes read and time to resume a run and to start an analysis of it, against the
number of checkpoints the run holds.

Writes a run of `--num_checkpoints` epoch checkpoints of a ResNet-50 at ImageNet
shape (model, SGD momentum slots and epoch counter, as `train.py` saves them; about
205 MB each) with `checkpoints.save`, then measures, with the run at that length and
again cut to `--fewer` checkpoints:

  resume         `checkpoints.recover` and restoring the newest checkpoint's whole
                 training state, as `train.py` does when it continues a run;
  identity       `checkpoints.checkpoint_digest` of the last checkpoint: what an
                 analysis whose predictions are cached reads before it answers;
  analysis start the identity and restoring the last checkpoint's model: what an
                 analysis reads before its first prediction.

"before" is the earlier way: every checkpoint verified whole on resume
(`recover(verify_all=True)`, the `--verify_checkpoints` path) and the identity hashed
from the checkpoint's files (the records in checkpoints/digests/ moved away); "after"
is the default: the newest checkpoint verified, the others' index files read, the
identity read from its record. Bytes are the process's `rchar` from /proc/self/io
(every byte a read system call returned, page cache or not); ram:// reads make no
system calls, so on ram:// only the times are measured. Times are with the files in
the page cache (they were just written).

  python benchmarks/checkpoint_io.py --output=benchmarks/checkpoint_io.json
"""

import os
import shutil
import tempfile
import time
import uuid

import common
import tensorflow as tf
from absl import app, flags, logging

from uncertainty.infra import files
from uncertainty.runs import checkpoints, layout

flags.DEFINE_string("model", "resnet50", "Model whose checkpoints to write.")
flags.DEFINE_string("dataset", "imagenet2012", "Dataset whose shape and recipe to use.")
flags.DEFINE_integer("num_checkpoints", 90, "Epoch checkpoints of the long run (local disk).")
flags.DEFINE_integer("ram_num_checkpoints", 30, "Epoch checkpoints of the run on ram:// "
                     "(held in memory: 90 ResNet-50 checkpoints need ~18.5 GB).")
flags.DEFINE_integer("fewer", 10, "The run cut to this many checkpoints, measured again.")
flags.DEFINE_list("filesystems", ["local", "ram"], "Where to write the run: local, ram.")
flags.DEFINE_string("local_dir", None, "Folder for the local run (default: a temporary one).")
flags.DEFINE_string("output", "benchmarks/checkpoint_io.json", "Where to write the JSON.")
FLAGS = flags.FLAGS

def rchar() -> int:
    """Bytes this process has read through system calls so far."""
    with open("/proc/self/io") as f:
        return int(next(line for line in f if line.startswith("rchar:")).split()[1])


def measured(function) -> dict:
    start_bytes, start = rchar(), time.perf_counter()
    function()
    return {"seconds": round(time.perf_counter() - start, 3),
            "bytes_read": rchar() - start_bytes}


class Run:
    """A run directory with `count` epoch checkpoints and the training state that
    wrote them (reused to restore)."""

    def __init__(self, run_dir: str, count: int):
        config, model, optimizer = common.model_and_optimizer(FLAGS.dataset, FLAGS.model)
        shape, classes = common.SHAPES[FLAGS.dataset]
        layout.prepare(run_dir, {**config.record(), "input_shape": list(shape),
                                 "num_classes": classes})
        self.run_dir = run_dir
        self.epoch = tf.Variable(0, dtype=tf.int64)
        self.state = tf.train.Checkpoint(model=model, optimizer=optimizer, epoch=self.epoch)
        manager = tf.train.CheckpointManager(
            self.state, layout.checkpoints_dir(run_dir), max_to_keep=None,
            checkpoint_name=layout.CHECKPOINT_NAME)
        self.save_seconds = []
        for epoch in range(count + 1):
            self.epoch.assign(epoch)
            start = time.perf_counter()
            checkpoints.save(manager, epoch, run_dir)
            self.save_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        manager.save(checkpoint_number=count + 1)  # one more, without its record
        self.unrecorded_save_seconds = time.perf_counter() - start
        self._drop(count + 1)
        self.count = count
        self.checkpoint_bytes = sum(files.gfile.stat(p).length for p in files.glob(
            layout.checkpoint_prefix(run_dir, count) + ".*"))

    def _drop(self, epoch: int) -> None:
        for path in files.glob(layout.checkpoint_prefix(self.run_dir, epoch) + ".*"):
            files.gfile.remove(path)
        if files.exists(layout.digest_path(self.run_dir, epoch)):
            files.gfile.remove(layout.digest_path(self.run_dir, epoch))

    def cut(self, count: int) -> None:
        """Keeps the checkpoints of epochs 0..count."""
        for epoch in range(count + 1, self.count + 1):
            self._drop(epoch)
        directory = layout.checkpoints_dir(self.run_dir)
        tf.compat.v1.train.update_checkpoint_state(
            directory, layout.checkpoint_prefix(self.run_dir, count),
            [layout.checkpoint_prefix(self.run_dir, e) for e in range(count + 1)])
        self.count = count

    def resume(self, verify_all: bool) -> None:
        good = checkpoints.recover(self.run_dir, set_aside=False, verify_all=verify_all)
        assert good == self.count, good
        self.state.restore(layout.checkpoint_prefix(self.run_dir, good)
                           ).assert_existing_objects_matched()

    def identity(self, recorded: bool) -> None:
        record = layout.digest_path(self.run_dir, self.count)
        kept = files.read_bytes(record)
        if not recorded:
            files.gfile.remove(record)
        try:
            checkpoints.checkpoint_digest(self.run_dir, self.count)
        finally:
            if not recorded:
                files.write_bytes(record, kept)

    def analysis_start(self, recorded: bool) -> None:
        self.identity(recorded)
        checkpoints.restore(self.run_dir, self.count)

    def measure(self) -> dict:
        self.resume(verify_all=False)  # imports, and builds the reader's model, once
        self.analysis_start(recorded=True)
        found = {"checkpoints": self.count}
        for name, mode, call in (
                ("resume", "before", lambda: self.resume(verify_all=True)),
                ("resume", "after", lambda: self.resume(verify_all=False)),
                ("identity", "before", lambda: self.identity(recorded=False)),
                ("identity", "after", lambda: self.identity(recorded=True)),
                ("analysis_start", "before", lambda: self.analysis_start(recorded=False)),
                ("analysis_start", "after", lambda: self.analysis_start(recorded=True))):
            found[f"{name}_{mode}"] = result = measured(call)
            print(f"  {self.count:3d} checkpoints, {name:14s} {mode:6s}: "
                  f"{result['bytes_read'] / 2**20:9.1f} MB read, {result['seconds']:7.2f} s")
        return found


def main(_):
    logging.set_verbosity(logging.WARNING)
    report = {"machine": common.machine(), "model": FLAGS.model, "dataset": FLAGS.dataset,
              "fewer": FLAGS.fewer, "filesystems": {}}
    for filesystem in FLAGS.filesystems:
        count = FLAGS.num_checkpoints if filesystem == "local" else FLAGS.ram_num_checkpoints
        scratch = (tempfile.mkdtemp(dir=FLAGS.local_dir) if filesystem == "local"
                   else f"ram://checkpoint-io-{uuid.uuid4().hex[:8]}")
        try:
            print(f"{filesystem}: writing {count} checkpoints of {FLAGS.model} ...")
            run = Run(os.path.join(scratch, "run"), count)
            saves = run.save_seconds[1:]
            entry = {"checkpoint_bytes": run.checkpoint_bytes,
                     "save_seconds_mean": round(sum(saves) / len(saves), 3),
                     "save_seconds_without_record": round(run.unrecorded_save_seconds, 3),
                     "runs": [run.measure()]}
            run.cut(FLAGS.fewer)
            entry["runs"].append(run.measure())
            if filesystem == "ram":  # no system calls: bytes are not observable
                for measured_run in entry["runs"]:
                    for value in measured_run.values():
                        if isinstance(value, dict):
                            value["bytes_read"] = None
            long, short = entry["runs"]
            entry["resume_after_bytes_ratio_long_to_short"] = (
                None if filesystem == "ram" else
                long["resume_after"]["bytes_read"] / short["resume_after"]["bytes_read"])
            report["filesystems"][filesystem] = entry
        finally:
            if filesystem == "local":
                shutil.rmtree(scratch, ignore_errors=True)
            else:
                files.gfile.rmtree(scratch)
    common.write(FLAGS.output, report)


if __name__ == "__main__":
    app.run(main)
