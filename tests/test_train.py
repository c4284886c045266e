"""baselines/train.py end to end on real Fashion-MNIST / MNIST-1D subsets."""

import json
import os
import signal
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver
from conftest import REPO, command_line, load_binary, own_lines, run_binary, run_in_process

from uncertainty import models
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, layout, predictions

train_binary = load_binary("train")

FLAGS = flags.FLAGS
FLAGS(["pytest"])  # parse defaults once; tests override with flagsaver
pytestmark = pytest.mark.slow  # trains on real data
SMALL = dict(dataset="fashion_mnist", model="small_cnn", train_examples=3000,
             train_epochs=2)


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    run_dir = str(tmp_path_factory.mktemp("runs") / "small")
    with flagsaver.flagsaver(output_dir=run_dir, **SMALL):
        train_binary.main(["train.py"])
    return run_dir


def test_run_learns_and_records_its_trajectory(small_run, fashion):
    assert checkpoints.epochs(small_run) == [1, 2]
    # standard checkpoints, every epoch and the initialisation kept, TF-readable
    for epoch in (0, 1, 2):
        reader = tf.train.load_checkpoint(layout.checkpoint_prefix(small_run, epoch))
        assert int(reader.get_tensor("epoch/.ATTRIBUTES/VARIABLE_VALUE")) == epoch
    names = dict(tf.train.list_variables(layout.checkpoint_prefix(small_run, 2)))
    assert names["model/layer_with_weights-0/shift/.ATTRIBUTES/VARIABLE_VALUE"] == [28, 28, 1]
    assert any(name.startswith("optimizer/") for name in names)
    results = files.read_json(os.path.join(small_run, "metrics.json"))
    assert results["test/num_examples"] == 10000
    assert results["test/accuracy"] > 0.6  # chance is 0.1
    for key in ("train/accuracy", "validation/accuracy", "test/negative_log_likelihood"):
        assert key in results
    config = layout.read_config(small_run)
    assert config["train_epochs"] == 2 and config["dropout_rate"] == 0.1  # recipe filled
    assert {"learning_rate", "lr_schedule", "optimizer", "strategy", "data_dir"} <= set(config)
    assert config["devices"] == {"strategy": "default", "replicas": 1, "devices": "1 x CPU",
                                 "line": "strategy default: 1 replica on 1 x CPU"}
    assert len(files.read_json(os.path.join(small_run, "history.json"))) == 2
    assert os.listdir(os.path.join(small_run, "summaries"))

    # The saved weights are the model's: reloaded, they reproduce the test accuracy.
    model = models.build("small_cnn", (28, 28, 1), 10)
    model.set_weights(checkpoints.load_arrays(small_run))
    vector = checkpoints.load_weights(small_run)
    assert vector.dtype == np.float32 and vector.size == models.num_parameters(model) == 19178
    np.testing.assert_array_equal(
        vector, np.concatenate([w.numpy().ravel() for w in model.trainable_weights]))
    probs = predictions.predict(model, fashion, "test", batch_size=300)
    assert probs.shape == (10000, 10)
    assert np.mean(probs.argmax(1) == fashion.labels("test")) == results["test/accuracy"]


def test_finished_run_is_not_retrained(small_run, capsys):
    stamps = {p: os.stat(os.path.join(small_run, "checkpoints", p)).st_mtime_ns
              for p in os.listdir(os.path.join(small_run, "checkpoints"))}
    with flagsaver.flagsaver(output_dir=small_run, **SMALL):
        train_binary.main(["train.py"])
    assert stamps == {p: os.stat(os.path.join(small_run, "checkpoints", p)).st_mtime_ns
                      for p in stamps}
    printed = json.loads(capsys.readouterr().out)
    assert printed["test/accuracy"] == files.read_json(
        os.path.join(small_run, "metrics.json"))["test/accuracy"]


def test_run_dir_with_other_flags_is_refused_untouched(small_run):
    before = open(os.path.join(small_run, "config.json")).read()
    with flagsaver.flagsaver(output_dir=small_run, **{**SMALL, "train_epochs": 3}):
        with pytest.raises(UserError, match="different flags.*train_epochs: 2 there, 3 now"):
            train_binary.main(["train.py"])
    assert open(os.path.join(small_run, "config.json")).read() == before


