"""tf.distribute: two replicas on two logical CPUs, and two workers on loopback."""

import json
import os
import signal
import socket
import subprocess
import sys

import pytest
from conftest import REPO

from uncertainty.infra import files
from uncertainty.runs import checkpoints, layout

pytestmark = pytest.mark.slow  # trains in subprocesses

MIRRORED = """
import json, sys
import numpy as np, tensorflow as tf
cpu = tf.config.list_physical_devices("CPU")[0]
tf.config.set_logical_device_configuration(cpu, [tf.config.LogicalDeviceConfiguration()] * 2)
import tf_keras as keras
from uncertainty import datasets, models
from uncertainty.core import seeding
from uncertainty.infra import distribute
from uncertainty.models import layers
from uncertainty.runs import checkpoints, predictions
from uncertainty.train.train_config import TrainConfig
from uncertainty.train.trainer import train
data = datasets.load("mnist1d")
strategy = tf.distribute.MirroredStrategy(["/cpu:0", "/cpu:1"])
config = TrainConfig.from_recipe("mnist1d", "cnn1d", 0, train_epochs=3, method=sys.argv[2])
results = train(config, data, sys.argv[1], strategy)
model = models.build("cnn1d", data.input_shape, 10)
model.set_weights(checkpoints.load_arrays(sys.argv[1]))
both = predictions.predict(model, data, "test", 96, strategy)  # 1000 % 96 != 0
one = predictions.predict(model, data, "test", 96)
# the analyses' path: every checkpoint through one network, one traced step and the
# test batches made once, under the strategy; each against the default strategy's
cached = predictions.RunPredictions(sys.argv[1], 96, strategy)
differences, traces = [], []
for epoch in (1, 2, 3):
    model.set_weights(checkpoints.load_arrays(sys.argv[1], epoch))
    alone = predictions.predict(model, data, "test", 96)
    differences.append(float(np.abs(cached.checkpoint(data, "test", epoch) - alone).max()))
    shared = [m for m in predictions._MODELS.values()]
    traces.append(predictions._STEPS[shared[0]][strategy].experimental_get_tracing_count())
# an MC-dropout pass on two sets under the strategy: the second set given the first's
# masks per replica, against both drawn from the layers' streams, and against Keras's
# own dropout
arrays = checkpoints.load_arrays(sys.argv[1])
sets = (data, datasets.load("mnist1d_corrupted/shift_1"))
given = [cached._compute(d, "test", lambda: arrays, None, (0.3, 5)) for d in sets]
predictions._DROPOUT_MASKS.clear()
predictions._MASK_BYTES = 0
drawn = [cached._compute(d, "test", lambda: arrays, None, (0.3, 5)) for d in sets]
# and Keras's own dropout on the two replicas, restarted from the pass's seed per set
def keras_dropout(self, inputs, training=None):
    return keras.layers.Dropout.call(self, inputs, training=True)
layers.Dropout.call = keras_dropout
with strategy.scope():
    reference = models.build("cnn1d", data.input_shape, 10, dropout_rate=0.3,
                             mc_dropout=True)
reference.set_weights(arrays)
keras_logits = []
for d in sets:
    for i, layer in enumerate(l for l in reference.layers if isinstance(l, layers.Dropout)):
        layer.reseed(seeding.integer(5, "mc_dropout_layer", i))
    keras_logits.append(predictions.predict(reference, d, "test", 96, strategy))
print(json.dumps({"mc_dropout_differences": [float(np.abs(a - b).max())
                                             for a, b in zip(given * 2, drawn + keras_logits)],
                  "mc_dropout_changes": float(np.abs(given[0] - both).max()),
                  "replicas": strategy.num_replicas_in_sync, "rows": len(both),
                  "line": distribute.describe("mirrored", strategy)["line"],
                  "max_difference": float(np.abs(both - one).max()),
                  "accuracy": results["test/accuracy"],
                  "steps": results["train/steps_per_epoch"],
                  "checkpoint_differences": differences, "networks": len(shared),
                  "traces": traces,
                  "kept_batches": type(predictions._PIPELINES[
                      (id(data), "test", 96, id(strategy))][2]).__name__}))
"""


@pytest.mark.parametrize("method", ["deterministic", "variational"])
def test_mirrored_two_replicas_train_and_predict_in_order(tmp_path, method):
    result = subprocess.run([sys.executable, "-c", MIRRORED, str(tmp_path / "run"), method],
                            capture_output=True, text=True, cwd=REPO, timeout=600)
    assert result.returncode == 0, result.stderr[-2000:]
    report = json.loads(result.stdout.strip().splitlines()[-1])
    assert report["replicas"] == 2
    assert report["line"] == "strategy mirrored: 2 replicas on 2 x CPU"
    assert report["steps"] == 3500 // 128  # global batch, split over the replicas
    assert report["rows"] == 1000 and report["max_difference"] < 1e-5
    # RunPredictions under the strategy: one network, no retrace across the three
    # checkpoints, the test batches kept in memory, the default strategy's logits
    assert max(report["checkpoint_differences"]) < 1e-5
    assert report["networks"] == 1 and len(set(report["traces"])) == 1  # no retrace
    assert report["kept_batches"] == "list"
    assert report["mc_dropout_differences"] == [0.0, 0.0, 0.0, 0.0]
    assert report["mc_dropout_changes"] > 0.1
    assert report["accuracy"] > 0.5  # chance is 0.1
    assert checkpoints.epochs(str(tmp_path / "run")) == [1, 2, 3]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# What a worker prints when the port probed free was taken before its server bound it.
