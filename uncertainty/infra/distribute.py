"""tf.distribute strategies by name, the devices they use, and who writes the outputs."""

import collections
import os
import re

import tensorflow as tf

from uncertainty.infra.errors import UserError, reason

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")
_GPU_BUILD = ("install TensorFlow's CUDA build (TF_EXTRA=gpu bash run_scripts/setup.sh, or "
              "pip install 'tensorflow[and-cuda]')")


def get_strategy(name: str, tpu: str | None = None, allow_cpu_fallback: bool = False
                 ) -> tf.distribute.Strategy:
    """default: one device; mirrored: all local GPUs (with no GPU, an error unless
    `allow_cpu_fallback`: then the local CPU devices); multi_worker: the cluster
    described by TF_CONFIG (an error without it); tpu: the TPU named by `tpu` ('' or
    'local' for a TPU VM)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        gpus = tf.config.list_logical_devices("GPU")
        if not gpus and not allow_cpu_fallback:
            raise UserError(f"--strategy=mirrored found no GPU (devices: {_found()}); "
                            f"{_GPU_BUILD}, or pass --allow_cpu_fallback to mirror over "
                            f"the CPU")
        return tf.distribute.MirroredStrategy(
            None if gpus else [d.name for d in tf.config.list_logical_devices("CPU")])
    if name == "multi_worker":
        if "TF_CONFIG" not in os.environ:
            raise UserError("--strategy=multi_worker needs TF_CONFIG in every worker's "
                            "environment, JSON like {\"cluster\": {\"worker\": "
                            "[\"host:port\", ...]}, \"task\": {\"type\": \"worker\", "
                            "\"index\": 0}}; for one machine use --strategy=mirrored")
        try:
            return tf.distribute.MultiWorkerMirroredStrategy()
        except (ValueError, KeyError, TypeError) as e:
            raise UserError(f"TF_CONFIG does not describe a cluster ({e}); set it to JSON "
                            f"like {{\"cluster\": {{\"worker\": [\"host:port\", ...]}}, "
                            f"\"task\": {{\"type\": \"worker\", \"index\": 0}}}}") from None
    if name == "tpu":
        try:
            resolver = tf.distribute.cluster_resolver.TPUClusterResolver(tpu=tpu or "")
            tf.config.experimental_connect_to_cluster(resolver)
            tf.tpu.experimental.initialize_tpu_system(resolver)
        except (ValueError, RuntimeError, OSError, tf.errors.OpError) as e:
            # OSError: the resolver's metadata lookup (urllib's URLError) off Cloud TPU
            raise UserError(f"no TPU found for --tpu={tpu!r} ({reason(e)}); "
                            f"pass the TPU's name or address, or another --strategy") from None
        return tf.distribute.TPUStrategy(resolver)
    raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


def split_cpu(count: int) -> None:
    """Makes the CPU `count` logical devices (before TensorFlow's runtime starts)."""
    cpu = tf.config.list_physical_devices("CPU")[0]
    try:
        tf.config.set_logical_device_configuration(
            cpu, [tf.config.LogicalDeviceConfiguration()] * count)
    except RuntimeError:
        raise UserError("--logical_cpus must be set before TensorFlow starts; it was "
                        "already running") from None


def _found() -> str:
    """The local devices by kind, e.g. "1 x CPU"."""
    kinds = collections.Counter(d.device_type for d in tf.config.list_logical_devices())
    return ", ".join(f"{n} x {kind}" for kind, n in kinds.items()) or "none"


def _device_name(device: str) -> str:
    """The kind of a device string ('/job:.../device:GPU:0'), with the GPU's model name
    where TensorFlow knows it."""
    kind, _, index = device.rpartition("device:")[2].partition(":")
    if kind == "GPU":
        physical = tf.config.list_physical_devices("GPU")
        if index.isdigit() and int(index) < len(physical):
            details = tf.config.experimental.get_device_details(physical[int(index)])
            return details.get("device_name", "GPU")
    return kind


def describe(name: str, strategy: tf.distribute.Strategy) -> dict:
    """{"strategy", "replicas", "devices", "line"}: what `strategy` (made from `name`)
    computes on, e.g. line "strategy mirrored: 2 replicas on 2 x NVIDIA H100"."""
    try:
        used = strategy.extended.worker_devices
    except RuntimeError:  # the default strategy: TensorFlow's first GPU, or the CPU
        used = ["device:GPU:0" if tf.config.list_logical_devices("GPU") else "device:CPU:0"]
    local = collections.Counter(_device_name(d) for d in used)
    devices = ", ".join(f"{n} x {kind}" for kind, n in local.items())
    replicas = strategy.num_replicas_in_sync
    where = (f"this worker: {devices}" if name == "multi_worker" else devices)
    return {"strategy": name, "replicas": replicas, "devices": devices,
            "line": f"strategy {name}: {replicas} replica{'s' * (replicas != 1)} on {where}"}


def is_chief(strategy: tf.distribute.Strategy) -> bool:
    """Whether this process writes the run's files (always, unless multi-worker)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return True
    task_type, task_id = resolver.task_type, resolver.task_id
    if task_type in (None, "chief"):
        return True
    has_chief = "chief" in resolver.cluster_spec().as_dict()
    return task_type == "worker" and task_id == 0 and not has_chief


def is_multi_worker(strategy: tf.distribute.Strategy) -> bool:
    """Whether `strategy` spans several processes (whose saves are collective: every
    worker must save at the same step)."""
    resolver = getattr(strategy, "cluster_resolver", None)
    if not isinstance(strategy, tf.distribute.MultiWorkerMirroredStrategy) or resolver is None:
        return False
    tasks = resolver.cluster_spec().as_dict()
    return len(tasks.get("chief", [])) + len(tasks.get("worker", [])) > 1


# What a collective operation raises when another worker of the cluster is gone (the
# coordination service stops hearing its heartbeats, or its address refuses).
PEER_ERRORS = (tf.errors.UnavailableError, tf.errors.AbortedError, tf.errors.CancelledError,
               tf.errors.DeadlineExceededError)


class PeerLost(UserError):
    """A worker of a multi-worker run stopped answering; the others stop (exit 75,
    "try again": every worker's command resumes the run)."""

    exit_code = 75


def peer_lost(error: Exception, strategy: tf.distribute.Strategy) -> PeerLost | None:
    """The one-line error for `error` when it says that another worker of `strategy`'s
    cluster is gone; None otherwise (one worker, or another error)."""
    if not isinstance(error, PEER_ERRORS) or not is_multi_worker(strategy):
        return None
    resolver = strategy.cluster_resolver
    me = f"/job:{resolver.task_type}/replica:0/task:{resolver.task_id}"
    message = getattr(error, "message", str(error))
    tasks = sorted(set(re.findall(r"/job:\w+/replica:\d+/task:\d+", message)) - {me})
    why = ("it stopped sending heartbeats" if "heartbeat" in message else
           "its address refuses connections" if "onnect" in message else
           message.strip().splitlines()[0][:120])
    return PeerLost(f"the multi_worker run lost {', '.join(tasks) or 'a worker'} ({why}); "
                    f"every worker stops: start every worker's command again to resume "
                    f"from the last checkpoint")
