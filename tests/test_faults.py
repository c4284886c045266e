"""Fault injection: divergence, damaged files of every kind the project writes, kills
during writes, concurrent writers, stale locks, offline data, full disks, progress.

Every case starts from a fresh copy of two real MNIST-1D runs and asserts the exit
status or the one-line message, and that no earlier good file changed.
"""

import hashlib
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import types

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver
from conftest import REPO, command_line, load_binary, made_once, run_in_process

from uncertainty.datasets import tfds_loader
from uncertainty.infra import files, locks, progress
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, discovery, layout

FLAGS = flags.FLAGS
train_binary = load_binary("train")
similarity_binary = load_binary("similarity")
subspace_binary = load_binary("subspace")
ensemble_binary = load_binary("ensemble")
cross_section_binary = load_binary("cross_section")
FLAGS(["pytest"])
pytestmark = pytest.mark.slow  # trains and analyses real runs

RUN_FLAGS = dict(dataset="mnist1d", model="cnn1d", train_examples=1000, train_epochs=2,
                 deterministic=True)
RUN_ARGS = command_line(RUN_FLAGS)


@pytest.fixture(scope="module")
def pristine(tmp_path_factory, worker_id):
    """Two finished runs (seeds 0 and 1) and a similarity analysis of them, made once
    per test session (tests read them; `work` is a copy to write in)."""
    with made_once(tmp_path_factory, worker_id, "pristine") as (root, made):
        if not made:
            for seed in (0, 1):
                with flagsaver.flagsaver(output_dir=str(root / "runs" / f"seed{seed}"),
                                         seed=seed, **RUN_FLAGS):
                    train_binary.main(["train.py"])
            with flagsaver.flagsaver(runs=[str(root / "runs")],
                                     output_dir=str(root / "similarity"), tsne_runs=2):
                similarity_binary.main(["similarity.py"])
    return root


@pytest.fixture
def work(pristine, tmp_path):
    """A private copy of `pristine`, as a namespace of paths."""
    shutil.copytree(pristine, tmp_path / "w")
    root = tmp_path / "w"
    return types.SimpleNamespace(root=root, pristine=pristine, runs=str(root / "runs"),
                                 run=str(root / "runs" / "seed0"),
                                 other=str(root / "runs" / "seed1"),
                                 similarity=str(root / "similarity"))


def digests(directory) -> dict:
    """{relative path: SHA-256} of every file under `directory`."""
    found = {}
    for parent, _, names in os.walk(directory):
        for name in names:
            path = os.path.join(parent, name)
            with open(path, "rb") as f:
                found[os.path.relpath(path, directory)] = hashlib.sha256(f.read()).hexdigest()
    return found


def summary(work, directory=None) -> str:
    """similarity.json's summary, with the runs' folder written as ROOT (the copy's
    results name the pristine runs)."""
    found = files.read_json(os.path.join(directory or work.similarity, "similarity.json"))
    return json.dumps(found["summary"], sort_keys=True).replace(
        str(work.pristine), "ROOT").replace(str(work.root), "ROOT")


def fails(binary, **flag_values) -> str:
    """The one-line UserError message `binary.main` ends with under `flag_values`."""
    with flagsaver.flagsaver(**flag_values):
        with pytest.raises(UserError) as raised:
            binary.main(["binary.py"])
    message = str(raised.value)
    assert "\n" not in message
    return message


def train(run_dir, **extra):
    with flagsaver.flagsaver(output_dir=run_dir, **{**RUN_FLAGS, **extra}):
        train_binary.main(["train.py"])


def similarity(work, output_dir=None, **extra):
    with flagsaver.flagsaver(runs=[work.runs], output_dir=output_dir or work.similarity,
                             tsne_runs=2, **extra):
        similarity_binary.main(["similarity.py"])


def one_error_line(result: subprocess.CompletedProcess, binary: str, code: int = 2) -> str:
    assert result.returncode == code, result.stderr[-2000:]
    lines = [line for line in result.stderr.splitlines()
             if line.startswith(f"{binary}.py: error:")]
    assert len(lines) == 1, result.stderr[-2000:]
    return lines[0]


def cut(path, keep: float = 0.5) -> None:
    """Truncates the file at `path` to `keep` of its size."""
    with open(path, "rb") as f:
        data = f.read()
    with open(path, "wb") as f:
        f.write(data[:int(len(data) * keep)])


def flip(path, offset: int = -20) -> None:
    """Flips every bit of one byte of the file at `path` (at `offset`)."""
    data = bytearray(open(path, "rb").read())
    data[offset] ^= 0xFF
    open(path, "wb").write(bytes(data))


DAMAGE = {"truncated": cut, "empty": lambda p: cut(p, 0.0),
          "garbage": lambda p: open(p, "wb").write(os.urandom(300)), "bit_flip": flip}


# --- divergence ---------------------------------------------------------------------

