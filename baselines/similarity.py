r"""Function space vs weight space: similarity of checkpoints within and across runs.

For runs made by train.py it writes similarity.json (every matrix and summary number)
and the paper's figures: cosine / disagreement along each trajectory (Fig. 2), between
the independent final solutions (Fig. 3), and a t-SNE of the trajectories'
predictions. Predictions are cached inside the runs: a second call predicts nothing.

  python baselines/similarity.py --runs=runs/fashion_mnist/small_cnn --split=test \
      --output_dir=results/similarity/fashion_mnist_small_cnn
"""

from uncertainty.cli import startup

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import json
import os

from absl import flags, logging

from uncertainty.analyses import similarity
from uncertainty.cli import app, common_flags
from uncertainty.infra import files, locks
from uncertainty.infra.errors import UserError
from uncertainty.runs import discovery
from uncertainty.study import plots

common_flags.define_data_flags(dataset=False)
common_flags.define_analysis_flags()
common_flags.define_output_flags()  # --output_dir: similarity.json, figures; --seed: t-SNE
common_flags.define_runs_flag()
flags.DEFINE_integer("tsne_runs", 3, "How many trajectories to embed with t-SNE.")
FLAGS = flags.FLAGS


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if not FLAGS.runs:
        raise UserError("--runs is required: run directories or a folder of them")
    if not FLAGS.output_dir:
        raise UserError("--output_dir is required: where to write the results")
    if FLAGS.tsne_runs < 1 or FLAGS.prediction_batch_size < 1:
        raise UserError("--tsne_runs and --prediction_batch_size must be positive")
    runs = discovery.find_runs(FLAGS.runs)
    shared = discovery.check_runs(runs, allow_failed=FLAGS.allow_failed_runs)
    data = common_flags.load_run_data(shared)
    common_flags.devices()  # the device line, as the work starts
    with locks.hold(FLAGS.output_dir), common_flags.strategy().scope():  # models built under it
        result = similarity.compare(runs, data, FLAGS.split, FLAGS.tsne_runs, FLAGS.seed,
                                    FLAGS.prediction_batch_size)
        result["model"], result["method"] = shared["model"], shared["method"]
        write_figures(result, FLAGS.output_dir)
        files.write_npz(os.path.join(FLAGS.output_dir, "per_example.npz"),
                        **result.pop("per_example"))
        files.write_json(os.path.join(FLAGS.output_dir, "similarity.json"), result)
    logging.info("wrote %s", FLAGS.output_dir)
    print(json.dumps(result["summary"], indent=2, sort_keys=True))


def write_figures(result: dict, output_dir: str) -> None:
    setting = f"{result['model']} on {result['dataset']} {result['split']}"
    names = [os.path.basename(os.path.normpath(r)) for r in result["runs"]]
    if len(set(names)) < len(names):  # same basename in different folders
        names = [f"{i}_{name}" for i, name in enumerate(names)]
    for name, (run, t) in zip(names, result["trajectories"].items()):
        plots.cosine_and_disagreement(
            t["weight_cosine"], t["disagreement"], t["epochs"], "epoch",
            f"Along one trajectory: {name} ({setting})",
            os.path.join(output_dir, f"trajectory_{name}.png"))
    plots.cosine_and_disagreement(
        result["independent"]["weight_cosine"], result["independent"]["disagreement"],
        names, "independent run", f"Between independent solutions ({setting})",
        os.path.join(output_dir, "independent.png"))
    tsne = result["tsne"]
    plots.tsne_trajectories(tsne["points"], tsne["run"], tsne["epoch"],
                               f"t-SNE of predictions along trajectories ({setting})",
                               os.path.join(output_dir, "tsne.png"))


if __name__ == "__main__":
    app.run(main)
