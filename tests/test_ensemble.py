"""Ensembles and dataset shift: subsets and probability averaging against brute force,
the sets of functions of the shift study, uncertainty-baselines' names and both
corrupted means, the published comparison, finding subspace samples, and
baselines/ensemble.py end to end (MNIST-1D runs with their corrupted sets; CIFAR-10 /
CIFAR-10-C through TFDS mock data)."""

import itertools
import os
import shutil

import numpy as np
import pytest
import scipy.special
from absl import flags
from absl.testing import flagsaver
from conftest import load_binary, mock_tfds, run_in_process
from scipy.stats import entropy
from sklearn.metrics import accuracy_score, log_loss

from uncertainty import datasets
from uncertainty.analyses import shift
from uncertainty.core import ensemble, metrics, names, published, seeding
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import layout, predictions
from uncertainty.study import shift_report
from uncertainty.train.train_config import TrainConfig
from uncertainty.train.trainer import train

subspace_binary = load_binary("subspace")
ensemble_binary = load_binary("ensemble")

FLAGS = flags.FLAGS
FLAGS(["pytest"])


def softmax(logits):
    z = np.exp(logits - logits.max(-1, keepdims=True))
    return z / z.sum(-1, keepdims=True)


def brier_by_hand(probs, labels):
    return np.mean(((probs - np.eye(probs.shape[-1])[labels]) ** 2).sum(1))


def ece_by_hand(probs, labels, bins=15):
    confidence, correct = probs.max(1), probs.argmax(1) == labels
    total = 0.0
    for b in range(bins):
        inside = (confidence > b / bins) & (confidence <= (b + 1) / bins)
        if inside.any():
            total += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return total


def scores_by_hand(member_logits, labels):
    """Accuracy, NLL, Brier and ECE of the ensemble of averaged probabilities."""
    probs = np.mean([softmax(z) for z in member_logits], axis=0)
    return {"accuracy": accuracy_score(labels, probs.argmax(1)),
            "nll": log_loss(labels, probs, labels=range(probs.shape[1])),
            "brier": brier_by_hand(probs, labels), "ece": ece_by_hand(probs, labels)}


def js_by_hand(logits):
    """H(mean p) - mean H(p) per example with scipy's entropies, then averaged (the
    paper's log(p + 1e-5) differs from scipy's log p by O(C * 1e-5), the same in both
    terms to first order)."""
    probs = softmax(logits)
    return np.mean([entropy(probs[:, n].mean(0))
                    - np.mean([entropy(q) for q in probs[:, n]])
                    for n in range(probs.shape[1])])


def test_all_subsets_when_few():
    assert ensemble.subsets(5, 2) == list(itertools.combinations(range(5), 2))
    assert ensemble.subsets(4, 4) == [(0, 1, 2, 3)]
    assert len(ensemble.subsets(6, 3, max_subsets=20)) == 20  # C(6, 3) = 20: all


def test_random_subsets_are_distinct_seeded_capped_and_from_their_stream():
    drawn = ensemble.subsets(10, 4, max_subsets=15, seed=3)
    assert len(drawn) == 15 == len(set(drawn))
    assert all(len(set(s)) == 4 and all(0 <= i < 10 for i in s) for s in drawn)
    assert drawn == ensemble.subsets(10, 4, max_subsets=15, seed=3)
    assert drawn != ensemble.subsets(10, 4, max_subsets=15, seed=4)
    rng, expected = seeding.rng(3, "ensemble_subsets", 10, 4), set()
    while len(expected) < 15:
        expected.add(tuple(sorted(rng.choice(10, 4, replace=False).tolist())))
    assert drawn == sorted(expected)
    with pytest.raises(ValueError):
        ensemble.subsets(10, 4, max_subsets=0)


@pytest.fixture
def members():
    rng = np.random.default_rng(0)
    return 3 * rng.standard_normal((4, 200, 5)), rng.integers(0, 5, 200)


