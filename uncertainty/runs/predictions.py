"""The one way to get a function's predictions: logits on a split, nothing dropped
(`predict`), cached on disk next to the run they belong to (`RunPredictions`)."""

import collections
import hashlib
import os
import weakref

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from uncertainty import models
from uncertainty.core import seeding
from uncertainty.datasets import Dataset
from uncertainty.infra import files, interrupts
from uncertainty.models import layers
from uncertainty.runs import checkpoints, layout


def predict(model, data: Dataset, split: str, batch_size: int,
            strategy: tf.distribute.Strategy | None = None) -> np.ndarray:
    """Logits [N, C] (float32) of `model` (raw inputs in: it holds its preprocessing)
    on every example of `split`, in order.

    Batches are padded to `batch_size` and the padding masked out, so all N examples
    are scored exactly once, also when `batch_size` does not divide N.
    """
    strategy = strategy or tf.distribute.get_strategy()
    FORWARD_PASSES[(weakref.ref(model), data.num_examples(split), batch_size)] += 1
    batches = _eval_batches(data, split, batch_size, strategy)
    step = _predict_step(model, strategy)
    masks = _DROPOUT_MASKS.get(model)
    if masks is not None and masks.key[1:] == (batch_size, strategy):
        outputs = [masks.step(step, i, images, mask)
                   for i, (images, _, mask) in enumerate(batches)]
    else:
        outputs = [step(images, mask)[:2] for images, _, mask in batches]
    logits = np.concatenate([z.numpy() for z, _ in outputs])
    mask = np.concatenate([m.numpy() for _, m in outputs])
    return logits[mask > 0]


# The forward passes `predict` has made in this process: (weak reference to the model,
# examples, batch size) -> calls (`benchmarks/analysis_overhead.py` times them bare).
FORWARD_PASSES: collections.Counter = collections.Counter()

# The evaluation batches of the process, made once per (dataset, split, batch size,
# strategy) and fed again to every function predicted on them: key -> (weak reference
# to the Dataset, the strategy, the batches, their bytes). Batches are kept in host
# memory as the pipeline made them (inputs as the model takes them) when the split is
# one the dataset caches (`Dataset.cache_bytes`) and they fit _MATERIALIZED_BYTES in
# all; otherwise (and for JPEG datasets, decoded at every pass) the distributed
# pipeline itself is kept and iterated again. At most _MAX_PIPELINES
# entries are kept (the oldest go first).
_PIPELINES: dict = {}
_MAX_PIPELINES = 256
_MATERIALIZED_BYTES = 2 << 30


def _eval_batches(data: Dataset, split: str, batch_size: int,
                  strategy: tf.distribute.Strategy):
    """`data.eval_pipeline(split, batch_size)` distributed over `strategy`'s replicas:
    (inputs, labels, mask) batches, as a list when they fit the memory budget."""
    key = (id(data), split, batch_size, id(strategy))
    found = _PIPELINES.get(key)
    if found is not None and found[0]() is data and found[1] is strategy:
        return found[2]
    for gone in [k for k, entry in _PIPELINES.items() if entry[0]() is None]:
        del _PIPELINES[gone]  # their datasets are gone: free their batches
    while len(_PIPELINES) >= _MAX_PIPELINES:
        _PIPELINES.pop(next(iter(_PIPELINES)))
    batches = strategy.distribute_datasets_from_function(
        lambda ctx: data.eval_pipeline(split, batch_size, input_context=ctx))
    size = (data.num_examples(split) + batch_size) * 4 * int(np.prod(data.input_shape))
    used = sum(entry[3] for entry in _PIPELINES.values())
    if (not data.image_size and data.cached_bytes(split) <= data.cache_bytes
            and used + size <= _MATERIALIZED_BYTES):
        batches = list(batches)
    else:
        size = 0
    _PIPELINES[key] = (weakref.ref(data), strategy, batches, size)
    return batches


