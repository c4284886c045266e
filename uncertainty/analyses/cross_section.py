"""Weight-space cross-sections (paper Fig. 4): planes and paths through solutions,
scored at every point by loss, accuracy and disagreement with reference functions.

  analyse(runs, data, split, options, work_dir)
                              the whole analysis of one or two runs: a plane, the
                              straight line and (optionally) a trained connector between
                              the solutions, and a summary; resumable through work_dir
  through(points)             the plane through three flat weight vectors, with an
                              orthonormal basis (Gram-Schmidt): every defining point keeps
                              its true position and distances
  random_plane(arrays, ...)   two random directions around one solution, each filter
                              scaled to that filter's norm (Li et al. 2018)
  evaluate(coords, ...)       scores each point, saving after every one, so that an
                              interrupted evaluation resumes where it stopped

Batch norm: for a model with batch normalisation every point, the references "a" and
"b" included, is scored with statistics re-estimated on the runs' training split
(`Options.reestimate_bn`, the default; else with the checkpoints' statistics), so all
functions of one analysis share one policy, recorded as "batchnorm".
"""

import dataclasses
import hashlib
import os

import numpy as np
import tensorflow as tf

from uncertainty import models
from uncertainty.analyses import connectors
from uncertainty.core import metrics, seeding
from uncertainty.datasets import Dataset
from uncertainty.infra import files, progress
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, layout
from uncertainty.runs.predictions import RunPredictions

BIAS_BN = ("zero", "keep")
PLANES = ("independent", "trajectory", "random", "none")
ORIGINS = ("init", "zero")


@dataclasses.dataclass(frozen=True)
class Options:
    """What `analyse` draws and how (the binary's flags, documented there)."""

    plane: str = "independent"  # one of PLANES
    origin: str = "init"  # third point of the independent plane, one of ORIGINS
    trajectory_epoch: int | None = None  # earlier checkpoint of the trajectory plane
    grid_points: int = 21
    margin: float | None = None  # None: 0.2 of the extent; random plane: 1 unit
    bias_bn: str = "zero"  # random plane, one of BIAS_BN
    path_points: int = 21
    connect: bool = False
    connect_epochs: int = 10
    connect_learning_rate: float | None = None  # None: the runs' recipe rate
    reestimate_bn: bool = True  # batch-norm models: statistics re-estimated everywhere
    seed: int = 0

    @property
    def grid_margin(self) -> float:
        if self.margin is not None:
            return self.margin
        return 1.0 if self.plane == "random" else 0.2


@dataclasses.dataclass(frozen=True)
class Plane:
    """origin + x * axes[0] + y * axes[1]; `points` are the defining points' (x, y)."""

    origin: np.ndarray  # [D]
    axes: np.ndarray  # [2, D]
    points: dict[str, tuple[float, float]]

    def at(self, x: float, y: float) -> np.ndarray:
        return (self.origin + x * self.axes[0] + y * self.axes[1]).astype(np.float32)

    def fingerprint(self) -> str:
        digest = hashlib.sha1(np.asarray(self.origin, np.float64).tobytes())
        digest.update(np.asarray(self.axes, np.float64).tobytes())
        return digest.hexdigest()


def through(points: dict[str, np.ndarray]) -> Plane:
    """The plane through three weight vectors {name: vector}: the first is the origin,
    the first axis points to the second, the second axis is the third's component
    orthogonal to it."""
    if len(points) != 3:
        raise ValueError(f"a plane needs three points, got {len(points)}")
    (n0, p0), (n1, p1), (n2, p2) = ((n, np.asarray(p, np.float64)) for n, p in points.items())
    first = p1 - p0
    if np.linalg.norm(first) == 0:
        raise UserError(f"{n0} and {n1} are the same weights; they span no plane")
    e1 = first / np.linalg.norm(first)
    rest = p2 - p0 - np.dot(p2 - p0, e1) * e1
    if np.linalg.norm(rest) <= 1e-9 * np.linalg.norm(p2 - p0):
        raise UserError(f"{n0}, {n1} and {n2} lie on one line; they span no plane")
    e2 = rest / np.linalg.norm(rest)
    return Plane(origin=p0, axes=np.stack([e1, e2]), points={
        n0: (0.0, 0.0), n1: (float(np.linalg.norm(first)), 0.0),
        n2: (float(np.dot(p2 - p0, e1)), float(np.dot(p2 - p0, e2)))})


