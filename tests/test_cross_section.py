"""Cross-sections: the plane's geometry against numpy, filter normalisation, seeded
random planes, resumable grids, the summary, the batch-norm policy, planes that
reproduce their checkpoints, and the binary end to end on real MNIST-1D runs, its
numbers checked against Keras predictions and sklearn."""

import json
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from conftest import load_binary, run_in_process
from scipy.special import softmax
from sklearn.metrics import accuracy_score, log_loss

from uncertainty import models
from uncertainty.analyses import connectors, cross_section
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, layout
from uncertainty.runs.predictions import RunPredictions

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


def test_plane_coordinates_are_numpy_projections():
    """Against numpy's QR of the two edge vectors (signs fixed to R's diagonal > 0)."""
    rng = np.random.default_rng(3)
    p0, p1, p2 = rng.normal(size=(3, 300))
    plane = cross_section.through({"o": p0, "a": p1, "b": p2})
    q, r = np.linalg.qr(np.stack([p1 - p0, p2 - p0], axis=1))
    signs = np.sign(np.diag(r))
    q, r = q * signs, r * signs[:, None]
    assert np.allclose(plane.axes, q.T)
    assert np.allclose(plane.points["a"], (r[0, 0], 0.0))
    assert np.allclose(plane.points["b"], (r[0, 1], r[1, 1]))
    x, y = 0.3, -1.7
    assert np.allclose(plane.at(x, y), p0 + q @ [x, y], atol=1e-5)


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
    parts = checkpoints.unflatten(direction.astype(np.float32), [a.shape for a in arrays])
    for w, d in zip(arrays, parts):
        if w.ndim == 1:
            assert np.allclose(d, 0 if bias_bn == "zero" else w)
            continue
        for j in range(w.shape[-1]):  # every output filter, by hand
            assert np.isclose(np.linalg.norm(d[..., j]), np.linalg.norm(w[..., j]), rtol=1e-5)
    plane = cross_section.random_plane(arrays, seed=0, identity="run", bias_bn=bias_bn)
    assert np.allclose(plane.at(0, 0), checkpoints.flatten(arrays))
    assert not np.allclose(plane.axes[0], plane.axes[1])
    assert cross_section.grid(plane, 5, 1.0)[0].tolist() == [-1.0, -0.5, 0.0, 0.5, 1.0]


def test_random_directions_derive_from_seed_and_run(tmp_path):
    """Two base runs with the same --seed get different directions; the same run and
    seed always the same ones."""
    rng = np.random.default_rng(4)
    arrays = [rng.normal(size=(5, 2, 8)), rng.normal(size=8), rng.normal(size=(16, 3))]
    identities = []
    for seed in (0, 1):
        run = tmp_path / f"seed{seed}"
        run.mkdir()
        (run / "config.json").write_text(json.dumps(
            {"model": "cnn1d", "seed": seed, "output_dir": str(run)}))
        identities.append(layout.identity(str(run)))

    def axes(seed, identity):
        return cross_section.random_plane(arrays, seed, identity).axes

    assert np.array_equal(axes(0, identities[0]), axes(0, identities[0]))
    assert not np.allclose(axes(0, identities[0]), axes(0, identities[1]))
    assert not np.allclose(axes(0, identities[0]), axes(1, identities[0]))


def test_summary_names_what_it_computes():
    result = {"disagreement_between_solutions": 0.1, "paths": {"linear": {
        "t": [0, 0.5, 1], "accuracy": [0.9, 0.3, 0.8], "loss": [0.3, 2.0, 0.4],
        "disagreement_a": [0.0, 0.7, 0.1], "disagreement_b": [0.1, 0.6, 0.0]}}}
    summary = cross_section.summarize(result)["linear"]
    assert summary == {"endpoint_accuracy": [0.9, 0.8], "min_accuracy": 0.3,
                       "max_loss": 2.0, "max_disagreement_with_a": 0.7,
                       "max_disagreement_with_b": 0.6,
                       "max_over_path_of_min_disagreement_with_endpoints": 0.6}


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


@pytest.mark.slow
def test_plane_point_reproduces_its_checkpoint(runs, mnist1d):
    run_a, run_b = (os.path.join(runs, f"seed{i}") for i in (0, 1))
    plane = cross_section.through({"init": checkpoints.load_weights(run_a, 0),
                                   "a": checkpoints.load_weights(run_a),
                                   "b": checkpoints.load_weights(run_b)})
    predictor = RunPredictions(run_a)
    own = RunPredictions(run_b).checkpoint(mnist1d, "test")
    at_b = predictor.uncached(mnist1d, "test", plane.at(*plane.points["b"]))
    assert np.allclose(at_b, own, atol=1e-5)