def reestimate_batchnorm(model, data: Dataset, batch_size: int = 500,
                         num_batches: int = 10, seed: int = 0) -> None:
    """Recomputes every BatchNormalization layer's moving mean and variance as the
    average over `num_batches` training batches of the current weights' activations
    (needed after weights change, e.g. for subspace samples). The batches are the same
    for every call (`seed`), so all functions get the same estimate procedure. No-op
    without BN."""
    norms = [m for m in model.submodules if isinstance(m, keras.layers.BatchNormalization)]
    if not norms:
        return
    momenta = [layer.momentum for layer in norms]
    batch_size = min(batch_size, data.num_examples("train"))
    steps = min(num_batches, data.num_examples("train") // batch_size)
    batches = data.train_pipeline(batch_size, steps, seed, 0,
                                  with_replacement=False)
    traced = _BATCHNORM_STEPS.setdefault(model, {})
    try:
        for i, (images, _) in enumerate(batches):
            momentum = i / (i + 1)  # new = i/(i+1) old + 1/(i+1) batch: a running mean
            for layer in norms:
                layer.momentum = momentum
            if momentum not in traced:  # the momentum is read when the call is traced
                traced[momentum] = tf.function(lambda x: model(x, training=True))
            traced[momentum](images)
    finally:
        for layer, momentum in zip(norms, momenta):
            layer.momentum = momentum


# The training-mode calls of `reestimate_batchnorm`, traced once per (model, momentum)
# and reused by every function predicted with the model.
_BATCHNORM_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()
# Networks shared by every RunPredictions of the process, one per architecture (model,
# input shape, classes, active dropout rate, strategy): each is built and its predict
# step traced once, and `_LOADED` names the weights and statistics it holds.
_MODELS: dict = {}
_LOADED: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _predict_step(model, strategy):
    """One traced prediction step per (model, strategy), reused across calls:
    step(images, mask, keep_masks=None) -> (logits, mask, the keep masks its MC-dropout
    layers used: drawn, or `keep_masks` when given; per replica)."""
    steps = _STEPS.setdefault(model, {})
    if strategy not in steps:
        def forward(x, keep_masks):
            with layers.given_masks(model, keep_masks) as used:
                logits = tf.cast(model(x, training=False), tf.float32)
            return logits, tuple(used)

        @tf.function
        def step(images, mask, keep_masks=None):
            logits, used = strategy.run(forward, (images, keep_masks))
            return strategy.gather(logits, axis=0), strategy.gather(mask, axis=0), used

        steps[strategy] = step
    return steps[strategy]


def _weight_setter(model):
    """One traced call per network that sets all its weights (`model.weights` order,
    each array cast to its weight's dtype as Keras's `set_weights` does, which assigns
    them one eager op at a time: ~2 ms for CNN-1D's ten arrays against ~0.8 ms)."""
    if model not in _SETTERS:
        dtypes = [weight.dtype.as_numpy_dtype for weight in model.weights]

        @tf.function
        def assign(arrays):
            for weight, value in zip(model.weights, arrays, strict=True):
                weight.assign(value)

        _SETTERS[model] = lambda arrays: assign(
            [np.asarray(a, dtype) for a, dtype in zip(arrays, dtypes, strict=True)])
    return _SETTERS[model]


_SETTERS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


# MC dropout's keep masks, at most this many bytes in all (`_DropoutMasks`).
_MASK_BYTES = 512 << 20


class _DropoutMasks:
    """The keep masks of the MC-dropout pass a network holds (its dropout layers
    reseeded from `seed`), by batch. Every prediction restarts the layers' streams, so
    every evaluation set's batch i drops the same units: drawn for the first set, they
    are given to the others (drawing them is most of an MC-dropout pass on a CPU).
    Beyond _MASK_BYTES only the generators' states before each batch are kept, and
    that batch's masks are drawn again from its state: whatever else drew from the
    generators meanwhile (a call with another batch size, batch-norm re-estimation),
    every set's batch i drops the same units."""

    def __init__(self, model, seed: int, batch_size: int, strategy):
        self.key = (seed, batch_size, strategy)
        dropouts = [layer for layer in model.layers if isinstance(layer, layers.Dropout)]
        for i, layer in enumerate(dropouts):
            layer.reseed(seeding.integer(seed, "mc_dropout_layer", i))
        self.generators = [layer._random_generator._generator
                           for layer in layers.mc_dropout_layers(model)]
        self.states = [self._states()]  # before batch i
        self.masks = []  # batch i's, or None where they were not kept
        self.bytes = 0

    def _states(self) -> list[np.ndarray]:
        return [generator.state.numpy() for generator in self.generators]

    def step(self, step, index: int, images, mask) -> tuple:
        """`step`'s (logits, mask) on batch `index`, the batch's masks given if kept,
        drawn otherwise (and kept within the budget)."""
        if index < len(self.masks) and self.masks[index] is not None:
            return step(images, mask, self.masks[index])[:2]
        for generator, state in zip(self.generators, self.states[index]):
            generator.state.assign(state)
        logits, mask, used = step(images, mask)
        if index == len(self.masks):
            self.states.append(self._states())
            size = sum(local.shape.num_elements() for m in used
                       for local in self.key[2].experimental_local_results(m))
            kept = sum(m.bytes for m in _DROPOUT_MASKS.values()) + size <= _MASK_BYTES
            self.masks.append(used if kept else None)
            self.bytes += size if kept else 0
        return logits, mask


_DROPOUT_MASKS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


_NEW = "not cached yet"


class RunPredictions:
    """Logits of one run's functions (its checkpoints, or any weight vector for its
    model), cached as `run_dir/predictions/<dataset>/<split>/<key>.npz` so that no
    function is predicted twice on the same examples.

    Each cache file stores, beside the logits, the identity of what made its rows: the
    weights' content (checkpoint digest, or the caller's identity of a vector), the
    dataset, its source and generator version, the split, the example selection
    (validation and training examples), the run's preprocessing and how batch-norm
    statistics were set. A file whose identity differs, or that cannot be read, is
    recomputed (with a log line saying why). The model is built only when something is
    not cached yet, once per architecture in the process (`_MODELS`).
    """

    def __init__(self, run_dir: str, batch_size: int = 500,
                 strategy: tf.distribute.Strategy | None = None):
        self.run_dir = run_dir
        self.config = layout.read_config(run_dir)
        self.batch_size = batch_size
        self.strategy = strategy  # None: the strategy in scope when predicting
        self._digests = {}  # epoch -> checkpoint digest, read once per instance
        self._last_epoch = None  # the run's newest checkpoint, found once per instance
        self.counts = {"computed": 0, "from_cache": 0}
        self.counts_by_set = collections.defaultdict(collections.Counter)  # data name ->
        self._normalizer_digest = hashlib.sha1(b"".join(
            np.ascontiguousarray(a).tobytes() for a in checkpoints.read_normalizer(run_dir)
        )).hexdigest()

    def cache_path(self, data: Dataset, split: str, key: str) -> str:
        """Where the logits of function `key` on `split` of `data` live."""
        return os.path.join(self.run_dir, "predictions", data.name.replace("/", "__"),
                            split, f"{key}.npz")

    def checkpoint(self, data: Dataset, split: str, epoch: int | None = None,
                   bn_data: Dataset | None = None) -> np.ndarray:
        """Logits of the checkpoint of `epoch` (last if None, 0 = initial); with
        `bn_data`, batch-norm statistics re-estimated on its training split instead of
        the checkpoint's own."""
        if epoch is None:
            epoch = self.last_epoch()
        key = layout.checkpoint_name(epoch)
        if bn_data is not None:
            key += "_bn_reestimated"
        identity = {"checkpoint": epoch, "digest": self._checkpoint_digest(epoch)}
        return self._cached(data, split, key, identity,
                            lambda: checkpoints.load_arrays(self.run_dir, epoch), bn_data)

    def vector(self, data: Dataset, split: str, key: str, vector, identity: dict,
               base_epoch: int | None = None, bn_data: Dataset | None = None
               ) -> np.ndarray:
        """Logits of the run's model with the flat trainable `vector` (as
        `checkpoints.load_weights` orders it; or a function returning it, called only if
        not cached), cached under `key`. `identity` must determine the vector (e.g. a
        sample's parameters and the digests of the checkpoints it came from).
        Batch-norm statistics are re-estimated on `bn_data`'s training split when it is
        given (they belong to other weights otherwise), else taken from `base_epoch`."""
        if base_epoch is None:
            base_epoch = self.last_epoch()
        identity = {**identity, "base_epoch": base_epoch,
                    "base_digest": self._checkpoint_digest(base_epoch)}
        return self._cached(data, split, key, identity, lambda: checkpoints.with_vector(
            self.run_dir, vector() if callable(vector) else vector, base_epoch), bn_data)

    def mc_dropout(self, data: Dataset, split: str, key: str, rate: float, seed: int,
                   identity: dict, epoch: int | None = None,
                   bn_data: Dataset | None = None) -> np.ndarray:
        """Logits of one MC-dropout pass (Gal & Ghahramani 2016): the checkpoint of
        `epoch` (last if None) with its dropout layers active on the activations at
        `rate`, the masks drawn from `seed` (each layer its own stream). Masks follow
        the batches, so the batch size and replica count are part of the cache key."""
        if epoch is None:
            epoch = self.last_epoch()
        replicas = (self.strategy or tf.distribute.get_strategy()).num_replicas_in_sync
        identity = {**identity, "mc_dropout": {"rate": rate, "seed": seed,
                                               "batch_size": self.batch_size,
                                               "replicas": replicas},
                    "base_epoch": epoch, "base_digest": self._checkpoint_digest(epoch)}
        return self._cached(data, split, key, identity,
                            lambda: checkpoints.load_arrays(self.run_dir, epoch), bn_data,
                            dropout=(rate, seed))

    def uncached(self, data: Dataset, split: str, vector: np.ndarray,
                 bn_data: Dataset | None = None) -> np.ndarray:
        """Like `vector`, but computed every time and never stored: for the many
        one-off functions of a weight-space cross-section."""
        return self._compute(data, split, lambda: checkpoints.with_vector(
            self.run_dir, vector), bn_data)

    def last_epoch(self) -> int:
        """The epoch of the run's newest checkpoint, found once per instance (a study
        asks for it thousands of times, and each look is a glob)."""
        if self._last_epoch is None:
            self._last_epoch = checkpoints.epochs(self.run_dir)[-1]
        return self._last_epoch

    def _checkpoint_digest(self, epoch: int) -> str:
        """The checkpoint's content digest, hashed once per instance rather than on
        every lookup (a study asks for the base checkpoint's thousands of times)."""
        if epoch not in self._digests:
            self._digests[epoch] = checkpoints.checkpoint_digest(self.run_dir, epoch)
        return self._digests[epoch]

    def _identity(self, data, split, function, bn_data) -> dict:
        return {"function": function, "data": data.identity(split),
                "normalizer": self._normalizer_digest,
                "batchnorm": None if bn_data is None else bn_data.identity("train")}

    def _cached(self, data, split, key, function, arrays_fn, bn_data, dropout=None
                ) -> np.ndarray:
        path = self.cache_path(data, split, key)
        identity = files.digest(self._identity(data, split, function, bn_data))
        logits, reason = self._read(path, identity, data.num_examples(split))
        if logits is not None:
            self.counts["from_cache"] += 1
            self.counts_by_set[data.name]["from_cache"] += 1
            return logits
        # a new function is counted (the callers summarise per set); a cache that
        # cannot be used is worth a line of its own
        (logging.debug if reason == _NEW else logging.info)(
            "predicting %s %s on %s %s (%d examples): %s", self.run_dir, key, data.name,
            split, data.num_examples(split), reason)
        self.counts_by_set[data.name]["computed"] += 1
        state = files.digest({"function": function, "batchnorm": None if bn_data is None
                              else bn_data.identity("train"), "dropout": dropout})
        with interrupts.deferred():  # a stop request lets this entry be cached first
            logits = self._compute(data, split, arrays_fn, bn_data, dropout, state)
            # not flushed to disk before its rename: a file a power loss damages
            # fails its check when read (`_read`) and is predicted again
            files.write_npz(path, durable=False, logits=logits, identity=identity)
        interrupts.check()
        return logits

    @staticmethod
    def _read(path: str, identity: str, num_examples: int
              ) -> tuple[np.ndarray | None, str]:
        """The cached logits at `path`, or None and why they cannot be used."""
        if not files.exists(path):
            return None, _NEW
        saved = files.read_npz_if_intact(path)
        if saved is None or "logits" not in saved:
            return None, "the cache file is damaged"
        if str(saved.get("identity")) != identity:
            return None, "cached for other weights, data or preprocessing"
        logits = saved["logits"]
        if len(logits) != num_examples:
            return None, "cached rows do not match the examples"
        return logits, ""

    def _compute(self, data, split, arrays_fn, bn_data, dropout=None, state=None
                 ) -> np.ndarray:
        """Logits of the weights `arrays_fn()`; with `dropout` = (rate, seed), one
        MC-dropout pass. `state` names the weights and batch-norm statistics: when the
        model holds that state already (the same function on another data set), the
        weights are neither rebuilt nor set, nor the statistics re-estimated."""
        model = self._get_model(data, *(dropout or ()))
        if state is None or _LOADED.get(model) != state:
            _LOADED.pop(model, None)
            _weight_setter(model)(list(arrays_fn()))
            if bn_data is not None:
                reestimate_batchnorm(model, bn_data)
            if state is not None:
                _LOADED[model] = state
        self.counts["computed"] += 1
        return predict(model, data, split, self.batch_size, self.strategy)

    def _get_model(self, data: Dataset, rate: float = 0.0, seed: int | None = None):
        """The run's deterministic network (the twin of a variational run); with a
        dropout `rate`, one whose dropout stays on, its masks those of the pass `seed`
        (`_DropoutMasks`: reseeded when the pass, batch size or strategy changes)."""
        strategy = self.strategy or tf.distribute.get_strategy()
        # the run's own input shape and classes (an out-of-distribution set may have others)
        shape = tuple(self.config.get("input_shape") or data.input_shape)
        classes = self.config.get("num_classes") or data.num_classes
        key = (self.config["model"], shape, classes, rate, strategy)
        if key not in _MODELS:
            with strategy.scope():
                _MODELS[key] = models.build(self.config["model"], shape, classes,
                                            dropout_rate=rate, mc_dropout=bool(rate))
        model = _MODELS[key]
        if rate:
            masks = _DROPOUT_MASKS.get(model)
            if masks is None or masks.key != (seed, self.batch_size, strategy):
                _DROPOUT_MASKS[model] = _DropoutMasks(model, seed, self.batch_size, strategy)
        return model
