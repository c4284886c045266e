"""Cross-sections: the plane's geometry, filter normalisation, resumable grids, planes
that reproduce their checkpoints, the Bezier connector, and the binary end to end on
real MNIST-1D runs."""

import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from sklearn.metrics import accuracy_score, log_loss

from conftest import load_binary
from uncertainty import (UserError, connectors, cross_section, files, trajectory)
from uncertainty.predictions import RunPredictions

cross_section_binary = load_binary("cross_section")

FLAGS = flags.FLAGS
FLAGS(["pytest"])


def test_plane_basis_is_orthonormal_and_keeps_the_points():
    rng = np.random.default_rng(0)
    points = {"o": rng.normal(size=500), "a": rng.normal(size=500), "b": rng.normal(size=500)}
    plane = cross_section.through(points)
    assert np.allclose(plane.axes @ plane.axes.T, np.eye(2))
    for name, vector in points.items():
        assert np.allclose(plane.at(*plane.points[name]), vector, atol=1e-5)
    for p, q in (("o", "a"), ("o", "b"), ("a", "b")):  # true distances, by numpy
        assert np.isclose(np.hypot(*np.subtract(plane.points[p], plane.points[q])),
                          np.linalg.norm(points[p] - points[q]))
    assert plane.points["a"][1] == 0.0 and plane.points["o"] == (0.0, 0.0)


def test_degenerate_planes_are_refused():
    a = np.arange(10.0)
    with pytest.raises(UserError, match="same weights"):
        cross_section.through({"x": a, "y": a, "z": a + 1})
    with pytest.raises(UserError, match="on one line"):
        cross_section.through({"x": a, "y": 2 * a, "z": 3 * a})


@pytest.mark.parametrize("bias_bn", ["zero", "keep"])
def test_filter_normalisation_matches_each_filter(bias_bn):
    rng = np.random.default_rng(1)
    arrays = [rng.normal(size=(3, 3, 2, 4)), rng.normal(size=4), rng.normal(size=(5, 3)),
              rng.normal(size=3)]
    direction = cross_section.filter_normalized(arrays, np.random.default_rng(2), bias_bn)
    parts = trajectory.unflatten(direction.astype(np.float32), [a.shape for a in arrays])
    for w, d in zip(arrays, parts):
        if w.ndim == 1:
            assert np.allclose(d, 0 if bias_bn == "zero" else w)
            continue
        for j in range(w.shape[-1]):  # every output filter, by hand
            assert np.isclose(np.linalg.norm(d[..., j]), np.linalg.norm(w[..., j]), rtol=1e-5)
    plane = cross_section.random_plane(arrays, seed=0, bias_bn=bias_bn)
    assert np.allclose(plane.at(0, 0), trajectory.flatten(arrays))
    assert not np.allclose(plane.axes[0], plane.axes[1])
    assert cross_section.grid(plane, 5, 1.0)[0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]


def test_grid_resumes_after_interruption_with_identical_values(tmp_path):
    coords = [(x, y) for y in np.linspace(-1, 1, 4) for x in np.linspace(0, 2, 3)]
    calls = []

    def score(vector):
        calls.append(vector.copy())
        return {"loss": float(np.sum(vector ** 2)), "accuracy": float(np.tanh(vector[0]))}

    def interrupted(vector):
        if len(calls) == 5:
            raise KeyboardInterrupt
        return score(vector)

    def at(x, y):
        return np.array([x, y, x * y])

    path = str(tmp_path / "grid.npz")
    with pytest.raises(KeyboardInterrupt):
        cross_section.evaluate(coords, at, interrupted, path, "f1")
    assert len(calls) == 5
    resumed = cross_section.evaluate(coords, at, score, path, "f1")
    assert len(calls) == len(coords)  # only the 7 missing points were scored
    fresh = cross_section.evaluate(coords, at, score, str(tmp_path / "fresh.npz"), "f1")
    for name in ("loss", "accuracy"):
        assert np.array_equal(resumed[name], fresh[name])
    assert np.allclose(fresh["loss"], [x * x + y * y + (x * y) ** 2 for x, y in coords])
    cross_section.evaluate(coords, at, score, path, "another plane")  # starts over
    assert len(calls) == 3 * len(coords)


def test_bezier_and_line_end_at_the_solutions():
    a, bend, b = np.zeros(3), np.array([1.0, 2.0, 3.0]), np.ones(3)
    assert np.allclose(connectors.bezier(a, bend, b, 0.0), a)
    assert np.allclose(connectors.bezier(a, bend, b, 1.0), b)
    assert np.allclose(connectors.bezier(a, bend, b, 0.5), 0.25 * a + 0.5 * bend + 0.25 * b)
    assert np.allclose(connectors.line(a, b, 0.25), [0.25] * 3)


