"""In-memory datasets and the tf.data pipelines every binary trains and evaluates on.

A `Dataset` holds its splits as numpy arrays (raw pixels or signals, integer labels)
and builds pipelines from them:
- training: one epoch of index batches drawn from (seed, epoch) alone, so an epoch's
  data are the same whether or not the run was interrupted before it;
- evaluation: every example exactly once, the last batch padded and masked.
Both take a `tf.distribute.InputContext`, so each input pipeline gets its share of the
global batch and each replica its per-replica batch.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from uncertainty.errors import UserError

PREPROCESSING = ("raw", "unit", "pixel_mean")


@dataclasses.dataclass
class Dataset:
    """A dataset's splits ({name: (inputs, labels)}) and metadata."""

    name: str
    num_classes: int
    splits: dict[str, tuple[np.ndarray, np.ndarray]]
    max_value: float = 255.0  # of the raw inputs, for the "unit" scaling
    _tensors: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        return tuple(next(iter(self.splits.values()))[0].shape[1:])

    def num_examples(self, split: str) -> int:
        return len(self.labels(split))

    def labels(self, split: str) -> np.ndarray:
        self._check_split(split)
        return self.splits[split][1]

    def info(self) -> dict:
        """Metadata for logs and config files."""
        return {"name": self.name, "num_classes": self.num_classes,
                "input_shape": list(self.input_shape),
                "num_examples": {s: self.num_examples(s) for s in self.splits}}

    def head(self, split: str, n: int) -> "Dataset":
        """A copy whose `split` keeps only its first `n` examples."""
        self._check_split(split)
        if not 0 < n <= self.num_examples(split):
            raise UserError(f"{self.name} has {self.num_examples(split)} {split} examples; "
                            f"ask for 1..{self.num_examples(split)}, got {n}")
        x, y = self.splits[split]
        return dataclasses.replace(self, splits={**self.splits, split: (x[:n], y[:n])},
                                   _tensors={})

    def normalizer(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """(shift, scale) so that a model sees (raw - shift) / scale.

        raw: the stored values (the notebook feeds CIFAR pixels as 0..255);
        unit: divided by the maximum raw value; pixel_mean: unit minus the training
        split's per-pixel mean (the Keras CIFAR ResNet example).
        """
        if mode not in PREPROCESSING:
            raise UserError(f"unknown preprocessing {mode!r}; choose one of "
                            f"{', '.join(PREPROCESSING)}")
        shape = self.input_shape
        if mode == "raw":
            return np.zeros(shape, np.float32), np.ones(shape, np.float32)
        scale = np.full(shape, self.max_value, np.float32)
        if mode == "unit":
            return np.zeros(shape, np.float32), scale
        mean = self.splits["train"][0].astype(np.float64).mean(axis=0)
        return mean.astype(np.float32), scale

    def train_pipeline(self, global_batch: int, steps: int, seed: int, epoch: int,
                       normalizer, with_replacement: bool = True, augment: bool = False,
                       input_context: tf.distribute.InputContext | None = None
                       ) -> tf.data.Dataset:
        """One epoch of `steps` training batches of (inputs, labels).

        With replacement (the paper's CNN recipe) each batch is drawn uniformly from the
        whole training split; without, the epoch is a fresh permutation.
        """
        n = self.num_examples("train")
        if steps * global_batch > n and not with_replacement:
            raise UserError(f"{steps} steps of batch {global_batch} need more than the "
                            f"{n} training examples; lower --batch_size")
        rng = np.random.default_rng([seed, epoch])
        if with_replacement:
            index = rng.integers(0, n, size=(steps, global_batch))
        else:
            index = rng.permutation(n)[:steps * global_batch].reshape(steps, global_batch)
        per_replica, index = _shard(index, input_context)
        x, y = self._as_tensors("train")
        shift, scale = normalizer
        augment_fn = _pad_crop_flip if augment else None

        pipelines = input_context.num_input_pipelines if input_context else 1
        pipeline_id = input_context.input_pipeline_id if input_context else 0

        def load(batch_number, i):
            images = (tf.cast(tf.gather(x, i), tf.float32) - shift) / scale
            if augment_fn is not None:
                stream = tf.constant(seed * 1000003 + epoch, tf.int64)
                images = augment_fn(images, tf.stack(
                    [stream, batch_number * pipelines + pipeline_id]))
            return images, tf.gather(y, i)

        ds = tf.data.Dataset.from_tensor_slices(index).batch(per_replica,
                                                             drop_remainder=True)
        ds = ds.enumerate().map(load, num_parallel_calls=tf.data.AUTOTUNE,
                                deterministic=True)
        return ds.prefetch(tf.data.AUTOTUNE)

    def eval_pipeline(self, split: str, global_batch: int, normalizer,
                      input_context: tf.distribute.InputContext | None = None
                      ) -> tf.data.Dataset:
        """Every example of `split` once as (inputs, labels, mask); padding has mask 0."""
        n = self.num_examples(split)
        padded = math.ceil(n / global_batch) * global_batch
        position = np.arange(padded)
        mask = (position < n).astype(np.float32).reshape(-1, global_batch)
        index = np.minimum(position, n - 1).reshape(-1, global_batch)
        per_replica, index = _shard(index, input_context)
        _, mask = _shard(mask, input_context)
        x, y = self._as_tensors(split)
        shift, scale = normalizer

        def load(i, m):
            return (tf.cast(tf.gather(x, i), tf.float32) - shift) / scale, tf.gather(y, i), m

        ds = tf.data.Dataset.from_tensor_slices((index, mask)).batch(per_replica)
        return ds.map(load, num_parallel_calls=tf.data.AUTOTUNE,
                      deterministic=True).prefetch(tf.data.AUTOTUNE)

    def _as_tensors(self, split: str):
        self._check_split(split)
        if split not in self._tensors:
            x, y = self.splits[split]
            with tf.device("/cpu:0"):
                self._tensors[split] = (tf.constant(x), tf.constant(y.astype(np.int32)))
        return self._tensors[split]

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise UserError(f"{self.name} has no {split!r} split; it has "
                            f"{', '.join(self.splits)}")


def _shard(batches: np.ndarray, input_context) -> tuple[int, np.ndarray]:
    """This input pipeline's columns of [steps, global_batch] and its per-replica batch.

    Pipeline i takes the i-th contiguous block of every global batch; batching that
    block by the per-replica size hands consecutive replicas consecutive slices, so
    the replicas' batches concatenate back to the global batch in order.
    """
    global_batch = batches.shape[1]
    if input_context is None:
        return global_batch, batches.reshape(-1)
    per_replica = input_context.get_per_replica_batch_size(global_batch)
    width = global_batch // input_context.num_input_pipelines
    start = input_context.input_pipeline_id * width
    return per_replica, batches[:, start:start + width].reshape(-1)


def _pad_crop_flip(images: tf.Tensor, seed: tf.Tensor, pad: int = 4) -> tf.Tensor:
    """Random crop after zero-padding by `pad` pixels, and a random horizontal flip,
    drawn independently per image from a stateless `seed`."""
    batch, height, width = tf.shape(images)[0], images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [pad, pad], [pad, pad], [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], seed, 0, 2 * pad + 1, tf.int32)
    rows = offsets[:, :1] + tf.range(height)[None]
    cols = offsets[:, 1:] + tf.range(width)[None]
    cropped = tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2,
                        batch_dims=1)
    return tf.image.stateless_random_flip_left_right(cropped, seed + 1)


def split_validation(x: np.ndarray, y: np.ndarray, validation_examples: int,
                     name: str) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The last `validation_examples` training examples become the validation split."""
    if not 0 <= validation_examples < len(y):
        raise UserError(f"--validation_examples must be in [0, {len(y)}) for {name}, "
                        f"got {validation_examples}")
    cut = len(y) - validation_examples
    splits = {"train": (x[:cut], y[:cut])}
    if validation_examples:
        splits["validation"] = (x[cut:], y[cut:])
    return splits