def test_nan_loss_stops_the_run_with_exit_2_and_marks_it_failed(tmp_path, capfd):
    run_dir = str(tmp_path / "run")
    code, lines = run_in_process(capfd, "train", *RUN_ARGS, "--optimizer=sgd",
                                 "--learning_rate=1e20", f"--output_dir={run_dir}")
    assert code == 2 and len(lines) == 1, lines
    line = lines[0]
    assert line.startswith("train.py: error: ")
    assert "training diverged: the training loss was nan at step" in line
    assert "(epoch 1, step" in line and "lower --learning_rate" in line
    assert line.endswith("(the last good checkpoint, epoch 0, is kept; status.json marks "
                         "the run failed)")
    status = files.read_json(os.path.join(run_dir, "status.json"))
    assert status["state"] == "failed" and status["epoch"] == 1 and status["step"] >= 1
    # the initialisation is kept and verifies; nothing after it was saved
    assert checkpoints.epochs(run_dir) == []
    assert checkpoints.checkpoint_problem(run_dir, 0) is None
    assert not layout.is_complete(run_dir)


def test_loss_above_max_loss_stops_at_the_first_step_and_resume_keeps_the_run(tmp_path,
                                                                              pristine):
    run_dir = str(tmp_path / "run")
    message = fails(train_binary, output_dir=run_dir, max_loss=1.0, **RUN_FLAGS)
    assert "above --max_loss=1 at step 1 (epoch 1, step 1 of 7)" in message
    status = files.read_json(os.path.join(run_dir, "status.json"))
    assert status["state"] == "failed" and status["step"] == 1 and status["loss"] > 1.0
    with pytest.raises(UserError, match=f"{run_dir} failed in training \\(the training "
                                        f"loss was .* above --max_loss=1 at step 1"):
        discovery.check_runs([run_dir, str(pristine / "runs" / "seed1")])
    init = digests(os.path.join(run_dir, "checkpoints"))
    # the bound is not part of the run: without it the same run resumes and finishes
    train(run_dir)
    assert files.read_json(os.path.join(run_dir, "status.json"))["state"] == "complete"
    after = digests(os.path.join(run_dir, "checkpoints"))
    assert {k: after[k] for k in init if k.startswith("ckpt-0")} == {
        k: v for k, v in init.items() if k.startswith("ckpt-0")}


def test_analyses_refuse_a_failed_run_unless_asked(work, tmp_path):
    layout.write_status(work.other, "failed", reason="the training loss was nan")
    before = digests(work.root)
    message = fails(similarity_binary, runs=[work.runs], output_dir=str(tmp_path / "out"))
    assert f"{work.other} failed in training (the training loss was nan)" in message
    assert "--allow_failed_runs" in message
    assert digests(work.root) == before and not os.path.exists(tmp_path / "out")
    similarity(work, str(tmp_path / "out"), allow_failed_runs=True)
    assert os.path.exists(tmp_path / "out" / "similarity.json")


def analysis_flags(work, name: str, output_dir: str) -> tuple:
    """(binary, flags) running analysis `name` on the two runs into `output_dir`."""
    binary, values = {
        "similarity": (similarity_binary, dict(runs=[work.runs], tsne_runs=2)),
        "subspace": (subspace_binary, dict(base_run=work.run, other_runs=[work.runs],
                                           methods=["random"], num_samples=1,
                                           num_checkpoints=2)),
        "ensemble": (ensemble_binary, dict(runs=[work.runs], corruptions=["none"])),
        "cross_section": (cross_section_binary, dict(runs=[work.runs], grid_points=3,
                                                     path_points=3)),
    }[name]
    return binary, {**values, "output_dir": output_dir}


ANALYSES = ["similarity", "subspace", "ensemble", "cross_section"]


@pytest.mark.parametrize("name", ANALYSES)
def test_every_analysis_refuses_a_failed_run(work, tmp_path, name):
    layout.write_status(work.run, "failed", reason="the training loss was nan")
    before = digests(work.root)
    binary, values = analysis_flags(work, name, str(tmp_path / "out"))
    assert f"{work.run} failed in training" in fails(binary, **values)
    assert digests(work.root) == before and not os.path.exists(tmp_path / "out")


@pytest.mark.parametrize("name", ANALYSES)
def test_every_analysis_refuses_an_output_dir_another_process_writes(work, tmp_path,
                                                                     name):
    out = tmp_path / "out"
    binary, values = analysis_flags(work, name, str(out))
    with locks.hold(str(out)):
        (out / "kept.json").write_text("{}")
        message = fails(binary, **values)
        assert f"--output_dir {out} is being written by another process (pid " \
               f"{os.getpid()}" in message
        assert sorted(os.listdir(out)) == [locks.LOCK_NAME, "kept.json"]


# --- damaged checkpoints: resume trusts nothing ----------------------------------------

@pytest.mark.parametrize("damage,part", [("truncated", "data"), ("empty", "index"),
                                         ("bit_flip", "data")])
