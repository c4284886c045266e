"""Ensembles: subsets and averaging against brute force, the sets of functions of the
shift study, uncertainty-baselines' metric names, and baselines/ensemble.py end to end
(MNIST-1D runs with their corrupted sets; CIFAR-10 / CIFAR-10-C through TFDS mock data)."""

import itertools
import os

import numpy as np
import pytest
import tensorflow_datasets as tfds
from absl import flags
from absl.testing import flagsaver
from sklearn.metrics import accuracy_score, log_loss

from conftest import load_binary
from uncertainty import UserError, datasets, ensemble, files, published, recipes
from uncertainty.predictions import RunPredictions
from uncertainty.training import TrainConfig, train

ensemble_binary = load_binary("ensemble")
subspace_binary = load_binary("subspace")

FLAGS = flags.FLAGS
FLAGS(["pytest"])


def test_all_subsets_when_few():
    assert ensemble.subsets(5, 2) == list(itertools.combinations(range(5), 2))
    assert ensemble.subsets(4, 4) == [(0, 1, 2, 3)]
    assert len(ensemble.subsets(6, 3, max_subsets=20)) == 20  # C(6, 3) = 20: all


def test_random_subsets_are_distinct_seeded_and_capped():
    drawn = ensemble.subsets(10, 4, max_subsets=15, seed=3)
    assert len(drawn) == 15 == len(set(drawn))
    assert all(len(set(s)) == 4 and all(0 <= i < 10 for i in s) for s in drawn)
    assert drawn == ensemble.subsets(10, 4, max_subsets=15, seed=3)
    assert drawn != ensemble.subsets(10, 4, max_subsets=15, seed=4)


@pytest.fixture
def members():
    rng = np.random.default_rng(0)
    probs = rng.dirichlet(np.full(5, 0.5), size=(4, 200))
    return probs, rng.integers(0, 5, 200)


def test_by_size_matches_brute_force(members):
    probs, labels = members
    table = ensemble.by_size(probs, labels)
    assert sorted(table) == [1, 2, 3, 4]
    for size in (1, 2, 3, 4):
        accuracy, nll = [], []
        for subset in itertools.combinations(range(4), size):
            mean = sum(probs[i] for i in subset) / size  # probabilities, not logits
            accuracy.append(np.mean(mean.argmax(1) == labels))
            nll.append(log_loss(labels, mean, labels=range(5)))
        assert np.isclose(table[size]["accuracy"], np.mean(accuracy))
        assert np.isclose(table[size]["nll"], np.mean(nll))
    assert np.isclose(table[1]["brier"], np.mean(
        [np.mean(((p - np.eye(5)[labels]) ** 2).sum(1)) for p in probs]))
    assert ensemble.by_size(probs, labels, max_size=2).keys() == {1, 2}


def js_by_hand(functions):
    """H(mean) - mean H with the paper's log(p + 1e-5), one example at a time."""
    values = []
    for n in range(functions.shape[1]):
        p = functions[:, n]
        h = lambda q: -np.sum(q * np.log(q + 1e-5))  # noqa: E731
        values.append(h(p.mean(0)) - np.mean([h(q) for q in p]))
    return np.mean(values)


def test_score_builds_every_set_of_functions():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 60)
    draw = lambda *shape: rng.dirichlet(np.ones(4), size=(*shape, 60))  # noqa: E731
    independent, trajectory = draw(3), draw(3)
    samples = {"dropout": [draw(2) for _ in range(3)],
               "weight_average": [draw(1) for _ in range(3)]}
    tables, js = ensemble.score(independent, trajectory, samples, labels)

    # One run's samples ensembled, the metric averaged over runs.
    assert np.isclose(tables["dropout"][2]["accuracy"], np.mean(
        [accuracy_score(labels, s.mean(0).argmax(1)) for s in samples["dropout"]]))
    # Ensembles of subspace-averaged members: all three runs' sample means averaged.
    members = np.stack([s.mean(0) for s in samples["dropout"]])
    assert np.isclose(tables["independent+dropout"][3]["nll"],
                      log_loss(labels, members.mean(0), labels=range(4)))
    assert tables["weight_average"].keys() == {1}
    assert np.isclose(tables["independent+weight_average"][2]["accuracy"], np.mean(
        [accuracy_score(labels, (samples["weight_average"][i][0]
                                 + samples["weight_average"][j][0]).argmax(1))
         for i, j in itertools.combinations(range(3), 2)]))
    assert np.isclose(js["independent"], js_by_hand(independent))
    assert np.isclose(js["trajectory"], js_by_hand(trajectory))
    assert np.isclose(js["dropout"], np.mean([js_by_hand(s) for s in samples["dropout"]]))
    assert "weight_average" not in js  # one function has no divergence


