"""Datasets read by index from TFDS, and the tf.data pipelines every binary trains and
evaluates on.

A `Dataset` names a prepared TFDS builder (ArrayRecord files) and, per split, the range
of a TFDS split it covers. Its pipelines read examples by index through TFDS's
random-access data source, batch by batch, so a split larger than `cache_bytes` is
never held in memory (an ImageNet run needs no more host RAM than a small one); a
split within it is read once through the same reader into host memory and gathered
from there (small data then train as fast as from numpy arrays):
- training: one epoch of index batches drawn from (seed, epoch) alone, so an epoch's
  data are the same whether or not the run was interrupted before it (the input
  position is the epoch: nothing to checkpoint);
- evaluation: every example exactly once, the last batch padded and masked.
Both take a `tf.distribute.InputContext`, so each input pipeline gets its share of the
global batch and each replica its per-replica batch.
"""

import dataclasses
import math

import numpy as np
import tensorflow as tf

from uncertainty.datasets import image_crops
from uncertainty.infra.errors import UserError

PREPROCESSING = ("raw", "unit", "pixel_mean", "mean_std")
# ImageNet's per-channel RGB mean and standard deviation, for pixels in [0, 1].
IMAGENET_MEAN, IMAGENET_STD = (0.485, 0.456, 0.406), (0.229, 0.224, 0.225)
_READ_BATCH = 1024  # examples per read when a whole split is scanned (labels, means)
CACHE_BYTES = 1 << 30  # default `Dataset.cache_bytes`


@dataclasses.dataclass(frozen=True)
class Split:
    """Examples [start, stop) of the TFDS split `tfds_split`."""

    tfds_split: str
    start: int
    stop: int

    def __len__(self) -> int:
        return self.stop - self.start


