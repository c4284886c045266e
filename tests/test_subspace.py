"""Subspace samplers (statistical checks), the plane's limit curves, batch-norm
re-estimation, and baselines/subspace.py on real MNIST-1D runs."""

import dataclasses
import os

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from conftest import load_binary
from sklearn.decomposition import PCA

from uncertainty import models
from uncertainty.core import diversity
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, predictions
from uncertainty.samplers import catalog, subspace
from uncertainty.train.train_config import TrainConfig
from uncertainty.train.trainer import train

subspace_binary = load_binary("subspace")

FLAGS = flags.FLAGS
FLAGS(["pytest"])


@pytest.fixture(scope="module")
def space():
    rng = np.random.default_rng(0)
    stds = np.linspace(0.1, 2.0, 3000)
    checkpoints = (3.0 + rng.standard_normal((10, 3000)) * stds).astype(np.float32)
    return subspace.Subspace(solution=checkpoints[-1], checkpoints=checkpoints,
                             epochs=tuple(range(1, 11)))


def draws(space, method, scale, n, **kwargs):
    spec = catalog.SamplerSpec(method, **kwargs)
    return np.stack([subspace.sample(space, spec, scale, np.random.default_rng([7, i]))
                     for i in range(n)])


# Draws of a Gaussian sampler (each ~20 ms, TFP's per-call cost). A sample standard
# deviation of N draws is off by ~1/sqrt(2N) = 2.9% relative; the bounds below are >5
# such errors for one of the 3,000 weights or 4 axes, or the error of a mean over them.
N = 600


def test_diagonal_gaussian_matches_the_fitted_moments(space):
    x = draws(space, "diagonal_gaussian", 2.0, N)
    target_std = 2.0 * space.checkpoints.std(axis=0)
    z = (x.mean(0) - space.checkpoints.mean(0)) / (target_std / np.sqrt(N))
    assert np.abs(z).max() < 5.5 and abs(z.mean()) < 0.1  # standard errors
    ratio = x.std(0) / target_std
    assert abs(np.median(ratio) - 1) < 0.01 and np.abs(ratio - 1).max() < 0.16


@pytest.mark.parametrize("scaling", ["unit", "swag"])
def test_low_rank_samples_lie_in_the_pca_span(space, scaling):
    x = draws(space, "low_rank_gaussian", 1.5, N, rank=4, low_rank_scaling=scaling)
    reference = PCA(n_components=4).fit(space.checkpoints.astype(np.float64))
    axes = reference.components_  # unit norm, as sklearn (and the notebook) give them
    centred = x - space.checkpoints.mean(0)
    coefficients = centred @ axes.T
    assert np.abs(centred - coefficients @ axes).max() < 1e-3  # nothing outside the span
    expected = 1.5 * (np.sqrt(reference.explained_variance_) if scaling == "swag"
                      else np.ones(4))
    np.testing.assert_allclose(coefficients.std(0), expected, rtol=0.16)
    np.testing.assert_allclose(np.abs(coefficients.mean(0)), 0, atol=5 * expected.max() /
                               np.sqrt(N))


def test_dropout_masks_have_the_rate_and_rescaling(space):
    x = draws(space, "dropout", 0.3, 200)
    dropped = x == 0
    assert abs(dropped.mean() - 0.3) < 0.005
    kept = np.broadcast_to(space.solution, x.shape)[~dropped]
    np.testing.assert_allclose(x[~dropped], kept / 0.7, rtol=1e-6)


def test_random_samples_have_the_intended_norm_and_no_preferred_direction(space):
    x = draws(space, "random", 5.0, 400)
    offsets = x - space.solution
    np.testing.assert_allclose(np.linalg.norm(offsets, axis=1), 5.0, rtol=1e-5)
    mean_direction = (offsets / 5.0).mean(0)
    assert np.linalg.norm(mean_direction) < 3 / np.sqrt(400)  # ~1/sqrt(n) if isotropic


def test_uniform_scales_and_weight_average(space):
    rng = np.random.default_rng(1)
    uniform = catalog.SamplerSpec("random", 70.0, uniform=True)
    scales = [uniform.draw_scale(rng) for _ in range(2000)]
    assert 0 <= min(scales) and max(scales) <= 70 and abs(np.mean(scales) - 35) < 1.5
    assert catalog.SamplerSpec("low_rank_gaussian", 6.0).draw_scale(rng) == 6.0
    average = subspace.sample(space, catalog.SamplerSpec("weight_average"), 0, rng)
    np.testing.assert_allclose(average, space.checkpoints.mean(0), rtol=1e-6)