def test_by_size_matches_brute_force(members):
    logits, labels = members
    table = ensemble.by_size(logits, labels)
    assert sorted(table) == [1, 2, 3, 4]
    for size in (1, 2, 3, 4):
        subsets = list(itertools.combinations(range(4), size))
        for metric in ensemble.METRICS:
            expected = np.mean([scores_by_hand(logits[list(s)], labels)[metric]
                                for s in subsets])
            assert np.isclose(table[size][metric], expected), (size, metric)
    assert ensemble.by_size(logits, labels, max_size=2).keys() == {1, 2}


def test_subsets_scored_in_batches_equal_one_at_a_time_bit_for_bit(members, monkeypatch):
    """The subsets' ensembles are stacked into one numpy call per batch; a batch of
    one subset gives every value to the last bit (also the per-example means and the
    OOD metrics)."""
    logits, labels = members
    outside = np.random.default_rng(7).normal(0, 1, (4, 90, 5))

    def everything():
        return (ensemble.by_size(logits, labels), ensemble.example_means(logits, labels, 2),
                ensemble.ood_by_size(logits, outside, "other"))

    batched = everything()
    monkeypatch.setattr(ensemble, "SUBSET_BATCH_BYTES", 1)  # one subset per batch
    single = everything()
    assert batched[0] == single[0] and batched[2] == single[2]
    for name in batched[1]:
        np.testing.assert_array_equal(batched[1][name], single[1][name])
    # and each table value is the metric of its own, as the metrics compute it alone
    # from the ensemble's log-probabilities (equal but for float rounding: the subsets
    # average probabilities, `metrics.ensemble` takes a log-mean-exp)
    for name, metric in ensemble.METRICS.items():
        ensembles = [metrics.ensemble(logits[list(s)]) for s in ensemble.subsets(4, 3)]
        assert batched[0][3][name] == pytest.approx(
            float(np.mean([metric(z, labels) for z in ensembles])), rel=1e-13, abs=1e-15)


def test_member_by_member_sums_equal_numpy_on_the_stacked_members_bit_for_bit():
    """A subset's mean probability and its labels' log-mean-exp are summed member by
    member, without stacking the members: the same values as numpy's mean over the
    stacked axis and logsumexp, to the last bit, at every size (with log-probabilities
    far below float64's exp range in one member)."""
    rng = np.random.default_rng(3)
    logits, labels = 4 * rng.standard_normal((10, 300, 7)), rng.integers(0, 7, 300)
    logits[2, :20] = -1e4
    probs, at_label = ensemble._member_terms(logits, labels)
    for size in range(1, 11):
        index = np.array(ensemble.subsets(10, size, 40, seed=size))
        np.testing.assert_array_equal(ensemble._member_mean(probs, index),
                                      probs[index].mean(axis=1))
        log_mean = ensemble._member_log_mean_exp(at_label, index)
        np.testing.assert_array_equal(
            log_mean, metrics.logsumexp(at_label[index], axis=1) - np.log(size))
        np.testing.assert_allclose(  # and scipy's, up to float rounding
            log_mean, scipy.special.logsumexp(at_label[index], axis=1) - np.log(size),
            rtol=1e-12)


def test_by_size_with_max_subsets_scores_only_the_drawn_subsets():
    rng = np.random.default_rng(2)
    logits, labels = 2 * rng.standard_normal((6, 150, 4)), rng.integers(0, 4, 150)
    table = ensemble.by_size(logits, labels, max_subsets=4, seed=5)
    for size in (2, 3, 4):
        drawn = ensemble.subsets(6, size, 4, seed=5)
        assert len(drawn) == 4
        assert np.isclose(table[size]["nll"], np.mean(
            [scores_by_hand(logits[list(s)], labels)["nll"] for s in drawn]))
    assert np.isclose(table[6]["accuracy"], scores_by_hand(logits, labels)["accuracy"])