def test_damaged_last_checkpoint_is_set_aside_and_retrained(work, damage, part):
    weights = checkpoints.load_weights(work.run, 2)
    first = digests(os.path.join(work.run, "checkpoints"))
    path = [p for p in files.glob(layout.checkpoint_prefix(work.run, 2) + ".*")
            if part in os.path.basename(p)][0]
    DAMAGE[damage](path)
    assert checkpoints.checkpoint_problem(work.run, 2) is not None
    train(work.run)  # "complete" only if every checkpoint verifies: it is not
    assert checkpoints.checkpoint_problem(work.run, 2) is None
    np.testing.assert_array_equal(checkpoints.load_weights(work.run, 2), weights)
    after = digests(os.path.join(work.run, "checkpoints"))
    for name in ("ckpt-0.index", "ckpt-1.index", "ckpt-1.data-00000-of-00001"):
        assert after[name] == first[name]
    aside = [k for k in after if k.startswith("set_aside/")]
    assert any(k.endswith(os.path.basename(path)) for k in aside)
    assert files.read_json(os.path.join(work.run, "status.json"))["state"] == "complete"


def test_resume_verifies_the_newest_checkpoint_and_the_others_on_request(work):
    flip(layout.checkpoint_prefix(work.run, 1) + ".data-00000-of-00001", 200)
    assert checkpoints.recover(work.run, set_aside=False) == 2  # epoch 1 is not read
    assert checkpoints.recover(work.run, set_aside=False, verify_all=True) == 0
    flip(layout.checkpoint_prefix(work.run, 2) + ".data-00000-of-00001", 200)
    assert checkpoints.recover(work.run, set_aside=False) == 0  # walks back past 1


def test_truncated_middle_checkpoint_is_found_from_its_index(work):
    cut(layout.checkpoint_prefix(work.run, 1) + ".data-00000-of-00001", 0.5)
    assert checkpoints.recover(work.run, set_aside=False) == 0


def test_checkpoint_identity_is_recorded_at_write_and_read_from_the_index(work, monkeypatch):
    for epoch in (0, 1, 2):  # the SHA-1 of the checkpoint's files, in name order
        expected = hashlib.sha1()
        for path in sorted(files.glob(layout.checkpoint_prefix(work.run, epoch) + ".*")):
            expected.update(open(path, "rb").read())
        assert checkpoints.checkpoint_digest(work.run, epoch) == expected.hexdigest()
        assert files.exists(layout.digest_path(work.run, epoch))
    recorded = checkpoints.checkpoint_digest(work.run, 2)
    read = []
    monkeypatch.setattr(files, "read_bytes", lambda p: read.append(p) or open(p, "rb").read())
    assert checkpoints.checkpoint_digest(work.run, 2) == recorded
    assert [os.path.basename(p) for p in read] == ["ckpt-2", "ckpt-2.index"]
    monkeypatch.undo()
    # a record that does not describe the index there is not believed
    index = layout.checkpoint_prefix(work.run, 2) + ".index"
    flip(index)
    assert checkpoints.checkpoint_digest(work.run, 2) != recorded
    os.remove(layout.digest_path(work.run, 1))  # a run without records: computed
    expected = hashlib.sha1()
    for path in sorted(files.glob(layout.checkpoint_prefix(work.run, 1) + ".*")):
        expected.update(open(path, "rb").read())
    assert checkpoints.checkpoint_digest(work.run, 1) == expected.hexdigest()


def test_damaged_middle_checkpoint_retrains_from_the_last_sound_prefix(work):
    weights = [checkpoints.load_weights(work.run, e) for e in (1, 2)]
    flip(layout.checkpoint_prefix(work.run, 1) + ".data-00000-of-00001", 200)
    train(work.run, verify_checkpoints=True)
    for epoch, expected in zip((1, 2), weights):  # deterministic: the same trajectory
        np.testing.assert_array_equal(checkpoints.load_weights(work.run, epoch), expected)
    aside = files.glob(os.path.join(work.run, "checkpoints", "set_aside", "*", "ckpt-*"))
    assert sorted({os.path.basename(p).split(".")[0] for p in aside}) == ["ckpt-1", "ckpt-2"]


def test_garbage_checkpoint_state_file_is_set_aside(work):
    state = os.path.join(work.run, "checkpoints", "checkpoint")
    open(state, "w").write("model_checkpoint_path: {{{ not a proto")
    train(work.run)
    assert tf.train.latest_checkpoint(os.path.dirname(state)).endswith("ckpt-2")
    assert files.glob(os.path.join(work.run, "checkpoints", "set_aside", "*", "checkpoint"))


def test_analysis_of_a_damaged_checkpoint_names_it_and_the_fix(work, tmp_path):
    flip(layout.checkpoint_prefix(work.other, 2) + ".data-00000-of-00001", 100)
    shutil.rmtree(os.path.join(work.other, "predictions"))  # so it must be read
    before = digests(work.root)
    message = fails(similarity_binary, runs=[work.runs], output_dir=str(tmp_path / "out"))
    assert message.startswith(f"{layout.checkpoint_prefix(work.other, 2)} is damaged")
    assert f"re-run baselines/train.py with --output_dir={work.other}" in message
    assert digests(work.root) == before


