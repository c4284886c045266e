"""Variational inference (TFP Flipout twins) and MC dropout, checked against numpy and
the deterministic twin, and run through the binaries."""

import json
import os
import re
import shutil
import weakref

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from absl import flags
from absl.testing import flagsaver
from conftest import load_binary, made_once

from uncertainty import models
from uncertainty.core import metrics
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.models.flipout import Variational, twin_weights
from uncertainty.runs import checkpoints, layout
from uncertainty.runs.predictions import RunPredictions
from uncertainty.samplers import catalog, draw, subspace
from uncertainty.train import posteriors
from uncertainty.train.train_config import TrainConfig
from uncertainty.train.trainer import train

cross_section_binary = load_binary("cross_section")
similarity_binary = load_binary("similarity")
subspace_binary = load_binary("subspace")
ensemble_binary = load_binary("ensemble")
train_binary = load_binary("train")
flags.FLAGS(["pytest"])


@pytest.mark.parametrize("prior", ["tied_mean", "zero_mean"])
def test_kl_of_a_flipout_layer_is_the_analytic_normal_kl_over_n(prior):
    """KL(N(mu, sigma^2) || prior) / N per kernel weight, against numpy: the tied-mean
    prior N(mu, s^2) (uncertainty-baselines') penalises sigma only; the zero-mean prior
    N(0, s^2) adds mu^2 / (2 s^2)."""
    stddev, n = 0.3, 7
    layer = Variational(stddev, 0.05, n, prior=prior).dense(2, name="dense")
    layer.build((None, 3))
    rng = np.random.default_rng(0)
    mu, rho = rng.normal(size=(3, 2)), rng.normal(-2, 0.5, size=(3, 2))
    posterior = layer.kernel_posterior.distribution
    posterior.loc.assign(mu.astype(np.float32))
    tf.nest.flatten(posterior.scale.pretransformed_input)[0].assign(rho.astype(np.float32))
    layer(np.ones((4, 3), np.float32))
    sigma = np.log1p(np.exp(rho)) + np.finfo(np.float32).eps  # TFP's softplus scale
    mean_term = mu ** 2 if prior == "zero_mean" else 0.0
    kl = np.sum(np.log(stddev / sigma) + (sigma ** 2 + mean_term) / (2 * stddev ** 2) - 0.5)
    assert len(layer.losses) == 1  # the bias is a point estimate: no KL
    np.testing.assert_allclose(float(layer.losses[0]) * n, kl, rtol=1e-5)


def test_posterior_stddevs_start_jittered_around_the_initial_value():
    """uncertainty-baselines' initialiser: rho ~ TruncatedNormal(softplus^-1(1e-3), 0.1),
    so sigma starts near 1e-3, within its two-std truncation, and not all equal."""
    layer = Variational(0.1, 1e-3, 100, seed=3).dense(50, name="dense")
    layer.build((None, 40))
    rho = tf.nest.flatten(
        layer.kernel_posterior.distribution.scale.pretransformed_input)[0].numpy()
    centre = np.log(np.expm1(1e-3))
    assert abs(rho.mean() - centre) < 0.01 and 0.07 < rho.std() < 0.1
    assert np.all(np.abs(rho - centre) <= 0.2 + 1e-6)


def test_training_adds_the_point_estimates_l2_unannealed_to_the_annealed_kl():
    """One step at learning rate 0: the regularisation term is the KL / N annealed
    by 1/10 (step 1 of 10) plus 0.5 x the sum of the squared biases (the Flipout
    layers' point estimates), not annealed, against numpy on the same weights."""
    from uncertainty.models.flipout import point_estimates
    from uncertainty.train import loop

    model = models.build("cnn1d", (40, 1), 10, variational=Variational(0.1, 1e-2, 50))
    for v in point_estimates(model):  # non-zero biases, so their L2 counts
        v.assign(np.full(v.shape, 0.3, np.float32))
    assert {v.name.split("/")[-1] for v in point_estimates(model)} == {
        "bias_posterior_loc:0"}
    strategy = tf.distribute.get_strategy()
    step = loop._make_train_loop(model, loop.make_optimizer("adam", 0.0), strategy, 4,
                                 annealing_steps=10, point_l2=0.5)
    batch = tf.data.Dataset.from_tensors((np.ones((4, 40, 1), np.float32),
                                          np.zeros(4, np.int64))).repeat()
    iterator = iter(strategy.experimental_distribute_dataset(batch))
    *sums, bad, _ = [float(v) for v in step(iterator, tf.constant(1), tf.constant([0.0]),
                                            tf.constant(np.inf, tf.float64))]
    sigma = np.concatenate([  # the tied-mean KL / N, from the posteriors' stds
        tf.convert_to_tensor(layer.kernel_posterior.distribution.scale).numpy().ravel()
        for layer in model.layers if hasattr(layer, "kernel_posterior")]).astype(np.float64)
    kl = np.sum(np.log(0.1 / sigma) + sigma ** 2 / (2 * 0.1 ** 2) - 0.5) / 50
    l2 = sum(float(np.sum(np.square(v.numpy()))) for v in point_estimates(model))
    assert bad == -1 and l2 > 0
    assert sums[2] == pytest.approx(kl / 10 + 0.5 * l2, rel=1e-5)