def test_score_builds_every_set_of_functions():
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 4, 60)
    draw = lambda *shape: 2 * rng.standard_normal((*shape, 60, 4))  # noqa: E731
    independent, trajectory_ = draw(3), draw(3)
    samples = {"dropout": [draw(2) for _ in range(3)],
               "weight_average": [draw(1) for _ in range(3)]}
    tables, js, _ = ensemble.score(independent, trajectory_, samples, labels)

    # One run's samples ensembled, the metric averaged over runs.
    assert np.isclose(tables["dropout"][2]["accuracy"], np.mean(
        [scores_by_hand(s, labels)["accuracy"] for s in samples["dropout"]]))
    # Ensembles of ensembled members: all three runs' samples, probabilities averaged
    # within each run and then across runs.
    members = np.stack([np.log(softmax(s).mean(0)) for s in samples["dropout"]])
    assert np.isclose(tables["independent+dropout"][3]["nll"],
                      scores_by_hand(members, labels)["nll"])
    assert tables["weight_average"].keys() == {1}
    assert np.isclose(tables["independent+weight_average"][2]["accuracy"], np.mean(
        [scores_by_hand(np.stack([samples["weight_average"][i][0],
                                  samples["weight_average"][j][0]]), labels)["accuracy"]
         for i, j in itertools.combinations(range(3), 2)]))
    assert np.isclose(js["independent"], js_by_hand(independent), atol=1e-4)
    assert np.isclose(js["trajectory"], js_by_hand(trajectory_), atol=1e-4)
    assert np.isclose(js["dropout"], np.mean([js_by_hand(s) for s in samples["dropout"]]),
                      atol=1e-4)
    assert "weight_average" not in js  # one function has no divergence


def test_metric_names_and_both_corrupted_means_by_hand():
    assert names.metric_key("nll") == "test/negative_log_likelihood"
    assert names.metric_key("accuracy") == "test/accuracy"
    assert names.metric_key("nll", "frost", 3) == "test/nll_frost_3"
    # frost and gaussian_noise are standard types; shift (MNIST-1D's) is not.
    values = {"test/negative_log_likelihood": 0.3,
              "test/nll_frost_1": 1.0, "test/nll_gaussian_noise_1": 2.0,
              "test/nll_shift_1": 6.0, "test/nll_frost_3": 3.0,
              "test/nll_gaussian_noise_3": 5.0, "test/nll_shift_3": 10.0}
    kinds = ["frost", "shift", "gaussian_noise"]
    assert names.mean_types(kinds) == {"standard": ["frost", "gaussian_noise"],
                                       "all": kinds}
    means = names.aggregate_corrupted(values, "nll", kinds, [1, 3])
    assert means == {"test/nll_mean_1": 1.5, "test/nll_mean_3": 4.0,
                     "test/nll_mean_corrupted": 2.75,
                     "test/nll_mean_all_1": 3.0, "test/nll_mean_all_3": 6.0,
                     "test/nll_mean_corrupted_all": 4.5}
    values.update(means)
    assert names.at_intensity(values, "nll", 0) == 0.3
    assert names.at_intensity(values, "nll", 3) == 6.0
    assert names.at_intensity(values, "nll", 3, "standard") == 4.0
    only = {k: v for k, v in values.items() if "shift" in k}
    assert names.aggregate_corrupted(only, "nll", ["shift"], [1, 3]) == {
        "test/nll_mean_all_1": 6.0, "test/nll_mean_all_3": 10.0,
        "test/nll_mean_corrupted_all": 8.0}  # no standard type: no standard mean
    # 15 of the 19 types of CIFAR-10-C and of ImageNet-C, under either's names
    for family in ("cifar10_corrupted", "imagenet2012_corrupted"):
        kinds = set(datasets.corruption_types(family))
        assert len(kinds) == 19 and len(kinds & set(names.STANDARD_CORRUPTIONS)) == 15


def test_evaluation_sets():
    assert datasets.shift_sets("mnist1d", ["shift", "contrast"], [0, 4, 2]) == [
        (0, None, "mnist1d"), (2, "shift", "mnist1d_corrupted/shift_2"),
        (2, "contrast", "mnist1d_corrupted/contrast_2"),
        (4, "shift", "mnist1d_corrupted/shift_4"),
        (4, "contrast", "mnist1d_corrupted/contrast_4")]
    assert len(datasets.shift_sets("cifar10", None, [1, 2, 3, 4, 5])) == 1 + 19 * 5
    assert datasets.shift_sets("cifar100", (), [1]) == [(0, None, "cifar100")]
    with pytest.raises(UserError, match="unknown corruption frost for mnist1d"):
        datasets.shift_sets("mnist1d", ("frost",), [1])
    with pytest.raises(UserError, match="intensities are 1..5"):
        datasets.shift_sets("mnist1d", None, [6])


