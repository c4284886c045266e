"""All I/O through tf.io.gfile: the files helpers, and the whole pipeline (training,
similarity, subspace, ensemble) with every run and output on ram:// and nothing
written to local disk."""

import os
import sys
import tempfile
import uuid

import numpy as np
import pytest
import tensorflow as tf
from absl import flags
from absl.testing import flagsaver
from conftest import REPO, load_binary

from uncertainty.infra import files
from uncertainty.runs import checkpoints
from uncertainty.study import plots
from uncertainty.train import train_config, trainer

similarity_binary = load_binary("similarity")
subspace_binary = load_binary("subspace")
ensemble_binary = load_binary("ensemble")

FLAGS = flags.FLAGS
FLAGS(["pytest"])


def _ram(name: str) -> str:
    """A fresh folder on TensorFlow's in-memory filesystem."""
    return f"ram://{name}-{uuid.uuid4().hex[:8]}"


def test_helpers_round_trip_on_ram():
    root = _ram("helpers")
    path = os.path.join(root, "a", "b", "result.json")
    files.write_json(path, {"x": 1})
    files.write_json(path, {"x": 2})  # overwrites
    assert files.read_json(path) == {"x": 2}
    assert sorted(files.listdir(os.path.dirname(path))) == ["result.json", "result.json.sha256"]
    assert files.isdir(os.path.join(root, "a")) and not files.isdir(path)

    files.write_npz(os.path.join(root, "a", "arrays.npz"), w=np.arange(5.0), name="run")
    with files.read_npz(os.path.join(root, "a", "arrays.npz")) as saved:
        np.testing.assert_array_equal(saved["w"], np.arange(5.0))
        assert str(saved["name"]) == "run" and "missing" not in saved
    files.write_text(os.path.join(root, "notes.txt"), "hello\n")
    assert files.read_bytes(os.path.join(root, "notes.txt")) == b"hello\n"
    files.write_bytes(os.path.join(root, "a", "one.npy"), b"\x93NUMPY")

    assert files.glob(os.path.join(root, "a", "*.np?")) == [
        os.path.join(root, "a", "arrays.npz"), os.path.join(root, "a", "one.npy")]
    assert files.find(root, "result.json") == [path]
    files.remove(path)
    assert not files.exists(path)
    assert files.normpath("ram://x/runs/seed0/") == "ram://x/runs/seed0"


def test_failed_write_keeps_the_old_file_and_no_temporary():
    root = _ram("failed")
    path = os.path.join(root, "grid.npz")
    files.write_npz(path, v=np.zeros(3))

    def broken(f):
        f.write(b"partial")
        raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        files.write_atomically(path, broken, mode="wb")
    assert files.listdir(root) == ["grid.npz"]
    with files.read_npz(path) as saved:
        np.testing.assert_array_equal(saved["v"], np.zeros(3))


def test_object_store_writes_in_place_without_a_temporary(monkeypatch, tmp_path):
    # a local folder stands in for an object store with atomic uploads (gs://, s3://);
    # ram:// cannot: it appends to a file opened for writing
    root = str(tmp_path / "bucket")
    monkeypatch.setattr(files, "ATOMIC_UPLOADS", (root,))
    renamed = []
    monkeypatch.setattr(files.gfile, "rename", lambda *a, **k: renamed.append(a))
    path = os.path.join(root, "result.json")
    files.write_json(path, {"x": 1})
    files.write_json(path, {"x": 22})
    files.write_npz(os.path.join(root, "grid.npz"), v=np.arange(3.0))
    assert renamed == []
    assert files.read_json(path) == {"x": 22}  # checked against its new sidecar
    assert sorted(files.listdir(root)) == ["grid.npz", "result.json", "result.json.sha256"]


def test_figure_is_written_to_ram():
    import matplotlib.pyplot as plt

    path = os.path.join(_ram("figure"), "plot.png")
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    plots.save(fig, path)
    assert files.read_bytes(path).startswith(b"\x89PNG")


# --- the pipeline on ram:// -------------------------------------------------------------

# Where this process could leave files on local disk, other than pytest's own folders:
# the repo, the home directory (its data, caches and toolchains aside) and the temporary
# folder (redirected to a private one: /tmp itself is shared with other processes).
_HOME_SKIPPED = {"tensorflow_datasets", ".cache", ".pyenv", ".rustup", ".cargo", ".npm",
                 ".m2", ".claude"}
_NEVER = ("__pycache__", ".pytest_cache", ".git", "__autograph_generated_file")


def _snapshot(*roots) -> set[str]:
    found = set()
    for root in roots:
        for parent, folders, names in os.walk(root):
            folders[:] = [d for d in folders if not d.startswith(_NEVER) and not (
                parent == os.path.expanduser("~") and d in _HOME_SKIPPED)]
            found |= {os.path.join(parent, n) for n in names if not n.startswith(_NEVER)
                      and not n.endswith(".pyc")}
    return found


