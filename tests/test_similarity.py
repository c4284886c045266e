"""Cached predictions and baselines/similarity.py on real MNIST-1D runs."""

import os
import shutil

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver
from conftest import load_binary, run_in_process
from scipy.special import softmax
from scipy.stats import entropy

from uncertainty import models
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, predictions

similarity_binary = load_binary("similarity")

FLAGS = flags.FLAGS
FLAGS(["pytest"])
pytestmark = pytest.mark.slow  # trains the MNIST-1D runs and runs the binary


@pytest.fixture(scope="module")
def analysis(runs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("similarity"))
    with flagsaver.flagsaver(runs=[runs], split="test", output_dir=out, tsne_runs=2):
        similarity_binary.main(["similarity.py"])
    return out, files.read_json(os.path.join(out, "similarity.json"))


def keras_logits(run_dir, epoch, data):
    """Independent of the pipelines: the model on the raw arrays."""
    model = models.build("cnn1d", data.input_shape, data.num_classes)
    model.set_weights(checkpoints.load_arrays(run_dir, epoch))
    return model.predict(data.read("test")[0].astype(np.float32), verbose=0)


def final_variables(run_dir):
    """The run's final trainable weights as TensorFlow's checkpoint reader sees them in
    its last checkpoint (sorted by name: cosine does not depend on the order)."""
    reader = tf.train.load_checkpoint(os.path.join(run_dir, "checkpoints"))  # the latest
    names = sorted(n for n in reader.get_variable_to_shape_map()
                   if n.startswith("model/") and "/.OPTIMIZER_SLOT" not in n
                   and n.split("/")[2] in ("kernel", "bias"))
    return np.concatenate([reader.get_tensor(n).ravel() for n in names]).astype(np.float64)


def test_writes_json_and_figures(analysis, runs):
    out, result = analysis
    names = {f"trajectory_seed{s}.png" for s in range(3)} | {"independent.png", "tsne.png"}
    assert names <= set(os.listdir(out))
    assert result["num_examples"] == 1000 and len(result["runs"]) == 3
    assert len(result["tsne"]["points"]) == 2 * 4  # two trajectories of four epochs
    for t in result["trajectories"].values():
        assert np.asarray(t["weight_cosine"]).shape == (4, 4)
        assert t["epochs"] == [1, 2, 3, 4]


def test_matrices_against_independent_computation(analysis, runs, mnist1d):
    _, result = analysis
    run = os.path.join(runs, "seed1")
    weights = [checkpoints.load_weights(run, e) for e in (1, 2, 3, 4)]
    logits = [keras_logits(run, e, mnist1d) for e in (1, 2, 3, 4)]
    t = result["trajectories"][run]
    for i in range(4):
        for j in range(4):
            cos = weights[i] @ weights[j] / np.linalg.norm(weights[i]) / np.linalg.norm(
                weights[j])
            assert np.isclose(t["weight_cosine"][i][j], cos, atol=1e-6)
            brute = np.mean(logits[i].argmax(1) != logits[j].argmax(1))
            assert abs(t["disagreement"][i][j] - brute) <= 2e-3  # argmax near-ties
    finals = softmax(np.stack([keras_logits(os.path.join(runs, f"seed{s}"), 4, mnist1d)
                               for s in range(3)]), axis=-1)

    def h(p):  # the paper's entropy, -sum p log(p + 1e-5), from scipy's
        return entropy(p, axis=-1) - np.sum(p * (np.log(p + 1e-5) - np.log(p)), axis=-1)

    js = np.mean(h(finals.mean(0)) - h(finals).mean(0))
    assert np.isclose(result["js_divergence"]["independent"], js, atol=1e-4)
    labels = finals.argmax(-1)
    pairs = [np.mean(labels[i] != labels[j]) for i in range(3) for j in range(3) if i != j]
    assert np.isclose(result["summary"]["independent_mean_disagreement"], np.mean(pairs),
                      atol=2e-3)

    # whole trajectories: run 1's checkpoints against run 0's solution, in Keras
    out, _ = analysis
    whole = result["whole_trajectories"]
    arrays = np.load(os.path.join(out, "per_example.npz"))
    solution0 = keras_logits(os.path.join(runs, "seed0"), 4, mnist1d).argmax(1)
    for e in range(4):
        others = sum((keras_logits(os.path.join(runs, f"seed{s}"), e + 1, mnist1d).argmax(1)
                      != solution0).astype(int) for s in (1, 2))
        counted = arrays["disagreement_across_count"][0, e]  # runs 1 and 2 vs run 0
        assert np.mean(counted == others) >= 0.995  # argmax near-ties
    assert whole["epochs"] == [1, 2, 3, 4]
    assert np.asarray(whole["weight_cosine"]["within"])[:, -1] == pytest.approx(1.0)


def test_independent_cosine_against_tensorflows_checkpoint_reader(analysis, runs):
    _, result = analysis
    finals = [final_variables(os.path.join(runs, f"seed{s}")) for s in range(3)]
    for i in range(3):
        for j in range(3):
            expected = finals[i] @ finals[j] / np.linalg.norm(finals[i]) / np.linalg.norm(
                finals[j])
            assert np.isclose(result["independent"]["weight_cosine"][i][j], expected,
                              atol=1e-6)


