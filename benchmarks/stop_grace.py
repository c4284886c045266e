r"""The grace a stop request needs: how long train.py takes from SIGTERM to its exit.

On SIGTERM (or Ctrl-C) train.py finishes the host call the request lands in (up to
`--steps_per_loop` steps), saves training's state at that step, and exits 143. The
grace a scheduler must give is therefore one host call plus one step save. This
measures both parts:

  step save      `tf.train.Checkpoint.write` of the whole training state of `--model`
                 at `--dataset`'s shape (model, optimizer slots, position and sums), as
                 the trainer writes it, to local disk: the median of `--repeats`;
  stop to exit   a real `train.py` (`--run_dataset`, `--run_model`), sent SIGTERM just
                 after its first epoch, timed until it exits: the median and the longest
                 of `--repeats`, with the saved step checked.

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

from uncertainty import models
from uncertainty.runs import checkpoints, layout
from uncertainty.train import loop, train_config

flags.DEFINE_string("model", "resnet50", "Model whose step save to time.")
flags.DEFINE_string("dataset", "imagenet2012", "Dataset whose shape and recipe to use.")
flags.DEFINE_string("run_dataset", "mnist1d", "Dataset of the train.py that is stopped.")
flags.DEFINE_string("run_model", "cnn1d", "Model of the train.py that is stopped.")
flags.DEFINE_integer("repeats", 3, "Timed repetitions of each part.")
flags.DEFINE_string("output", "benchmarks/stop_grace.json", "Where to write the JSON.")
FLAGS = flags.FLAGS

_SHAPES = {"imagenet2012": ((224, 224, 3), 1000), "cifar10": ((32, 32, 3), 10),
           "mnist1d": ((40, 1), 10)}
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def step_save() -> dict:
    """Seconds and bytes of one step save of `--model`'s training state."""
    config = train_config.TrainConfig.from_recipe(FLAGS.dataset, FLAGS.model, seed=0)
    shape, classes = _SHAPES[FLAGS.dataset]
    model = models.build(FLAGS.model, shape, classes)
    optimizer = loop.make_optimizer(config.optimizer, config.learning_rate, config.momentum)
    optimizer.build(model.trainable_variables)
    state = tf.train.Checkpoint(model=model, optimizer=optimizer,
                                epoch=tf.Variable(0, dtype=tf.int64),
                                step=tf.Variable(0, dtype=tf.int64),
                                sums=tf.Variable(np.zeros(len(loop.SUMS))))
    scratch = tempfile.mkdtemp()
    try:
        prefix = os.path.join(scratch, "step")
        seconds, _ = common.median_seconds(lambda: state.write(prefix), FLAGS.repeats)
        size = sum(os.path.getsize(os.path.join(scratch, n)) for n in os.listdir(scratch))
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    print(f"step save of {FLAGS.model}: {size / 2**20:.0f} MB in {seconds:.2f} s")
    return {"model": FLAGS.model, "dataset": FLAGS.dataset, "bytes": size,
            "seconds": round(seconds, 3)}


def stop_to_exit() -> dict:
    """Seconds from SIGTERM to exit of a training run, stopped after its first epoch."""
    seconds = []
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
            began = time.perf_counter()
            process.send_signal(signal.SIGTERM)
            rest = process.stderr.read()
            process.wait()
            seconds.append(time.perf_counter() - began)
            if process.returncode != 128 + signal.SIGTERM:
                raise SystemExit(f"train.py exited {process.returncode}:\n{rest[-2000:]}")
            saved = checkpoints.step_positions(f"{run_dir}/run")
            status = layout.read_status(f"{run_dir}/run")
            print(f"  stop {attempt + 1}: {seconds[-1]:.2f} s to exit, saved {saved}, "
                  f"status {status['state']}")
        finally:
            shutil.rmtree(run_dir, ignore_errors=True)
    return {"dataset": FLAGS.run_dataset, "model": FLAGS.run_model,
            "steps_per_loop": train_config.STEPS_PER_LOOP,
            "median_seconds": round(statistics.median(seconds), 3),
            "max_seconds": round(max(seconds), 3)}


def main(_):
    logging.set_verbosity(logging.WARNING)
    common.write(FLAGS.output, {"machine": common.machine(), "step_save": step_save(),
                                "stop_to_exit": stop_to_exit()})


if __name__ == "__main__":
    app.run(main)