def test_plane_point_reproduces_its_checkpoint(runs, mnist1d):
    run_a, run_b = (os.path.join(runs, f"seed{i}") for i in (0, 1))
    plane = cross_section.through({"init": trajectory.load_weights(run_a, 0),
                                   "a": trajectory.load_weights(run_a),
                                   "b": trajectory.load_weights(run_b)})
    predictor = RunPredictions(run_a)
    own = RunPredictions(run_b).checkpoint(mnist1d, "test")
    at_b = predictor.uncached(mnist1d, "test", plane.at(*plane.points["b"]))
    assert np.allclose(at_b, own, atol=1e-5)


def test_trained_connector_lowers_the_loss_at_its_middle(runs, mnist1d):
    run_a, run_b = (os.path.join(runs, f"seed{i}") for i in (0, 1))
    a, b = trajectory.load_weights(run_a), trajectory.load_weights(run_b)
    bend, history = connectors.train_bezier(run_a, run_b, mnist1d, epochs=2,
                                            learning_rate=3e-3, seed=0)
    assert bend.shape == a.shape and len(history) == 2
    predictor, labels = RunPredictions(run_a), mnist1d.labels("train")
    straight = predictor.uncached(mnist1d, "train", connectors.line(a, b, 0.5))
    curved = predictor.uncached(mnist1d, "train", connectors.bezier(a, bend, b, 0.5))
    assert log_loss(labels, curved, labels=range(10)) < log_loss(labels, straight,
                                                                 labels=range(10))


@pytest.fixture(scope="module")
def section(runs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("section"))
    with flagsaver.flagsaver(runs=[os.path.join(runs, "seed0"), os.path.join(runs, "seed1")],
                             plane="trajectory", grid_points=4, path_points=3, connect=True,
                             connect_epochs=1, split="test", output_dir=out):
        cross_section_binary.main(["cross_section.py"])
    return out, files.read_json(os.path.join(out, "cross_section.json"))


def test_binary_outputs(section, runs, mnist1d):
    out, result = section
    assert {"cross_section.json", "plane.png", "paths.png", "plane_grid.npz",
            "connector.npz"} <= set(os.listdir(out))
    plane = result["plane_section"]
    assert np.array(plane["accuracy"]).shape == (4, 4) and len(plane["x"]) == 4
    assert set(plane["points"]) == {"seed0 epoch 2", "seed0", "seed1"}
    labels = mnist1d.labels("test")
    b = RunPredictions(os.path.join(runs, "seed1")).checkpoint(mnist1d, "test")
    assert np.isclose(plane["points"]["seed1"]["accuracy"],
                      accuracy_score(labels, b.argmax(1)))
    assert np.isclose(plane["points"]["seed1"]["disagreement_a"],
                      result["disagreement_between_solutions"])
    for name in ("linear", "bezier"):
        path = result["paths"][name]
        assert path["t"] == [0.0, 0.5, 1.0]
        assert path["disagreement_a"][0] == 0.0 and path["disagreement_b"][-1] == 0.0
        assert np.isclose(path["accuracy"][-1], accuracy_score(labels, b.argmax(1)))
    assert len(result["paths"]["bezier"]["train_loss_by_epoch"]) == 1


def test_binary_rerun_reads_connector_and_grid(section, runs, monkeypatch):
    out, first = section

    def no_training(*args, **kwargs):
        raise AssertionError("the connector was trained again")

    monkeypatch.setattr(connectors, "train_bezier", no_training)
    with flagsaver.flagsaver(runs=[os.path.join(runs, "seed0"), os.path.join(runs, "seed1")],
                             plane="trajectory", grid_points=4, path_points=3, connect=True,
                             connect_epochs=1, split="test", output_dir=out):
        cross_section_binary.main(["cross_section.py"])
    again = files.read_json(os.path.join(out, "cross_section.json"))
    assert again["plane_section"]["accuracy"] == first["plane_section"]["accuracy"]
    assert again["paths"]["bezier"]["loss"] == first["paths"]["bezier"]["loss"]


@pytest.mark.parametrize("overrides,message", [
    (dict(runs=None), "and the paths need two runs, got 1"),
    (dict(trajectory_epoch=4), "--trajectory_epoch must be one of"),
    (dict(margin=-1.0), "--margin must be >= 0"),
    (dict(grid_points=1), "at least 2"),
])
def test_bad_flags(runs, tmp_path, overrides, message):
    values = {**dict(runs=[os.path.join(runs, "seed0"), os.path.join(runs, "seed1")],
                     plane="trajectory", grid_points=3, output_dir=str(tmp_path / "out")),
              **overrides}
    values["runs"] = values["runs"] or [os.path.join(runs, "seed0")]  # None: one run
    with flagsaver.flagsaver(**values):
        with pytest.raises(UserError, match=message):
            cross_section_binary.main(["cross_section.py"])
    assert not os.path.exists(tmp_path / "out" / "cross_section.json")