@pytest.mark.slow
def test_batchnorm_policy_scores_references_like_points(runs, mnist1d, tmp_path,
                                                        monkeypatch):
    """For a batch-norm model every function, references included, is scored with
    statistics re-estimated on the runs' (cut) training split, or with --noreestimate_bn
    none is; the JSON says which."""
    monkeypatch.setattr(models, "uses_batchnorm", lambda name: True)
    seen = []

    def spy(method):
        def wrapped(self, data, split, *args, bn_data=None, **kwargs):
            seen.append((method.__name__, bn_data))
            return method(self, data, split, *args, bn_data=bn_data, **kwargs)
        return wrapped

    monkeypatch.setattr(RunPredictions, "uncached", spy(RunPredictions.uncached))
    monkeypatch.setattr(RunPredictions, "checkpoint", spy(RunPredictions.checkpoint))
    data = mnist1d.head("train", 1000)
    pair = [os.path.join(runs, f"seed{i}") for i in (0, 1)]
    for reestimate in (True, False):
        seen.clear()
        result = cross_section.analyse(pair, data, "test", cross_section.Options(
            plane="none", path_points=2, reestimate_bn=reestimate), str(tmp_path))
        assert {name for name, _ in seen} == {"uncached", "checkpoint"}
        assert all(bn is (data if reestimate else None) for _, bn in seen)
        assert result["batchnorm"] == ("reestimated" if reestimate else "checkpoint")
        assert result["paths"]["linear"]["disagreement_a"][0] == 0.0


SECTION = dict(plane="trajectory", grid_points=4, path_points=3, connect=True,
               connect_epochs=1, split="test")


def _pair(runs):
    return [os.path.join(runs, "seed0"), os.path.join(runs, "seed1")]


@pytest.fixture(scope="module")
def section(runs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("section"))
    with flagsaver.flagsaver(runs=_pair(runs), output_dir=out, **SECTION):
        cross_section_binary.main(["cross_section.py"])
    return out, files.read_json(os.path.join(out, "cross_section.json"))


def _keras_logits(run, vector, data, split):
    """Logits of the run's model with the flat trainable `vector`, by hand: split by
    the model's own weight shapes, raw inputs, `model.predict`."""
    model = models.build("cnn1d", data.input_shape, data.num_classes)
    model.set_weights(checkpoints.load_arrays(run))
    sizes = [int(np.prod(w.shape)) for w in model.trainable_weights]
    for w, part in zip(model.trainable_weights,
                       np.split(vector, np.cumsum(sizes)[:-1])):
        w.assign(part.reshape(w.shape))
    inputs = data.read(split)[0].astype(np.float32)  # raw: the model holds its normaliser
    return model.predict(inputs, batch_size=256, verbose=0).astype(np.float64)