def test_unknown_prior_is_refused():
    with pytest.raises(ValueError, match="unknown prior 'laplace'"):
        Variational(0.1, 1e-3, 10, prior="laplace")


@pytest.mark.parametrize("name,shape", [("small_cnn", (28, 28, 1)), ("cnn1d", (40, 1)),
                                        ("medium_cnn", (16, 16, 3)),
                                        ("resnet20_v1", (16, 16, 3))])
def test_with_std_near_zero_the_twin_with_the_posterior_mean_gives_the_same_logits(
        name, shape, tmp_path):
    keras.utils.set_random_seed(1)
    model = models.build(name, shape, 10, variational=Variational(0.1, 1e-9, 100))
    x = np.random.default_rng(0).normal(size=(3, *shape)).astype(np.float32)
    vi_logits = model(x, training=False).numpy()
    twin = models.build(name, shape, 10)
    # through a checkpoint, as every analysis reads a run
    files.write_json(str(tmp_path / "config.json"), {
        "model": name, "method": "variational", "prior_stddev": 0.1,
        "posterior_init_stddev": 1e-9, "seed": 0, "input_shape": shape, "num_classes": 10})
    tf.train.Checkpoint(model=model).write(layout.checkpoint_prefix(str(tmp_path), 1))
    twin.set_weights(checkpoints.load_arrays(str(tmp_path), 1))
    # equal up to float32 round-off (and sigma = 1.2e-7, TFP's floor), relative to the
    # logits' scale (an untrained ResNet's reach ~60)
    np.testing.assert_allclose(twin(x, training=False).numpy(), vi_logits,
                               atol=1e-5 * np.abs(vi_logits).max())
    assert [w.name for w in twin.weights] == [n for n, _, _, _ in twin_weights(model)]
    std = checkpoints.load_posterior(str(tmp_path), 1)[1]
    kernels = sum(layer.kernel_posterior.distribution.loc.shape.num_elements()
                  for layer in model.layers if hasattr(layer, "kernel_posterior"))
    assert std.shape == checkpoints.load_weights(str(tmp_path), 1).shape
    assert np.count_nonzero(std) == kernels and np.all(std < 1e-6)


def test_flipout_perturbs_each_example_with_the_posterior_variance():
    """Flipout: one dW ~ N(0, sigma^2) per batch, random signs per example, so on inputs
    of ones the outputs vary across examples around sum_i mu_i + b with variance
    sum_i dW_i^2, whose expectation is sum_i sigma_i^2 (2000 weights: within ~3%)."""
    keras.utils.set_random_seed(0)
    layer = Variational(1.0, 0.2, 10).dense(1, name="dense")
    outputs = layer(np.ones((5000, 2000), np.float32)).numpy()[:, 0]
    mean = layer.kernel_posterior.distribution.loc.numpy().sum() + float(
        tf.convert_to_tensor(layer.bias_posterior.distribution.loc)[0])
    sigma = tf.convert_to_tensor(layer.kernel_posterior.distribution.scale).numpy()
    expected_var = np.sum(sigma ** 2)  # 2000 * 0.04 = 80
    assert abs(outputs.mean() - mean) < 5 * np.sqrt(expected_var / len(outputs))
    np.testing.assert_allclose(outputs.var(), expected_var, rtol=0.15)


