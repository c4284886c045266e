"""A checkpoint as a SavedModel anyone can load: raw inputs in, logits out.

The exported function is the run's deterministic network (a variational run's
posterior mean) with its preprocessing inside (`models.layers.Normalizer`), so a user
feeds the dataset's raw values (pixels 0..255, signals) and needs nothing from this
project to use it:

    model = tf.saved_model.load(path)
    logits = model.serve(raw_inputs)["logits"]  # or model.signatures["serving_default"]
"""

import os

import tensorflow as tf

from uncertainty import models
from uncertainty.infra import files
from uncertainty.runs import checkpoints, layout


def export(run_dir: str, path: str, epoch: int | None = None) -> dict:
    """Writes the checkpoint of `epoch` (the last if None, 0 = initialisation) of
    `run_dir` as a SavedModel at `path`; returns what was exported."""
    config = layout.read_config(run_dir)
    input_shape, num_classes = checkpoints.model_shape(run_dir)
    if epoch is None:
        epoch = checkpoints.epochs(run_dir)[-1]
    weights = checkpoints.load_arrays(run_dir, epoch)  # a clear error for a missing epoch
    model = models.build(config["model"], input_shape, num_classes,
                         dropout_rate=config.get("dropout_rate", 0.0))
    model.set_weights(weights)

    module = tf.Module()
    module.model = model

    @tf.function(input_signature=[tf.TensorSpec([None, *input_shape], tf.float32,
                                                name="inputs")])
    def serve(inputs):
        return {"logits": tf.cast(model(inputs, training=False), tf.float32)}

    module.serve = serve
    tf.saved_model.save(module, path, signatures={"serving_default": serve})
    exported = {"run_dir": run_dir, "epoch": epoch, "path": path, "model": config["model"],
                "input_shape": list(input_shape), "num_classes": num_classes}
    files.write_json(os.path.join(path, "export.json"), exported)
    return exported