def test_published_lookup_reads_the_right_names():
    values = {"independent": {
        "1": {"test/negative_log_likelihood": 0.4},
        "2": {"test/accuracy_mean_all_5": 0.56, "test/accuracy_mean_5": 0.57},
        "4": {"test/nll_mean_corrupted": 0.8, "test/nll_mean_corrupted_all": 0.9},
        "all": {"test/js_divergence": 0.27, "test/js_divergence_mean_all_5": 0.37}}}

    result = {"metrics": values, "method": "deterministic",
              "subspace_samples_per_run": {"mc_dropout": 10}, "runs": ["a", "b"],
              "trajectory": {"epochs": [9, 10]}}

    def one(**match):
        [entry] = published.entries(**match)
        return shift_report.lookup(result, entry)[:2]

    assert one(source="fort2019", method="independent", ensemble_size=2, intensity=5,
               metric="accuracy") == (0.56, "test/accuracy_mean_all_5")
    assert one(source="uncertainty_baselines", dataset="cifar10", ensemble_size=4,
               intensity="mean_corrupted", metric="nll") == (0.8,
                                                             "test/nll_mean_corrupted")
    assert one(source="uncertainty_baselines", method="independent", ensemble_size=1,
               intensity=0, metric="nll") == (0.4, "test/negative_log_likelihood")
    assert one(source="uncertainty_baselines", method="variational", ensemble_size=1,
               intensity=0, metric="nll") == (None, "test/negative_log_likelihood")
    assert one(method="independent", intensity=5, metric="js_divergence") == (
        0.37, "test/js_divergence_mean_all_5")
    assert one(method="trajectory", intensity=0, metric="js_divergence") == (
        None, "test/js_divergence")


def test_published_comparison_flags_a_different_quantity():
    """UB's MC dropout predictive averages 30 passes and its corrupted VI numbers 5
    draws: a row is flagged when ours averages another number, and UB's deterministic
    rows are flagged against a variational study's posterior means."""
    def rows(method, samples):
        result = {"metrics": {}, "method": method, "model": "small_cnn",
                  "dataset": "fashion_mnist", "subspace_samples_per_run": samples,
                  "runs": ["a", "b", "c"], "trajectory": {"epochs": [8, 9, 10]}}
        return {(r["source"], r["method"], r["intensity"], r["metric"]): r
                for r in shift_report.compare_published(result)}

    found = rows("deterministic", {"mc_dropout": 30})
    ub = "uncertainty_baselines"
    assert found[ub, "independent+mc_dropout", 0, "nll"]["same_quantity"]
    assert found[ub, "independent", 0, "nll"]["same_quantity"]
    assert found[ub, "variational", 0, "nll"]["same_quantity"]  # one draw, both
    corrupted = found[ub, "variational", "mean_corrupted", "nll"]
    assert not corrupted["same_quantity"]
    assert corrupted["quantity_differs"] == {"draws": [5, 1]}
    # the paper's JS: 5 runs, 10 checkpoints, 30 samples; ours: sets of 3
    fort = "fort2019"
    assert found[fort, "independent", 0, "js_divergence"]["quantity_differs"] == {
        "functions": [5, 3]}
    assert found[fort, "trajectory", 5, "js_divergence"]["quantity_differs"] == {
        "functions": [10, 3]}
    assert found[fort, "random", 0, "js_divergence"]["quantity_differs"] == {
        "functions": [30, 3]}
    found = rows("variational", {"mc_dropout": 10, "variational": 10})
    assert found[ub, "independent+mc_dropout", 0, "nll"]["quantity_differs"] == {
        "draws": [30, 10]}
    assert found[ub, "independent", 0, "nll"]["quantity_differs"] == {
        "networks": ["deterministic", "posterior means"]}
    table = published.format_table(list(found.values()))
    assert "QUANTITY DIFFERS on rows marked *" in table
    assert "(draws: 30 vs 10)" in table and "(networks: deterministic vs posterior means)" \
        in table