# --- damaged JSON files ---------------------------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_damaged_config_is_one_line_for_training_and_analysis(work, damage, tmp_path):
    config = os.path.join(work.run, "config.json")
    DAMAGE[damage](config)
    before = digests(work.root)
    expected = f"{config} is damaged ("
    assert fails(train_binary, output_dir=work.run, **RUN_FLAGS).startswith(expected)
    message = fails(similarity_binary, runs=[work.runs], output_dir=str(tmp_path / "o"))
    assert message.startswith(expected) and "train the run again" in message
    assert digests(work.root) == before


def test_edited_config_fails_its_checksum(work):
    config = os.path.join(work.run, "config.json")
    saved = json.load(open(config))
    saved["learning_rate"] = 0.5  # valid JSON, not what the run was trained with
    open(config, "w").write(json.dumps(saved, indent=2, sort_keys=True))
    message = fails(train_binary, output_dir=work.run, **RUN_FLAGS)
    assert "does not match its checksum in config.json.sha256" in message
    result = subprocess.run(["sha256sum", "-c", "config.json.sha256"], cwd=work.run,
                            capture_output=True, text=True)
    assert result.returncode != 0 and "FAILED" in result.stdout


def test_damaged_metrics_are_computed_again(work):
    metrics_path = os.path.join(work.run, "metrics.json")
    expected = files.read_json(metrics_path)
    cut(metrics_path)
    train(work.run)
    assert files.read_json(metrics_path)["test/accuracy"] == expected["test/accuracy"]


def test_damaged_history_is_set_aside_when_resuming(work):
    # an unfinished run: its last epoch and metrics gone
    for path in files.glob(layout.checkpoint_prefix(work.run, 2) + ".*"):
        os.remove(path)
    os.remove(os.path.join(work.run, "metrics.json"))
    history = os.path.join(work.run, "history.json")
    DAMAGE["garbage"](history)
    train(work.run)
    assert os.path.exists(history + ".damaged")
    assert [h["epoch"] for h in files.read_json(history)] == [2]  # epoch 1's is lost
    assert layout.is_complete(work.run)


def test_damaged_subspace_json_names_the_command_that_remakes_it(work, tmp_path):
    subspace_dir = tmp_path / "subspace"
    with flagsaver.flagsaver(base_run=work.run, output_dir=str(subspace_dir / "seed0"),
                             methods=["random"], num_samples=1, num_checkpoints=2):
        subspace_binary.main(["subspace.py"])
    path = subspace_dir / "seed0" / "subspace.json"
    cut(path, 0.7)
    message = fails(ensemble_binary, runs=[work.runs], subspace_dir=str(subspace_dir),
                    methods=["random"], corruptions=["none"],
                    output_dir=str(tmp_path / "ensemble"))
    assert message.startswith(f"{path} is damaged (")
    assert f"run baselines/subspace.py again with --output_dir={path.parent}" in message


# --- damaged derived files are computed again -------------------------------------------

@pytest.mark.parametrize("damage", ["truncated", "empty", "garbage", "bit_flip"])
def test_damaged_prediction_cache_is_recomputed_with_a_log_line(work, damage, caplog):
    expected = summary(work)
    cache = files.find(os.path.join(work.run, "predictions"), "epoch_002.npz")[0]
    DAMAGE[damage](cache)
    caplog.set_level("INFO")
    similarity(work)
    assert any("the cache file is damaged" in r.getMessage() for r in caplog.records)
    assert summary(work) == expected
    with files.read_npz(cache) as saved:  # whole again
        assert saved["logits"].shape == (1000, 10)


def test_damaged_cross_section_grid_and_connector_are_computed_again(work, tmp_path, caplog):
    out = str(tmp_path / "cross")
    settings = dict(runs=[work.runs], output_dir=out, plane="independent", grid_points=3,
                    path_points=3, connect=True, connect_epochs=1)
    with flagsaver.flagsaver(**settings):
        cross_section_binary.main(["cross_section.py"])
    expected = files.read_json(os.path.join(out, "cross_section.json"))["summary"]
    for name in ("plane_grid.npz", "connector.npz"):
        cut(os.path.join(out, name))
    caplog.set_level("INFO")
    with flagsaver.flagsaver(**settings):
        cross_section_binary.main(["cross_section.py"])
    damaged = [r.getMessage() for r in caplog.records if "is damaged" in r.getMessage()]
    assert len(damaged) == 2
    assert files.read_json(os.path.join(out, "cross_section.json"))["summary"] == expected


# --- kills during writes ----------------------------------------------------------------

