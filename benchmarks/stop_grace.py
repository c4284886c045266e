r"""The grace a stop request needs: how long train.py takes from SIGTERM to its exit.

On SIGTERM (or Ctrl-C) train.py finishes the host call the request lands in (up to
`--steps_per_loop` steps), saves training's state at that step, and exits 143. The
grace a scheduler must give is therefore one host call plus one step save. This
measures both parts:

  step save      `tf.train.Checkpoint.write` of the whole training state of `--model`
                 at `--dataset`'s shape (model, optimizer slots, position and sums), as
                 the trainer writes it, to local disk: the median of `--repeats`;
  stop to exit   a real `train.py` (`--run_dataset`, `--run_model`: SmallCNN on
                 Fashion-MNIST), sent SIGTERM `--stop_after` seconds into its second
                 epoch, timed until it exits: the median and the longest of
                 `--repeats`, with the step it saved, and the seconds of one host
                 call (from its first epoch), the most a stop waits before the save.

  python benchmarks/stop_grace.py --output=benchmarks/stop_grace.json
"""

import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time

import common
import numpy as np
import tensorflow as tf
from absl import app, flags, logging

from uncertainty import datasets
from uncertainty.infra import files
from uncertainty.runs import checkpoints, layout
from uncertainty.train import loop, train_config

flags.DEFINE_string("model", "resnet50", "Model whose step save to time.")
flags.DEFINE_string("dataset", "imagenet2012", "Dataset whose shape and recipe to use.")
flags.DEFINE_string("run_dataset", "fashion_mnist", "Dataset of the train.py that is "
                    "stopped.")
flags.DEFINE_string("run_model", "small_cnn", "Model of the train.py that is stopped.")
flags.DEFINE_float("stop_after", 5.0, "Seconds into its second epoch at which train.py "
                   "is stopped.")
flags.DEFINE_integer("repeats", 3, "Timed repetitions of each part.")
flags.DEFINE_string("output", "benchmarks/stop_grace.json", "Where to write the JSON.")
FLAGS = flags.FLAGS

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step_save() -> dict:
    """Seconds and bytes of one step save of `--model`'s training state."""
    _, model, optimizer = common.model_and_optimizer(FLAGS.dataset, FLAGS.model)
    state = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                epoch=tf.Variable(0, dtype=tf.int64),
                                step=tf.Variable(0, dtype=tf.int64),
                                sums=tf.Variable(np.zeros(len(loop.SUMS))))
    scratch = tempfile.mkdtemp()
    written = []
    try:
        def write():  # a new checkpoint each time, as the trainer writes them
            written.append(state.write(os.path.join(scratch, f"step-{len(written)}")))

        seconds, _ = common.median_seconds(write, FLAGS.repeats)
        size = sum(os.path.getsize(p) for p in tf.io.gfile.glob(written[-1] + ".*"))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"step save of {FLAGS.model}: {size / 2**20:.0f} MB in {seconds:.2f} s")
    return {"model": FLAGS.model, "dataset": FLAGS.dataset, "bytes": size,
            "seconds": round(seconds, 3)}


def stop_to_exit() -> dict:
    """Seconds from SIGTERM to exit of a training run, stopped `--stop_after` seconds
    into its second epoch (inside a host call), and the seconds of one host call."""
    seconds, host_call = [], []
    for attempt in range(FLAGS.repeats):
        run_dir = tempfile.mkdtemp()
        try:
            process = subprocess.Popen(
                [sys.executable, os.path.join(REPO, "baselines", "train.py"),
                 f"--dataset={FLAGS.run_dataset}", f"--model={FLAGS.run_model}",
                 "--train_epochs=100", f"--output_dir={run_dir}/run"],
                cwd=REPO, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
            if not any(re.search(r"epoch 1/100 ", line) for line in process.stderr):
                raise SystemExit("train.py ended before its first epoch")
            time.sleep(FLAGS.stop_after)
            began = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            rest = process.stderr.read()
            process.wait()
            seconds.append(time.perf_counter() - began)
            if process.returncode != 128 + signal.SIGTERM:
                raise SystemExit(f"train.py exited {process.returncode}:\n{rest[-2000:]}")
            saved = checkpoints.step_positions(f"{run_dir}/run")
            status = layout.read_status(f"{run_dir}/run")
            first = files.read_json(f"{run_dir}/run/history.json")[0]
            steps = (datasets.load(FLAGS.run_dataset).num_examples("train") //
                     layout.read_config(f"{run_dir}/run")["batch_size"])
            host_call.append(first["epoch_seconds"] / steps * min(
                steps, train_config.STEPS_PER_LOOP))
            print(f"  stop {attempt + 1}: {seconds[-1]:.2f} s to exit, saved {saved}, "
                  f"status {status['state']}, a host call {host_call[-1]:.1f} s")
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    return {"dataset": FLAGS.run_dataset, "model": FLAGS.run_model,
            "steps_per_loop": train_config.STEPS_PER_LOOP,
            "stop_after_seconds": FLAGS.stop_after,
            "host_call_seconds": round(statistics.median(host_call), 3),
            "median_seconds": round(statistics.median(seconds), 3),
            "max_seconds": round(max(seconds), 3)}


def main(_):
    logging.set_verbosity(logging.WARNING)
    common.write(FLAGS.output, {"machine": common.machine(), "step_save": step_save(),
                                "stop_to_exit": stop_to_exit()})


if __name__ == "__main__":
    app.run(main)