class _LocalWrites:
    """Records the local files Python code opens for writing, creates, moves or deletes
    (audit events; TensorFlow's C++ I/O does not raise them, the snapshots see that)."""

    active = None  # the list being recorded into, or None
    _EVENTS = {"os.mkdir", "os.rename", "os.replace", "os.remove", "os.rmdir",
               "os.truncate", "shutil.copyfile", "shutil.move", "shutil.rmtree",
               "tempfile.mkstemp", "tempfile.mkdtemp"}
    _WRITE = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC

    @classmethod
    def hook(cls, event, args):
        if cls.active is None or not (event == "open" or event in cls._EVENTS):
            return
        if event == "open":
            path, mode, flags_ = (tuple(args) + (None, None))[:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or (
                isinstance(flags_, int) and flags_ & cls._WRITE)
            if not writes:
                return
        else:
            path = args[0] if args else None
        if isinstance(path, bytes):
            path = path.decode(errors="replace")
        if not isinstance(path, str) or path.startswith("/dev/") or any(
                part in path for part in _NEVER) or path.endswith(".pyc") or (
                event == "open" and os.path.isdir(path)):  # a NamedTemporaryFile's
            return  # folder, opened with its name through an `opener` (seen next)
        cls.active.append((event, path))


sys.addaudithook(_LocalWrites.hook)


@pytest.mark.slow
def test_pipeline_reads_and_writes_only_ram(mnist1d, monkeypatch, tmp_path):
    import sklearn.manifold  # noqa: F401 (similarity's lazy import, before the snapshot)

    from uncertainty import datasets

    # Data are prepared once as TFDS datasets under TFDS's data_dir (local here, any
    # filesystem TFDS reads elsewhere); the runs and every output below go to ram://.
    datasets.load("mnist1d_corrupted/shift_1")

    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setenv("TMPDIR", str(scratch))
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    roots = [REPO, os.path.expanduser("~"), str(scratch)]
    before = _snapshot(*roots)
    root = _ram("pipeline")
    runs, subspace_dir = os.path.join(root, "runs"), os.path.join(root, "subspace")
    recorded = _LocalWrites.active = []
    try:
        for seed in range(2):
            config = train_config.TrainConfig.from_recipe("mnist1d", "cnn1d", seed,
                                                      train_epochs=2)
            trainer.train(config, mnist1d, os.path.join(runs, f"seed{seed}"))
        with flagsaver.flagsaver(runs=[runs], split="test", tsne_runs=2,
                                 output_dir=os.path.join(root, "similarity")):
            similarity_binary.main(["similarity.py"])
        for seed in range(2):
            with flagsaver.flagsaver(base_run=os.path.join(runs, f"seed{seed}"),
                                     other_runs=[runs], methods=["dropout", "weight_average"],
                                     num_samples=2, num_checkpoints=2,
                                     output_dir=os.path.join(subspace_dir, f"seed{seed}")):
                subspace_binary.main(["subspace.py"])
        with flagsaver.flagsaver(runs=[runs], subspace_dir=subspace_dir,
                                 corruptions=["shift"], intensities=["1"],
                                 compare_published=True,
                                 output_dir=os.path.join(root, "ensemble")):
            ensemble_binary.main(["ensemble.py"])
    finally:
        _LocalWrites.active = None

    run = os.path.join(runs, "seed0")
    assert checkpoints.recover(run, set_aside=False) == 2  # a resume finds its checkpoints
    expected = [os.path.join(run, name) for name in (
        "config.json", "history.json", "metrics.json", "checkpoints/checkpoint",
        "checkpoints/ckpt-0.index", "checkpoints/ckpt-2.index")]
    expected += [os.path.join(root, "similarity", name) for name in (
        "similarity.json", "trajectory_seed0.png", "independent.png", "tsne.png")]
    expected += [os.path.join(subspace_dir, "seed1", name) for name in (
        "subspace.json", "diversity_accuracy.png")]
    expected += [os.path.join(root, "ensemble", name) for name in (
        "ensemble.json", "table.txt", "published.txt")]
    assert [path for path in expected if not tf.io.gfile.exists(path)] == []
    assert files.glob(os.path.join(run, "summaries", "events.out.tfevents.*"))
    assert files.glob(os.path.join(run, "predictions", "mnist1d", "test", "*.npz"))
    result = files.read_json(os.path.join(root, "ensemble", "ensemble.json"))
    assert result["methods"] == ["dropout", "weight_average"]
    assert result["evaluation_sets"] == ["mnist1d", "mnist1d_corrupted/shift_1"]

    assert recorded == [], recorded
    assert sorted(_snapshot(*roots) - before) == []