def test_cached_predictions_equal_direct_predictions(analysis, runs, mnist1d):
    run = os.path.join(runs, "seed0")
    path = predictions.RunPredictions(run).cache_path(mnist1d, "test", "epoch_003")
    assert path == os.path.join(run, "predictions", "mnist1d", "test", "epoch_003.npz")
    with np.load(path) as cached:
        np.testing.assert_allclose(cached["logits"], keras_logits(run, 3, mnist1d),
                                   atol=1e-4)


def test_predictions_of_a_flat_weight_vector(analysis, runs, mnist1d):
    run = os.path.join(runs, "seed2")
    predictor = predictions.RunPredictions(run)
    vector = checkpoints.load_weights(run, 3)
    same = predictor.vector(mnist1d, "test", "vector_epoch3", vector, {"epoch": 3},
                            base_epoch=3)
    np.testing.assert_allclose(same, predictor.checkpoint(mnist1d, "test", 3), atol=1e-5)
    assert predictor.counts == {"computed": 1, "from_cache": 1}
    zero = predictor.vector(mnist1d, "test", "zeros", np.zeros_like(vector), {"zeros": 1})
    np.testing.assert_allclose(zero, 0.0, atol=1e-6)  # all-zero weights: zero logits
    assert os.path.exists(predictor.cache_path(mnist1d, "test", "zeros"))
    with pytest.raises(ValueError, match="vector has 5 values"):
        predictor.vector(mnist1d, "test", "short", np.zeros(5), {"short": 1})


def test_second_invocation_predicts_nothing(analysis, runs, monkeypatch, tmp_path):
    out, first = analysis
    cache = [os.path.join(d, f) for d, _, fs in os.walk(runs) for f in fs if "predictions" in d]
    stamps = {p: os.stat(p).st_mtime_ns for p in cache}

    def no_model(*args, **kwargs):
        raise AssertionError("a prediction was computed again")

    monkeypatch.setattr(predictions.RunPredictions, "_get_model", no_model)
    with flagsaver.flagsaver(runs=[runs], split="test", output_dir=str(tmp_path),
                             tsne_runs=2):
        similarity_binary.main(["similarity.py"])
    assert stamps == {p: os.stat(p).st_mtime_ns for p in cache}
    again = files.read_json(os.path.join(tmp_path, "similarity.json"))
    assert again["independent"] == first["independent"]
    assert first["predictions"]["computed"] == 12  # 3 runs x 4 epochs, once
    # every checkpoint from the cache, and each run's solution once more, read first
    assert again["predictions"]["computed"] == 0 and again["predictions"]["from_cache"] == 15


def _copy_run(runs, tmp_path, name="other"):
    target = tmp_path / name
    shutil.copytree(os.path.join(runs, "seed0"), target)
    return target


def test_fewer_than_two_runs(runs):
    with flagsaver.flagsaver(runs=[os.path.join(runs, "seed0")], output_dir="unused"):
        with pytest.raises(UserError, match="need at least 2 runs"):
            similarity_binary.main(["similarity.py"])


@pytest.mark.parametrize("field,value", [("model", "small_cnn"), ("dataset", "fashion_mnist"),
                                         ("validation_examples", 100)])
def test_incompatible_runs(runs, tmp_path, field, value):
    other = _copy_run(runs, tmp_path)
    config = files.read_json(other / "config.json")
    files.write_json(other / "config.json", {**config, field: value})
    with flagsaver.flagsaver(runs=[os.path.join(runs, "seed1"), str(other)],
                             output_dir=str(tmp_path / "out")):
        with pytest.raises(UserError, match=f"runs differ in {field}"):
            similarity_binary.main(["similarity.py"])
    assert not os.path.exists(tmp_path / "out")


def test_missing_checkpoints_and_paths(runs, tmp_path):
    other = _copy_run(runs, tmp_path)
    for part in (other / "checkpoints").glob("ckpt-2.*"):
        os.remove(part)
    with flagsaver.flagsaver(runs=[os.path.join(runs, "seed1"), str(other)],
                             output_dir=str(tmp_path / "out")):
        with pytest.raises(UserError, match="missing checkpoints"):
            similarity_binary.main(["similarity.py"])
    with flagsaver.flagsaver(runs=[str(tmp_path / "nowhere")], output_dir="unused"):
        with pytest.raises(UserError, match="does not exist"):
            similarity_binary.main(["similarity.py"])


def test_binary_error_is_one_line(runs, tmp_path, capfd):
    code, lines = run_in_process(capfd, "similarity", f"--runs={os.path.join(runs, 'seed0')}",
                                 f"--output_dir={tmp_path}")
    assert code == 2
    assert lines == [
        "similarity.py: error: need at least 2 runs to compare, got 1; train more seeds "
        "with baselines/train.py"]


def test_runs_from_another_data_source_are_refused(runs, tmp_path):
    copies = [_copy_run(runs, tmp_path, name) for name in ("a", "b")]
    for run in copies:
        config = files.read_json(run / "config.json")
        files.write_json(run / "config.json", {**config, "data_source": "tfds"})
    with flagsaver.flagsaver(runs=[str(c) for c in copies], output_dir=str(tmp_path / "o")):
        with pytest.raises(UserError, match="loads from 'mnist1d'"):
            similarity_binary.main(["similarity.py"])