# Runs a binary with one kind of write replaced by a fault: SIGKILL halfway through
# writing the file named TARGET (its temporary copy; "file") or SIGTERM while writing it
# ("term"), or right
# after the checkpoint of epoch TARGET is saved with its data file cut in half (what a
# kill during the write leaves when the data was not yet flushed).
KILLER = """
import os, signal, sys, runpy
sys.path.insert(0, {repo!r})
kind, target, binary = sys.argv[1:4]
sys.argv = [binary] + sys.argv[4:]
stop = signal.SIGTERM if kind == "term" else signal.SIGKILL
if kind in ("file", "term"):
    from uncertainty.infra import files
    real = files.gfile
    class Half:
        def __init__(self, path, mode):
            self.file = real.GFile(path, mode)
        def write(self, content):
            # a kill cuts the write off; a stop request arrives while it is written
            self.file.write(content if stop == signal.SIGTERM else
                            content[:len(content) // 2]); self.file.flush()
            os.kill(os.getpid(), stop)
        def __enter__(self): return self
        def __exit__(self, *exc): self.file.close()
    def gfile(path, mode="r"):
        if "w" in mode and os.path.basename(path).endswith(target):
            return Half(path, mode)
        return real.GFile(path, mode)
    files.gfile = type("gfile", (), {{n: staticmethod(getattr(real, n)) for n in dir(real)
                                     if not n.startswith("_")}})
    files.gfile.GFile = staticmethod(gfile)
else:
    import tensorflow as tf
    save = tf.train.CheckpointManager.save
    def saved_then_killed(self, checkpoint_number=None, **kwargs):
        path = save(self, checkpoint_number=checkpoint_number, **kwargs)
        if checkpoint_number == int(target):
            data = path + ".data-00000-of-00001"
            content = open(data, "rb").read()
            open(data, "wb").write(content[:len(content) // 2])
            os.kill(os.getpid(), signal.SIGKILL)
        return path
    tf.train.CheckpointManager.save = saved_then_killed
runpy.run_path(binary, run_name="__main__")
"""


def killed(kind: str, target: str, binary: str, *args: str) -> subprocess.CompletedProcess:
    result = subprocess.run(
        [sys.executable, "-c", KILLER.format(repo=REPO), kind, target,
         os.path.join(REPO, "baselines", f"{binary}.py"), *args],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == -signal.SIGKILL, result.stderr[-2000:]
    return result


@pytest.mark.parametrize("target", ["similarity.json", "independent.png"])
def test_kill_while_writing_results_keeps_the_old_file_and_rerun_finishes(work, target):
    before, expected = digests(work.similarity), summary(work)
    killed("file", target, "similarity", f"--runs={work.runs}",
           f"--output_dir={work.similarity}", "--tsne_runs=2")
    assert digests(work.similarity)[target] == before[target]  # the old file, whole
    assert summary(work) == expected  # and the JSON checks out
    assert any(n.startswith(files.TMP_PREFIX) for n in os.listdir(work.similarity))
    assert os.path.exists(os.path.join(work.similarity, locks.LOCK_NAME))  # stale now
    similarity(work)  # takes the stale lock over, removes the leftovers
    assert sorted(os.listdir(work.similarity)) == sorted(before)
    assert summary(work) == expected


@pytest.mark.parametrize("target", ["epoch_001.npz", "independent.png", "similarity.json"])
def test_sigterm_while_writing_a_cache_figure_or_result_is_a_clean_stop(work, target):
    """SIGTERM halfway through writing a prediction cache, a figure or the result JSON:
    one line, exit 143, the lock released, no temporary file; the cache entry in
    progress is finished first, a figure or result is left as it was; the same command
    then finishes with the same summary."""
    before, expected = digests(work.similarity), summary(work)
    cache = files.find(os.path.join(work.other, "predictions"), "epoch_001.npz")[0]
    os.remove(cache)
    result = subprocess.run(
        [sys.executable, "-c", KILLER.format(repo=REPO), "term", target,
         os.path.join(REPO, "baselines", "similarity.py"), f"--runs={work.runs}",
         f"--output_dir={work.similarity}", "--tsne_runs=2"],
        capture_output=True, text=True, cwd=REPO, timeout=600)
    line = one_error_line(result, "similarity", code=143)
    assert line.startswith("similarity.py: error: stopped by SIGTERM; every file written "
                           "so far is whole")
    leftovers = [p for p in digests(work.root) if os.path.basename(p).startswith(
        files.TMP_PREFIX) or os.path.basename(p) == locks.LOCK_NAME]
    assert leftovers == []
    if target == "epoch_001.npz":
        with files.read_npz(cache) as saved:  # the entry in progress, written whole
            assert saved["logits"].shape == (1000, 10)
    else:
        assert digests(work.similarity)[target] == before[target]  # the old one, whole
    similarity(work)
    assert summary(work) == expected


def test_kill_while_writing_a_prediction_cache_then_rerun(work):
    cache = files.find(os.path.join(work.other, "predictions"), "epoch_001.npz")[0]
    os.remove(cache)
    killed("file", "epoch_001.npz", "similarity", f"--runs={work.runs}",
           f"--output_dir={work.similarity}", "--tsne_runs=2")
    assert not os.path.exists(cache)  # never half there
    similarity(work)
    with files.read_npz(cache) as saved:
        assert saved["logits"].shape == (1000, 10)


def test_kill_while_writing_history_then_resume_is_bit_identical(tmp_path, pristine):
    run_dir = str(tmp_path / "run")
    killed("file", "history.json", "train", *RUN_ARGS, f"--output_dir={run_dir}")
    assert checkpoints.epochs(run_dir) == []  # epoch 1's checkpoint comes after its history
    train(run_dir)
    for epoch in (0, 1, 2):
        np.testing.assert_array_equal(
            checkpoints.load_weights(run_dir, epoch),
            checkpoints.load_weights(str(pristine / "runs" / "seed0"), epoch))


def test_kill_while_saving_a_checkpoint_then_resume_is_bit_identical(tmp_path, pristine):
    run_dir = str(tmp_path / "run")
    killed("checkpoint", "2", "train", *RUN_ARGS, f"--output_dir={run_dir}")
    assert checkpoints.checkpoint_problem(run_dir, 2) is not None
    good = digests(run_dir)
    train(run_dir)
    after = digests(run_dir)
    for name in ("checkpoints/ckpt-1.index", "checkpoints/ckpt-1.data-00000-of-00001"):
        assert after[name] == good[name]
    np.testing.assert_array_equal(
        checkpoints.load_weights(run_dir, 2),
        checkpoints.load_weights(str(pristine / "runs" / "seed0"), 2))


def test_checkpoint_saved_but_not_recorded_gets_its_record_on_resume(work):
    """A stop between the last epoch's save and its identity's record (then the run was
    not yet complete): the resumed run records it, as an uninterrupted run has it."""
    record = layout.digest_path(work.run, 2)
    expected = files.read_bytes(record)
    files.remove(record)
    status = files.read_json(os.path.join(work.run, layout.STATUS))
    files.write_json(os.path.join(work.run, layout.STATUS),
                     {**status, "state": "interrupted"})
    train(work.run)
    assert files.read_bytes(record) == expected
    assert layout.is_complete(work.run)


def training_in_background(run_dir: str, epochs: int, blocked=()) -> subprocess.Popen:
    """train.py writing `run_dir` for `epochs` epochs, once its first epoch is done;
    started with the signals `blocked` in the mask it inherits."""
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "baselines", "train.py"), *RUN_ARGS,
         f"--train_epochs={epochs}", f"--output_dir={run_dir}"],
        cwd=REPO, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True,
        preexec_fn=(lambda: signal.pthread_sigmask(signal.SIG_BLOCK, blocked)) if blocked
        else None)
    if not any(f"epoch 1/{epochs}" in line for line in process.stderr):
        process.kill()
        process.wait()
        pytest.fail(f"train.py ended before its epoch 1 of {epochs}")
    return process


