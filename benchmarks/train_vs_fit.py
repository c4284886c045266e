r"""Times an epoch of train.py's loop against a plain `model.fit`, in one process.

Same model (SmallCNN), same data (Fashion-MNIST, raw pixels), same optimizer, batch and
number of steps. train.py's epoch is timed twice: the training steps alone, and the
whole epoch as a run pays it (steps + validation predictions + weight checkpoint).
The first epoch of each (tracing) is excluded; the median of the others is reported.

  python benchmarks/train_vs_fit.py --epochs=4 --output=benchmarks/train_vs_fit.json
"""

import os
import statistics
import tempfile
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from absl import app, flags  # noqa: E402

from uncertainty import datasets, files, models, recipes, trajectory  # noqa: E402
from uncertainty.training import TrainConfig, train  # noqa: E402

flags.DEFINE_integer("epochs", 4, "Epochs for each contender (the first is not timed).")
flags.DEFINE_string("model", "small_cnn", "Model to time.")
flags.DEFINE_string("output", "benchmarks/train_vs_fit.json", "Where to write the JSON.")
FLAGS = flags.FLAGS


class _EpochTimer(keras.callbacks.Callback):
    def __init__(self):
        super().__init__()
        self.seconds = []

    def on_epoch_begin(self, epoch, logs=None):
        self._began = time.time()

    def on_epoch_end(self, epoch, logs=None):
        self.seconds.append(time.time() - self._began)


def main(_):
    data = datasets.load("fashion_mnist")
    recipe = {**recipes.RECIPES[FLAGS.model], "train_epochs": FLAGS.epochs}
    batch = recipe["batch_size"]
    steps = data.num_examples("train") // batch

    keras.utils.set_random_seed(0)
    model = models.build(FLAGS.model, data.input_shape, data.num_classes,
                         dropout_rate=recipe["dropout_rate"])
    model.compile(keras.optimizers.Adam(recipe["learning_rate"]),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x, y = data.splits["train"]
    x = x[:steps * batch].astype(np.float32)  # raw pixels, exactly `steps` batches
    timer = _EpochTimer()
    model.fit(x, y[:steps * batch], batch_size=batch, epochs=FLAGS.epochs, verbose=0,
              callbacks=[timer])
    fit_epoch = statistics.median(timer.seconds[1:])

    config = TrainConfig.from_recipe("fashion_mnist", FLAGS.model, 0,
                                     train_epochs=FLAGS.epochs)
    with tempfile.TemporaryDirectory() as run_dir:
        train(config, data, run_dir)
        history = files.read_json(os.path.join(run_dir, trajectory.HISTORY))
    steps_epoch = statistics.median(h["epoch_seconds"] for h in history[1:])
    total_epoch = statistics.median(h["epoch_total_seconds"] for h in history[1:])

    report = {"model": FLAGS.model, "dataset": "fashion_mnist", "batch_size": batch,
              "steps_per_epoch": steps, "timed_epochs": FLAGS.epochs - 1,
              "fit_epoch_seconds": fit_epoch, "train_py_steps_seconds": steps_epoch,
              "train_py_epoch_seconds": total_epoch,
              "ratio_steps_to_fit": steps_epoch / fit_epoch,
              "ratio_epoch_to_fit": total_epoch / fit_epoch}
    files.write_json(FLAGS.output, report)
    for key, value in report.items():
        print(f"{key:>26}: {value:.4g}" if isinstance(value, float) else f"{key:>26}: {value}")


if __name__ == "__main__":
    app.run(main)