@pytest.mark.slow
def test_binary_outputs(section, runs, mnist1d):
    out, result = section
    assert {"cross_section.json", "plane.png", "paths.png", "plane_grid.npz",
            "path_linear.npz", "path_bezier.npz", "connector.npz"} <= set(os.listdir(out))
    plane = result["plane_section"]
    assert np.array(plane["accuracy"]).shape == (4, 4) and len(plane["x"]) == 4
    assert set(plane["points"]) == {"seed0 epoch 2", "seed0", "seed1"}
    assert result["batchnorm"] == "checkpoint"  # cnn1d has no batch norm
    labels = mnist1d.labels("test")
    seed0, seed1 = _pair(runs)
    a = _keras_logits(seed0, checkpoints.load_weights(seed0), mnist1d, "test")
    b = _keras_logits(seed1, checkpoints.load_weights(seed1), mnist1d, "test")
    assert np.isclose(plane["points"]["seed1"]["accuracy"],
                      accuracy_score(labels, b.argmax(1)))
    assert np.isclose(plane["points"]["seed1"]["disagreement_a"],
                      result["disagreement_between_solutions"])
    assert np.isclose(result["disagreement_between_solutions"],
                      np.mean(a.argmax(1) != b.argmax(1)))

    # A grid point away from the defining points: its weights from numpy's QR of the
    # defining points, its logits from Keras, its metrics from sklearn.
    p0, p1, p2 = (checkpoints.load_weights(seed0, 2), checkpoints.load_weights(seed0),
                  checkpoints.load_weights(seed1))
    q, r = np.linalg.qr(np.stack([p1 - p0, p2 - p0], axis=1).astype(np.float64))
    q = q * np.sign(np.diag(r))
    ix, iy = 1, 2
    vector = (p0 + q @ [plane["x"][ix], plane["y"][iy]]).astype(np.float32)
    logits = _keras_logits(seed0, vector, mnist1d, "test")
    probs = softmax(logits, axis=1)
    assert np.isclose(plane["loss"][iy][ix], log_loss(labels, probs, labels=range(10)),
                      rtol=1e-4)
    assert np.isclose(plane["accuracy"][iy][ix], accuracy_score(labels, logits.argmax(1)),
                      atol=1e-3)
    assert np.isclose(plane["disagreement_a"][iy][ix],
                      np.mean(logits.argmax(1) != a.argmax(1)), atol=1e-3)

    for name in ("linear", "bezier"):
        path = result["paths"][name]
        assert path["t"] == [0.0, 0.5, 1.0]
        assert path["disagreement_a"][0] == 0.0 and path["disagreement_b"][-1] == 0.0
        assert np.isclose(path["accuracy"][-1], accuracy_score(labels, b.argmax(1)))
        summary = result["summary"][name]
        assert summary["max_disagreement_with_a"] == max(path["disagreement_a"])
        assert summary["max_over_path_of_min_disagreement_with_endpoints"] == max(
            min(x, y) for x, y in zip(path["disagreement_a"], path["disagreement_b"]))
    middle = _keras_logits(seed0, connectors.line(p1, p2, 0.5), mnist1d, "test")
    assert np.isclose(result["paths"]["linear"]["loss"][1],
                      log_loss(labels, softmax(middle, axis=1), labels=range(10)),
                      rtol=1e-4)
    assert len(result["paths"]["bezier"]["train_loss_by_epoch"]) == 1


@pytest.mark.slow
def test_binary_rerun_reads_connector_and_grid(section, runs, monkeypatch):
    out, first = section

    def no_training(*args, **kwargs):
        raise AssertionError("the connector was trained again")

    monkeypatch.setattr(connectors, "train_bezier", no_training)
    monkeypatch.setattr(cross_section, "evaluate_plane", _no_grid_scoring(
        cross_section.evaluate_plane))
    with flagsaver.flagsaver(runs=_pair(runs), output_dir=out, **SECTION):
        cross_section_binary.main(["cross_section.py"])
    again = files.read_json(os.path.join(out, "cross_section.json"))
    assert again["plane_section"]["accuracy"] == first["plane_section"]["accuracy"]
    assert again["paths"]["bezier"]["loss"] == first["paths"]["bezier"]["loss"]
    assert again["summary"] == first["summary"]


def _no_grid_scoring(evaluate_plane):
    """`evaluate_plane` whose score may be called only for the 3 defining points."""
    def wrapped(plane, score, *args, **kwargs):
        calls = []

        def counted(vector):
            calls.append(1)
            assert len(calls) <= len(plane.points), "the grid was scored again"
            return score(vector)

        return evaluate_plane(plane, counted, *args, **kwargs)

    return wrapped


@pytest.mark.slow
@pytest.mark.parametrize("overrides,message", [
    (dict(runs=None), "and the paths need two runs, got 1"),
    (dict(trajectory_epoch=4), "--trajectory_epoch must be one of"),
    (dict(margin=-1.0), "--margin must be >= 0"),
    (dict(grid_points=1), "at least 2"),
    (dict(connect_learning_rate=0.0), "--connect_learning_rate must be positive"),
])
def test_bad_flags(runs, tmp_path, overrides, message):
    values = {**dict(runs=_pair(runs), plane="trajectory", grid_points=3,
                     output_dir=str(tmp_path / "out")), **overrides}
    values["runs"] = values["runs"] or [os.path.join(runs, "seed0")]  # None: one run
    with flagsaver.flagsaver(**values):
        with pytest.raises(UserError, match=message):
            cross_section_binary.main(["cross_section.py"])
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_binary_reports_one_line_and_exit_code_2(runs, tmp_path, capfd):
    code, lines = run_in_process(capfd, "cross_section", f"--runs={os.path.join(runs, 'seed0')}",
                                 "--plane=independent", f"--output_dir={tmp_path / 'out'}")
    assert code == 2
    assert len(lines) == 1 and lines[0].startswith("cross_section.py: error:")
    assert "need two runs, got 1" in lines[0] and not os.path.exists(tmp_path / "out")
