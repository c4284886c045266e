"""tf.distribute strategies by name, and who writes the outputs."""

import tensorflow as tf

from uncertainty.infra.errors import UserError, reason

STRATEGIES = ("default", "mirrored", "multi_worker", "tpu")


def get_strategy(name: str, tpu: str | None = None) -> tf.distribute.Strategy:
    """default: one device; mirrored: all local GPUs (or the CPU); multi_worker: the
    cluster described by TF_CONFIG; tpu: the TPU named by `tpu` ('' or 'local' for a
    TPU VM)."""
    if name == "default":
        return tf.distribute.get_strategy()
    if name == "mirrored":
        return tf.distribute.MirroredStrategy()
    if name == "multi_worker":
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
        except (ValueError, tf.errors.OpError) as e:
            raise UserError(f"no TPU found for --tpu={tpu!r} ({reason(e)}); "
                            f"pass the TPU's name or address, or another --strategy") from None
        return tf.distribute.TPUStrategy(resolver)
    raise UserError(f"unknown strategy {name!r}; choose one of {', '.join(STRATEGIES)}")


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