def filter_normalized(arrays: list[np.ndarray], rng: np.random.Generator,
                      bias_bn: str = "zero") -> np.ndarray:
    """A random Gaussian direction, flat like `checkpoints.flatten(arrays)`, with each
    filter (every slice along a kernel's last, output axis) rescaled to the norm of the
    same filter of `arrays`. One-dimensional arrays (biases, batch-norm scales and
    offsets) are zeroed, or with `keep` set to the solution's own values (as Li et al.)."""
    if bias_bn not in BIAS_BN:
        raise UserError(f"unknown bias/BN option {bias_bn!r}; choose one of "
                        f"{', '.join(BIAS_BN)}")
    parts = []
    for w in arrays:
        if w.ndim <= 1:
            parts.append(np.zeros_like(w) if bias_bn == "zero" else w.copy())
            continue
        d = rng.standard_normal(w.shape)
        axes = tuple(range(w.ndim - 1))
        d_norm = np.sqrt(np.sum(d ** 2, axis=axes, keepdims=True))
        parts.append(d * np.sqrt(np.sum(w.astype(np.float64) ** 2, axis=axes,
                                        keepdims=True)) / np.maximum(d_norm, 1e-12))
    return np.concatenate([np.ravel(p) for p in parts])


def random_plane(arrays: list[np.ndarray], seed: int, identity: str,
                 bias_bn: str = "zero", name: str = "solution") -> Plane:
    """Two filter-normalised random directions around the solution with trainable
    `arrays`; coordinates are in units of the directions (Li et al.'s alpha, beta).
    The directions are drawn from the stream of (`seed`, this purpose, the solution's
    run `identity`), so two runs never share directions by accident."""
    rng = seeding.rng(seed, "cross_section_random_plane", identity)
    axes = np.stack([filter_normalized(arrays, rng, bias_bn) for _ in range(2)])
    return Plane(origin=checkpoints.flatten(arrays).astype(np.float64), axes=axes,
                 points={name: (0.0, 0.0)})