@pytest.mark.parametrize("signum,blocked", [
    (signal.SIGINT, False), (signal.SIGINT, True),
    (signal.SIGTERM, True)])  # blocked: in the mask inherited from the parent
def test_stop_request_ends_in_one_line_and_the_run_resumes(tmp_path, signum, blocked):
    run_dir = str(tmp_path / "run")
    process = training_in_background(run_dir, 40, (signum,) if blocked else ())
    process.send_signal(signum)
    rest = process.stderr.read()
    process.wait()
    line = one_error_line(subprocess.CompletedProcess([], process.returncode, "", rest),
                          "train", code=128 + signum)
    stopped = "interrupted" if signum == signal.SIGINT else "stopped by SIGTERM"
    where = re.match(rf"train.py: error: {stopped} in epoch (\d+)( \(it resumes at its "
                     r"step (\d) of 7\))?; every file written so far is whole: run the "
                     r"same command again", line)
    assert where, line
    assert "Traceback" not in rest
    assert not os.path.exists(os.path.join(run_dir, locks.LOCK_NAME))  # released
    done = checkpoints.epochs(run_dir)
    assert done and all(checkpoints.checkpoint_problem(run_dir, e) is None for e in done)
    status = layout.read_status(run_dir)
    assert status["state"] == "interrupted" and status["epochs_done"] == done[-1]
    assert status["signal"] == signal.Signals(signum).name
    assert int(where.group(1)) == done[-1] + 1
    # a stop inside the device loop saves the step it lands on; one in the epoch's
    # validation or save, none
    saved = [(done[-1], int(where.group(3)))] if where.group(3) else []
    assert checkpoints.step_positions(run_dir) == saved
    assert status.get("step") == (saved[0][1] if saved else None)


def test_a_deferred_stop_waits_for_its_block_and_a_second_one_does_not(monkeypatch):
    from uncertainty.infra import interrupts

    kept = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    monkeypatch.setattr(interrupts, "_requested", None)
    try:
        interrupts.install()
        with interrupts.deferred():
            signal.raise_signal(signal.SIGTERM)  # recorded only
            assert interrupts.requested() == signal.SIGTERM
            with pytest.raises(interrupts.Interrupted) as second:
                signal.raise_signal(signal.SIGINT)
        assert second.value.signal == signal.SIGINT
        with pytest.raises(interrupts.Interrupted):
            interrupts.check()  # after the block, the request stands
    finally:
        for signum, handler in kept.items():
            signal.signal(signum, handler)


