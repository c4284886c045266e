"""Architectures: parameter counts from hand formulas, output shapes, layer placement."""

import numpy as np
import pytest
import tf_keras as keras

from uncertainty import models
from uncertainty.infra.errors import UserError


def conv_params(k, cin, cout, bias=True):
    return k * k * cin * cout + (cout if bias else 0)


def cnn_params(channels, in_channels, spatial, classes, k=3, rank=2):
    total, cin = 0, in_channels
    for c in channels:
        total += k ** rank * cin * c + c
        cin = c
        spatial = [-(-s // 2) for s in spatial]  # SAME pooling: ceil(s / 2)
    return total + int(np.prod(spatial)) * cin * classes + classes


def resnet20_params(classes, in_channels=3):
    total = conv_params(3, in_channels, 16) + 4 * 16  # stem conv (with bias) + BN
    cin = 16
    for stage, f in enumerate((16, 32, 64)):
        for block in range(3):
            total += conv_params(3, cin, f) + 4 * f
            total += conv_params(3, f, f) + 4 * f
            if stage > 0 and block == 0:
                total += conv_params(1, cin, f)  # projection shortcut, with bias, no BN
            cin = f
    return total + 64 * classes + classes


def test_medium_cnn_has_the_papers_971146_parameters():
    model = models.build("medium_cnn", (32, 32, 3), 10)
    assert models.num_parameters(model) == 971_146 == cnn_params((64, 128, 256, 256), 3,
                                                                 [32, 32], 10)


@pytest.mark.parametrize("name,shape,classes,expected", [
    ("small_cnn", (32, 32, 3), 10, cnn_params((16, 32, 32), 3, [32, 32], 10)),
    ("small_cnn", (28, 28, 1), 10, cnn_params((16, 32, 32), 1, [28, 28], 10)),
    ("medium_cnn", (32, 32, 3), 100, cnn_params((64, 128, 256, 256), 3, [32, 32], 100)),
    ("resnet20_v1", (32, 32, 3), 10, resnet20_params(10)),
    ("resnet20_v1", (32, 32, 3), 100, resnet20_params(100)),
    ("cnn1d", (40, 1), 10, cnn_params((32, 64, 64), 1, [40], 10, k=5, rank=1)),
])
def test_parameter_counts_and_output_shapes(name, shape, classes, expected):
    model = models.build(name, shape, classes)
    assert models.num_parameters(model) == expected
    out = model(np.zeros((2, *shape), np.float32), training=False)
    assert out.shape == (2, classes)


def test_resnet20_is_about_027m_parameters():
    assert models.num_parameters(models.build("resnet20_v1", (32, 32, 3), 10)) == 274_442


def test_resnet_v1_relu_follows_each_add_and_not_the_second_conv():
    model = models.build("resnet20_v1", (32, 32, 3), 10)
    adds = [layer for layer in model.layers if isinstance(layer, keras.layers.Add)]
    assert len(adds) == 9
    for add in adds:
        consumers = [n.outbound_layer for n in add._outbound_nodes]
        assert all(isinstance(c, keras.layers.ReLU) for c in consumers)
        parents = [p for node in add._inbound_nodes for p in node.inbound_layers]
        residual = [p for p in parents if isinstance(p, keras.layers.BatchNormalization)]
        assert len(residual) == 1 and residual[0].name.endswith("_b_bn")  # no ReLU before +


def test_cnn_relu_after_all_but_last_block_and_glorot_biases():
    model = models.build("medium_cnn", (32, 32, 3), 10)
    names = [layer.name for layer in model.layers]
    assert [n for n in names if n.startswith("relu")] == ["relu0", "relu1", "relu2"]
    assert names.index("dropout0") < names.index("pool0") < names.index("relu0")
    for layer in [model.get_layer("conv3"), model.get_layer("logits")]:
        bias = layer.bias.numpy()
        limit = np.sqrt(6 / (1 + bias.size))  # TF1 xavier on the notebook's [1, .., C]
        assert np.all(np.abs(bias) <= limit) and np.abs(bias).max() > 0.5 * limit


def test_unknown_model_and_wrong_input_rank_are_user_errors():
    with pytest.raises(UserError, match="unknown model 'vgg'"):
        models.build("vgg", (32, 32, 3), 10)
    with pytest.raises(UserError, match="cnn1d"):
        models.build("small_cnn", (40, 1), 10)


def test_runs_with_nearby_seeds_share_no_dropout_stream():
    """Dropout layers seeded seed + i would give run 0's second layer run 1's first
    layer's masks; each layer's seed must come from its own stream."""
    seeds = {}
    for run_seed in range(4):
        model = models.build("medium_cnn", (32, 32, 3), 10, seed=run_seed)
        seeds[run_seed] = [layer.seed for layer in model.layers
                           if isinstance(layer, keras.layers.Dropout)]
        assert len(seeds[run_seed]) == 4 and len(set(seeds[run_seed])) == 4
    assert not set(seeds[0]) & set(seeds[1])
    everything = [s for layer_seeds in seeds.values() for s in layer_seeds]
    assert len(set(everything)) == len(everything)


def test_reseed_sets_the_state_and_masks_of_tensorflows_reset_from_seed():
    """MC dropout's reseed makes the generator state on the host; TensorFlow's
    `reset_from_seed` is the reference, for seeds of one to three 64-bit words."""
    import tensorflow as tf

    from uncertainty.models.layers import Dropout

    ours, reference = Dropout(0.5, always_on=True), Dropout(0.5, always_on=True)
    x = tf.ones((4, 50))
    for layer in (ours, reference):
        layer(x)
    for seed in (0, 7, 2**31 - 1, 2**63 - 1, 2**63, 2**64 - 1, 2**64 + 5, 2**130 + 3):
        ours.reseed(seed)
        reference._random_generator._generator.reset_from_seed(seed)
        np.testing.assert_array_equal(ours._random_generator._generator.state.numpy(),
                                      reference._random_generator._generator.state.numpy())
        np.testing.assert_array_equal(ours(x).numpy(), reference(x).numpy())


def test_resnet50_v15_parameter_count():
    """ResNet-50's published 25,557,032 trainable parameters (He et al.'s network as
    torchvision counts it, 1,000 classes), and the same by hand."""
    model = models.build("resnet50", (224, 224, 3), 1000)
    trainable = sum(w.shape.num_elements() for w in model.trainable_weights)

    def conv_bn(inputs, outputs, size):  # conv without bias, BN's gamma and beta
        return size * size * inputs * outputs + 2 * outputs

    by_hand, channels = conv_bn(3, 64, 7), 64
    for stage, (width, blocks) in enumerate([(64, 3), (128, 4), (256, 6), (512, 3)]):
        for block in range(blocks):
            by_hand += (conv_bn(channels, width, 1) + conv_bn(width, width, 3) +
                        conv_bn(width, 4 * width, 1))
            if block == 0:
                by_hand += conv_bn(channels, 4 * width, 1)  # projection shortcut
            channels = 4 * width
    by_hand += 2048 * 1000 + 1000
    assert trainable == by_hand == 25_557_032
    # v1.5: the stride of a down-sampling block is in its 3x3 conv, not its first 1x1
    assert model.get_layer("stage1_block0_1_conv").strides == (1, 1)
    assert model.get_layer("stage1_block0_2_conv").strides == (2, 2)
    assert model.output_shape == (None, 1000)
