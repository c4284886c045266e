"""run_scripts/paper_scale.sh: its dry run measures a real throughput and states the
study's steps and ETA; every command it plans is accepted by its binary's flags."""

import json
import os
import shlex
import subprocess
import sys

import pytest
from conftest import REPO, own_lines

SCRIPT = os.path.join(REPO, "run_scripts", "paper_scale.sh")
STUDIES = ("cifar10_small_cnn", "cifar10_medium_cnn", "cifar10_resnet20_v1",
           "cifar100_resnet20_v1", "imagenet2012_resnet50", "mnist1d_cnn1d")


def _script(*args, **env):
    return subprocess.run(["bash", SCRIPT, *args], capture_output=True, text=True,
                          cwd=REPO, env={**os.environ, **env}, timeout=600)


@pytest.mark.slow
def test_dry_run_states_steps_and_eta_from_a_measured_throughput():
    done = _script("mnist1d_cnn1d", DRY_RUN="1", STEPS="5", NUM_RUNS="3",
                   STRATEGY="default")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    end = lines.index("}") + 1  # the report, then the device, learning-rate and ETA lines
    report = json.loads("\n".join(lines[:end]))
    assert lines[end:end + 2] == ["strategy default: 1 replica on 1 x CPU",
                                  "learning rate 0.003 at a global batch of 128 (base 0.003 "
                                  "per 128 images)"]
    # MNIST-1D: 3,500 training signals, batch 128 -> 27 steps, 30 epochs
    assert report["steps_per_epoch"] == 27 and report["total_steps"] == 810
    assert report["measured_steps"] == 5 and report["steps_per_second"] > 0
    hours = 810 / report["steps_per_second"] / 3600
    assert report["train_hours"] == pytest.approx(hours)
    assert lines[-1].startswith("mnist1d cnn1d: 3 runs x 30 epochs x 27 steps of 128 = "
                                "2,430 steps; at the measured ")
    seconds = report["train_hours"] * 3600  # seconds under a minute, else minutes

    def duration(s):
        return f"{s:.0f} s" if s < 60 else f"{s / 60:.1f} min"

    assert (f"about {duration(3 * seconds)} of training ({duration(seconds)} a run)"
            in lines[-1])


@pytest.mark.slow
def test_dry_run_of_two_mirrored_replicas_on_logical_cpus():
    """The accelerator path on this machine: two replicas mirrored over two logical CPU
    devices, the global batch from --per_core_batch_size and the learning rate from it
    (3e-3 per 128 signals at 2 x 32 = 64: 1.5e-3)."""
    done = _script("mnist1d_cnn1d", "--logical_cpus=2", "--allow_cpu_fallback",
                   "--per_core_batch_size=32", DRY_RUN="1", STEPS="3", STRATEGY="mirrored")
    assert done.returncode == 0, done.stderr[-2000:]
    lines = done.stdout.strip().splitlines()
    end = lines.index("}") + 1
    report = json.loads("\n".join(lines[:end]))
    assert report["replicas"] == 2 and report["batch_size"] == 64
    assert report["config"]["learning_rate"] == pytest.approx(1.5e-3)
    assert report["devices"]["line"] == "strategy mirrored: 2 replicas on 2 x CPU"
    assert lines[end:end + 2] == ["strategy mirrored: 2 replicas on 2 x CPU",
                                  "learning rate 0.0015 at a global batch of 64 (base 0.003 "
                                  "per 128 images)"]
    assert "strategy mirrored: 2 replicas on 2 x CPU" in done.stderr  # the binary's log


@pytest.mark.slow
def test_mirrored_without_a_gpu_is_one_line():
    done = _script("mnist1d_cnn1d", DRY_RUN="1", STEPS="3", STRATEGY="mirrored")
    assert done.returncode == 2 and not done.stdout
    lines = own_lines(done.stderr)
    assert len(lines) == 1, lines
    assert lines[0].startswith("train.py: error: --strategy=mirrored found no GPU (devices: 1 x "
                           "CPU); install TensorFlow's CUDA build")


def _planned(study, **env):
    done = _script(study, "--train_epochs=3", PRINT_ONLY="1", DATA_DIR="/data/tfds", **env)
    assert done.returncode == 0, done.stderr
    return [shlex.split(line) for line in done.stdout.strip().splitlines()]


