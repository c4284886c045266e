"""Weight-space cross-sections (paper Fig. 4): planes and lines through solutions,
scored at every point by loss, accuracy and disagreement with reference functions.

  through(points)             the plane through three flat weight vectors, with an
                              orthonormal basis (Gram-Schmidt): every defining point keeps
                              its true position and distances
  random_plane(arrays, ...)   two random directions around one solution, each filter
                              scaled to that filter's norm (Li et al. 2018)
  evaluate(coords, ...)       scores each point, saving after every one, so that an
                              interrupted evaluation resumes where it stopped
"""

import dataclasses
import hashlib
import os

import numpy as np
from absl import logging

from uncertainty import files, metrics, trajectory
from uncertainty.datasets import Dataset
from uncertainty.errors import UserError
from uncertainty.predictions import RunPredictions

BIAS_BN = ("zero", "keep")


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
    """A random Gaussian direction, flat like `trajectory.flatten(arrays)`, with each
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


def random_plane(arrays: list[np.ndarray], seed: int, bias_bn: str = "zero",
                 name: str = "solution") -> Plane:
    """Two filter-normalised random directions around the solution with trainable
    `arrays`; coordinates are in units of the directions (Li et al.'s alpha, beta)."""
    rng = np.random.default_rng([seed, 17])
    axes = np.stack([filter_normalized(arrays, rng, bias_bn) for _ in range(2)])
    return Plane(origin=trajectory.flatten(arrays).astype(np.float64), axes=axes, points={name: (0.0, 0.0)})


def grid(plane: Plane, grid_points: int, margin: float) -> tuple[np.ndarray, np.ndarray]:
    """x and y grid values covering the defining points plus `margin` times their extent
    on each side (a square around a single point: +-margin)."""
    xs, ys = (np.array([p[i] for p in plane.points.values()]) for i in (0, 1))
    extent = max(np.ptp(xs), np.ptp(ys)) or 1.0
    return tuple(np.linspace(v.min() - margin * extent, v.max() + margin * extent,
                             grid_points) for v in (xs, ys))


def scorer(predictor: RunPredictions, data: Dataset, split: str,
           references: dict[str, np.ndarray], train_data: Dataset | None = None):
    """A function of a weight vector giving its loss (NLL), accuracy and disagreement
    with each reference function on `split`; batch-norm statistics are re-estimated
    on `train_data` when given."""
    labels = data.labels(split)

    def score(vector: np.ndarray) -> dict[str, float]:
        probs = predictor.uncached(data, split, vector, train_data)
        values = {"loss": metrics.nll(probs, labels), "accuracy": metrics.accuracy(probs, labels)}
        values.update({f"disagreement_{name}": metrics.disagreement(probs, reference)
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
    if os.path.exists(path):
        with np.load(path) as saved:
            if str(saved["fingerprint"]) == fingerprint and np.array_equal(
                    saved["coords"], coords):
                done = saved["done"].copy()
                values = {k[2:]: saved[k].copy() for k in saved.files if k.startswith("v_")}
    for i in np.flatnonzero(~done):
        for name, value in score(vector_at(*np.atleast_1d(coords[i]))).items():
            values.setdefault(name, np.full(len(coords), np.nan))[i] = value
        done[i] = True
        if done.sum() % max(1, len(coords) // 10) == 0:
            logging.info("%s: %d of %d points done", os.path.basename(path), done.sum(),
                         len(coords))
        files.write_npz(path, fingerprint=fingerprint, coords=coords, done=done,
                        **{f"v_{k}": v for k, v in values.items()})
    return values