def test_published_comparison_states_a_different_setting():
    rows = published.compare(
        lambda e: (0.5 if e["metric"] == "accuracy" else None, "name", {}), "small_cnn",
        "fashion_mnist")
    assert rows and not any(r["same_setting"] for r in rows)
    assert {r["metric"] for r in rows} == {"accuracy", "brier", "nll", "ece",
                                           "js_divergence"}
    assert all((r["ours"] == 0.5) == (r["metric"] == "accuracy") for r in rows)
    table = published.format_table(rows)
    assert table.startswith("SETTING DIFFERS: ours is small_cnn on fashion_mnist")
    assert "0.769-0.773" in table  # the 5-ensemble's published clean accuracy
    same = published.compare(lambda e: (None, "name", {}), "medium_cnn", "cifar10")
    assert any(r["same_setting"] for r in same)


def fake_run(path, seed):
    files.write_json(os.path.join(path, "config.json"),
                     {"dataset": "mnist1d", "model": "cnn1d", "seed": seed})
    return str(path)


def fake_subspace(path, run, dataset="mnist1d", methods=("dropout",), params=None):
    identity = layout.identity(run)
    samples = [{"method": m, "key": f"{m}{i}", "params": params or {"run": identity}}
               for m in methods for i in range(2)]
    files.write_json(os.path.join(path, "subspace.json"),
                     {"base_run": run, "dataset": dataset, "samples": samples})


def test_find_samples_by_run_identity(tmp_path):
    runs = [fake_run(tmp_path / "runs" / f"seed{s}", s) for s in range(2)]
    moved = fake_run(tmp_path / "elsewhere" / "seed0", 0)  # same identity as runs[0]
    fake_subspace(tmp_path / "sub" / "a", moved, methods=("dropout", "weight_average"))
    fake_subspace(tmp_path / "sub" / "b", runs[1])
    fake_subspace(tmp_path / "sub" / "c", fake_run(tmp_path / "other", 7))  # skipped
    found = shift.find_samples(str(tmp_path / "sub"), runs, "mnist1d")
    assert {m: {r: len(s) for r, s in by_run.items()} for m, by_run in found.items()} == {
        "dropout": {runs[0]: 2, runs[1]: 2}, "weight_average": {runs[0]: 2}}
    assert shift.choose_methods(found, runs, ("dropout",)) == ["dropout"]
    with pytest.raises(UserError, match="no weight_average samples around .*seed1"):
        shift.choose_methods(found, runs)  # default: every method found
    with pytest.raises(UserError, match="unknown --methods swag"):
        shift.choose_methods(found, runs, ("swag",))
    fake_subspace(tmp_path / "sub" / "d", runs[1])
    with pytest.raises(UserError, match="both hold dropout samples around"):
        shift.find_samples(str(tmp_path / "sub"), runs, "mnist1d")
    shutil.rmtree(tmp_path / "sub" / "d")
    with pytest.raises(UserError, match="sampled on mnist1d, the runs are on cifar10"):
        shift.find_samples(str(tmp_path / "sub"), runs, "cifar10")
    assert shift.find_samples(None, runs, "mnist1d") == {}


# --- baselines/ensemble.py end to end -------------------------------------------------

STUDY = dict(corruptions=["shift", "gaussian_noise"], intensities=["1", "3"])


@pytest.fixture(scope="module")
def study(runs, tmp_path_factory):
    """subspace.py around each MNIST-1D run, then ensemble.py on two corruptions."""
    root = tmp_path_factory.mktemp("study")
    for seed in range(3):
        with flagsaver.flagsaver(base_run=os.path.join(runs, f"seed{seed}"),
                                 methods=["dropout", "weight_average"], num_samples=2,
                                 num_checkpoints=3, dropout_scale=0.05,
                                 output_dir=str(root / "subspace" / f"seed{seed}")):
            subspace_binary.main(["subspace.py"])
    out = str(root / "ensemble")
    with flagsaver.flagsaver(runs=[runs], subspace_dir=str(root / "subspace"),
                             compare_published=True, output_dir=out, **STUDY):
        ensemble_binary.main(["ensemble.py"])
    return root, out, files.read_json(os.path.join(out, "ensemble.json"))


def cached(run, data, key):
    with np.load(predictions.RunPredictions(run).cache_path(data, "test", key)) as saved:
        return saved["logits"]


