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
plane.png and paths.png; every grid is saved point by point and resumes if interrupted.

  python baselines/cross_section.py --runs=runs/fashion_mnist/small_cnn/seed0,\
runs/fashion_mnist/small_cnn/seed1 --plane=independent --connect --split=test \
      --output_dir=results/cross_section/independent
"""

import hashlib
import json
import os

import numpy as np
from absl import flags, logging

from uncertainty import cli
from uncertainty import (UserError, connectors, cross_section, files, metrics, models,
                         plotting, similarity, trajectory)
from uncertainty.predictions import RunPredictions

cli.define_data_flags(dataset=False)
cli.define_analysis_flags()
cli.define_output_flags()  # --output_dir: cross_section.json, figures, grids
cli.define_runs_flag()
flags.DEFINE_enum("plane", "independent", ["independent", "trajectory", "random", "none"],
                  "Which plane to draw (see the module doc).")
flags.DEFINE_enum("origin", "init", ["init", "zero"], "Third point of the independent "
                  "plane: the first run's initialisation or the origin of weight space.")
flags.DEFINE_integer("trajectory_epoch", None, "Earlier checkpoint of the trajectory "
                     "plane (default: half way).")
flags.DEFINE_integer("grid_points", 21, "Grid points per axis.")
flags.DEFINE_float("margin", None, "Grid margin beyond the defining points, as a fraction "
                   "of their extent (default 0.2); for --plane=random the half-width in "
                   "direction units (default 1).")
flags.DEFINE_enum("bias_bn", "zero", list(cross_section.BIAS_BN), "Random plane: biases "
                  "and batch-norm parameters of the directions zeroed or kept (Li et al.).")
flags.DEFINE_integer("path_points", 21, "Points along the line and the connector.")
flags.DEFINE_bool("connect", False, "Train a Bezier connector between the two solutions "
                  "and score along it.")
flags.DEFINE_integer("connect_epochs", 10, "Training epochs of the connector.")
flags.DEFINE_float("connect_learning_rate", None, "Connector learning rate (default: the "
                   "runs' recipe rate).")
FLAGS = flags.FLAGS


def check_flags(runs: list[str]) -> None:
    if FLAGS.grid_points < 2 or FLAGS.path_points < 2:
        raise UserError("--grid_points and --path_points must be at least 2")
    if FLAGS.connect_epochs < 1 or FLAGS.prediction_batch_size < 1:
        raise UserError("--connect_epochs and --prediction_batch_size must be positive")
    if FLAGS.margin is not None and FLAGS.margin < 0:
        raise UserError(f"--margin must be >= 0, got {FLAGS.margin}")
    if FLAGS.plane != "random" and len(runs) < 2:
        raise UserError(f"--plane={FLAGS.plane} and the paths need two runs, got "
                        f"{len(runs)}; pass two run directories to --runs")


def defining_points(runs: list[str], solutions: list[np.ndarray]
                    ) -> dict[str, np.ndarray]:
    """The three named weight vectors of --plane (independent or trajectory), given the
    two runs' final `solutions`."""
    first, second = (os.path.basename(os.path.normpath(r)) for r in runs[:2])
    if first == second:
        first, second = "run0", "run1"
    if FLAGS.plane == "independent":
        if FLAGS.origin == "init":
            third = {f"{first} init": trajectory.load_weights(runs[0], 0)}
        else:
            third = {"origin": np.zeros_like(solutions[0])}
    else:
        epochs = trajectory.epochs(runs[0])
        earlier = FLAGS.trajectory_epoch or epochs[len(epochs) // 2 - 1]
        if earlier not in epochs[:-1]:
            raise UserError(f"--trajectory_epoch must be one of {runs[0]}'s epochs before "
                            f"its last, {epochs[:-1]}; got {earlier}")
        third = {f"{first} epoch {earlier}": trajectory.load_weights(runs[0], earlier)}
    return {**third, first: solutions[0], second: solutions[1]}


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    if not FLAGS.runs or not FLAGS.output_dir:
        raise UserError("--runs and --output_dir are required")
    runs = trajectory.find_runs(FLAGS.runs)
    check_flags(runs)
    shared = trajectory.check_runs(runs[:2], minimum=1)
    data = cli.load_run_data(shared)
    for run in runs[:2]:
        trajectory.check_source(run, data)
    predictor = RunPredictions(runs[0], FLAGS.prediction_batch_size)
    train_data = data if models.uses_batchnorm(shared["model"]) else None
    references = {"a": predictor.checkpoint(data, FLAGS.split)}
    if len(runs) > 1:
        references["b"] = RunPredictions(runs[1], FLAGS.prediction_batch_size).checkpoint(
            data, FLAGS.split)
    score = cross_section.scorer(predictor, data, FLAGS.split, references, train_data)
    solutions = [trajectory.load_weights(r) for r in runs[:2]]
    setting = f"{shared['model']} on {data.name} {FLAGS.split}"
    result = {"runs": runs[:2], "model": shared["model"], "dataset": data.name,
              "split": FLAGS.split, "plane": FLAGS.plane, "seed": FLAGS.seed,
              "batchnorm_reestimated": train_data is not None,
              "references": {"a": runs[0], **({"b": runs[1]} if len(runs) > 1 else {})}}
    if len(runs) > 1:
        result["disagreement_between_solutions"] = metrics.disagreement(references["a"],
                                                                        references["b"])
    if FLAGS.plane != "none":
        result["plane_section"] = evaluate_plane(runs, solutions, score, data)
        plotting.plane_contours(result["plane_section"], f"Cross-section: {FLAGS.plane} "
                                f"plane ({setting})",
                                os.path.join(FLAGS.output_dir, "plane.png"))
    if len(runs) > 1:
        result["paths"] = evaluate_paths(runs, solutions, score, data)
        plotting.line_panels(
            [(title, title, {name: (p["t"], p[key]) for name, p in result["paths"].items()})
             for title, key in (("accuracy", "accuracy"), ("loss (NLL)", "loss"),
                                ("disagreement with a (t = 0)", "disagreement_a"),
                                ("disagreement with b (t = 1)", "disagreement_b"))],
            "t", f"From a = {runs[0]} to b = {runs[1]} ({setting})",
            os.path.join(FLAGS.output_dir, "paths.png"), columns=4)
    result["summary"] = summarize(result)
    files.write_json(os.path.join(FLAGS.output_dir, "cross_section.json"), result)
    logging.info("wrote %s", FLAGS.output_dir)
    print(json.dumps(result["summary"], indent=2, sort_keys=True))


def evaluate_plane(runs: list[str], solutions: list[np.ndarray], score, data) -> dict:
    """The plane's grid and its defining points, scored (and saved as they go)."""
    if FLAGS.plane == "random":
        plane = cross_section.random_plane(
            trajectory.load_arrays(runs[0], trainable_only=True), FLAGS.seed, FLAGS.bias_bn,
            name=os.path.basename(os.path.normpath(runs[0])))
    else:
        plane = cross_section.through(defining_points(runs, solutions))
    margin = FLAGS.margin if FLAGS.margin is not None else (
        1.0 if FLAGS.plane == "random" else 0.2)
    xs, ys = cross_section.grid(plane, FLAGS.grid_points, margin)
    coords = [(x, y) for y in ys for x in xs]
    fingerprint = hashlib.sha1(json.dumps(
        [plane.fingerprint(), data.name, data.source, FLAGS.split]).encode()).hexdigest()
    values = cross_section.evaluate(coords, plane.at, score,
                                    os.path.join(FLAGS.output_dir, "plane_grid.npz"),
                                    fingerprint)
    at_points = {name: score(plane.at(*xy)) for name, xy in plane.points.items()}
    shape = (len(ys), len(xs))
    return {"x": xs.tolist(), "y": ys.tolist(),
            "points": {n: {"xy": list(xy), **at_points[n]} for n, xy in plane.points.items()},
            **{name: v.reshape(shape).tolist() for name, v in values.items()}}


def evaluate_paths(runs: list[str], solutions: list[np.ndarray], score, data) -> dict:
    """Metrics along the straight line between the two solutions and, with --connect,
    along the trained Bezier connector."""
    a, b = solutions
    ts = np.linspace(0.0, 1.0, FLAGS.path_points)
    paths = {"linear": lambda t: connectors.line(a, b, t)}
    trained = {}
    if FLAGS.connect:
        bend, history = trained_bend(runs, data)
        paths["bezier"] = lambda t: connectors.bezier(a, bend, b, t)
        trained = {"bezier": {"train_loss_by_epoch": history}}
    out = {}
    for name, point in paths.items():
        fingerprint = hashlib.sha1(point(0.5).tobytes()).hexdigest()
        values = cross_section.evaluate(
            list(ts), point, score, os.path.join(FLAGS.output_dir, f"path_{name}.npz"),
            fingerprint)
        out[name] = {"t": ts.tolist(), **{k: v.tolist() for k, v in values.items()},
                     **trained.get(name, {})}
    return out


def trained_bend(runs: list[str], data) -> tuple[np.ndarray, list]:
    """The connector's bend: trained, or read back from connector.npz when the same
    runs, epochs, rate and seed trained it before."""
    config = trajectory.read_config(runs[0])
    rate = FLAGS.connect_learning_rate or config["learning_rate"]
    settings = json.dumps([runs[:2], FLAGS.connect_epochs, rate, FLAGS.seed])
    path = os.path.join(FLAGS.output_dir, "connector.npz")
    if os.path.exists(path):
        with np.load(path) as saved:
            if str(saved["settings"]) == settings:
                logging.info("connector read from %s", path)
                return saved["bend"], saved["history"].tolist()
    bend, history = connectors.train_bezier(runs[0], runs[1], data, FLAGS.connect_epochs,
                                            rate, FLAGS.seed)
    files.write_npz(path, settings=settings, bend=bend, history=np.array(history))
    return bend, history


def summarize(result: dict) -> dict:
    """The numbers the paper's argument rests on: accuracy and disagreement at the
    defining points, the lowest accuracy along each path and its largest disagreement
    with the endpoints."""
    summary = {}
    if "disagreement_between_solutions" in result:
        summary["disagreement_between_solutions"] = result["disagreement_between_solutions"]
    section = result.get("plane_section")
    if section:
        summary["points"] = {n: {k: p[k] for k in ("accuracy", "loss", "disagreement_a")}
                             for n, p in section["points"].items()}
        summary["grid_max_accuracy"] = float(np.nanmax(section["accuracy"]))
    for name, path in result.get("paths", {}).items():
        summary[name] = {
            "endpoint_accuracy": [path["accuracy"][0], path["accuracy"][-1]],
            "min_accuracy": float(np.min(path["accuracy"])),
            "max_loss": float(np.max(path["loss"])),
            "max_disagreement_with_either_endpoint": float(np.max(np.minimum(
                path["disagreement_a"], path["disagreement_b"]))),
        }
    return summary


if __name__ == "__main__":
    cli.run(main)
