"""ResNet-50 v1.5 for ImageNet, as uncertainty-baselines' `resnet50_deterministic`.

He et al. (2016)'s bottleneck network with the stride of each down-sampling block in
its 3x3 conv rather than its first 1x1 conv ("v1.5"): a 7x7/2 stem (zero padding 3)
with BN and ReLU, a 3x3/2 max-pool, stages of (3, 4, 6, 3) bottleneck blocks of
(64, 128, 256, 512) x (1, 1, 4) filters, a projection shortcut (1x1 conv + BN) where a
block changes shape, global average pooling and a dense layer. Convs have no bias and
He-normal init; BN uses PyTorch's momentum 0.9 and epsilon 1e-5; the dense layer is
initialised N(0, 0.01^2). 25,557,032 trainable parameters for 1,000 classes. L2 (if
any) is on kernels. Returns logits.
"""

from typing import Sequence

import tf_keras as keras

from uncertainty.models.layers import Normalizer

_BN = dict(momentum=0.9, epsilon=1e-5)
STAGES = ((64, 3), (128, 4), (256, 6), (512, 3))  # (bottleneck width, blocks)


def _conv_bn(x, filters: int, kernel_size: int, strides: int, l2: float, name: str,
             relu: bool = True):
    x = keras.layers.Conv2D(filters, kernel_size, strides=strides, padding="same",
                            use_bias=False, kernel_initializer="he_normal",
                            kernel_regularizer=keras.regularizers.l2(l2) if l2 else None,
                            name=f"{name}_conv")(x)
    x = keras.layers.BatchNormalization(**_BN, name=f"{name}_bn")(x)
    return keras.layers.ReLU(name=f"{name}_relu")(x) if relu else x


def _bottleneck(x, width: int, strides: int, l2: float, name: str):
    y = _conv_bn(x, width, 1, 1, l2, f"{name}_1")
    y = _conv_bn(y, width, 3, strides, l2, f"{name}_2")  # v1.5: the stride is here
    y = _conv_bn(y, 4 * width, 1, 1, l2, f"{name}_3", relu=False)
    if x.shape[-1] != 4 * width or strides != 1:
        x = _conv_bn(x, 4 * width, 1, strides, l2, f"{name}_shortcut", relu=False)
    return keras.layers.ReLU(name=f"{name}_out")(keras.layers.Add(name=f"{name}_add")([x, y]))


def resnet50(input_shape: Sequence[int], num_classes: int, l2: float = 0.0,
             normalizer=None, dropout_rate: float = 0.0, seed: int = 0,
             mc_dropout: bool = False) -> keras.Model:
    """ResNet-50 v1.5; `normalizer` (shift, scale) is the input preprocessing. It has no
    dropout (`models.check` refuses a rate); `seed` is unused (initialisation follows
    the global seed)."""
    inputs = keras.Input(tuple(input_shape))
    x = Normalizer(*(normalizer or (None, None)), name="normalizer")(inputs)
    x = keras.layers.ZeroPadding2D(3, name="stem_pad")(x)
    x = keras.layers.Conv2D(64, 7, strides=2, use_bias=False, kernel_initializer="he_normal",
                            kernel_regularizer=keras.regularizers.l2(l2) if l2 else None,
                            name="stem_conv")(x)
    x = keras.layers.BatchNormalization(**_BN, name="stem_bn")(x)
    x = keras.layers.ReLU(name="stem_relu")(x)
    x = keras.layers.MaxPool2D(3, strides=2, padding="same", name="stem_pool")(x)
    for stage, (width, blocks) in enumerate(STAGES):
        for block in range(blocks):
            strides = 2 if stage > 0 and block == 0 else 1
            x = _bottleneck(x, width, strides, l2, f"stage{stage}_block{block}")
    x = keras.layers.GlobalAveragePooling2D(name="pool")(x)
    logits = keras.layers.Dense(
        num_classes, kernel_initializer=keras.initializers.RandomNormal(stddev=0.01),
        kernel_regularizer=keras.regularizers.l2(l2) if l2 else None, name="logits")(x)
    return keras.Model(inputs, logits, name="resnet50")