@pytest.mark.parametrize("binary", ["train", "reproduce"])
def test_stop_request_during_start_up_is_a_clean_stop(tmp_path, binary):
    """SIGTERM a second after the start, while TensorFlow is still being imported: it
    is held until the binary runs, then stops it in one line with exit 143."""
    import time

    args = [*RUN_ARGS] if binary == "train" else ["--scale=tiny"]
    process = subprocess.Popen(
        [sys.executable, os.path.join(REPO, "baselines", f"{binary}.py"), *args,
         f"--output_dir={tmp_path / 'out'}"], cwd=REPO, stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL, text=True)
    time.sleep(1)
    process.send_signal(signal.SIGTERM)
    _, rest = process.communicate(timeout=120)
    line = one_error_line(subprocess.CompletedProcess([], process.returncode, "", rest),
                          binary, code=143)
    assert line == (f"{binary}.py: error: stopped by SIGTERM; every file written so far "
                    f"is whole: run the same command again to finish the work")
    assert not os.path.exists(tmp_path / "out")  # it stopped before writing anything


# --- one writer per directory ------------------------------------------------------------

def test_second_writer_is_refused_with_the_holder_named(tmp_path):
    run_dir = str(tmp_path / "run")
    process = training_in_background(run_dir, 200)
    try:
        before = digests(os.path.join(run_dir, "checkpoints"))
        message = fails(train_binary, output_dir=run_dir, **{**RUN_FLAGS,
                                                             "train_epochs": 200})
        assert f"--output_dir {run_dir} is being written by another process (pid " \
               f"{process.pid} on {socket.gethostname()}, since" in message
        assert "train.py --dataset=mnist1d" in message
        after = digests(os.path.join(run_dir, "checkpoints"))
        saved = [k for k in before if k.startswith("ckpt-")]  # not the state file
        assert saved and {k: after[k] for k in saved} == {k: before[k] for k in saved}
    finally:
        process.kill()
        process.wait()
        process.stderr.close()


def test_concurrent_analysis_into_one_output_dir_is_refused(work):
    with locks.hold(work.similarity):  # another writer, alive
        before = digests(work.similarity)
        message = fails(similarity_binary, runs=[work.runs], output_dir=work.similarity)
        assert f"is being written by another process (pid {os.getpid()} on" in message
        assert digests(work.similarity) == before
    assert not os.path.exists(os.path.join(work.similarity, locks.LOCK_NAME))


def test_lock_heartbeat_refreshes_and_yields_to_a_new_owner(tmp_path, monkeypatch, caplog):
    monkeypatch.setattr(locks, "HEARTBEAT_SECONDS", 0.05)
    path = tmp_path / locks.LOCK_NAME
    with locks.hold(str(tmp_path)):
        first = json.loads(path.read_text())["heartbeat"]
        time.sleep(0.5)
        assert json.loads(path.read_text())["heartbeat"] > first
        taken = dict(json.loads(path.read_text()), token="another process")
        path.write_text(json.dumps(taken))  # as if taken over
        caplog.set_level("WARNING")
        time.sleep(0.5)
        assert json.loads(path.read_text()) == taken  # not overwritten
    assert any("took this directory's lock over" in r.getMessage() for r in caplog.records)
    assert json.loads(path.read_text()) == taken  # and not removed: not ours


def dead_pid() -> int:
    process = subprocess.Popen(["true"])
    process.wait()
    return process.pid


@pytest.mark.parametrize("owner", ["dead_process", "silent_host", "unreadable"])
def test_stale_lock_is_taken_over(work, owner, caplog):
    lock = os.path.join(work.similarity, locks.LOCK_NAME)
    content = {"dead_process": dict(host=socket.gethostname(), pid=dead_pid(),
                                    start_time="1", since="then", heartbeat=time.time()),
               "silent_host": dict(host="elsewhere", pid=1, since="then",
                                   heartbeat=time.time() - locks.STALE_SECONDS - 1)}
    open(lock, "w").write(json.dumps(content[owner]) if owner in content else "{\"pi")
    caplog.set_level("WARNING")
    similarity(work)
    assert any("taking over a stale lock" in r.getMessage() for r in caplog.records)
    assert not os.path.exists(lock)


def test_live_lock_from_another_host_is_respected(work):
    lock = os.path.join(work.similarity, locks.LOCK_NAME)
    open(lock, "w").write(json.dumps(dict(host="elsewhere", pid=1, since="a minute ago",
                                          heartbeat=time.time(), command="similarity.py")))
    message = fails(similarity_binary, runs=[work.runs], output_dir=work.similarity)
    assert "(pid 1 on elsewhere, since a minute ago: similarity.py)" in message
    assert f"delete {lock}" in message


# --- offline, full disks --------------------------------------------------------------