@pytest.fixture(scope="module")
def vi_runs(tmp_path_factory, worker_id, mnist1d):
    """Two short variational CNN-1D runs (seeds 0, 1) on MNIST-1D, made once per test
    session; a module's own copy (its prediction caches stay its own)."""
    with made_once(tmp_path_factory, worker_id, "vi_runs") as (made_runs, made):
        if not made:
            for seed in (0, 1):
                config = TrainConfig.from_recipe("mnist1d", "cnn1d", seed,
                                                 method="variational", train_epochs=3,
                                                 num_posterior_samples=3)
                train(config, mnist1d, str(made_runs / f"seed{seed}"))
    copy = tmp_path_factory.mktemp("vi_runs_copy") / "runs"
    shutil.copytree(made_runs, copy)
    return str(copy)


@pytest.mark.slow
def test_a_variational_run_learns_and_reports_its_predictive_and_mean(vi_runs, mnist1d):
    run = os.path.join(vi_runs, "seed0")
    history = files.read_json(os.path.join(run, "history.json"))
    losses = [h["train/loss"] for h in history]
    assert losses[-1] < losses[0] < 2.4  # falls from about log(10)
    # the KL term is annealed in: its weight grows each epoch while the KL stays near
    assert history[0]["train/regularization_loss"] < history[-1]["train/regularization_loss"]
    assert "validation/posterior_mean/accuracy" in history[-1]
    config = files.read_json(os.path.join(run, "config.json"))
    assert config["method"] == "variational" and config["dropout_rate"] == 0.0
    assert config["kl_annealing_epochs"] == 2  # 80% of the 3 epochs, rounded
    result = layout.read_metrics(run)
    assert result["test/accuracy"] > 0.4 and result["test/posterior_mean/accuracy"] > 0.4
    assert result["train/num_examples"] == 3500 and result["test/num_examples"] == 1000
    # the predictive is the mean probability of 3 draws, computed independently here
    mean, std = checkpoints.load_posterior(run)
    start_mean, start_std = checkpoints.load_posterior(run, 0)
    # the kernels' std starts near 1e-3: softplus(rho), rho ~ TruncatedNormal(
    # softplus^-1(1e-3), 0.1) cut at two stds, so within a factor e^0.2 of 1e-3
    started = start_std[start_std > 0]
    assert np.all((started > 1e-3 * np.exp(-0.21)) & (started < 1e-3 * np.exp(0.21)))
    assert np.mean(started) == pytest.approx(1e-3, rel=0.02)
    np.testing.assert_array_equal(start_mean, checkpoints.load_weights(run, 0))
    assert np.count_nonzero(std) == np.count_nonzero(start_std)
    twin = models.build("cnn1d", mnist1d.input_shape, 10)
    space, records = draw.draw_model_samples(
        run, catalog.SamplerSpec("variational", 1.0), 3, posteriors.PREDICTIVE_SEED)
    probs = []
    for record in records:
        weights = subspace.regenerate(space, record["params"])
        assert np.all(np.abs(weights - mean) <= 6 * std + 1e-7)
        twin.set_weights(checkpoints.with_vector(run, weights))
        x = mnist1d.read("test")[0]  # raw: the twin holds the run's normaliser
        probs.append(tf.nn.softmax(twin(x.astype(np.float32))).numpy())
    labels = mnist1d.labels("test")
    expected = -np.mean(np.log(np.mean(probs, axis=0)[np.arange(len(labels)), labels]))
    assert result["test/negative_log_likelihood"] == pytest.approx(expected, rel=1e-4)
    for name in ("accuracy", "negative_log_likelihood", "ece", "brier"):
        assert f"test/posterior_mean/{name}" in result and f"test/{name}" in result


@pytest.mark.slow
def test_posterior_of_a_deterministic_run_is_refused(runs):
    with pytest.raises(UserError, match="has no posterior; pass a run trained with "
                                        "--method=variational"):
        checkpoints.load_posterior(os.path.join(runs, "seed0"))


