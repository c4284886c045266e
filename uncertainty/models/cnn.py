"""The paper's plain CNNs (SmallCNN, MediumCNN) and their 1-D sibling for MNIST-1D.

Block (authors' notebook): conv 3x3 stride 1 SAME with bias -> dropout -> max-pool 2
stride 2 SAME -> ReLU, no ReLU after the last block; flatten; dense to the classes.
Glorot init for weights and biases. The model returns logits.
"""

from typing import Sequence

import tf_keras as keras

from uncertainty.core import seeding
from uncertainty.models.layers import Deterministic, Dropout, Normalizer, glorot_bias


def conv_net(input_shape: Sequence[int], num_classes: int, channels: Sequence[int],
             kernel_size: int = 3, dropout_rate: float = 0.1, l2: float = 0.0,
             seed: int = 0, name: str = "cnn", layers=Deterministic(),
             mc_dropout: bool = False, normalizer=None) -> keras.Model:
    """Stack of conv blocks; 2-D for (H, W, C) inputs, 1-D for (L, C) inputs. `layers`
    makes the conv and dense layers (`models.layers`); `mc_dropout` keeps dropout on at
    inference; `normalizer` (shift, scale) is the input preprocessing (`Normalizer`)."""
    rank = len(input_shape) - 1
    pool = {1: keras.layers.MaxPool1D, 2: keras.layers.MaxPool2D}[rank]

    inputs = keras.Input(tuple(input_shape))
    x = Normalizer(*(normalizer or (None, None)), name="normalizer")(inputs)
    for i, units in enumerate(channels):
        x = layers.conv(rank, units, kernel_size, name=f"conv{i}",
                        bias_initializer=glorot_bias(units), l2=l2)(x)
        x = Dropout(dropout_rate, seed=seeding.integer(seed, "dropout", i),
                    always_on=mc_dropout, name=f"dropout{i}")(x)
        x = pool(2, strides=2, padding="same", name=f"pool{i}")(x)
        if i < len(channels) - 1:
            x = keras.layers.ReLU(name=f"relu{i}")(x)
    x = keras.layers.Flatten(name="flatten")(x)
    logits = layers.dense(num_classes, name="logits",
                          bias_initializer=glorot_bias(num_classes), l2=l2)(x)
    return keras.Model(inputs, logits, name=name)


def small_cnn(input_shape, num_classes, **kwargs) -> keras.Model:
    """SmallCNN: 3 blocks of (16, 32, 32) channels."""
    return conv_net(input_shape, num_classes, (16, 32, 32), name="small_cnn", **kwargs)


def medium_cnn(input_shape, num_classes, **kwargs) -> keras.Model:
    """MediumCNN: 4 blocks of (64, 128, 256, 256); 971,146 parameters on CIFAR-10."""
    return conv_net(input_shape, num_classes, (64, 128, 256, 256), name="medium_cnn",
                    **kwargs)


def cnn1d(input_shape, num_classes, **kwargs) -> keras.Model:
    """1-D CNN for MNIST-1D (40 x 1 signals): 3 blocks of (32, 64, 64), kernel 5."""
    return conv_net(input_shape, num_classes, (32, 64, 64), kernel_size=5, name="cnn1d",
                    **kwargs)