def grid(plane: Plane, grid_points: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """x and y grid values covering the defining points plus `margin` times their extent
    on each side (a square around a single point: +-margin)."""
    xs, ys = (np.array([p[i] for p in plane.points.values()]) for i in (0, 1))
    extent = max(np.ptp(xs), np.ptp(ys)) or 1.0
    return tuple(np.linspace(v.min() - margin * extent, v.max() + margin * extent,
                             grid_points) for v in (xs, ys))


def scorer(predictor: RunPredictions, data: Dataset, split: str,
           references: dict[str, np.ndarray], bn_data: Dataset | None = None):
    """A function of a weight vector giving its loss (NLL), accuracy and disagreement
    with each reference function (logits) on `split`; batch-norm statistics are
    re-estimated on `bn_data`'s training split when given."""
    labels = data.labels(split)

    def score(vector: np.ndarray) -> dict[str, float]:
        logits = predictor.uncached(data, split, vector, bn_data=bn_data)
        values = {"loss": metrics.nll(logits, labels),
                  "accuracy": metrics.accuracy(logits, labels)}
        values.update({f"disagreement_{name}": metrics.disagreement(logits, reference)
                       for name, reference in references.items()})
        return values

    return score


def evaluate(coords: list, vector_at, score, path: str, fingerprint: str
             ) -> dict[str, np.ndarray]:
    """{metric: [len(coords)] values} of `score(vector_at(*c))` for every coordinate c.

    After each point the values so far go to `path` (npz, atomically); a later call
    with the same `fingerprint` and coordinates picks up where that one stopped.
    """
    coords = np.asarray(coords, np.float64)
    values, done = {}, np.zeros(len(coords), bool)
    saved = files.read_npz_if_intact(path)
    if saved is not None and str(saved.get("fingerprint")) == fingerprint and (
            np.array_equal(saved.get("coords"), coords)):
        done = saved["done"].copy()
        values = {k[2:]: v.copy() for k, v in saved.items() if k.startswith("v_")}
    todo = np.flatnonzero(~done)
    with progress.Progress(len(todo), os.path.basename(path)[:-len(".npz")],
                           "point") as meter:
        for i in todo:
            for name, value in score(vector_at(*np.atleast_1d(coords[i]))).items():
                values.setdefault(name, np.full(len(coords), np.nan))[i] = value
            done[i] = True
            files.write_npz(path, fingerprint=fingerprint, coords=coords, done=done,
                            **{f"v_{k}": v for k, v in values.items()})
            meter.update()
    return values


def earlier_epoch(run: str, requested: int | None = None) -> int:
    """The trajectory plane's earlier checkpoint of `run`: `requested`, or half way."""
    epochs = checkpoints.epochs(run)
    if len(epochs) < 2:
        raise UserError(f"the trajectory plane needs two checkpoints of {run}, which has "
                        f"epochs {epochs}; use --plane=independent or a longer run")
    earlier = epochs[len(epochs) // 2 - 1] if requested is None else requested
    if earlier not in epochs[:-1]:
        raise UserError(f"--trajectory_epoch must be one of {run}'s epochs before its "
                        f"last, {epochs[:-1]}; got {earlier}")
    return earlier


def make_plane(runs: list[str], solutions: list[np.ndarray], options: Options) -> Plane:
    """The plane of `options.plane` for the runs whose final weights are `solutions`."""
    names = [os.path.basename(os.path.normpath(r)) for r in runs]
    if len(set(names)) < len(names):
        names = [f"run{i}" for i in range(len(runs))]
    if options.plane == "random":
        return random_plane(checkpoints.load_arrays(runs[0], trainable_only=True),
                            options.seed, layout.identity(runs[0]), options.bias_bn,
                            name=names[0])
    if len(runs) < 2:
        raise ValueError(f"the {options.plane} plane needs two runs, got {runs}")
    if options.plane == "independent":
        third = ({f"{names[0]} init": checkpoints.load_weights(runs[0], 0)}
                 if options.origin == "init" else {"origin": np.zeros_like(solutions[0])})
    elif options.plane == "trajectory":
        earlier = earlier_epoch(runs[0], options.trajectory_epoch)
        third = {f"{names[0]} epoch {earlier}": checkpoints.load_weights(runs[0], earlier)}
    else:
        raise ValueError(f"unknown plane {options.plane!r}; one of {PLANES}")
    return through({**third, names[0]: solutions[0], names[1]: solutions[1]})


def evaluate_plane(plane: Plane, score, grid_points: int, margin: float, path: str,
                   context: dict) -> dict:
    """The plane's grid (`grid`) and its defining points, scored; the grid is saved
    to `path` as it goes (`evaluate`), keyed by the plane and `context` (what else
    decides the scores: data, batch-norm policy)."""
    xs, ys = grid(plane, grid_points, margin)
    coords = [(x, y) for y in ys for x in xs]
    values = evaluate(coords, plane.at, score, path, files.digest([plane.fingerprint(), context]))
    shape = (len(ys), len(xs))
    return {"x": xs.tolist(), "y": ys.tolist(),
            "points": {name: {"xy": list(xy), **score(plane.at(*xy))}
                       for name, xy in plane.points.items()},
            **{name: v.reshape(shape).tolist() for name, v in values.items()}}


def evaluate_path(point, ts: np.ndarray, score, path: str, context: dict) -> dict:
    """Scores `point(t)` at every t of `ts`, saved to `path` as it goes and keyed by
    the curve (its points at 0, 1/2 and 1 determine a quadratic) and `context`."""
    identity = files.digest([[hashlib.sha1(point(t).tobytes()).hexdigest()
                              for t in (0, .5, 1)], context])
    values = evaluate(list(ts), point, score, path, identity)
    return {"t": ts.tolist(), **{k: v.tolist() for k, v in values.items()}}


def analyse(runs: list[str], data: Dataset, split: str, options: Options, work_dir: str,
            batch_size: int = 500, strategy: tf.distribute.Strategy | None = None) -> dict:
    """The cross-section of `runs` (one or two run directories of one model; the first
    is "a", the second "b") on `split` of `data`, the runs' dataset
    (`cli.common_flags.load_run_data`; batch-norm statistics are re-estimated on its training split
    unless `options.reestimate_bn` is off).

    Scores the plane of `options` (unless "none") and, with two runs, the straight
    line between the solutions and, with `options.connect`, a trained Bezier
    connector. Grids and the connector are saved in `work_dir` as they are computed
    (plane_grid.npz, path_<name>.npz, connector.npz) and reused when run again.
    Predictions run under `strategy`; the connector trains on one device.
    Returns everything for cross_section.json, its "summary" included."""
    runs = list(runs[:2])
    model = layout.read_config(runs[0])["model"]
    bn_data = data if options.reestimate_bn and models.uses_batchnorm(model) else None
    references = {name: RunPredictions(run, batch_size, strategy).checkpoint(
        data, split, bn_data=bn_data) for name, run in zip("ab", runs)}
    score = scorer(RunPredictions(runs[0], batch_size, strategy), data, split, references,
                   bn_data)
    context = {"data": data.identity(split),
               "batchnorm": None if bn_data is None else bn_data.identity("train"),
               "model": layout.identity(runs[0])}
    solutions = [checkpoints.load_weights(r) for r in runs]
    result = {"runs": runs, "model": model, "dataset": data.name, "split": split,
              "num_examples": len(references["a"]), "plane": options.plane, "seed": options.seed,
              "options": {**dataclasses.asdict(options), "margin": options.grid_margin},
              "batchnorm": "checkpoint" if bn_data is None else "reestimated",
              "references": dict(zip("ab", runs))}
    if len(runs) > 1:
        result["disagreement_between_solutions"] = metrics.disagreement(references["a"],
                                                                        references["b"])
    if options.plane != "none":
        result["plane_section"] = evaluate_plane(
            make_plane(runs, solutions, options), score, options.grid_points,
            options.grid_margin, os.path.join(work_dir, "plane_grid.npz"), context)
    if len(runs) > 1:
        result["paths"] = _evaluate_paths(runs, solutions, data, options, score, work_dir,
                                          context)
    result["summary"] = summarize(result)
    return result


def _evaluate_paths(runs, solutions, data, options, score, work_dir, context) -> dict:
    """The straight line between the solutions and, with `options.connect`, the
    trained Bezier connector, each scored at `options.path_points` values of t."""
    a, b = solutions
    ts = np.linspace(0.0, 1.0, options.path_points)
    paths = {"linear": evaluate_path(lambda t: connectors.line(a, b, t), ts, score,
                                     os.path.join(work_dir, "path_linear.npz"), context)}
    if options.connect:
        bend, history = connectors.trained_bend(
            runs[0], runs[1], data, options.connect_epochs, options.connect_learning_rate,
            options.seed, os.path.join(work_dir, "connector.npz"))
        paths["bezier"] = {
            **evaluate_path(lambda t: connectors.bezier(a, bend, b, t), ts, score,
                            os.path.join(work_dir, "path_bezier.npz"), context),
            "train_loss_by_epoch": history}
    return paths


def summarize(result: dict) -> dict:
    """The numbers the paper's argument rests on: accuracy and disagreement at the
    defining points, and along each path its lowest accuracy, highest loss, largest
    disagreement with each end, and the largest over t of the smaller of the two
    (how far the path's functions get from both ends at once)."""
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
            "max_disagreement_with_a": float(np.max(path["disagreement_a"])),
            "max_disagreement_with_b": float(np.max(path["disagreement_b"])),
            "max_over_path_of_min_disagreement_with_endpoints": float(np.max(np.minimum(
                path["disagreement_a"], path["disagreement_b"]))),
        }
    return summary