def test_missing_data_offline_fails_in_seconds(tmp_path, monkeypatch):
    def offline(*args, **kwargs):
        raise socket.gaierror(-2, "Name or service not known")

    monkeypatch.setattr(socket, "create_connection", offline)
    tfds_loader._reachable.cache_clear()
    began = time.time()
    message = fails(train_binary, dataset="cifar10", model="small_cnn",
                    data_dir=str(tmp_path / "tfds"), output_dir=str(tmp_path / "run"))
    assert time.time() - began < 20
    assert message.startswith(f"cifar10 is not prepared under {tmp_path / 'tfds'}")
    assert "www.cs.toronto.edu, where TFDS downloads it from, cannot be reached" in message
    assert "put cifar-10-binary.tar.gz in <folder> and pass --manual_dir=<folder>" in message
    assert "tfds build cifar10 --file_format=array_record" in message
    assert not os.path.exists(tmp_path / "run")
    tfds_loader._reachable.cache_clear()


def test_reachability_probe_answers_within_its_timeout():
    began = time.time()
    assert not tfds_loader._reachable("https", "no-such-host.invalid", 443)
    assert time.time() - began < tfds_loader.PROBE_SECONDS + 2


class _DiskFull:
    """tf.io.gfile, whose GFile raises ENOSPC when writing a file named `name`."""

    def __init__(self, name):
        self.name = name

    def __getattr__(self, attribute):
        return getattr(tf.io.gfile, attribute)

    def GFile(self, path, mode="r"):  # noqa: N802 (gfile's name)
        if self.name in os.path.basename(path) and "w" in mode:
            raise OSError(28, "No space left on device")
        return tf.io.gfile.GFile(path, mode)


def test_disk_full_while_writing_results_keeps_the_old_file(work, monkeypatch):
    before = digests(work.similarity)
    monkeypatch.setattr(files, "gfile", _DiskFull("similarity.json"))
    message = fails(similarity_binary, runs=[work.runs], output_dir=work.similarity,
                    tsne_runs=2)
    assert message.startswith(f"cannot write {work.similarity}/similarity.json (No space "
                              f"left on device)")
    monkeypatch.undo()
    after = digests(work.similarity)
    assert sorted(after) == sorted(before)  # no temporary file left
    for name in ("similarity.json", "similarity.json.sha256"):
        assert after[name] == before[name]


def test_disk_full_while_saving_a_checkpoint_is_one_line_and_resumable(tmp_path,
                                                                       monkeypatch):
    run_dir = str(tmp_path / "run")
    save = tf.train.CheckpointManager.save

    def full(self, checkpoint_number=None, **kwargs):
        if checkpoint_number == 2:
            raise tf.errors.ResourceExhaustedError(None, None, "No space left on device")
        return save(self, checkpoint_number=checkpoint_number, **kwargs)

    monkeypatch.setattr(tf.train.CheckpointManager, "save", full)
    message = fails(train_binary, output_dir=run_dir, **RUN_FLAGS)
    assert message.startswith(f"cannot write the checkpoint of epoch 2 in {run_dir} (No "
                              f"space left on device)")
    assert checkpoints.epochs(run_dir) == [1]
    assert files.read_json(os.path.join(run_dir, "status.json"))["state"] == "training"
    monkeypatch.undo()
    train(run_dir)
    assert checkpoints.epochs(run_dir) == [1, 2] and layout.is_complete(run_dir)


# --- progress -------------------------------------------------------------------------

def test_training_logs_progress_with_rate_and_eta_and_can_be_silenced(tmp_path,
                                                                      monkeypatch, caplog):
    monkeypatch.setattr(progress, "LOG_SECONDS", 0.0)
    caplog.set_level("INFO")
    train(str(tmp_path / "a"), steps_per_loop=2)
    lines = [r.getMessage() for r in caplog.records if "steps (" in r.getMessage()]
    assert lines[-1].startswith("training a: 14/14 steps (100%), ")
    assert "steps/s" in lines[-1] and "ETA 00:00" in lines[-1] and len(lines) >= 4
    caplog.clear()
    monkeypatch.setattr(progress, "ENABLED", False)
    train(str(tmp_path / "b"))
    assert not [r for r in caplog.records if "steps (" in r.getMessage()]


def test_progress_clock_on_worked_values():
    # the progress lines' and reproduce.py's stage times: MM:SS, H:MM:SS from an hour
    assert progress.clock(5) == "00:05" and progress.clock(59.6) == "01:00"
    assert progress.clock(3599) == "59:59" and progress.clock(3725) == "1:02:05"


def test_progress_bar_on_a_terminal(monkeypatch):
    class Terminal:
        text = ""

        def isatty(self):
            return True

        def write(self, text):
            Terminal.text += text

        def flush(self):
            pass

    monkeypatch.setattr(sys, "stderr", Terminal())
    monkeypatch.setattr(progress, "BAR_SECONDS", 0.0)
    with progress.Progress(4, "grid", "point") as meter:
        for _ in range(4):
            meter.update()
    frames = [f for f in Terminal.text.split("\r") if f.strip()]
    assert frames[-1].startswith("grid: 100%") and "4/4" in frames[-1], frames
    assert any(f.startswith("grid:  50%") and "2/4" in f for f in frames), frames
    assert "point/s" in frames[-1]
    assert Terminal.text.endswith("\n")