_PORT_TAKEN = ("Address already in use", "Failed to add port", "Failed to bind")


def _start_workers(run_dir: str, *args: str) -> list[subprocess.Popen]:
    workers = [f"127.0.0.1:{_free_port()}" for _ in range(2)]
    processes = []
    for index in range(2):
        tf_config = {"cluster": {"worker": workers}, "task": {"type": "worker", "index": index}}
        processes.append(subprocess.Popen(
            [sys.executable, os.path.join(REPO, "baselines", "train.py"),
             "--strategy=multi_worker", f"--output_dir={run_dir}", *args],
            env={**os.environ, "TF_CONFIG": json.dumps(tf_config)}, cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    return processes


def _run_workers(run_dir: str, *args: str):
    """Runs the two workers to the end and returns what each printed. Probing for free
    ports races with other processes; if a port was taken meanwhile, it starts again on
    new ports (up to three times)."""
    for _ in range(3):
        processes = _start_workers(run_dir, *args)
        outputs = [p.communicate(timeout=600) for p in processes]
        errors = [err for _, err in outputs]
        if all(p.returncode == 0 for p in processes):
            for err in errors:  # every worker's device line
                assert "strategy multi_worker: 2 replicas on this worker: 1 x CPU" in err
            return [json.loads(out) for out, _ in outputs]
        if not any(m in err for err in errors for m in _PORT_TAKEN):
            raise AssertionError(errors[0][-2000:] + errors[1][-2000:])
    raise AssertionError("no free ports for the workers after three tries")


# the other worker of a deterministic run, then the chief of a variational one
@pytest.mark.parametrize("lost,method", [(1, "deterministic"), (0, "variational")])
def test_a_lost_worker_stops_the_other_in_one_line_and_the_run_resumes(tmp_path, lost,
                                                                       method):
    """SIGKILL to one of two loopback workers after the chief's epoch 2: the other
    stops within a bounded time (TensorFlow's heartbeat timeout) with one line naming
    the lost task and exit 75. Losing the other worker, the chief records why it
    stopped; losing the chief (which writes the run and holds its lock), the same two
    commands resume from the checkpoints (those written kept byte for byte, not trained
    again) and finish one variational model on two replicas."""
    import time

    from conftest import own_lines

    run_dir = str(tmp_path / "run")
    args = ("--dataset=mnist1d", "--model=cnn1d", "--train_epochs=4", "--deterministic",
            f"--method={method}")
    for _ in range(3):  # a port taken between probe and bind: again on new ports
        processes = _start_workers(run_dir, *args)
        if any("epoch 2/4" in line for line in processes[0].stderr):
            break
        errors = [p.communicate()[1] for p in processes]
        if not any(m in err for err in errors for m in _PORT_TAKEN):
            raise AssertionError(errors[0][-2000:] + errors[1][-2000:])
    else:
        raise AssertionError("no free ports for the workers after three tries")
    processes[lost].send_signal(signal.SIGKILL)
    began = time.time()
    survivor = processes[1 - lost]
    rest = survivor.communicate(timeout=120)[1]
    waited = time.time() - began
    processes[lost].communicate()
    assert survivor.returncode == 75, rest[-2000:]
    assert waited < 60
    line = own_lines(rest)[-1]
    assert line.startswith(f"train.py: error: the multi_worker run lost "
                           f"/job:worker/replica:0/task:{lost} ("), line
    assert line.endswith("start every worker's command again to resume from the last "
                         "checkpoint") and "Traceback" not in rest
    assert not layout.is_complete(run_dir) and checkpoints.epochs(run_dir)[-1] < 4
    if lost == 1:  # the chief, which writes the run, records why it stopped
        status = layout.read_status(run_dir)
        assert status["state"] == "interrupted" and "lost" in status["reason"]
        assert not os.path.exists(os.path.join(run_dir, ".lock"))
        return
    written = {e: checkpoints.checkpoint_digest(run_dir, e)
               for e in checkpoints.epochs(run_dir)}
    assert 2 in written

    printed = _run_workers(run_dir, *args)
    assert printed[0]["test/accuracy"] == printed[1]["test/accuracy"]  # one model
    assert checkpoints.epochs(run_dir) == [1, 2, 3, 4]
    assert {e: checkpoints.checkpoint_digest(run_dir, e) for e in written} == written
    assert [h["epoch"] for h in files.read_json(os.path.join(run_dir, "history.json"))] == [
        1, 2, 3, 4]
    assert layout.read_status(run_dir)["state"] == "complete"
    assert files.read_json(os.path.join(run_dir, "metrics.json"))["test/num_examples"] == 1000
    assert layout.read_config(run_dir)["devices"]["replicas"] == 2
    assert layout.method(run_dir) == "variational"