@pytest.mark.slow
def test_mc_dropout_rate_0_is_the_deterministic_prediction_and_passes_are_seeded(
        runs, mnist1d):
    run = os.path.join(runs, "seed0")
    predictor = RunPredictions(run, batch_size=128)
    plain = predictor.checkpoint(mnist1d, "test")
    # dropout kept on at inference, at rate 0: the deterministic network's logits
    always_on = models.build("cnn1d", mnist1d.input_shape, 10, dropout_rate=0.0,
                             mc_dropout=True)
    always_on.set_weights(checkpoints.load_arrays(run))
    x = mnist1d.read("test")[0].astype(np.float32)  # raw: the model holds its normaliser
    np.testing.assert_allclose(always_on(x, training=False).numpy(), plain, atol=1e-5)

    identity = {"test": "mc"}
    first = predictor.mc_dropout(mnist1d, "test", "mc/a", 0.3, 11, identity)
    second = predictor.mc_dropout(mnist1d, "test", "mc/b", 0.3, 12, identity)
    assert np.abs(first - second).max() > 0.1  # two passes differ

    def mean_of_passes(seeds):  # never cached: computed afresh each time
        fresh = RunPredictions(run, batch_size=128)
        return metrics.ensemble(np.stack([fresh._compute(
            mnist1d, "test", lambda: checkpoints.load_arrays(run), None, dropout=(0.3, s))
            for s in seeds]))

    np.testing.assert_allclose(mean_of_passes([11, 12]), mean_of_passes([11, 12]),
                               atol=1e-6)  # the mean is a function of the seeds
    np.testing.assert_allclose(np.exp(mean_of_passes([11])), metrics.softmax(first),
                               atol=1e-6)  # the cached pass is that seed's
    # dropout of rate 0.3 on the activations: about 30% of a layer's units are zeroed
    model = predictor._get_model(mnist1d, 0.3, 5)
    probe = keras.Model(model.input, model.get_layer("dropout0").output)
    zeros = np.mean(probe(mnist1d.read("test", 64)[0].astype(np.float32)).numpy() == 0)
    assert 0.25 < zeros < 0.36


@pytest.mark.slow
def test_mc_dropout_masks_drawn_once_are_keras_masks_on_every_set(runs, mnist1d,
                                                                  monkeypatch):
    """One MC-dropout pass on several evaluation sets draws its keep masks once
    (every set's batch i drops the same units) and gives exactly the logits of Keras's
    own dropout restarted from the pass's seed on each set; also when only the first
    batch's masks fit the budget and the others are drawn again from kept states."""
    from uncertainty import datasets
    from uncertainty.core import seeding
    from uncertainty.models import layers
    from uncertainty.runs import predictions

    run = os.path.join(runs, "seed0")
    shifted = datasets.load("mnist1d_corrupted/shift_2")
    # the test split, 8 batches; validation has fewer, train more
    calls = [(mnist1d, "test"), (shifted, "test"), (mnist1d, "validation"),
             (mnist1d, "train"), (mnist1d, "test")]

    draws = []  # per call of the predict step: whether its masks were drawn
    traced = predictions._predict_step

    def counted(model, strategy):
        step = traced(model, strategy)
        return lambda images, mask, given=None: (draws.append(given is None),
                                                 step(images, mask, given))[1]

    monkeypatch.setattr(predictions, "_predict_step", counted)

    def passes(seed):
        draws.clear()
        predictor = RunPredictions(run, batch_size=128)  # 1000 = 7 x 128 + 104
        found = [predictor._compute(d, split, lambda: checkpoints.load_arrays(run), None,
                                    dropout=(0.3, seed)) for d, split in calls[:2]]
        masks = predictions._DROPOUT_MASKS[predictor._get_model(mnist1d, 0.3, seed)]
        drawn = (sum(draws), [m is not None for m in masks.masks])
        found += [predictor._compute(d, split, lambda: checkpoints.load_arrays(run), None,
                                     dropout=(0.3, seed)) for d, split in calls[2:]]
        assert len(masks.masks) == 28  # the train split's batches
        return found, drawn

    kept, drawn = passes(3)
    assert drawn == (8, [True] * 8)  # the second set drew nothing
    one_batch = 128 * (40 * 32 + 20 * 64 + 10 * 64)  # the keep masks' bytes per batch
    monkeypatch.setattr(predictions, "_MASK_BYTES", one_batch)
    monkeypatch.setattr(predictions, "_DROPOUT_MASKS",  # no other network's masks
                        weakref.WeakKeyDictionary())
    redrawn, drawn = passes(4)
    # the second set's batches 1-7 drawn again from their states
    assert drawn == (8 + 7, [True] + [False] * 7)

    def keras_dropout(self, inputs, training=None):
        return keras.layers.Dropout.call(self, inputs, training=True)

    monkeypatch.setattr(layers.Dropout, "call", keras_dropout)
    model = models.build("cnn1d", mnist1d.input_shape, 10, dropout_rate=0.3,
                         mc_dropout=True)
    model.set_weights(checkpoints.load_arrays(run))
    dropouts = [layer for layer in model.layers if isinstance(layer, layers.Dropout)]
    for seed, found in ((3, kept), (4, redrawn)):
        for (data, split), logits in zip(calls, found):
            for i, layer in enumerate(dropouts):
                layer.reseed(seeding.integer(seed, "mc_dropout_layer", i))
            x = data.read(split)[0].astype(np.float32)
            x = np.concatenate([x, np.zeros((-len(x) % 128, *x.shape[1:]), np.float32)])
            reference = np.concatenate([model(x[i:i + 128], training=False).numpy()
                                        for i in range(0, len(x), 128)])
            np.testing.assert_array_equal(logits, reference[:len(logits)])