@pytest.mark.slow
def test_study_outputs_and_numbers(study):
    _, out, result = study
    assert {"ensemble.json", "published.txt", "shift_accuracy_brier.png",
            "shift_js_divergence.png", "ensemble_size.png"} <= set(os.listdir(out))
    assert result["intensities"] == [0, 1, 3]
    assert result["batchnorm"] == "checkpoint"  # cnn1d has no batch norm
    assert result["corruption_means"]["standard"]["types"] == ["gaussian_noise"]
    assert result["corruption_means"]["all"]["types"] == ["shift", "gaussian_noise"]
    assert set(result["metrics"]) == {
        "independent", "trajectory", "dropout", "weight_average", "independent+dropout",
        "independent+weight_average"}
    # Independently: the cached final-checkpoint logits, scored by hand and sklearn.
    runs = result["runs"]
    shifted = datasets.load("mnist1d_corrupted/shift_3")
    labels = shifted.labels("test")
    finals = np.stack([cached(r, shifted, "epoch_004") for r in runs])
    full = result["metrics"]["independent"]["3"]
    single = result["metrics"]["independent"]["1"]
    expected = scores_by_hand(finals, labels)
    for metric in ensemble.METRICS:
        assert np.isclose(full[f"test/{metric}_shift_3"], expected[metric]), metric
    assert np.isclose(single["test/accuracy_shift_3"], np.mean(
        [accuracy_score(labels, f.argmax(1)) for f in finals]))
    assert full["test/accuracy_mean_3"] == full["test/accuracy_gaussian_noise_3"]
    assert np.isclose(full["test/accuracy_mean_all_3"], np.mean(
        [full["test/accuracy_shift_3"], full["test/accuracy_gaussian_noise_3"]]))
    assert np.isclose(full["test/accuracy_mean_corrupted_all"], np.mean(
        [full["test/accuracy_mean_all_1"], full["test/accuracy_mean_all_3"]]))
    assert {"test/accuracy", "test/negative_log_likelihood", "test/ece",
            "test/brier"} <= set(full)
    js = result["metrics"]["independent"]["all"]
    assert np.isclose(js["test/js_divergence_shift_3"], js_by_hand(finals), atol=1e-4)
    assert "test/js_divergence_mean_corrupted" in js
    assert result["trajectory"] == {"run": runs[0], "epochs": [2, 3, 4]}
    assert result["subspace_samples_per_run"] == {"dropout": 2, "weight_average": 1}
    table = open(os.path.join(out, "published.txt")).read()
    assert table.startswith("SETTING DIFFERS: ours is cnn1d on mnist1d")
    [row] = [r for r in result["published_comparison"] if r["source"] == "fort2019"
             and r["intensity"] == 0 and r["metric"] == "accuracy"
             and r["ensemble_size"] == 1]
    assert row["ours"] == result["metrics"]["independent"]["1"]["test/accuracy"]


@pytest.mark.slow
def test_study_samples_are_ensembled_in_probability(study):
    root, _, result = study
    runs = result["runs"]
    clean = datasets.load("mnist1d")
    labels = clean.labels("test")
    samples = shift.find_samples(str(root / "subspace"), runs, "mnist1d")
    members = [[cached(r, clean, s["key"]) for s in samples["dropout"][r]] for r in runs]
    alone = result["metrics"]["dropout"]["2"]["test/negative_log_likelihood"]
    assert np.isclose(alone, np.mean([scores_by_hand(np.stack(m), labels)["nll"]
                                      for m in members]))
    averaged = np.stack([np.log(np.mean([softmax(z) for z in m], axis=0)) for m in members])
    assert np.isclose(result["metrics"]["independent+dropout"]["3"]["test/accuracy"],
                      scores_by_hand(averaged, labels)["accuracy"])


