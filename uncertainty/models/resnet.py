"""ResNet v1 for CIFAR (He et al. 2016), as in the Keras CIFAR-10 ResNet example.

conv-BN-ReLU units, He-normal init, L2 on kernels; in each residual block the second
conv's BN output is added to the shortcut and ReLU follows the addition. A strided
1x1 conv (no BN) projects the shortcut where the stage changes. Returns logits.
"""

from typing import Sequence

import tf_keras as keras

from uncertainty.models.layers import Deterministic, Normalizer


def _conv_bn(x, filters: int, kernel_size: int = 3, strides: int = 1,
             activation: bool = True, batch_norm: bool = True, l2: float = 1e-4,
             name: str = "", layers=Deterministic()):
    x = layers.conv(2, filters, kernel_size, strides=strides, name=f"{name}conv",
                    kernel_initializer="he_normal", l2=l2)(x)
    if batch_norm:
        x = keras.layers.BatchNormalization(name=f"{name}bn")(x)
    if activation:
        x = keras.layers.ReLU(name=f"{name}relu")(x)
    return x


def resnet_v1(input_shape: Sequence[int], num_classes: int, depth: int = 20,
              l2: float = 1e-4, name: str = "resnet_v1", layers=Deterministic(),
              normalizer=None) -> keras.Model:
    """ResNet v1 of `depth` = 6n + 2 layers: three stages of n blocks, 16/32/64 filters;
    `layers` makes the conv and dense layers (`models.layers`); `normalizer` (shift,
    scale) is the input preprocessing (`Normalizer`)."""
    if (depth - 2) % 6:
        raise ValueError(f"ResNet v1 depth must be 6n + 2, got {depth}")
    blocks = (depth - 2) // 6
    inputs = keras.Input(tuple(input_shape))
    x = Normalizer(*(normalizer or (None, None)), name="normalizer")(inputs)
    x = _conv_bn(x, 16, l2=l2, name="stem_", layers=layers)
    for stage, filters in enumerate((16, 32, 64)):
        for block in range(blocks):
            prefix = f"stage{stage}_block{block}_"
            strides = 2 if stage > 0 and block == 0 else 1
            y = _conv_bn(x, filters, strides=strides, l2=l2, name=prefix + "a_",
                         layers=layers)
            y = _conv_bn(y, filters, activation=False, l2=l2, name=prefix + "b_",
                         layers=layers)
            if strides != 1:
                x = _conv_bn(x, filters, kernel_size=1, strides=strides, activation=False,
                             batch_norm=False, l2=l2, name=prefix + "shortcut_",
                             layers=layers)
            x = keras.layers.Add(name=prefix + "add")([x, y])
            x = keras.layers.ReLU(name=prefix + "relu")(x)
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = layers.dense(num_classes, kernel_initializer="he_normal", name="logits")(x)
    return keras.Model(inputs, logits, name=name)


def resnet20_v1(input_shape, num_classes, l2: float = 1e-4, dropout_rate: float = 0.0,
                seed: int = 0, layers=Deterministic(), mc_dropout: bool = False,
                normalizer=None) -> keras.Model:
    """ResNet20v1 (n = 3), ~0.27M parameters. It has no dropout (`models.check` refuses
    a rate and MC dropout); `seed` is unused (initialisation follows the global seed)."""
    return resnet_v1(input_shape, num_classes, depth=20, l2=l2, name="resnet20_v1",
                     layers=layers, normalizer=normalizer)
