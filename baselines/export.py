r"""Exports a run's checkpoint as a SavedModel: raw inputs in, logits out.

The model carries its input preprocessing, so the exported function takes the
dataset's raw values (pixels 0..255 as float32, MNIST-1D signals) and needs nothing
from this project to load:

  python baselines/export.py --run_dir=runs/fashion_mnist/small_cnn/seed0 \
      --output_dir=exported/small_cnn_seed0            # --epoch=N, default the last

  model = tf.saved_model.load("exported/small_cnn_seed0")
  logits = model.serve(images)["logits"]
"""

from uncertainty.cli import startup

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import json

from absl import flags

from uncertainty.cli import app, common_flags
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import export, layout

flags.DEFINE_string("run_dir", None, "The run (made by train.py) to export.")
flags.DEFINE_integer("epoch", None, "Checkpoint to export (default: the last; 0 = "
                     "initialisation).")
common_flags.define_output_dir_flag()  # the SavedModel's folder, new or empty
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if not FLAGS.run_dir or not FLAGS.output_dir:
        raise UserError("--run_dir and --output_dir are required")
    layout.read_config(FLAGS.run_dir)  # a run directory, or one clear line
    if files.exists(FLAGS.output_dir) and files.listdir(FLAGS.output_dir):
        raise UserError(f"--output_dir {FLAGS.output_dir} is not empty; pass a new or "
                        f"empty directory")
    print(json.dumps(export.export(FLAGS.run_dir, FLAGS.output_dir, FLAGS.epoch),
                     indent=2, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