def test_metric_names_and_corrupted_means_follow_uncertainty_baselines():
    values = {"test/nll": 0.3, "test/nll_blur_1": 1.0, "test/nll_noise_1": 2.0,
              "test/nll_blur_3": 3.0, "test/nll_noise_3": 5.0}
    assert ensemble.metric_key("nll", None, 0) == "test/nll"
    assert ensemble.metric_key("nll", "noise", 3) == "test/nll_noise_3"
    assert ensemble.aggregate_corrupted(values, "nll", ["blur", "noise"], [1, 3]) == {
        "test/nll_mean_1": 1.5, "test/nll_mean_3": 4.0, "test/nll_mean_corrupted": 2.75}
    values.update(ensemble.aggregate_corrupted(values, "nll", ["blur", "noise"], [1, 3]))
    assert ensemble.at_intensity(values, "nll", 0) == 0.3
    assert ensemble.at_intensity(values, "nll", 3) == 4.0


def test_shift_sets():
    assert datasets.shift_sets("mnist1d", ["shift", "contrast"], [0, 4, 2]) == [
        (0, None, "mnist1d"), (2, "shift", "mnist1d_corrupted/shift_2"),
        (2, "contrast", "mnist1d_corrupted/contrast_2"),
        (4, "shift", "mnist1d_corrupted/shift_4"),
        (4, "contrast", "mnist1d_corrupted/contrast_4")]
    assert len(datasets.shift_sets("cifar10", None, [1, 2, 3, 4, 5])) == 1 + 19 * 5
    with pytest.raises(UserError, match="unknown corruption frost for mnist1d"):
        datasets.shift_sets("mnist1d", ["frost"], [1])
    with pytest.raises(UserError, match="intensities are 1..5"):
        datasets.shift_sets("mnist1d", None, [6])


def test_published_comparison_states_a_different_setting():
    rows = published.compare(lambda e: 0.5 if e["metric"] == "accuracy" else None,
                             "small_cnn", "fashion_mnist")
    assert rows and not any(r["same_setting"] for r in rows)
    assert {r["metric"] for r in rows} == {"accuracy", "brier", "nll", "ece",
                                           "js_divergence"}
    assert all((r["ours"] == 0.5) == (r["metric"] == "accuracy") for r in rows)
    table = published.format_table(rows)
    assert table.startswith("SETTING DIFFERS: ours is small_cnn on fashion_mnist")
    assert "0.769-0.773" in table  # the 5-ensemble's published clean accuracy
    same = published.compare(lambda e: None, "medium_cnn", "cifar10")
    assert any(r["same_setting"] for r in same)


@pytest.fixture(scope="module")
def study(runs, tmp_path_factory):
    """subspace.py around each MNIST-1D run, then ensemble.py on two corruptions."""
    root = tmp_path_factory.mktemp("study")
    for seed in range(3):
        with flagsaver.flagsaver(base_run=os.path.join(runs, f"seed{seed}"),
                                 methods=["dropout", "weight_average"], num_samples=2,
                                 num_checkpoints=3, split="validation",
                                 save_test_predictions=True, dropout_scale=0.05,
                                 output_dir=str(root / "subspace" / f"seed{seed}")):
            subspace_binary.main(["subspace.py"])
    out = str(root / "ensemble")
    with flagsaver.flagsaver(runs=[runs], subspace_dir=str(root / "subspace"),
                             corruptions=["shift", "gaussian_noise"], intensities=["1", "3"],
                             compare_published=True, output_dir=out):
        ensemble_binary.main(["ensemble.py"])
    return root, out, files.read_json(os.path.join(out, "ensemble.json"))


