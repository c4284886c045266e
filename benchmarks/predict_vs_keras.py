r"""Prediction throughput of this project's predictions path against `model.predict`.

Same model (a trained-shape SmallCNN with random weights: speed does not depend on
them), same examples (the Fashion-MNIST test split, 10,000 images, raw pixels), same
batch size. `model.predict` gets the whole split as an in-memory numpy array;
`predictions.predict` (what every analysis uses) reads it by index through the TFDS
reader (this split is within the default cache: read once into host memory, then
gathered; `streaming_speedup`: from the data source at every call) and pads and masks
the last batch. The first call of each (tracing, filling the cache) is not timed; the
median of `--repeats` calls is. `speedup` = predict seconds / ours.

  python benchmarks/predict_vs_keras.py --output=benchmarks/predict_vs_keras.json
"""

import dataclasses
import os
import sys

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import common  # noqa: E402
import numpy as np  # noqa: E402
import tf_keras as keras  # noqa: E402
from absl import app, flags  # noqa: E402

from uncertainty import datasets, models
from uncertainty.runs import predictions

flags.DEFINE_list("models", ["small_cnn", "resnet20_v1"], "Models to time.")
flags.DEFINE_integer("batch_size", 500, "Prediction batch size (the analyses' default).")
flags.DEFINE_integer("repeats", 3, "Timed calls of each (after one untimed).")
flags.DEFINE_string("output", "benchmarks/predict_vs_keras.json", "Where to write the JSON.")
FLAGS = flags.FLAGS


def main(_):
    data = datasets.load("fashion_mnist")
    x = data.read("test")[0].astype(np.float32)
    report = {"dataset": "fashion_mnist", "split": "test", "examples": len(x),
              "batch_size": FLAGS.batch_size, **common.machine(), "models": {}}
    for name in FLAGS.models:
        keras.utils.set_random_seed(0)
        model = models.build(name, data.input_shape, data.num_classes)
        keras_seconds, expected = common.median_seconds(
            lambda: model.predict(x, batch_size=FLAGS.batch_size, verbose=0), FLAGS.repeats)
        ours_seconds, logits = common.median_seconds(
            lambda: predictions.predict(model, data, "test", FLAGS.batch_size), FLAGS.repeats)
        streamed = dataclasses.replace(data, cache_bytes=0, _cache={})
        streaming_seconds, _ = common.median_seconds(
            lambda: predictions.predict(model, streamed, "test", FLAGS.batch_size),
            FLAGS.repeats)
        report["models"][name] = {
            "keras_predict_seconds": keras_seconds, "ours_seconds": ours_seconds,
            "speedup": keras_seconds / ours_seconds,
            "streaming_seconds": streaming_seconds,
            "streaming_speedup": keras_seconds / streaming_seconds,
            "max_abs_logit_difference": float(np.abs(logits - expected).max())}
    common.write(FLAGS.output, report)


if __name__ == "__main__":
    app.run(main)