@dataclasses.dataclass
class Dataset:
    """A dataset's splits ({name: Split}) of a prepared TFDS `builder`, and metadata."""

    name: str
    num_classes: int
    builder: object  # tfds.core.DatasetBuilder, prepared as ArrayRecord
    splits: dict[str, Split]
    sources: dict  # TFDS split -> its random-access data source (serialised records)
    source: str  # where the examples came from (their order defines the splits)
    max_value: float = 255.0  # of the raw inputs, for the "unit" scaling
    version: str = ""  # of the generator, for data made locally (corrupted sets)
    validation_examples: int = 0  # how many of the training examples validate
    train_examples: int = 0  # the training split cut to its first N (0 = not cut)
    keys: tuple[str, str] = ("image", "label")  # the TFDS features: inputs, label
    # 0: the inputs are arrays of one shape, used as stored. N: they are JPEG images of
    # any size (ImageNet), read undecoded and cropped to N x N (`image_crops`):
    # training takes random-resized crops (with `augment`) or center crops, evaluation
    # center crops. Such splits always stream.
    image_size: int = 0
    # A split whose raw inputs take at most this many bytes is read once (through the
    # same reader) into host memory and gathered from there; larger ones stream from
    # the data source at every pass; 0 streams everything.
    cache_bytes: int = CACHE_BYTES
    _labels: dict = dataclasses.field(default_factory=dict, repr=False)
    _cache: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def input_shape(self) -> tuple[int, ...]:
        """The shape of one input as the models see it."""
        if self.image_size:
            return (self.image_size, self.image_size, 3)
        return tuple(self.builder.info.features[self.keys[0]].shape)

    def num_examples(self, split: str) -> int:
        self._check_split(split)
        return len(self.splits[split])

    def labels(self, split: str) -> np.ndarray:
        """The labels of `split` in order (read once, then kept: N integers): from the
        host cache of a split that fits it (`_reader`), else streamed (JPEG inputs are
        not decoded for them)."""
        self._check_split(split)
        if split not in self._labels:
            if self._cacheable(split):
                labels = self._cached(split)[1].numpy()
            else:
                labels = np.concatenate([y for _, y in self._scan(split)] or
                                        [np.zeros(0, np.int64)])
            self._labels[split] = labels.astype(np.int64)
        return self._labels[split]

    def read(self, split: str, stop: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(inputs, labels) of the first `stop` (all if None) examples of `split` as
        numpy arrays, inputs as stored (JPEG bytes for `image_size` datasets): for
        small reads (tests, generating a corrupted test set)."""
        batches = list(self._scan(split, stop))
        return (np.concatenate([x for x, _ in batches]),
                np.concatenate([y for _, y in batches]).astype(np.int64))

    def info(self) -> dict:
        """Metadata for logs and config files."""
        return {"name": self.name, "source": self.source, "num_classes": self.num_classes,
                "input_shape": list(self.input_shape),
                "num_examples": {s: self.num_examples(s) for s in self.splits}}

    def identity(self, split: str) -> dict:
        """Everything that decides which examples, in which order, `split` holds: for
        cache keys of predictions on it."""
        return {"dataset": self.name, "source": self.source, "version": self.version,
                "split": split, "num_examples": self.num_examples(split),
                "validation_examples": self.validation_examples,
                "train_examples": self.train_examples if split == "train" else 0}

    def head(self, split: str, n: int) -> "Dataset":
        """A copy whose `split` keeps only its first `n` examples."""
        self._check_split(split)
        if not 0 < n <= self.num_examples(split):
            raise UserError(f"{self.name} has {self.num_examples(split)} {split} examples; "
                            f"ask for 1..{self.num_examples(split)}, got {n}")
        part = self.splits[split]
        cut = {"train_examples": n} if split == "train" else {}
        return dataclasses.replace(
            self, splits={**self.splits, split: dataclasses.replace(
                part, stop=part.start + n)}, _labels={}, _cache={}, **cut)

    def normalizer(self, mode: str) -> tuple[np.ndarray, np.ndarray]:
        """(shift, scale) so that a model sees (raw - shift) / scale.

        raw: the stored values (the notebook feeds CIFAR pixels as 0..255);
        unit: divided by the maximum raw value; pixel_mean: unit minus the training
        split's per-pixel mean (the Keras CIFAR ResNet example), streamed over the split;
        mean_std: unit minus ImageNet's per-channel mean, divided by its standard
        deviation (uncertainty-baselines' ImageNet input; RGB images only).
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
        if mode == "mean_std":
            if shape[-1] != 3:
                raise UserError(f"--preprocessing=mean_std is for RGB images; {self.name} "
                                f"has inputs of shape {shape}")
            return (np.broadcast_to(np.multiply(IMAGENET_MEAN, self.max_value), shape)
                    .astype(np.float32),
                    np.broadcast_to(np.multiply(IMAGENET_STD, self.max_value), shape)
                    .astype(np.float32))
        if self.image_size:
            raise UserError(f"--preprocessing=pixel_mean needs inputs of one stored shape;"
                            f" {self.name}'s images vary in size: use mean_std or unit")
        total = np.zeros(shape, np.float64)
        for x, _ in self._scan("train"):
            total += x.astype(np.float64).sum(axis=0)
        return (total / self.num_examples("train")).astype(np.float32), scale

    def train_pipeline(self, global_batch: int, steps: int, seed: int, epoch: int,
                       normalizer=None, with_replacement: bool = True, augment: bool = False,
                       input_context: tf.distribute.InputContext | None = None,
                       first_step: int = 0) -> tf.data.Dataset:
        """One epoch of `steps` training batches of (inputs, labels), inputs as float32
        raw values, or (raw - shift) / scale with `normalizer` (models carry their own:
        `models.layers.Normalizer`).

        With replacement (the paper's CNN recipe) each batch is drawn uniformly from the
        whole training split; without, the epoch is a fresh permutation. Everything
        random (examples, crops, flips) is drawn from (seed, epoch) per position of the
        global batch, so it does not depend on how many replicas share the batch;
        `first_step` > 0 gives the epoch's batches from that one on (a resumed epoch).
        """
        n = self.num_examples("train")
        rng = np.random.default_rng([seed, epoch])
        if with_replacement:
            draws = {"index": rng.integers(0, n, size=(steps, global_batch))}
        else:
            draws = {"index": rng.permutation(n)[:steps * global_batch].reshape(
                steps, global_batch)}
        if augment and self.image_size:
            draws["crop_seed"] = rng.integers(0, 2**31 - 1, size=(steps, global_batch, 2))
        elif augment:
            draws["offset"] = rng.integers(0, 2 * _PAD + 1, size=(steps, global_batch, 2))
        if augment:
            draws["flip"] = rng.integers(0, 2, size=(steps, global_batch)).astype(bool)
        draws = {name: value[first_step:] for name, value in draws.items()}
        per_replica, draws = _shard(draws, input_context)
        read = self._reader("train")
        shift, scale = normalizer or (0.0, 1.0)

        def load(d):
            x, y = read(d["index"])
            images = (self._inputs(x, d.get("crop_seed")) - shift) / scale
            if augment:
                images = _flip(images if self.image_size else
                               _pad_crop(images, d["offset"]), d["flip"])
            return images, y

        return _parallel_map(tf.data.Dataset.from_tensor_slices(draws).batch(
            per_replica, drop_remainder=True), load)

    def eval_pipeline(self, split: str, global_batch: int, normalizer=None,
                      input_context: tf.distribute.InputContext | None = None
                      ) -> tf.data.Dataset:
        """Every example of `split` once as (inputs, labels, mask); padding has mask 0.
        Inputs as in `train_pipeline`."""
        n = self.num_examples(split)
        padded = math.ceil(n / global_batch) * global_batch
        position = np.arange(padded).reshape(-1, global_batch)
        per_replica, draws = _shard({"index": np.minimum(position, n - 1),
                                     "mask": (position < n).astype(np.float32)},
                                    input_context)
        read = self._reader(split)
        shift, scale = normalizer or (0.0, 1.0)

        def load(d):
            x, y = read(d["index"])
            return (self._inputs(x) - shift) / scale, y, d["mask"]

        return _parallel_map(tf.data.Dataset.from_tensor_slices(draws).batch(
            per_replica, drop_remainder=True), load)

    def _inputs(self, x: tf.Tensor, crop_seeds: tf.Tensor | None = None) -> tf.Tensor:
        """A batch of inputs as read, as float32 model inputs (raw values): JPEG images
        cropped (random-resized from `crop_seeds`, else centered) to `image_size`."""
        if self.image_size:
            return image_crops.crop_batch(x, self.image_size, crop_seeds)
        return tf.cast(x, tf.float32)

    def cached_bytes(self, split: str) -> int:
        """The host memory `split` takes when cached: its raw inputs' size (a uint8
        pixel is a byte). JPEG inputs (`image_size`) are never cached."""
        feature = self.builder.info.features[self.keys[0]]
        return (self.num_examples(split) * int(np.prod(feature.shape)) *
                np.dtype(feature.np_dtype).itemsize)

    def _reader(self, split: str):
        """A function from indices [k] into `split` to its examples (inputs, int32
        labels) as tensors, for tf.data: gathered from the host cache when the split
        fits `cache_bytes` (filled once by `_stream`), else `_stream`ed."""
        self._check_split(split)
        if not self._cacheable(split):
            return self._stream(split)
        x, y = self._cached(split)
        return lambda indices: (tf.gather(x, indices), tf.gather(y, indices))

    def _cacheable(self, split: str) -> bool:
        return not self.image_size and self.cached_bytes(split) <= self.cache_bytes

    def _cached(self, split: str) -> tuple[tf.Tensor, tf.Tensor]:
        """The host cache of `split`: (inputs, int32 labels) in order, read once."""
        if split not in self._cache:
            batches = list(self._scan(split, read=self._stream(split)))
            with tf.device("/cpu:0"):
                self._cache[split] = tuple(tf.constant(np.concatenate(parts)) for parts in
                                           zip(*batches))
        return self._cache[split]

    def _stream(self, split: str):
        """`_reader` from disk: the examples are read by index, as a batch, through the
        TFDS data source (decoded by TFDS, except JPEG inputs of `image_size`
        datasets, which stay bytes)."""
        part = self.splits[split]
        records = self.sources[part.tfds_split]
        inputs, label = self.keys
        feature = self.builder.info.features[inputs]
        dtype, shape = ((tf.string, ()) if self.image_size else
                        (feature.tf_dtype, feature.shape))

        def fetch(indices):
            examples = _get_many(records, (indices + part.start).tolist())
            x = [e[inputs] for e in examples]
            return (np.array(x, dtype=object) if self.image_size else np.stack(x),
                    np.array([e[label] for e in examples], np.int32))

        def read(indices):
            x, y = tf.numpy_function(fetch, [indices], (dtype, tf.int32), stateful=False)
            x.set_shape(indices.shape.concatenate(shape))
            y.set_shape(indices.shape)
            return x, y

        return read

    def _scan(self, split: str, stop: int | None = None, read=None):
        """(inputs, labels) numpy batches of the first `stop` examples of `split`,
        through `read` (default `_reader`)."""
        n = self.num_examples(split) if stop is None else stop
        read = read or self._reader(split)
        yield from _parallel_map(tf.data.Dataset.range(n).batch(_READ_BATCH),
                                 read).as_numpy_iterator()

    def _check_split(self, split: str) -> None:
        if split not in self.splits:
            raise UserError(f"{self.name} has no {split!r} split; it has "
                            f"{', '.join(self.splits)}")


def _parallel_map(ds: tf.data.Dataset, fn) -> tf.data.Dataset:
    """`ds.map(fn)`, in order, on one thread per core, prefetched, without tf.data's
    autotuning: with it, deleting an iterator could wait seconds for one of tf.data's
    background threads, every epoch and every streamed pass (on a 2-core CPU up to
    0.3 s per epoch of a CNN-1D run, and 8-10 s after the last epoch of most runs
    trained two at a time); the map's parallelism is the same."""
    options = tf.data.Options()
    options.autotune.enabled = False
    return ds.map(fn, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).prefetch(
        tf.data.AUTOTUNE).with_options(options)


def _shard(draws: dict[str, np.ndarray], input_context) -> tuple[int, dict]:
    """This input pipeline's part of per-position draws [steps, global_batch, ...],
    flattened, and its per-replica batch size.

    Pipeline i takes the i-th contiguous block of every global batch; batching that
    block by the per-replica size hands consecutive replicas consecutive slices, so
    the replicas' batches concatenate back to the global batch in order.
    """
    steps, global_batch = next(iter(draws.values())).shape[:2]
    if input_context is None:
        per_replica, start, width = global_batch, 0, global_batch
    else:
        per_replica = input_context.get_per_replica_batch_size(global_batch)
        width = global_batch // input_context.num_input_pipelines
        start = input_context.input_pipeline_id * width
    return per_replica, {k: v[:, start:start + width].reshape(-1, *v.shape[2:])
                         for k, v in draws.items()}


_PAD = 4  # pixels of zero padding before the random crop


def _pad_crop(images: tf.Tensor, offsets: tf.Tensor) -> tf.Tensor:
    """Per image: zero-pad by _PAD and crop back to size at `offsets` (row, column)."""
    height, width = images.shape[1], images.shape[2]
    padded = tf.pad(images, [[0, 0], [_PAD, _PAD], [_PAD, _PAD], [0, 0]])
    rows = tf.cast(offsets[:, :1], tf.int32) + tf.range(height)[None]
    cols = tf.cast(offsets[:, 1:], tf.int32) + tf.range(width)[None]
    return tf.gather(tf.gather(padded, rows, axis=1, batch_dims=1), cols, axis=2,
                     batch_dims=1)


def _flip(images: tf.Tensor, flips: tf.Tensor) -> tf.Tensor:
    """Mirrors the images horizontally where `flips`."""
    return tf.where(flips[:, None, None, None], tf.reverse(images, axis=[2]), images)


def split_validation(train: str, num_train: int, validation_examples: int,
                     name: str) -> dict[str, Split]:
    """The TFDS split `train` (of `num_train` examples) as our training split and,
    from its last `validation_examples`, the validation split."""
    if not 0 <= validation_examples < num_train:
        raise UserError(f"--validation_examples must be in [0, {num_train}) for {name}, "
                        f"got {validation_examples}")
    cut = num_train - validation_examples
    splits = {"train": Split(train, 0, cut)}
    if validation_examples:
        splits["validation"] = Split(train, cut, num_train)
    return splits


def _get_many(records, keys: list[int]) -> list:
    """`records[k]` for every key: in one call (`__getitems__`, ArrayRecord's batched
    read), or one by one where the data source cannot (`tfds.testing.mock_data`'s mock
    sets `__getitems__` on the instance, where Python does not bind it, so TFDS's
    wrapper calls it without `self`: a TypeError)."""
    try:
        return records.__getitems__(keys)
    except TypeError:
        return [records[k] for k in keys]
