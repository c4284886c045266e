"""The one way to get a function's predictions: probabilities on a split, nothing
dropped (`predict`), cached on disk next to the run they belong to (`RunPredictions`)."""

import os
import weakref

import numpy as np
import tensorflow as tf
import tf_keras as keras
from absl import logging

from uncertainty import files, models, trajectory
from uncertainty.datasets import Dataset


def predict(model, data: Dataset, split: str, normalizer, batch_size: int,
            strategy: tf.distribute.Strategy | None = None) -> np.ndarray:
    """Softmax probabilities [N, C] of `model` on every example of `split`, in order.

    Batches are padded to `batch_size` and the padding masked out, so all N examples
    are scored exactly once, also when `batch_size` does not divide N.
    """
    strategy = strategy or tf.distribute.get_strategy()
    batches = strategy.distribute_datasets_from_function(
        lambda ctx: data.eval_pipeline(split, batch_size, normalizer, ctx))
    step = _predict_step(model, strategy)
    outputs = [step(images, mask) for images, _, mask in batches]
    probs = np.concatenate([p.numpy() for p, _ in outputs])
    mask = np.concatenate([m.numpy() for _, m in outputs])
    return probs[mask > 0]


def reestimate_batchnorm(model, data: Dataset, normalizer, batch_size: int = 500,
                         num_batches: int = 10, seed: int = 0) -> None:
    """Recomputes every BatchNormalization layer's moving mean and variance as the
    average over `num_batches` training batches of the current weights' activations
    (needed after weights change, e.g. for subspace samples). No-op without BN."""
    layers = [l for l in model.submodules if isinstance(l, keras.layers.BatchNormalization)]
    if not layers:
        return
    momenta = [layer.momentum for layer in layers]
    batch_size = min(batch_size, data.num_examples("train"))
    steps = min(num_batches, data.num_examples("train") // batch_size)
    batches = data.train_pipeline(batch_size, steps, seed, 0, normalizer,
                                  with_replacement=False)
    for i, (images, _) in enumerate(batches):
        for layer in layers:
            layer.momentum = i / (i + 1)  # new = i/(i+1) old + 1/(i+1) batch: a running mean
        model(images, training=True)
    for layer, momentum in zip(layers, momenta):
        layer.momentum = momentum


_STEPS: "weakref.WeakKeyDictionary" = weakref.WeakKeyDictionary()


def _predict_step(model, strategy):
    """One traced prediction step per (model, strategy), reused across calls."""
    steps = _STEPS.setdefault(model, {})
    if strategy not in steps:
        @tf.function
        def step(images, mask):
            probs = strategy.run(lambda x: tf.nn.softmax(model(x, training=False)),
                                 (images,))
            return strategy.gather(probs, axis=0), strategy.gather(mask, axis=0)

        steps[strategy] = step
    return steps[strategy]


class RunPredictions:
    """Predictions of one run's functions (its checkpoints, or any weight vector for
    its model), cached as `run_dir/predictions/<dataset>@<source>/<split>/<key>.npy` so that no
    function is ever predicted twice on the same split.

    The model is built only when something is not cached yet.
    """

    def __init__(self, run_dir: str, batch_size: int = 500,
                 strategy: tf.distribute.Strategy | None = None):
        self.run_dir = run_dir
        self.config = trajectory.read_config(run_dir)
        self.batch_size = batch_size
        self.strategy = strategy
        self._model = None
        self.counts = {"computed": 0, "from_cache": 0}
        self.normalizer = trajectory.read_normalizer(run_dir)

    def cache_path(self, data: Dataset, split: str, key: str) -> str:
        """Where a prediction lives: by dataset, where its examples came from (and the
        generator's version for locally made data), split and key."""
        folder = "@".join(filter(None, [data.name.replace("/", "__"), data.source,
                                        data.version]))
        return os.path.join(self.run_dir, "predictions", folder, split, f"{key}.npy")

    def checkpoint(self, data: Dataset, split: str, epoch: int | None = None) -> np.ndarray:
        """Probabilities of the checkpoint of `epoch` (last if None, 0 = initial)."""
        if epoch is None:
            epoch = trajectory.epochs(self.run_dir)[-1]
        key = os.path.basename(trajectory.checkpoint_path(self.run_dir, epoch))[:-4]
        return self._cached(data, split, key,
                            lambda: trajectory.load_arrays(self.run_dir, epoch))

    def vector(self, data: Dataset, split: str, key: str, vector,
               base_epoch: int | None = None, train_data: Dataset | None = None
               ) -> np.ndarray:
        """Probabilities of the run's model with the flat trainable `vector` (as
        `trajectory.load_weights` orders it; or a function returning it, called only if
        not cached), cached under `key`. Batch-norm statistics are re-estimated on
        `train_data`'s training split when it is given (they belong to other weights
        otherwise), else taken from `base_epoch`."""
        return self._cached(data, split, key, lambda: trajectory.with_vector(
            self.run_dir, vector() if callable(vector) else vector, base_epoch), train_data)

    def uncached(self, data: Dataset, split: str, vector: np.ndarray,
                 train_data: Dataset | None = None) -> np.ndarray:
        """Like `vector`, but computed every time and never stored: for the many
        one-off functions of a weight-space cross-section."""
        return self._compute(data, split, lambda: trajectory.with_vector(
            self.run_dir, vector), train_data)

    def _cached(self, data, split, key, arrays_fn, bn_data=None) -> np.ndarray:
        path = self.cache_path(data, split, key)
        if os.path.exists(path):
            probs = np.load(path)
            if len(probs) == data.num_examples(split):
                self.counts["from_cache"] += 1
                return probs
        logging.info("predicting %s %s on %s %s (%d examples)", self.run_dir, key,
                     data.name, split, data.num_examples(split))
        probs = self._compute(data, split, arrays_fn, bn_data)
        files.write_npy(path, probs)
        return probs

    def _compute(self, data, split, arrays_fn, bn_data) -> np.ndarray:
        model = self._get_model(data)
        model.set_weights(arrays_fn())
        if bn_data is not None:
            reestimate_batchnorm(model, bn_data, self.normalizer)
        self.counts["computed"] += 1
        return predict(model, data, split, self.normalizer, self.batch_size, self.strategy)

    def _get_model(self, data: Dataset):
        if self._model is None:
            self._model = models.build(self.config["model"], data.input_shape,
                                       data.num_classes)
        return self._model