@pytest.mark.slow
def test_variational_and_mc_dropout_samples_flow_through_subspace_and_ensemble(
        vi_runs, runs, tmp_path):
    out = tmp_path / "plane"
    with flagsaver.flagsaver(base_run=os.path.join(vi_runs, "seed0"), other_runs=[vi_runs],
                             methods=["variational", "random"], num_samples=3,
                             num_checkpoints=2, output_dir=str(out)):
        subspace_binary.main(["subspace.py"])
    result = json.loads((out / "subspace.json").read_text())
    methods = result["summary"]["methods"]
    assert result["method"] == "variational"
    assert set(methods) == {"variational", "random"}
    for entry in methods.values():
        assert {"js_divergence", "independent_js_divergence"} <= set(entry)
    # the reported JS, recomputed from the cached samples' logits
    base = RunPredictions(os.path.join(vi_runs, "seed0"))
    space = subspace.fit(os.path.join(vi_runs, "seed0"), 2)
    from uncertainty import datasets
    data = datasets.load("mnist1d")
    logits = [draw.sample_logits(base, space, s, data, "test")
              for s in result["samples"] if s["method"] == "variational"]
    # in groups as large as base + optima (2): the first two of the 3 samples
    probs = metrics.softmax(np.stack(logits[:2]))
    mean = probs.mean(0)
    js = np.mean(-(mean * np.log(mean + 1e-5)).sum(-1)
                 + ((probs * np.log(probs + 1e-5)).sum(-1)).mean(0))
    assert methods["variational"]["js_divergence"] == pytest.approx(js, rel=1e-6)

    out = tmp_path / "ensemble"
    with flagsaver.flagsaver(runs=[vi_runs], num_posterior_samples=2, corruptions=["none"],
                             output_dir=str(out)):
        ensemble_binary.main(["ensemble.py"])
    result = json.loads((out / "ensemble.json").read_text())
    assert result["methods"] == ["variational"]
    assert {"variational", "independent+variational"} <= set(result["metrics"])
    assert result["subspace_samples_per_run"] == {"variational": 2}

    out = tmp_path / "mc_dropout"
    with flagsaver.flagsaver(runs=[runs], methods=["mc_dropout"], num_posterior_samples=3,
                             corruptions=["none"], output_dir=str(out)):
        ensemble_binary.main(["ensemble.py"])
    result = json.loads((out / "ensemble.json").read_text())
    assert result["summary"]["js_divergence"]["mc_dropout"][0] > 0


