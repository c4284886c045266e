r"""Weight-space cross-sections and low-loss connectors between modes (paper Fig. 4, v2).

--plane picks the plane, scored at --grid_points x --grid_points points by loss,
accuracy and disagreement with the first run's solution:
  independent   the first run's initialisation (or the origin, --origin=zero) and the
                final solutions of the first two runs
  trajectory    two checkpoints of the first run (--trajectory_epoch and its last) and
                the second run's final solution
  random        two filter-normalised random directions around the first run's solution
                (Li et al. 2018), +-margin in units of the directions
  none          no plane (only the paths)
Along the straight line between the two runs' solutions, and with --connect along a
trained quadratic Bezier curve between them (Garipov et al. 2018), it scores the same
metrics plus disagreement with the second solution. Writes cross_section.json,
plane.png and paths.png; every grid is saved point by point and resumes if interrupted,
and the trained connector is kept in connector.npz. For batch-norm models every point
and both reference solutions are scored with statistics re-estimated on the runs'
training examples (--noreestimate_bn: the checkpoints' statistics). Random directions,
and the connector's batches and t draws, derive from --seed and the runs' identities
(two base runs never share directions).

  python baselines/cross_section.py --runs=runs/fashion_mnist/small_cnn/seed0,\
runs/fashion_mnist/small_cnn/seed1 --plane=independent --connect --split=test \
      --output_dir=results/cross_section/independent
"""

from uncertainty.cli import startup

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import json
import os

from absl import flags, logging

from uncertainty.analyses import cross_section
from uncertainty.cli import app, common_flags
from uncertainty.infra import files, locks
from uncertainty.infra.errors import UserError
from uncertainty.runs import discovery
from uncertainty.study import plots

common_flags.define_data_flags(dataset=False)
common_flags.define_analysis_flags()
common_flags.define_output_flags()  # --output_dir: cross_section.json, figures, grids
common_flags.define_runs_flag()
common_flags.define_batchnorm_flag()
_DEFAULT = cross_section.Options()  # the library's defaults, defined once there
flags.DEFINE_enum("plane", _DEFAULT.plane, list(cross_section.PLANES),
                  "Which plane to draw (see the module doc).")
flags.DEFINE_enum("origin", _DEFAULT.origin, list(cross_section.ORIGINS),
                  "Third point of the "
                  "independent plane: the first run's initialisation or the origin of "
                  "weight space.")
flags.DEFINE_integer("trajectory_epoch", None, "Earlier checkpoint of the trajectory "
                     "plane (default: half way).")
flags.DEFINE_integer("grid_points", _DEFAULT.grid_points, "Grid points per axis.")
flags.DEFINE_float("margin", None, "Grid margin beyond the defining points, as a fraction "
                   "of their extent (default 0.2); for --plane=random the half-width in "
                   "direction units (default 1).")
flags.DEFINE_enum("bias_bn", _DEFAULT.bias_bn, list(cross_section.BIAS_BN),
                  "Random plane: biases "
                  "and batch-norm parameters of the directions zeroed or kept (Li et al.).")
flags.DEFINE_integer("path_points", _DEFAULT.path_points,
                     "Points along the line and the connector.")
flags.DEFINE_bool("connect", False, "Train a Bezier connector between the two solutions "
                  "and score along it.")
flags.DEFINE_integer("connect_epochs", _DEFAULT.connect_epochs,
                     "Training epochs of the connector.")
flags.DEFINE_float("connect_learning_rate", None, "Connector learning rate (default: the "
                   "runs' recipe rate, on their recipe's schedule).")
FLAGS = flags.FLAGS


def options(runs: list[str]) -> cross_section.Options:
    """The flags, checked, as the library's options."""
    if FLAGS.grid_points < 2 or FLAGS.path_points < 2:
        raise UserError("--grid_points and --path_points must be at least 2")
    if FLAGS.connect_epochs < 1 or FLAGS.prediction_batch_size < 1:
        raise UserError("--connect_epochs and --prediction_batch_size must be positive")
    if FLAGS.margin is not None and FLAGS.margin < 0:
        raise UserError(f"--margin must be >= 0, got {FLAGS.margin}")
    if FLAGS.connect_learning_rate is not None and FLAGS.connect_learning_rate <= 0:
        raise UserError(f"--connect_learning_rate must be positive, got "
                        f"{FLAGS.connect_learning_rate}")
    if FLAGS.plane != "random" and len(runs) < 2:
        raise UserError(f"--plane={FLAGS.plane} and the paths need two runs, got "
                        f"{len(runs)}; pass two run directories to --runs")
    earlier = (cross_section.earlier_epoch(runs[0], FLAGS.trajectory_epoch)
               if FLAGS.plane == "trajectory" else None)
    return cross_section.Options(
        plane=FLAGS.plane, origin=FLAGS.origin, trajectory_epoch=earlier,
        grid_points=FLAGS.grid_points, margin=FLAGS.margin, bias_bn=FLAGS.bias_bn,
        path_points=FLAGS.path_points, connect=FLAGS.connect,
        connect_epochs=FLAGS.connect_epochs,
        connect_learning_rate=FLAGS.connect_learning_rate,
        reestimate_bn=FLAGS.reestimate_bn, seed=FLAGS.seed)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if not FLAGS.runs or not FLAGS.output_dir:
        raise UserError("--runs and --output_dir are required")
    runs = discovery.find_runs(FLAGS.runs)[:2]
    settings = options(runs)
    data = common_flags.load_run_data(discovery.check_runs(runs, minimum=1,
                                                   allow_failed=FLAGS.allow_failed_runs))
    for run in runs:
        discovery.check_source(run, data)
    with locks.hold(FLAGS.output_dir):
        common_flags.devices()  # the device line, as the work starts
        result = cross_section.analyse(runs, data, FLAGS.split, settings, FLAGS.output_dir,
                                       FLAGS.prediction_batch_size,
                                       common_flags.strategy())  # a connector trains on one device
        write_figures(result)
        files.write_json(os.path.join(FLAGS.output_dir, "cross_section.json"), result)
    logging.info("wrote %s", FLAGS.output_dir)
    print(json.dumps(result["summary"], indent=2, sort_keys=True))


def write_figures(result: dict) -> None:
    """plane.png (the plane's contours) and paths.png (metrics along the paths)."""
    setting = f"{result['model']} on {result['dataset']} {result['split']}"
    if "plane_section" in result:
        plots.plane_contours(result["plane_section"], f"Cross-section: "
                                f"{result['plane']} plane ({setting})",
                                os.path.join(FLAGS.output_dir, "plane.png"))
    if "paths" in result:
        a, b = result["runs"]
        plots.line_panels(
            [(title, title, {name: (p["t"], p[key]) for name, p in result["paths"].items()})
             for title, key in (("accuracy", "accuracy"), ("loss (NLL)", "loss"),
                                ("disagreement with a (t = 0)", "disagreement_a"),
                                ("disagreement with b (t = 1)", "disagreement_b"))],
            "t", f"From a = {a} to b = {b} ({setting})",
            os.path.join(FLAGS.output_dir, "paths.png"), columns=4)


if __name__ == "__main__":
    app.run(main)
