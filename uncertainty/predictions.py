"""The one way to get a function's predictions: probabilities on a split, nothing dropped."""

import numpy as np
import tensorflow as tf

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

    @tf.function
    def step(images, mask):
        probs = strategy.run(lambda x: tf.nn.softmax(model(x, training=False)), (images,))
        return strategy.gather(probs, axis=0), strategy.gather(mask, axis=0)

    outputs = [step(images, mask) for images, _, mask in batches]
    probs = np.concatenate([p.numpy() for p, _ in outputs])
    mask = np.concatenate([m.numpy() for _, m in outputs])
    return probs[mask > 0]
