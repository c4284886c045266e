"""Standard checkpoints: the .npz layout is refused in one line, a checkpoint
exported as a SavedModel reloads elsewhere with the same logits, --eval_only."""

import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver
from conftest import load_binary, run_in_process

from uncertainty import models
from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, discovery, layout
from uncertainty.runs.predictions import RunPredictions

train_binary = load_binary("train")
flags.FLAGS(["pytest"])  # parse defaults once; tests override with flagsaver


@pytest.fixture(scope="module")
def run(runs):
    return os.path.join(runs, "seed0")


def test_a_run_of_the_npz_layout_is_refused_with_one_line(run, tmp_path):
    old = tmp_path / "old"
    (old / "checkpoints").mkdir(parents=True)
    files.write_bytes(str(old / "config.json"), files.read_bytes(os.path.join(run, "config.json")))
    np.savez(old / "checkpoints" / "init.npz", w000=np.zeros(3))
    config = files.read_json(os.path.join(run, "config.json"))
    same = {k: config[k] for k in ("dataset", "model", "seed", "train_epochs")}
    for call in (lambda: checkpoints.epochs(str(old)),
                 lambda: discovery.check_runs([str(old), run])):
        with pytest.raises(UserError, match="holds .npz checkpoints, a run layout this "
                                            "library does not read; train the run again"):
            call()
    with flagsaver.flagsaver(output_dir=str(old), **same):
        with pytest.raises(UserError, match="holds .npz checkpoints"):
            train_binary.main(["train.py"])


@pytest.mark.slow
def test_export_reloads_in_a_fresh_process_with_the_same_logits(run, tmp_path, mnist1d,
                                                               capfd):
    exported = str(tmp_path / "model")
    code, lines = run_in_process(capfd, "export", f"--run_dir={run}",
                                 f"--output_dir={exported}", "--epoch=3")
    assert code == 0, lines
    inputs, outputs = str(tmp_path / "x.npy"), str(tmp_path / "logits.npy")
    np.save(inputs, mnist1d.read("test")[0].astype(np.float32))  # raw signals
    # A process that imports nothing of this project.
    code = ("import sys, numpy as np, tensorflow as tf; "
            "model = tf.saved_model.load(sys.argv[1]); "
            "np.save(sys.argv[3], model.serve(np.load(sys.argv[2]))['logits'].numpy())")
    subprocess.run([sys.executable, "-c", code, exported, inputs, outputs], check=True,
                   capture_output=True, cwd=str(tmp_path))
    np.testing.assert_allclose(np.load(outputs),
                               RunPredictions(run).checkpoint(mnist1d, "test", 3),
                               atol=1e-5)
    code, lines = run_in_process(capfd, "export", f"--run_dir={run}",
                                 f"--output_dir={exported}")
    assert code == 2 and len(lines) == 1 and "is not empty" in lines[0], lines


@pytest.mark.slow
def test_eval_only_scores_checkpoints_on_clean_and_corrupted_sets(run, mnist1d):
    from uncertainty import datasets

    with flagsaver.flagsaver(eval_only=True, output_dir=run, corruptions=["shift"],
                             intensities=["1", "3"], eval_epochs=["1", "4"]):
        train_binary.main(["train.py"])
    report = files.read_json(os.path.join(run, "eval.json"))
    assert sorted(report) == ["epoch_001", "epoch_004"]
    model = models.build("cnn1d", (40, 1), 10)
    for epoch in (1, 4):  # independently: Keras on raw inputs, numpy accuracy
        model.set_weights(checkpoints.load_arrays(run, epoch))
        scores = report[layout.checkpoint_name(epoch)]
        for key, name in (("test/accuracy", "mnist1d"),
                          ("test/accuracy_shift_3", "mnist1d_corrupted/shift_3")):
            data = datasets.load(name)
            logits = model.predict(data.read("test")[0], batch_size=256, verbose=0)
            assert scores[key] == pytest.approx(np.mean(logits.argmax(1) ==
                                                        data.labels("test")), abs=1e-12)
        assert scores["test/accuracy_mean_corrupted_all"] == pytest.approx(
            (scores["test/accuracy_shift_1"] + scores["test/accuracy_shift_3"]) / 2)
    with flagsaver.flagsaver(eval_only=True, output_dir=run, eval_epochs=["9"]):
        with pytest.raises(UserError, match=r"no checkpoints for epochs \[9\]"):
            train_binary.main(["train.py"])