@pytest.mark.slow
def test_similarity_and_cross_sections_take_variational_runs_as_posterior_means(
        vi_runs, tmp_path, mnist1d):
    out = tmp_path / "similarity"
    with flagsaver.flagsaver(runs=[vi_runs], tsne_runs=2, output_dir=str(out)):
        similarity_binary.main(["similarity.py"])
    result = json.loads((out / "similarity.json").read_text())
    assert result["method"] == "variational"
    means = [checkpoints.load_posterior(os.path.join(vi_runs, f"seed{s}"))[0]
             for s in (0, 1)]
    cosine = means[0] @ means[1] / np.linalg.norm(means[0]) / np.linalg.norm(means[1])
    assert result["independent"]["weight_cosine"][0][1] == pytest.approx(cosine, rel=1e-5)

    out = tmp_path / "section"
    with flagsaver.flagsaver(runs=[os.path.join(vi_runs, "seed0"),
                                   os.path.join(vi_runs, "seed1")], plane="independent",
                             grid_points=3, path_points=3, connect=False, split="test",
                             output_dir=str(out)):
        cross_section_binary.main(["cross_section.py"])
    result = json.loads((out / "cross_section.json").read_text())
    # the straight path's ends are the posterior means: the runs' reported mean accuracy
    accuracy = result["paths"]["linear"]["accuracy"]
    for end, seed in ((accuracy[0], 0), (accuracy[-1], 1)):
        metrics_file = layout.read_metrics(os.path.join(vi_runs, f"seed{seed}"))
        assert end == pytest.approx(metrics_file["test/posterior_mean/accuracy"])


@pytest.mark.slow
@pytest.mark.parametrize("flags,message", [
    (dict(methods=["variational"]), "variational samples need a variational run"),
])
def test_variational_samples_around_a_deterministic_run_are_refused(runs, tmp_path, flags,
                                                                     message):
    with flagsaver.flagsaver(base_run=os.path.join(runs, "seed0"), num_checkpoints=2,
                             output_dir=str(tmp_path / "out"), **flags):
        with pytest.raises(UserError, match=message):
            subspace_binary.main(["subspace.py"])
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.slow
def test_mc_dropout_around_a_variational_run_is_refused(vi_runs, tmp_path):
    with flagsaver.flagsaver(base_run=os.path.join(vi_runs, "seed0"), num_checkpoints=2,
                             methods=["mc_dropout"], output_dir=str(tmp_path / "out")):
        with pytest.raises(UserError, match="mc_dropout evaluates a deterministic"):
            subspace_binary.main(["subspace.py"])
    with flagsaver.flagsaver(runs=[vi_runs], methods=["mc_dropout"], corruptions=["none"],
                             output_dir=str(tmp_path / "out")):
        with pytest.raises(UserError, match="mc_dropout evaluates a deterministic"):
            ensemble_binary.main(["ensemble.py"])
    assert not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("args,message", [
    (["--prior_stddev=0"], "--prior_stddev must be positive, got 0.0"),
    (["--prior_stddev=-1"], "--prior_stddev must be positive"),
    (["--num_posterior_samples=0"], "--num_posterior_samples must be positive, got 0"),
    (["--posterior_init_stddev=0"], "--posterior_init_stddev must be positive"),
    (["--method=laplace"], "flag --method=laplace"),
    (["--method=deterministic", "--kl_annealing_epochs=3"],
     "--kl_annealing_epochs applies to --method=variational only"),
])
def test_bad_variational_flags_are_refused_and_write_nothing(tmp_path, args, message):
    """In this process: the flag's error or the UserError (the binaries' one line and
    exit code 2 for both are tests/test_train.py's)."""
    argv = ["train.py", "--dataset=mnist1d", "--model=cnn1d", "--method=variational",
            f"--output_dir={tmp_path / 'run'}", *args]
    with flagsaver.flagsaver():
        with pytest.raises((flags.Error, UserError), match=re.escape(message)):
            train_binary.main(flags.FLAGS(argv))
    assert not os.path.exists(tmp_path / "run")


@pytest.mark.slow
def test_ensemble_refuses_zero_posterior_samples(vi_runs, tmp_path):
    with flagsaver.flagsaver(runs=[vi_runs], num_posterior_samples=0,
                             output_dir=str(tmp_path / "out")):
        with pytest.raises(UserError, match="--num_posterior_samples must be positive"):
            ensemble_binary.main(["ensemble.py"])
    assert not os.path.exists(tmp_path / "out")


def test_model_without_a_variational_twin_is_refused(monkeypatch):
    """Every model of the paper has a twin; a registered one without is refused."""
    spec = models._MODELS["small_cnn"]
    monkeypatch.setitem(models._MODELS, "no_twin",
                        models._Spec(spec.builder, 2, True, False, variational=False))
    with pytest.raises(UserError, match="no_twin has no variational variant; "
                                        "--method=variational takes one of small_cnn"):
        models.check("no_twin", variational=True)
