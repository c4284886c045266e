"""The whole paper pipeline at ImageNet shape on TFDS mock data: ResNet-50 trained a
few steps under the default and the Mirrored strategies (two replicas), checkpointed,
then similarity.py, subspace.py and ensemble.py with shift curves over
imagenet2012_corrupted. One subprocess (two logical CPUs must exist before
TensorFlow starts); the analyses run under the Mirrored strategy too."""

import json
import os
import subprocess
import sys

import pytest
from conftest import REPO

from uncertainty.infra import files
from uncertainty.runs import checkpoints, layout

pytestmark = pytest.mark.slow

PIPELINE = """
import json, os, sys
import tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
sys.path.insert(0, os.path.join(sys.argv[1], "tests"))
from absl import flags
from absl.testing import flagsaver
from conftest import load_binary, mock_tfds
from uncertainty import datasets
from uncertainty.cli import common_flags
from uncertainty.train.train_config import TrainConfig
from uncertainty.train.trainer import train

root, manual = sys.argv[2], sys.argv[3]
runs = os.path.join(root, "runs")
train_binary = load_binary("train")
binaries = {name: load_binary(name) for name in ("similarity", "subspace", "ensemble")}
flags.FLAGS(["pipeline"])
recipe = dict(train_epochs=2, batch_size=2, validation_examples=4)
with mock_tfds(8):
    # seed 0: two replicas of one image each
    data = datasets.load("imagenet2012", validation_examples=4, manual_dir=manual)
    mirrored = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
    config = TrainConfig.from_recipe("imagenet2012", "resnet50", 0, **recipe)
    report = {"mirrored": train(config, data, os.path.join(runs, "seed0"), mirrored,
                                eval_train=False)}
    # seed 1: the binary, default strategy
    with flagsaver.flagsaver(dataset="imagenet2012", model="resnet50", seed=1,
                             manual_dir=manual, output_dir=os.path.join(runs, "seed1"),
                             eval_train_split=False, **recipe):
        train_binary.main(["train.py"])
    # the analyses under the two-replica strategy (--strategy=mirrored would take only
    # this machine's one physical CPU)
    common_flags.strategy = lambda: mirrored
    common = dict(manual_dir=manual, prediction_batch_size=8)
    with flagsaver.flagsaver(runs=[runs], output_dir=os.path.join(root, "similarity"),
                             tsne_runs=2, **common):
        binaries["similarity"].main(["similarity.py"])
    for base, other in (("seed0", "seed1"), ("seed1", "seed0")):  # samples around each
        with flagsaver.flagsaver(base_run=os.path.join(runs, base),
                                 other_runs=[os.path.join(runs, other)], num_samples=1,
                                 methods=["random", "diagonal_gaussian"],
                                 num_checkpoints=2,
                                 output_dir=os.path.join(root, "subspace", base), **common):
            binaries["subspace"].main(["subspace.py"])
    with flagsaver.flagsaver(runs=[runs], subspace_dir=os.path.join(root, "subspace"),
                             corruptions=["glass_blur"], intensities=["5"],
                             compare_published=True,
                             output_dir=os.path.join(root, "ensemble"), **common):
        binaries["ensemble"].main(["ensemble.py"])
print(json.dumps(report))
"""


def test_resnet50_paper_pipeline_on_mock_imagenet(tmp_path):
    manual = tmp_path / "manual"
    manual.mkdir()
    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (manual / name).touch()
    done = subprocess.run([sys.executable, "-c", PIPELINE, REPO, str(tmp_path),
                           str(manual)], capture_output=True, text=True, cwd=REPO,
                          timeout=1200)
    assert done.returncode == 0, done.stderr[-3000:]
    report = json.loads(done.stdout.strip().splitlines()[-1])
    runs = [str(tmp_path / "runs" / f"seed{seed}") for seed in (0, 1)]

    # training: 4 training images, batch 2 -> 2 steps an epoch, 2 epochs, checkpoints
    # 0 (initialisation) to 2; the mirrored run has two replicas
    mirrored = report["mirrored"]
    assert mirrored["train/steps_per_epoch"] == 2 and mirrored["epochs"] == 2
    assert mirrored["test/num_examples"] == 8 and "train/accuracy" not in mirrored
    for run in runs:
        assert checkpoints.epochs(run) == [1, 2]
        config = layout.read_config(run)
        assert config["input_shape"] == [224, 224, 3] and config["num_classes"] == 1000
        metrics = layout.read_metrics(run)
        assert 0 <= metrics["test/accuracy"] <= 1 and "train/accuracy" not in metrics
        assert metrics["test/negative_log_likelihood"] > 0
    history = files.read_json(os.path.join(runs[0], layout.HISTORY))
    # the per-step warm-up: 2 steps an epoch, the last at lr x (0 + 1/2) / 5 in epoch 1,
    # lr = 0.1 x 2 / 256 (the recipe's 0.1 per 256 images at a global batch of 2)
    assert history[0]["learning_rate"] == pytest.approx(0.1 * 2 / 256 * (1 / 2) / 5,
                                                        rel=1e-6)

    # similarity: both trajectories' checkpoints compared in weight and function space
    similarity = files.read_json(tmp_path / "similarity" / "similarity.json")
    assert similarity["dataset"] == "imagenet2012" and similarity["runs"] == runs
    for run in runs:
        assert similarity["trajectories"][run]["epochs"] == [1, 2]
    assert 0 <= similarity["js_divergence"]["trajectory_mean"]

    # subspace: an isotropic and a checkpoint-moment sampler around seed 0 (every
    # sampler is tested on smaller models), batch norm re-estimated
    subspace = files.read_json(tmp_path / "subspace" / "seed0" / "subspace.json")
    assert subspace["dataset"] == "imagenet2012" and subspace["batchnorm"] == "reestimated"
    assert {s["method"] for s in subspace["samples"]} == {"random", "diagonal_gaussian"}
    assert all(0 <= s["accuracy"] <= 1 for s in subspace["samples"])

    # ensembles with shift curves over ImageNet-C, beside uncertainty-baselines' numbers
    ensemble = files.read_json(tmp_path / "ensemble" / "ensemble.json")
    assert ensemble["evaluation_sets"] == [
        "imagenet2012", "imagenet2012_corrupted/glass_blur_5"]
    pair = ensemble["metrics"]["independent"]["2"]
    for key in ("test/accuracy", "test/nll_glass_blur_5", "test/ece_glass_blur_5",
                "test/accuracy_mean_corrupted"):
        assert key in pair, sorted(pair)
    # glass_blur is one of the 15 standard types under ImageNet-C's name
    assert pair["test/accuracy_mean_5"] == pair["test/accuracy_glass_blur_5"]
    rows = [line.split() for line in
            (tmp_path / "ensemble" / "published.txt").read_text().splitlines()
            if line.startswith("uncertainty_baselines_imagenet")]
    # source, model, dataset, method, size, intensity, metric, published, ours, name
    single = [r for r in rows if r[3:7] == ["independent", "1", "0", "accuracy"]]
    assert len(single) == 1 and single[0][7] == "0.762"
    assert float(single[0][8]) == pytest.approx(
        ensemble["metrics"]["independent"]["1"]["test/accuracy"], abs=1e-4)