@pytest.mark.parametrize("overrides,message", [
    (dict(batch_size=0), "--batch_size must be positive"),
    (dict(train_epochs=-1), "--train_epochs must be positive"),
    (dict(dropout_rate=1.0), r"--dropout_rate must be in \[0, 1\)"),
    (dict(lr_schedule="cosine"), "unknown --lr_schedule 'cosine'"),
    (dict(optimizer="rmsprop"), "unknown --optimizer 'rmsprop'"),
    (dict(preprocessing="zca"), "unknown --preprocessing 'zca'"),
    (dict(model="vgg"), "unknown model 'vgg'"),
    (dict(dataset="svhn"), "unknown dataset 'svhn'"),
    (dict(dataset="cifar10_corrupted/snow_7"), "severity must be 1..5"),
    (dict(model="cnn1d"), "takes 1-D signals"),
    (dict(dataset="mnist1d", model="cnn1d", augment=True), "--augment applies to images"),
    (dict(batch_size=5000), "exceeds the 3000 training examples"),
    (dict(dataset="cifar10", download=False), "TFDS could not load 'cifar10'"),
    (dict(output_dir=None), "--output_dir is required"),
    (dict(strategy="tpu"), "no TPU found"),
    (dict(strategy="tpu", tpu="no-such-tpu"), "no TPU found for --tpu='no-such-tpu'"),
    (dict(strategy="mirrored"), r"--strategy=mirrored found no GPU \(devices: 1 x CPU\); "
                                r"install TensorFlow's CUDA build .* or pass "
                                r"--allow_cpu_fallback"),
    (dict(strategy="multi_worker"), "--strategy=multi_worker needs TF_CONFIG"),
    (dict(model="resnet20_v1", dropout_rate=0.1), "resnet20_v1 has no dropout"),
    (dict(dtype="mixed_bfloat16", method="variational"),
     "--dtype=mixed_bfloat16 is for deterministic networks"),
    (dict(steps_per_loop=0), "--steps_per_loop must be positive"),
])
def test_bad_input_is_a_user_error_and_writes_nothing(tmp_path, overrides, message,
                                                       monkeypatch):
    monkeypatch.delenv("TF_CONFIG", raising=False)
    run_dir = tmp_path / "run"
    values = {**SMALL, "output_dir": str(run_dir), "train_epochs": 1, **overrides}
    if "download" in overrides:  # an empty data directory
        values["data_dir"] = str(tmp_path / "tfds")
    with flagsaver.flagsaver(**values):
        with pytest.raises(UserError, match=message):
            train_binary.main(["train.py"])
    assert not os.path.exists(run_dir)


@pytest.mark.parametrize("replicas,batch,learning_rate", [
    (1, 128, 0.05), (8, 1024, 0.4), (32, 4096, 1.6)])  # 0.1 x batch / 256, by hand
def test_learning_rate_follows_the_global_batch_of_per_core_batch_size(
        replicas, batch, learning_rate):
    with flagsaver.flagsaver(dataset="imagenet2012", model="resnet50", output_dir="x",
                             per_core_batch_size=128):
        config = train_binary.resolve_config(replicas)
    assert config.batch_size == batch and config.base_learning_rate == 0.1
    assert config.reference_batch_size == 256
    assert config.learning_rate == pytest.approx(learning_rate)
    record = config.record()
    assert record["learning_rate"] == pytest.approx(learning_rate)
    assert record["base_learning_rate"] == 0.1


def test_learning_rate_flags():
    def resolved(**values):
        with flagsaver.flagsaver(dataset="imagenet2012", model="resnet50", output_dir="x",
                                 **values):
            return train_binary.resolve_config(1)

    assert resolved().learning_rate == pytest.approx(0.4)  # the recipe: 1,024 images
    assert resolved(batch_size=256).learning_rate == pytest.approx(0.1)
    assert resolved(batch_size=512, base_learning_rate=0.2).learning_rate == \
        pytest.approx(0.4)
    assert resolved(batch_size=512, learning_rate=0.3).learning_rate == 0.3  # as given
    with pytest.raises(UserError, match="--batch_size .global. or --per_core_batch_size, "
                                        "not both"):
        resolved(batch_size=256, per_core_batch_size=128)


def test_cifar10_trains_under_tfds_own_unpatched_mock_data(tmp_path):
    """The standard way to try a TFDS pipeline without its data, as a user would:
    `tfds.testing.mock_data` as TFDS ships it (no test double of ours)."""
    import tensorflow_datasets as tfds

    run_dir = tmp_path / "run"
    with tfds.testing.mock_data(num_examples=12):
        with flagsaver.flagsaver(dataset="cifar10", model="small_cnn", train_epochs=1,
                                 batch_size=4, validation_examples=4, eval_train_split=False,
                                 output_dir=str(run_dir), data_dir=str(tmp_path / "tfds")):
            train_binary.main(["train.py"])
    metrics = files.read_json(os.path.join(run_dir, "metrics.json"))
    assert metrics["test/num_examples"] == 12 and 0 <= metrics["test/accuracy"] <= 1
    assert checkpoints.epochs(str(run_dir)) == [1]