def test_study_outputs_and_numbers(study, runs):
    _, out, result = study
    assert {"ensemble.json", "published.txt", "shift_accuracy_brier.png",
            "shift_js_divergence.png", "ensemble_size.png"} <= set(os.listdir(out))
    assert result["intensities"] == [0, 1, 3]
    assert set(result["metrics"]) == {
        "independent", "trajectory", "dropout", "weight_average", "independent+dropout",
        "independent+weight_average"}
    # Independently: the cached final-checkpoint predictions, scored with sklearn.
    runs_list = result["runs"]
    shifted = datasets.load("mnist1d_corrupted/shift_3")
    finals = np.stack([np.load(RunPredictions(r).cache_path(shifted, "test", "epoch_004"))
                       for r in runs_list])
    labels = shifted.labels("test")
    full = result["metrics"]["independent"]["3"]
    assert np.isclose(full["test/accuracy_shift_3"],
                      accuracy_score(labels, finals.mean(0).argmax(1)))
    assert np.isclose(full["test/nll_shift_3"], log_loss(labels, finals.mean(0),
                                                         labels=range(10)))
    single = result["metrics"]["independent"]["1"]
    assert np.isclose(single["test/accuracy_shift_3"], np.mean(
        [accuracy_score(labels, f.argmax(1)) for f in finals]))
    assert np.isclose(full["test/accuracy_mean_3"], np.mean(
        [full["test/accuracy_shift_3"], full["test/accuracy_gaussian_noise_3"]]))
    assert np.isclose(full["test/accuracy_mean_corrupted"], np.mean(
        [full["test/accuracy_mean_1"], full["test/accuracy_mean_3"]]))
    js = result["metrics"]["independent"]["all"]["test/js_divergence_shift_3"]
    assert np.isclose(js, js_by_hand(finals))
    assert result["trajectory"] == {"run": runs_list[0], "epochs": [2, 3, 4]}
    assert result["subspace_samples_per_run"] == {"dropout": 2, "weight_average": 1}
    table = open(os.path.join(out, "published.txt")).read()
    assert table.startswith("SETTING DIFFERS: ours is cnn1d on mnist1d")


def test_study_predicts_nothing_twice(study, runs, tmp_path):
    root, _, first = study
    with flagsaver.flagsaver(runs=[runs], subspace_dir=str(root / "subspace"),
                             corruptions=["shift", "gaussian_noise"], intensities=["1", "3"],
                             max_ensemble_size=2, output_dir=str(tmp_path)):
        ensemble_binary.main(["ensemble.py"])
    again = files.read_json(os.path.join(tmp_path, "ensemble.json"))
    assert again["predictions"]["computed"] == 0
    assert again["metrics"]["independent"]["2"] == first["metrics"]["independent"]["2"]


@pytest.mark.parametrize("overrides,message", [
    (dict(methods=["random"]), "no random samples around"),
    (dict(methods=["swag"]), "unknown --methods swag"),
    (dict(corruptions=["frost"]), "unknown corruption frost for mnist1d"),
    (dict(intensities=["x"]), "--intensities are integers"),
    (dict(max_subsets=0), "--max_subsets must be positive"),
    (dict(subspace_dir="/nonexistent"), "is not a directory"),
])
def test_bad_flags(study, runs, tmp_path, overrides, message):
    root = study[0]
    values = {**dict(runs=[runs], subspace_dir=str(root / "subspace"), corruptions=["none"],
                     output_dir=str(tmp_path / "out")), **overrides}
    with flagsaver.flagsaver(**values):
        with pytest.raises(UserError, match=message):
            ensemble_binary.main(["ensemble.py"])
    assert not os.path.exists(tmp_path / "out")


def test_mock_cifar10_c_end_to_end(tmp_path):
    """Two small CIFAR-10 runs and their CIFAR-10-C evaluation, all from TFDS mock data."""
    with tfds.testing.mock_data(num_examples=40):
        clean = datasets.load("cifar10", validation_examples=8)
        for seed in range(2):
            config = TrainConfig(dataset="cifar10", model="small_cnn", seed=seed,
                                 validation_examples=8,
                                 **{**recipes.RECIPES["small_cnn"], "train_epochs": 2,
                                    "batch_size": 16})
            train(config, clean, str(tmp_path / "runs" / f"seed{seed}"))
        with flagsaver.flagsaver(runs=[str(tmp_path / "runs")], subspace_dir=None,
                                 corruptions=["frost", "gaussian_noise"],
                                 intensities=["5"], output_dir=str(tmp_path / "out")):
            ensemble_binary.main(["ensemble.py"])
    result = files.read_json(os.path.join(tmp_path / "out", "ensemble.json"))
    assert result["evaluation_sets"] == ["cifar10", "cifar10_corrupted/frost_5",
                                         "cifar10_corrupted/gaussian_noise_5"]
    pair = result["metrics"]["independent"]["2"]
    assert {"test/accuracy", "test/ece", "test/brier", "test/nll_frost_5",
            "test/accuracy_mean_corrupted"} <= set(pair)
    assert 0 <= pair["test/accuracy_mean_5"] <= 1