@pytest.mark.slow
def test_study_predicts_nothing_twice(study, runs, tmp_path, monkeypatch):
    root, _, first = study

    def no_model(*args, **kwargs):
        raise AssertionError("a prediction was computed again")

    monkeypatch.setattr(predictions.RunPredictions, "_get_model", no_model)
    with flagsaver.flagsaver(runs=[runs], subspace_dir=str(root / "subspace"),
                             max_ensemble_size=2, output_dir=str(tmp_path), **STUDY):
        ensemble_binary.main(["ensemble.py"])
    again = files.read_json(os.path.join(tmp_path, "ensemble.json"))
    assert again["predictions"]["computed"] == 0
    assert again["metrics"]["independent"]["2"] == first["metrics"]["independent"]["2"]


@pytest.mark.slow
def test_sets_scored_one_at_a_time_give_the_same_bits(study, runs, tmp_path, monkeypatch):
    """The study scores evaluation sets on SCORING_THREADS threads and adds them in the
    sets' order: scored on one thread, every number and per-example array is the same
    to the last bit (from the caches: only the scoring runs again)."""
    root, out, first = study
    monkeypatch.setattr(shift, "SCORING_THREADS", 1)
    with flagsaver.flagsaver(runs=[runs], subspace_dir=str(root / "subspace"),
                             compare_published=True, output_dir=str(tmp_path), **STUDY):
        ensemble_binary.main(["ensemble.py"])
    again = files.read_json(os.path.join(tmp_path, "ensemble.json"))
    assert again["predictions"]["computed"] == 0
    assert again["metrics"] == first["metrics"] and again["ood"] == first["ood"]
    with (np.load(os.path.join(out, "per_example.npz")) as threaded,
          np.load(tmp_path / "per_example.npz") as alone):
        assert list(threaded) == list(alone)
        assert list(threaded)[0].startswith("ood/")  # the detection's values first
        for key in threaded:
            np.testing.assert_array_equal(threaded[key], alone[key], err_msg=key)


@pytest.mark.slow
def test_binary_honours_max_subsets(study, runs, tmp_path):
    root, _, first = study
    with flagsaver.flagsaver(runs=[runs], subspace_dir=str(root / "subspace"),
                             methods=["dropout"], max_subsets=1, seed=4,
                             corruptions=["none"], output_dir=str(tmp_path)):
        ensemble_binary.main(["ensemble.py"])
    result = files.read_json(os.path.join(tmp_path, "ensemble.json"))
    assert result["max_subsets"] == 1 and result["evaluation_sets"] == ["mnist1d"]
    assert set(result["metrics"]) == {"independent", "trajectory", "dropout",
                                      "independent+dropout"}
    clean = datasets.load("mnist1d")
    finals = np.stack([cached(r, clean, "epoch_004") for r in result["runs"]])
    [subset] = ensemble.subsets(3, 2, 1, seed=4)
    pair = result["metrics"]["independent"]["2"]
    assert np.isclose(pair["test/negative_log_likelihood"],
                      scores_by_hand(finals[list(subset)], clean.labels("test"))["nll"])
    assert result["metrics"]["independent"]["3"] == {
        k: v for k, v in first["metrics"]["independent"]["3"].items()
        if k in result["metrics"]["independent"]["3"]}  # one subset of 3: unchanged