def test_invalid_tf_config_and_unwritable_output_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("TF_CONFIG", "{not json")
    with flagsaver.flagsaver(output_dir=str(tmp_path / "run"), strategy="multi_worker",
                             **SMALL):
        with pytest.raises(UserError, match="TF_CONFIG does not describe a cluster"):
            train_binary.main(["train.py"])
    monkeypatch.delenv("TF_CONFIG")
    (tmp_path / "a_file").write_text("")
    with flagsaver.flagsaver(output_dir=str(tmp_path / "a_file" / "run"), **SMALL):
        with pytest.raises(UserError, match="cannot write --output_dir"):
            train_binary.main(["train.py"])


def test_eval_only_detects_mnist_digits_against_fashion_mnist(small_run):
    """Real data: the run's maximum softmax probability on Fashion-MNIST's test set vs
    MNIST's digits, scored by scikit-learn on Keras predictions."""
    from sklearn.metrics import roc_auc_score

    from uncertainty import datasets

    with flagsaver.flagsaver(eval_only=True, output_dir=small_run, corruptions=["none"]):
        train_binary.main(["train.py"])
    scores = files.read_json(os.path.join(small_run, "eval.json"))["epoch_002"]
    model = models.build("small_cnn", (28, 28, 1), 10)
    model.set_weights(checkpoints.load_arrays(small_run, 2))
    confidence = [tf.nn.softmax(model.predict(datasets.load(name).read("test")[0],
                                              batch_size=500, verbose=0)).numpy().max(1)
                  for name in ("fashion_mnist", "mnist_digits")]
    truth = np.r_[np.ones(len(confidence[0])), np.zeros(len(confidence[1]))]
    exact = roc_auc_score(truth, np.concatenate(confidence))
    assert scores["ood/mnist_digits_max_probability_auroc"] == pytest.approx(exact, abs=1e-6)
    assert scores["ood/mnist_digits_auroc"] == pytest.approx(exact, abs=1e-4)  # UB's
    assert 0 <= scores["ood/mnist_digits_(1-fpr)@95tpr"] <= 1
    assert 0 <= scores["ood/mnist_digits_max_probability_fpr_at_95_in_recall"] <= 1


def test_outputs_are_readable_by_others(small_run):
    for name in ("config.json", "metrics.json", "checkpoints/ckpt-1.index",
                 "checkpoints/ckpt-1.data-00000-of-00001"):
        assert os.stat(os.path.join(small_run, name)).st_mode & 0o044 == 0o044


def test_non_empty_directory_without_a_run_is_refused(tmp_path):
    (tmp_path / "notes.txt").write_text("keep me")
    with flagsaver.flagsaver(output_dir=str(tmp_path), **SMALL):
        with pytest.raises(UserError, match="not empty and holds no run"):
            train_binary.main(["train.py"])
    assert os.listdir(tmp_path) == ["notes.txt"]


@pytest.mark.parametrize("args,message", [  # a bad flag's value, then a UserError
    (["--train_epochs=x"], "flag --train_epochs=x"),
    (["--batch_size=0"], "--batch_size must be positive"),
])
def test_binary_reports_one_line_and_exit_code_2(tmp_path, args, message):
    result = run_binary("train", f"--output_dir={tmp_path / 'run'}", *args)
    assert result.returncode == 2
    lines = own_lines(result.stderr)
    assert len(lines) == 1 and lines[0].startswith("train.py: error:") and message in lines[0]
    assert not os.path.exists(tmp_path / "run")


RESUME_FLAGS = dict(dataset="mnist1d", model="cnn1d", train_epochs=3, deterministic=True,
                    seed=3)
RESUME_ARGS = command_line(RESUME_FLAGS)


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """run_dir(method): an uninterrupted run of RESUME_FLAGS, trained once per method
    (in this process: the same binary's main)."""
    made = {}

    def run_dir(method):
        if method not in made:
            made[method] = str(tmp_path_factory.mktemp("straight") / method)
            with flagsaver.flagsaver(output_dir=made[method], method=method, **RESUME_FLAGS):
                train_binary.main(["train.py"])
        return made[method]
    return run_dir


