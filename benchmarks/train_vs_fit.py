r"""Training throughput of this project's loop against plain `tf_keras` `model.fit`.

Same model, same data (Fashion-MNIST training examples, raw pixels), same optimizer and
global batch, in one process. `model.fit` gets the examples as in-memory numpy arrays
(its fastest input); our loop (`loop.fit`, what train.py runs) reads them by index
through the TFDS reader: by default (this split is within `--cache_data_mb`) once into
host memory and gathered from there, and also, as `streaming`, from the data source
at every step (`--cache_data_mb=0`, the path of splits larger than the cache), each at
`--steps_per_loop` steps per host call. Each contender's first epoch (tracing) is not
timed; the median of the others is reported. `speedup` = fit seconds / our seconds per
epoch (> 1: ours faster).

  python benchmarks/train_vs_fit.py --models=small_cnn,resnet20_v1 \
      --output=benchmarks/train_vs_fit.json
"""

import dataclasses
import os
import statistics
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import tf_keras as keras  # noqa: E402
from absl import app, flags  # noqa: E402

from uncertainty import datasets, models
from uncertainty.train import loop, recipes, train_config

flags.DEFINE_list("models", ["small_cnn", "resnet20_v1"], "Models to time.")
flags.DEFINE_integer("epochs", 3, "Epochs for each contender (the first is not timed).")
flags.DEFINE_integer("examples", 12800, "Training examples per epoch (0: all 59,500).")
flags.DEFINE_list("steps_per_loop", ["1", "10", "100"], "Our loop's settings to time.")
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


def _model(name: str, data, recipe: dict):
    keras.utils.set_random_seed(0)
    return models.build(name, data.input_shape, data.num_classes,
                        dropout_rate=recipe["dropout_rate"], l2=recipe["l2"])


def time_fit(name: str, data, recipe: dict, steps: int) -> float:
    """Median epoch seconds of Keras `model.fit` on in-memory arrays."""
    model = _model(name, data, recipe)
    model.compile(loop.make_optimizer(recipe["optimizer"], recipe["learning_rate"]),
                  keras.losses.SparseCategoricalCrossentropy(from_logits=True),
                  metrics=["accuracy"])
    x, y = data.read("train", steps * recipe["batch_size"])
    timer = _EpochTimer()
    model.fit(x.astype("float32"), y, batch_size=recipe["batch_size"], epochs=FLAGS.epochs,
              shuffle=True, verbose=0, callbacks=[timer])
    return statistics.median(timer.seconds[1:])


def time_ours(name: str, data, recipe: dict, steps: int, steps_per_loop: int) -> float:
    """Median epoch seconds of `loop.fit` on the streaming pipeline."""
    model = _model(name, data, recipe)
    config = train_config.TrainConfig.from_recipe("fashion_mnist", name, 0,
                                              train_epochs=FLAGS.epochs)
    optimizer = loop.make_optimizer(config.optimizer, config.learning_rate,
                                        config.momentum)

    def batches(epoch, input_context, first_step):
        return data.train_pipeline(config.batch_size, steps, config.seed, epoch,
                                   with_replacement=config.sample_with_replacement,
                                   augment=config.augment, input_context=input_context,
                                   first_step=first_step)

    history = loop.fit(config, model, optimizer, batches, steps,
                           steps_per_loop=steps_per_loop)
    return statistics.median(h["epoch_seconds"] for h in history[1:])


def main(_):
    data = datasets.load("fashion_mnist")
    report = {"dataset": "fashion_mnist", "epochs_timed": FLAGS.epochs - 1,
              **common.machine(), "models": {}}
    for name in FLAGS.models:
        recipe = recipes.RECIPES[name]
        examples = FLAGS.examples or data.num_examples("train")
        steps = examples // recipe["batch_size"]
        fit_seconds = time_fit(name, data, recipe, steps)
        ours = {int(n): time_ours(name, data, recipe, steps, int(n))
                for n in FLAGS.steps_per_loop}
        best = min(ours, key=ours.get)
        streaming = time_ours(name, dataclasses.replace(data, cache_bytes=0, _cache={}),
                              recipe, steps, train_config.STEPS_PER_LOOP)
        report["models"][name] = {
            "batch_size": recipe["batch_size"], "steps_per_epoch": steps,
            "fit_epoch_seconds": fit_seconds,
            "ours_epoch_seconds": {str(n): s for n, s in ours.items()},
            "speedup": {str(n): fit_seconds / s for n, s in ours.items()},
            "default_steps_per_loop": train_config.STEPS_PER_LOOP,
            "speedup_at_default": (fit_seconds / ours[train_config.STEPS_PER_LOOP]
                                   if train_config.STEPS_PER_LOOP in ours else None),
            "fastest_steps_per_loop": best,
            "streaming_epoch_seconds": streaming,
            "streaming_speedup": fit_seconds / streaming}
    common.write(FLAGS.output, report)


if __name__ == "__main__":
    app.run(main)