@pytest.mark.parametrize("overrides,message", [
    (dict(methods=["random"]), "no random samples around"),
    (dict(methods=["swag"]), "unknown --methods swag"),
    (dict(corruptions=["frost"]), "unknown corruption frost for mnist1d"),
    (dict(corruptions=["all", "shift"]), "--corruptions is all, none, or a list"),
    (dict(intensities=["x"]), "--intensities are integers"),
    (dict(intensities=["6"]), "--intensities are integers 1..5, got 6"),
    (dict(max_subsets=0), "--max_subsets must be positive"),
    (dict(subspace_dir="/nonexistent"), "is not a directory"),
    (dict(runs=None), "--runs is required"),
])
@pytest.mark.slow
def test_bad_flags(study, runs, tmp_path, overrides, message):
    root = study[0]
    values = {**dict(runs=[runs], subspace_dir=str(root / "subspace"), corruptions=["none"],
                     output_dir=str(tmp_path / "out")), **overrides}
    with flagsaver.flagsaver(**values):
        with pytest.raises(UserError, match=message):
            ensemble_binary.main(["ensemble.py"])
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_mock_cifar10_c_end_to_end(tmp_path):
    """Two small CIFAR-10 ResNet-20 runs (batch norm) and their CIFAR-10-C evaluation,
    all from TFDS mock data; every function with re-estimated statistics."""
    with mock_tfds(40):
        clean = datasets.load("cifar10", validation_examples=8)
        for seed in range(2):
            config = TrainConfig.from_recipe("cifar10", "resnet20_v1", seed,
                                             validation_examples=8, train_epochs=2,
                                             batch_size=16)
            train(config, clean, str(tmp_path / "runs" / f"seed{seed}"))
        with flagsaver.flagsaver(runs=[str(tmp_path / "runs")], subspace_dir=None,
                                 corruptions=["frost", "gaussian_blur"],
                                 intensities=["5"], output_dir=str(tmp_path / "out")):
            ensemble_binary.main(["ensemble.py"])
    result = files.read_json(os.path.join(tmp_path / "out", "ensemble.json"))
    assert result["evaluation_sets"] == ["cifar10", "cifar10_corrupted/frost_5",
                                         "cifar10_corrupted/gaussian_blur_5"]
    assert result["batchnorm"] == "reestimated"
    pair = result["metrics"]["independent"]["2"]
    assert {"test/accuracy", "test/negative_log_likelihood", "test/ece", "test/brier",
            "test/nll_frost_5", "test/accuracy_mean_corrupted",
            "test/accuracy_mean_corrupted_all"} <= set(pair)
    assert pair["test/accuracy_mean_5"] == pair["test/accuracy_frost_5"]  # standard only
    assert 0 <= pair["test/accuracy_mean_all_5"] <= 1
    cache = tmp_path / "runs" / "seed0" / "predictions" / "cifar10_corrupted__frost_5"
    assert sorted(os.listdir(cache / "test")) == ["epoch_001_bn_reestimated.npz",
                                                  "epoch_002_bn_reestimated.npz"]
    # CIFAR-10 -> SVHN and CIFAR-100 detection by every set, with the JS divergence
    assert sorted(result["ood"]) == ["cifar100", "svhn_cropped"]
    found = result["ood"]["svhn_cropped"]
    assert found["dataset"] == "svhn_cropped" and found["num_examples"] == 40
    assert {"ood/svhn_cropped_auroc", "ood/svhn_cropped_auprc",
            "ood/svhn_cropped_(1-fpr)@95tpr", "ood/svhn_cropped_entropy_auprc_in",
            "ood/svhn_cropped_mutual_information_fpr_at_95_in_recall"} <= set(
                found["metrics"]["independent"]["2"])
    assert set(found["js_divergence"]["independent"]) == {"in_distribution",
                                                          "out_of_distribution"}
    table = (tmp_path / "out" / "ood.txt").read_text()
    assert table.startswith("cifar10 vs svhn_cropped (out of distribution)")
    assert "\ncifar10 vs cifar100 (out of distribution)\n" in table
    assert set(result["summary"]["ood"]) == {"svhn_cropped", "cifar100"}


@pytest.mark.slow
def test_binary_error_is_one_line(runs, tmp_path, capfd):
    code, lines = run_in_process(capfd, "ensemble", f"--runs={runs}", "--max_subsets=0",
                                 f"--output_dir={tmp_path / 'out'}")
    assert code == 2
    assert lines == ["ensemble.py: error: --max_subsets must be positive, got 0"]


def test_an_ensemble_confidently_wrong_beyond_float64_costs_its_true_nll():
    """Members whose label probability underflows float64 (e^-800): the ensemble's
    probabilities are their mean, but its label's NLL is the log-mean-exp of their
    log-probabilities, finite and exact: -log((e^-800 + e^-900) / 2)."""
    logits = np.zeros((2, 1, 3))
    logits[0, 0] = [800.0, 0.0, 0.0]   # label 2 at log-probability ~ -800
    logits[1, 0] = [900.0, 0.0, 0.0]   # ~ -900
    table = ensemble.by_size(logits, np.array([2]))
    assert table[2]["nll"] == pytest.approx(-(np.logaddexp(-800.0, -900.0) - np.log(2)),
                                            rel=1e-12)
    assert table[2]["accuracy"] == 0.0 and np.isfinite(table[2]["brier"])