@pytest.mark.parametrize("method,every,signum", [
    ("deterministic", 5, signal.SIGKILL),  # resumes from the step saved every 5 steps
    ("deterministic", 13, signal.SIGTERM),  # + the step the stop request lands on
    ("variational", 7, signal.SIGTERM)])
def test_mid_epoch_resume_is_bit_identical(tmp_path, straight, method, every, signum, capfd,
                                          caplog):
    """Killed or stopped inside epoch 2 (27 steps an epoch), then resumed with another
    number of steps per host call: every epoch checkpoint equals the uninterrupted
    run's, which saved no steps."""
    args = [*RESUME_ARGS, f"--method={method}"]
    killed = str(tmp_path / "killed")
    process = subprocess.Popen([sys.executable, os.path.join(REPO, "baselines", "train.py"),
                                *args, f"--checkpoint_every_steps={every}",
                                f"--output_dir={killed}"], cwd=REPO,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    # on the log line of the first step saved inside epoch 2 (no polling of files)
    assert any(f"saved step {every} of 27 of epoch 2" in line for line in process.stderr)
    process.send_signal(signum)
    rest = process.stderr.read()
    process.wait()
    process.stderr.close()
    assert checkpoints.epochs(killed) == [1]
    positions = checkpoints.step_positions(killed)
    assert len(positions) == 1 and positions[0][0] == 1  # one, inside epoch 2
    if signum == signal.SIGTERM:
        step = positions[0][1]
        assert every <= step <= 27  # the stop's own save (or the last, if it landed after)
        assert process.returncode == 128 + signum
        assert (f"stopped by SIGTERM in epoch 2 (it resumes at its step {step} of 27); "
                "every file written so far is whole") in own_lines(rest)[-1]
        status = layout.read_status(killed)
        assert (status["state"], status["epochs_done"], status["step"]) == (
            "interrupted", 1, step)

    code, lines = run_in_process(capfd, "train", *args, f"--output_dir={killed}",
                                 "--steps_per_loop=4")
    assert code == 0, lines[-20:]
    assert f"epoch 2 resumes at its step {positions[0][1]} of 27" in caplog.text
    assert checkpoints.epochs(killed) == [1, 2, 3]
    assert checkpoints.step_positions(killed) == []  # removed as their epoch ended
    for epoch in range(4):
        np.testing.assert_array_equal(checkpoints.load_weights(straight(method), epoch),
                                      checkpoints.load_weights(killed, epoch))
        # byte for byte (its save count too): the same identity, the same caches
        assert (checkpoints.checkpoint_digest(straight(method), epoch) ==
                checkpoints.checkpoint_digest(killed, epoch))
        if method == "variational":
            np.testing.assert_array_equal(
                checkpoints.load_posterior(straight(method), epoch)[1],
                checkpoints.load_posterior(killed, epoch)[1])
    expected, got = (files.read_json(os.path.join(d, name)) for d in (straight(method), killed)
                     for name in ("metrics.json",))
    assert got["test/accuracy"] == expected["test/accuracy"]
    # the resumed epoch's scalars sum on from the saved ones
    for before, after in zip(*(files.read_json(os.path.join(d, "history.json"))
                               for d in (straight(method), killed))):
        assert after["train/loss"] == pytest.approx(before["train/loss"], rel=1e-12)
        assert after["train/running_accuracy"] == before["train/running_accuracy"]


def test_steps_per_loop_does_not_change_the_weights(tmp_path, mnist1d, monkeypatch):
    from uncertainty.train import trainer
    from uncertainty.train.train_config import TrainConfig
    from uncertainty.train.trainer import train

    config = TrainConfig.from_recipe("mnist1d", "cnn1d", 5, train_epochs=2, deterministic=True)
    for steps_per_loop in (1, 4, 1000):  # 27 steps an epoch: loops of 1, 4 + 3, all
        train(config, mnist1d, str(tmp_path / str(steps_per_loop)),
              steps_per_loop=steps_per_loop)
    # and saving inside the epochs after every host call (--checkpoint_every_seconds)
    saves = []
    monkeypatch.setattr(trainer._StepSaves, "save", lambda self, position, real=(
        trainer._StepSaves.save): saves.append(position.step) or real(self, position))
    train(config, mnist1d, str(tmp_path / "saving"), steps_per_loop=4,
          checkpoint_every_seconds=1e-9)
    assert saves == [4, 8, 12, 16, 20, 24] * 2  # not after the last: the epoch's own
    assert checkpoints.step_positions(str(tmp_path / "saving")) == []
    for epoch in (1, 2):
        for run in ("4", "1000", "saving"):
            np.testing.assert_array_equal(
                checkpoints.load_weights(str(tmp_path / "1"), epoch),
                checkpoints.load_weights(str(tmp_path / run), epoch))
    history = [files.read_json(str(tmp_path / n / "history.json")) for n in ("1", "4")]
    assert history[0][-1]["train/loss"] == pytest.approx(history[1][-1]["train/loss"],
                                                         rel=1e-12)


@pytest.mark.parametrize("dtype", ["mixed_bfloat16", "mixed_float16"])
def test_mixed_precision_trains_on_cpu_and_its_checkpoints_load_in_float32(
        tmp_path, mnist1d, dtype):
    from uncertainty.train.train_config import TrainConfig
    from uncertainty.train.trainer import train

    run_dir = str(tmp_path / dtype)
    config = TrainConfig.from_recipe("mnist1d", "cnn1d", 0, train_epochs=3, dtype=dtype)
    results = train(config, mnist1d, run_dir)
    losses = [h["train/loss"] for h in files.read_json(os.path.join(run_dir,
                                                                    "history.json"))]
    assert np.all(np.isfinite(losses)) and losses[-1] < 0.7 * losses[0]
    assert results["test/accuracy"] > 0.5  # chance is 0.1
    assert layout.read_config(run_dir)["dtype"] == dtype
    trained = checkpoints.restore(run_dir)
    assert all(w.dtype == tf.float32 for w in trained.weights)
    # its metrics are the float32 network's holding its weights, as analyses see it
    model = models.build("cnn1d", (40, 1), 10)
    model.set_weights(checkpoints.load_arrays(run_dir))
    logits = model.predict(mnist1d.read("test")[0], verbose=0)
    assert np.mean(logits.argmax(1) == mnist1d.labels("test")) == results["test/accuracy"]


def test_fit_sets_the_learning_rate_at_every_step():
    """Plain SGD on a linear softmax model against numpy gradient descent with the
    warm-up's per-step rates (0, then base x (step / 3) / 5 within the first epoch)."""
    import tf_keras as keras

    from uncertainty.train.loop import fit, make_optimizer
    from uncertainty.train.train_config import TrainConfig

    rng = np.random.default_rng(0)
    x = rng.normal(size=(3, 4, 5)).astype(np.float32)  # 3 steps of 4 examples
    y = rng.integers(0, 2, size=(3, 4)).astype(np.int32)
    config = TrainConfig.from_recipe("mnist1d", "cnn1d", 0, lr_schedule="imagenet_step",
                                     learning_rate=0.5, batch_size=4, train_epochs=1,
                                     optimizer="sgd", momentum=0.0)
    model = keras.Sequential([keras.layers.Dense(2, use_bias=False,
                                                 kernel_initializer="zeros")])
    model.build((None, 5))
    optimizer = make_optimizer("sgd", 0.5, momentum=0.0)
    history = fit(config, model, optimizer,
                  lambda epoch, ctx, first: tf.data.Dataset.from_tensor_slices((x, y)), 3,
                  steps_per_loop=2)
    weights = np.zeros((5, 2))
    for step, rate in enumerate([0.0, 0.5 * (1 / 3) / 5, 0.5 * (2 / 3) / 5]):
        logits = x[step] @ weights
        p = np.exp(logits - logits.max(1, keepdims=True))
        p /= p.sum(1, keepdims=True)
        weights -= rate * x[step].T @ (p - np.eye(2)[y[step]]) / 4
    np.testing.assert_allclose(model.get_weights()[0], weights, rtol=1e-5, atol=1e-7)
    assert history[0]["learning_rate"] == pytest.approx(0.5 * (2 / 3) / 5)


def test_dry_run_measures_at_most_an_epoch_and_writes_nothing(mnist1d, tmp_path,
                                                               monkeypatch):
    from uncertainty.train.train_config import TrainConfig
    from uncertainty.train.trainer import measure_throughput

    monkeypatch.chdir(tmp_path)
    config = TrainConfig.from_recipe("mnist1d", "cnn1d", 0, sample_with_replacement=False,
                                     train_epochs=7)
    report = measure_throughput(config, mnist1d, steps=1000)
    assert report["steps_per_epoch"] == report["measured_steps"] == 3500 // 128
    assert report["total_steps"] == 7 * 27 and report["steps_per_second"] > 0
    assert report["train_hours"] == pytest.approx(7 * 27 / report["steps_per_second"] / 3600)
    assert os.listdir(tmp_path) == []
