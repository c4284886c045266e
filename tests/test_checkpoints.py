"""Standard checkpoints: runs of the older .npz format still read the same, a checkpoint
exported as a SavedModel reloads elsewhere with the same logits, --eval_only."""

import os
import subprocess
import sys

import numpy as np
import pytest
from absl import flags
from absl.testing import flagsaver

from conftest import load_binary, run_binary
from uncertainty import UserError, files, models, trajectory
from uncertainty.predictions import RunPredictions

train_binary = load_binary("train")
flags.FLAGS(["pytest"])  # parse defaults once; tests override with flagsaver


@pytest.fixture(scope="module")
def run(runs):
    return os.path.join(runs, "seed0")


def _as_legacy(run: str, legacy: str) -> str:
    """Writes `run` in the layout of earlier versions, by hand: config.json without the
    derived fields, normalizer.npz, and checkpoints/{init,epoch_NNN}.npz holding the
    model's weights after the normaliser (names, trainable flags, w000, ...)."""
    os.makedirs(os.path.join(legacy, "checkpoints"))
    config = files.read_json(os.path.join(run, "config.json"))
    for field in trajectory.DERIVED_FIELDS:
        del config[field]
    files.write_json(os.path.join(legacy, "config.json"), config)
    for name in ("metrics.json", "history.json"):
        files.write_bytes(os.path.join(legacy, name), files.read_bytes(os.path.join(run, name)))
    for epoch in [0] + trajectory.epochs(run):
        model = trajectory.restore(run, epoch)
        shift, scale, *weights = model.weights
        trainable = {id(w) for w in model.trainable_weights}
        np.savez(os.path.join(legacy, "checkpoints", f"{trajectory.checkpoint_name(epoch)}.npz"),
                 names=np.array([w.name for w in weights]),
                 trainable=np.array([id(w) in trainable for w in weights]),
                 **{f"w{i:03d}": w.numpy() for i, w in enumerate(weights)})
    np.savez(os.path.join(legacy, "normalizer.npz"), shift=shift.numpy(), scale=scale.numpy())
    return legacy


@pytest.mark.slow
def test_runs_of_the_npz_format_read_as_before(run, tmp_path, mnist1d):
    legacy = _as_legacy(run, str(tmp_path / "legacy"))
    assert trajectory.is_legacy(legacy) and not trajectory.is_legacy(run)
    assert trajectory.epochs(legacy) == trajectory.epochs(run) == [1, 2, 3, 4]
    for epoch in (0, 2, 4):
        for old, new in zip(trajectory.load_arrays(legacy, epoch),
                            trajectory.load_arrays(run, epoch), strict=True):
            np.testing.assert_array_equal(old, new)
    assert trajectory.model_shape(legacy) == trajectory.model_shape(run) == ((40, 1), 10)
    assert trajectory.identity(legacy) == trajectory.identity(run)
    np.testing.assert_array_equal(RunPredictions(legacy).checkpoint(mnist1d, "test"),
                                  RunPredictions(run).checkpoint(mnist1d, "test"))
    # train.py on a finished legacy run reports it; an unfinished one is refused.
    config = files.read_json(os.path.join(run, "config.json"))
    same = {k: config[k] for k in ("dataset", "model", "seed", "train_epochs")}
    with flagsaver.flagsaver(output_dir=legacy, **same):
        train_binary.main(["train.py"])
    os.remove(os.path.join(legacy, "metrics.json"))
    with flagsaver.flagsaver(output_dir=legacy, **same):
        with pytest.raises(UserError, match="cannot be resumed; train it again"):
            train_binary.main(["train.py"])


@pytest.mark.slow
def test_export_reloads_in_a_fresh_process_with_the_same_logits(run, tmp_path, mnist1d):
    exported = str(tmp_path / "model")
    result = run_binary("export", f"--run_dir={run}", f"--output_dir={exported}",
                        "--epoch=3")
    assert result.returncode == 0, result.stderr[-2000:]
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
    again = run_binary("export", f"--run_dir={run}", f"--output_dir={exported}")
    assert again.returncode == 2 and "is not empty" in again.stderr


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
        model.set_weights(trajectory.load_arrays(run, epoch))
        scores = report[trajectory.checkpoint_name(epoch)]
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