@pytest.mark.parametrize("method", catalog.PAPER_METHODS + ("variational",))
def test_same_seed_same_sample(space, method):
    spec = catalog.SamplerSpec(method)
    if method == "variational":  # a posterior's std around the solution
        space = dataclasses.replace(space, training_method="variational",
                                    posterior_std=np.full_like(space.solution, 0.1))

    def draw(*seed):
        return subspace.sample(space, spec, 0.2, np.random.default_rng(seed))

    np.testing.assert_array_equal(draw(3, 1), draw(3, 1))
    if method != "weight_average":
        assert not np.array_equal(draw(3, 1), draw(3, 2))


def test_low_rank_gaussian_log_prob_is_finite_and_correct(space):
    for scaling in catalog.LOW_RANK_SCALINGS:
        gaussian = subspace.low_rank_gaussian(space, 3, 1.5, scaling)
        z = np.random.default_rng(0).normal(size=(4, 3))
        widths = 1.5 * (np.ones(3) if scaling == "unit" else
                        np.linalg.svd(space.checkpoints - space.checkpoints.mean(0),
                                      compute_uv=False)[:3] / 3.0)  # sqrt(K - 1) = 3
        expected = (-0.5 * np.sum((z / widths) ** 2, axis=1) - np.sum(np.log(widths))
                    - 1.5 * np.log(2 * np.pi))
        np.testing.assert_allclose(gaussian.latent.log_prob(z).numpy(), expected, rtol=1e-6)
        theta = gaussian.sample(np.array([1, 2], np.int32))
        coordinates = (theta.astype(np.float64) - gaussian.mean) @ gaussian.axes.T
        assert np.isfinite(gaussian.latent.log_prob(coordinates).numpy())


def test_samples_around_different_runs_use_different_streams(space, tmp_path):
    """Same user seed and index, two base runs: the perturbations must differ."""
    import dataclasses

    other = dataclasses.replace(space, run="another run")
    for method in ("random", "dropout", "diagonal_gaussian", "low_rank_gaussian"):
        spec = catalog.SamplerSpec(method, 0.2)
        params = {"method": method, "scale": 0.2, "seed": 0, "index": 0, "attempt": 0,
                  "epochs": list(space.epochs), "rank": 5, "low_rank_scaling": "unit"}
        a = subspace.regenerate(space, {**params, "run": space.run}) - space.mean
        b = subspace.regenerate(other, {**params, "run": other.run}) - space.mean
        assert not np.allclose(a, b), spec
        with pytest.raises(UserError, match="around another run"):
            subspace.regenerate(other, {**params, "run": space.run})


def test_limit_curves_against_a_monte_carlo_simulation():
    """The analytic curves against random classifiers that share no code with them:
    lower = the base with a random fraction of labels redrawn uniformly, upper = a
    classifier right with probability a independently of the base."""
    rng = np.random.default_rng(0)
    n, classes, base_accuracy = 400_000, 10, 0.85
    labels = rng.integers(0, classes, n)
    wrong = (labels + rng.integers(1, classes, n)) % classes
    base = np.where(rng.random(n) < base_accuracy, labels, wrong)
    measured_base = np.mean(base == labels)
    for q in (0.1, 0.4, 0.8):
        noisy = np.where(rng.random(n) < q, rng.integers(0, classes, n), base)
        a = np.mean(noisy == labels)
        d = np.mean(noisy != base)
        assert np.isclose(diversity.lower_limit(a, measured_base, classes), d / (1 - a),
                          rtol=0.02)
    for a_target in (0.3, 0.6, 0.8):
        right = rng.random(n) < a_target
        other = np.where(right, labels, (labels + rng.integers(1, classes, n)) % classes)
        a = np.mean(other == labels)
        d = np.mean(other != base)
        assert np.isclose(diversity.upper_limit(a, measured_base, classes), d / (1 - a),
                          rtol=0.02)


def test_limit_curves_hand_computed():
    # a* = 0.9, a = 0.5, C = 10: upper d = 0.45 + 0.05 + 0.1 * 0.5 * 8/9 = 0.54444,
    # lower d = 0.4 / (0.9 - 0.1/9) = 0.45; both divided by 1 - a = 0.5.
    assert np.isclose(diversity.upper_limit(0.5, 0.9, 10), 0.544444444 / 0.5)
    assert np.isclose(diversity.lower_limit(0.5, 0.9, 10), 0.9)
    # At the base accuracy the lower limit is 0; at chance with C = 2 and a* = 0.8:
    # upper d = 0.8 * 0.5 + 0.5 * 0.2 + 0 = 0.5 -> 1.0; lower d = 0.3 / 0.6 -> 1.0.
    assert diversity.lower_limit(0.9, 0.9, 10) == 0.0
    assert np.isclose(diversity.upper_limit(0.5, 0.8, 2), 1.0)
    assert np.isclose(diversity.lower_limit(0.5, 0.8, 2), 1.0)
    grid = diversity.curves(0.9, 10, 0.1, points=5)
    np.testing.assert_allclose(grid["upper"], diversity.upper_limit(
        np.array(grid["accuracy"]), 0.9, 10))