# Parses each binary's commands with that binary's flags alone, as its own process would
# have them, for every binary in one process: before loading a binary, the flags the
# binaries and common_flags defined are removed and common_flags' groups made definable
# again.
CHECK_FLAGS = """
import json, sys
from absl import flags
from uncertainty.cli import binaries, common_flags
FLAGS = flags.FLAGS
for name, argvs in json.loads(sys.argv[1]).items():
    for flag in list(FLAGS):
        module = FLAGS.find_module_defining_flag(flag)
        if module == common_flags.__name__ or module.startswith("binary_"):
            delattr(FLAGS, flag)
    for group in vars(common_flags).values():
        if hasattr(group, "cache_clear"):
            group.cache_clear()
    sys.modules.pop(f"binary_{name}", None)
    binaries.load(name)
    for argv in argvs:
        FLAGS.unparse_flags()
        FLAGS(argv)  # raises on an unknown flag or a bad value
    print(name, len(argvs))
"""


@pytest.mark.slow
def test_every_planned_command_parses(tmp_path):
    commands = _planned("imagenet2012_resnet50", STRATEGY="tpu", TPU="my-tpu",
                        MANUAL_DIR="/data/imagenet")
    binaries = [os.path.basename(c[1]).removesuffix(".py") for c in commands]
    assert binaries == ["train"] * 5 + ["similarity"] + ["subspace"] * 6 + [
        "ensemble"] + ["cross_section"] * 2
    for command in commands:
        assert "--strategy=tpu" in command and "--tpu=my-tpu" in command
        assert "--manual_dir=/data/imagenet" in command and "--data_dir=/data/tfds" in command
    assert all("--noeval_train_split" in c and "--train_epochs=3" in c for c in commands[:5])
    assert not any("--train_epochs=3" in c for c in commands[5:])  # train.py's only
    assert "--corruptions=all" in commands[12] and "--compare_published" in commands[12]
    by_binary = {b: [c[1:] for c, name in zip(commands, binaries) if name == b]
                 for b in sorted(set(binaries))}
    done = subprocess.run([sys.executable, "-c", CHECK_FLAGS, json.dumps(by_binary)],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines() == [f"{b} {len(a)}" for b, a in by_binary.items()]


@pytest.mark.parametrize("study", STUDIES)
def test_each_study_plans_training_then_every_analysis(study):
    commands = _planned(study, NUM_RUNS="2")
    binaries = [os.path.basename(c[1]) for c in commands]
    assert binaries == ["train.py"] * 2 + ["similarity.py"] + ["subspace.py"] * 3 + [
        "ensemble.py"] + ["cross_section.py"] * 2
    dataset = study.split("_", 1)[0]
    assert f"--dataset={dataset}" in commands[0]
    corruptions = "--corruptions=none" if dataset == "cifar100" else "--corruptions=all"
    assert corruptions in commands[6]


def test_multi_worker_non_chief_only_trains():
    tf_config = json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                            "task": {"type": "worker", "index": 1}})
    done = _script("cifar10_small_cnn", PRINT_ONLY="1", NUM_RUNS="2",
                   STRATEGY="multi_worker", TF_CONFIG=tf_config)
    lines = done.stdout.strip().splitlines()
    assert done.returncode == 0 and len(lines) == 3
    assert all("--strategy=multi_worker" in line for line in lines[:2])
    assert lines[2] == "trained; the chief runs the analyses"
    chief = json.dumps({"cluster": {"worker": ["a:1", "b:2"]},
                        "task": {"type": "worker", "index": 0}})
    done = _script("cifar10_small_cnn", PRINT_ONLY="1", NUM_RUNS="2",
                   STRATEGY="multi_worker", TF_CONFIG=chief)
    analyses = done.stdout.strip().splitlines()[2:]
    assert len(analyses) == 7 and all("--strategy=mirrored" in line for line in analyses)


def test_unknown_study_is_one_line():
    done = _script("cifar10_wrn")
    assert done.returncode == 2
    assert own_lines(done.stderr) == [
        f"{SCRIPT}: unknown study 'cifar10_wrn'; choose cifar10_small_cnn, "
        "cifar10_medium_cnn, cifar10_resnet20_v1, cifar100_resnet20_v1, "
        "imagenet2012_resnet50 or mnist1d_cnn1d"]