@pytest.mark.slow
def test_too_few_checkpoints_is_a_user_error(mnist1d_runs):
    with pytest.raises(UserError, match="has 4 epoch checkpoints but the subspace needs"):
        subspace.fit(os.path.join(mnist1d_runs, "seed0"), 10)


@pytest.mark.slow
def test_batchnorm_statistics_are_reestimated(tmp_path, fashion):
    config = TrainConfig.from_recipe("fashion_mnist", "resnet20_v1", 0, train_epochs=1,
                                     augment=False, train_examples=512)
    run = str(tmp_path / "resnet")
    fashion = fashion.head("test", 200)  # the examples predicted
    train(config, fashion, run)
    small = fashion.head("train", 1500)  # three batches of 500: a running average
    predictor = predictions.RunPredictions(run)
    vector = 1.1 * checkpoints.load_weights(run)
    stale = predictor.vector(small, "test", "stale", vector, {"scale": 1.1})
    fresh = predictor.vector(small, "test", "fresh", vector, {"scale": 1.1}, bn_data=small)
    assert not np.allclose(stale, fresh)
    model = predictor._get_model(small)  # holds the fresh statistics now
    stem = model.get_layer("stem_bn")
    # Independently: the stem conv's outputs over the same 500 training images.
    conv = models.build("resnet20_v1", fashion.input_shape, 10)
    conv.set_weights(checkpoints.with_vector(run, vector))
    batches = [images for images, _ in small.train_pipeline(
        500, 3, 0, 0, with_replacement=False)]
    features = [conv.get_layer("stem_conv")(conv.get_layer("normalizer")(images)).numpy()
                for images in batches]
    np.testing.assert_allclose(stem.moving_mean.numpy(),
                               np.mean([f.mean((0, 1, 2)) for f in features], axis=0),
                               rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(stem.moving_variance.numpy(),
                               np.mean([f.var((0, 1, 2)) for f in features], axis=0),
                               rtol=1e-3, atol=1e-5)


def cached_logits(predictor, data, split, key):
    with np.load(predictor.cache_path(data, split, key)) as saved:
        return saved["logits"]


@pytest.fixture(scope="module")
def plane(runs, tmp_path_factory):
    out = str(tmp_path_factory.mktemp("plane"))
    with flagsaver.flagsaver(base_run=os.path.join(runs, "seed0"), other_runs=[runs],
                             num_samples=3, num_checkpoints=3, rank=2, split="test",
                             output_dir=out, save_test_predictions=True, tsne=True,
                             random_scale=20.0, accept_threshold=0.5):
        subspace_binary.main(["subspace.py"])
    return out, files.read_json(os.path.join(out, "subspace.json"))


@pytest.mark.slow
def test_plane_outputs(plane, runs, mnist1d):
    out, result = plane
    assert {"subspace.json", "diversity_accuracy.png", "tsne_with_samples.png"} <= set(
        os.listdir(out))
    counts = {m: sum(s["method"] == m for s in result["samples"]) for m in catalog.METHODS}
    assert counts["weight_average"] == 1
    assert all(counts[m] == 3 for m in ("dropout", "diagonal_gaussian",
                                        "low_rank_gaussian"))
    assert [p["run"] for p in result["independent"]] == [os.path.join(runs, "seed1"),
                                                         os.path.join(runs, "seed2")]
    base = result["base"]
    assert base["normalized_diversity"] == 0.0
    grid = np.array(result["curves"]["accuracy"])
    np.testing.assert_allclose(result["curves"]["upper"],
                               diversity.upper_limit(grid, base["accuracy"], 10))
    assert grid.max() == pytest.approx(base["accuracy"])
    labels = mnist1d.labels("test")
    predictor = predictions.RunPredictions(os.path.join(runs, "seed0"))
    assert result["splits"] == {"reported": "test", "selection": "validation",
                                "also_predicted": []}
    base_logits = cached_logits(predictor, mnist1d, "test", "epoch_004")
    for sample in result["samples"]:
        logits = cached_logits(predictor, mnist1d, "test", sample["key"])
        assert np.isclose(sample["accuracy"], np.mean(logits.argmax(1) == labels))
        disagreement = np.mean(logits.argmax(1) != base_logits.argmax(1))
        assert np.isclose(sample["normalized_diversity"],
                          disagreement / (1 - sample["accuracy"]))


@pytest.mark.slow
def test_samples_can_be_regenerated_from_their_params(plane, runs, mnist1d):
    _, result = plane
    base = os.path.join(runs, "seed0")
    space = subspace.fit(base, 3)
    predictor = predictions.RunPredictions(base)
    for sample in result["samples"][::4]:
        vector = subspace.regenerate(space, sample["params"])
        again = predictor.vector(mnist1d, "test", "regenerated", vector,
                                 {"again": sample["key"]})
        np.testing.assert_allclose(
            again, cached_logits(predictor, mnist1d, "test", sample["key"]), atol=1e-5)
        os.remove(predictor.cache_path(mnist1d, "test", "regenerated"))
    # one function on two splits: its weights are made and set once
    made = []

    def weights():
        made.append(1)
        return subspace.regenerate(space, result["samples"][0]["params"])

    both = [predictor.vector(mnist1d, split, "twice", weights, {"twice": 1})
            for split in ("test", "validation")]
    assert len(made) == 1
    for split, logits in zip(("test", "validation"), both):
        np.testing.assert_allclose(logits, predictor.uncached(mnist1d, split, weights()),
                                   atol=1e-5)
        os.remove(predictor.cache_path(mnist1d, split, "twice"))
    with pytest.raises(UserError, match="fit it with the same --num_checkpoints"):
        subspace.regenerate(subspace.fit(base, 2), result["samples"][0]["params"])


@pytest.mark.slow
def test_random_acceptance_rule(plane, runs, mnist1d):
    _, result = plane
    predictor = predictions.RunPredictions(os.path.join(runs, "seed0"))
    accepted = [s for s in result["samples"] if s["method"] == "random"]
    for sample in accepted:
        assert 1 <= sample["tries"] <= 5 and sample["scale"] <= 20.0
        validation = cached_logits(predictor, mnist1d, "validation", sample["key"])
        accuracy = np.mean(validation.argmax(1) == mnist1d.labels("validation"))
        assert accuracy >= 0.5 and np.isclose(sample["selection_accuracy"], accuracy)
    assert result["specs"]["random"]["accept_threshold"] == 0.5 and accepted


@pytest.mark.slow
def test_rerun_is_identical_and_predicts_nothing(plane, runs, tmp_path, monkeypatch):
    _, first = plane

    def no_model(*args, **kwargs):
        raise AssertionError("a prediction was computed again")

    monkeypatch.setattr(predictions.RunPredictions, "_get_model", no_model)
    with flagsaver.flagsaver(base_run=os.path.join(runs, "seed0"), other_runs=[runs],
                             num_samples=3, num_checkpoints=3, rank=2, split="test",
                             output_dir=str(tmp_path), random_scale=20.0,
                             accept_threshold=0.5):
        subspace_binary.main(["subspace.py"])
    again = files.read_json(os.path.join(tmp_path, "subspace.json"))
    assert again["samples"] == first["samples"]


@pytest.mark.parametrize("overrides,message", [
    (dict(methods=["random", "swag"]), "unknown --methods swag"),
    (dict(num_checkpoints=9), "needs the last 9"),
    (dict(rank=3), "rank must be in 1..2"),
    (dict(dropout_scale=1.0), "--dropout_scale must be below 1"),
    (dict(random_scale=-1.0), "--random_scale must be >= 0"),
    (dict(uniform_scales=["weight_average"]), "unknown --uniform_scales weight_average"),
    (dict(accept_threshold=70.0), "--accept_threshold is an accuracy in"),
    (dict(base_run=None), "--base_run is required"),
    (dict(split="validation", accept_threshold=0.5), "selects samples on the validation"),
])
@pytest.mark.slow
def test_bad_flags(runs, tmp_path, overrides, message):
    values = {**dict(base_run=os.path.join(runs, "seed0"), num_checkpoints=3, rank=2,
                     output_dir=str(tmp_path / "out"), num_samples=1), **overrides}
    with flagsaver.flagsaver(**values):
        with pytest.raises(UserError, match=message):
            subspace_binary.main(["subspace.py"])
    assert not os.path.exists(tmp_path / "out" / "subspace.json")
