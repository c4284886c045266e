"""Connectors: the curves against their hand formulas, the Keras curve model against a
plain model with the point's weights (outputs, regularisation, gradients), its seeded
streams, and a trained connector on real MNIST-1D runs."""

import os

import numpy as np
import pytest
import tensorflow as tf
import tf_keras as keras
from scipy.special import softmax
from sklearn.metrics import log_loss

from uncertainty import models
from uncertainty.analyses import connectors
from uncertainty.runs import checkpoints
from uncertainty.runs.predictions import RunPredictions
from uncertainty.train import loop


def test_bezier_and_line_follow_their_formulas():
    rng = np.random.default_rng(0)
    a, bend, b = rng.normal(size=(3, 7))
    assert np.allclose(connectors.bezier(a, bend, b, 0.0), a)
    assert np.allclose(connectors.bezier(a, bend, b, 1.0), b)
    for t in (0.1, 0.5, 0.77):
        by_hand = (1 - t) * ((1 - t) * a + t * bend) + t * ((1 - t) * bend + t * b)
        assert np.allclose(connectors.bezier(a, bend, b, t), by_hand, atol=1e-6)
        assert np.allclose(connectors.line(a, b, t), (1 - t) * a + t * b, atol=1e-6)
    assert connectors.bezier(a, bend, b, 0.3).dtype == np.float32


MODELS = [("cnn1d", (40, 1), dict(dropout_rate=0.1, l2=1e-3)),
          ("resnet20_v1", (8, 8, 3), dict(l2=1e-4))]


def _setting(name, shape, kwargs):
    """A curve over a fresh `name` network with random ends and bend, a plain twin
    network, a batch and the arrays."""
    rng = np.random.default_rng(1)
    base, plain = (models.build(name, shape, 10, **kwargs) for _ in range(2))
    shapes = [tuple(w.shape) for w in base.trainable_weights]
    a, bend, b = ([0.1 * rng.normal(size=s).astype(np.float32) for s in shapes]
                  for _ in range(3))
    curve = connectors.BezierCurve(base, a, b, bend)
    x = rng.normal(size=(6, *shape)).astype(np.float32)
    return curve, base, plain, (a, bend, b), x, np.arange(6) % 10


def _with_trainable(model, arrays):
    """`model` with its trainable weights set to `arrays` (the others as they are)."""
    replace = iter(arrays)
    trainable = {id(w) for w in model.trainable_weights}
    model.set_weights([next(replace) if id(w) in trainable else w.numpy()
                       for w in model.weights])


@pytest.mark.parametrize("name,shape,kwargs", MODELS)
def test_curve_model_is_the_network_at_its_point(name, shape, kwargs):
    curve, base, plain, (a, bend, b), x, labels = _setting(name, shape, kwargs)
    before = [w.numpy() for w in base.weights]
    assert [v.ref() for v in curve.trainable_variables] == [v.ref() for v in curve.bend]
    assert len(curve.trainable_variables) == len(base.trainable_weights)
    t = 0.3
    point = [(1 - t) ** 2 * p + 2 * t * (1 - t) * m + t ** 2 * q
             for p, m, q in zip(a, bend, b)]
    for w, expected in zip(curve.point(t), point):
        np.testing.assert_allclose(w.numpy(), expected, atol=1e-6)

    _with_trainable(plain, point)
    logits = curve((x, tf.constant(t)), training=False)
    np.testing.assert_allclose(logits, plain.predict(x, verbose=0), atol=1e-5)
    # The regularisers at the point: l2 * sum of squares of every kernel, by hand.
    l2 = kwargs["l2"]
    kernels = [w for w in point if w.ndim > 1]
    if name == "resnet20_v1":
        kernels = kernels[:-1]  # its last, dense layer has no regulariser
    assert np.isclose(float(tf.add_n(curve.losses)),
                      l2 * sum(np.sum(k.astype(np.float64) ** 2) for k in kernels),
                      rtol=1e-5)
    for w, old in zip(base.weights, before):  # the base network keeps its variables
        assert isinstance(w, tf.Variable)
        np.testing.assert_array_equal(w.numpy(), old)


@pytest.mark.parametrize("name,shape,kwargs", MODELS)
@pytest.mark.parametrize("t", [0.25, 0.6])
def test_bend_gradient_is_2t1mt_times_the_networks_gradient(name, shape, kwargs, t):
    curve, _, plain, (a, bend, b), x, labels = _setting(name, shape, kwargs)

    def loss_of(model, inputs):
        with tf.GradientTape() as tape:
            logits = model(inputs, training=False)
            loss = tf.reduce_mean(keras.losses.sparse_categorical_crossentropy(
                labels, logits, from_logits=True)) + tf.add_n(model.losses)
        return tape.gradient(loss, model.trainable_variables)

    curved = loss_of(curve, (x, tf.constant(t)))
    _with_trainable(plain, [(1 - t) ** 2 * p + 2 * t * (1 - t) * m + t ** 2 * q
                            for p, m, q in zip(a, bend, b)])
    direct = loss_of(plain, x)
    assert len(curved) == len(direct)
    for g, d in zip(curved, direct):
        np.testing.assert_allclose(g.numpy(), 2 * t * (1 - t) * d.numpy(), atol=1e-6,
                                   rtol=1e-4)


def test_curve_refuses_ends_of_another_shape():
    base = models.build("cnn1d", (40, 1), 10)
    shapes = [tuple(w.shape) for w in base.trainable_weights]
    ends = [np.zeros(s, np.float32) for s in shapes]
    with pytest.raises(ValueError, match="shapes"):
        connectors.BezierCurve(base, ends, ends[:-1])


@pytest.mark.slow
def test_trained_connector_lowers_the_loss_at_its_middle(runs, mnist1d):
    """Against sklearn's log loss on softmax of the logits."""
    run_a, run_b = (os.path.join(runs, f"seed{i}") for i in (0, 1))
    a, b = checkpoints.load_weights(run_a), checkpoints.load_weights(run_b)
    bend, history = connectors.train_bezier(run_a, run_b, mnist1d, epochs=2,
                                            learning_rate=3e-3, seed=0)
    assert bend.shape == a.shape and len(history) == 2 and history[1] < history[0]
    predictor, labels = RunPredictions(run_a), mnist1d.labels("train")

    def loss_at(vector):
        probs = softmax(predictor.uncached(mnist1d, "train", vector).astype(np.float64), 1)
        return log_loss(labels, probs, labels=range(10))

    assert loss_at(connectors.bezier(a, bend, b, 0.5)) < loss_at(connectors.line(a, b, 0.5))


@pytest.mark.slow
def test_connector_streams_derive_from_seed_and_runs(runs, mnist1d, monkeypatch):
    """The t draws and batch order: the same for the same seed and runs, other for
    another pair of runs or another seed; one t per step, the runs' batch size."""
    seen = {}

    def capture(config, model, optimizer, batches, steps, **kwargs):
        ts, labels = zip(*[(float(inputs[1]), labels.numpy())
                           for inputs, labels in batches(0, None, 0)])
        seen["last"] = (np.array(ts), np.concatenate(labels))
        # a resumed epoch's stream is the same stream's tail
        tail_ts, tail_labels = zip(*[(float(inputs[1]), labels.numpy())
                                     for inputs, labels in batches(0, None, 2)])
        assert tail_ts == ts[2:] and np.array_equal(np.concatenate(tail_labels),
                                                    np.concatenate(labels[2:]))
        assert len(ts) == steps and config.batch_size == 128 and config.train_epochs == 1
        return [{"train/loss": 0.0}]

    monkeypatch.setattr(loop, "fit", capture)
    run = {i: os.path.join(runs, f"seed{i}") for i in range(3)}

    def streams(first, second, seed):
        connectors.train_bezier(run[first], run[second], mnist1d, 1, seed=seed)
        return seen["last"]

    same = streams(0, 1, 0)
    for a, b in zip(same, streams(0, 1, 0)):
        np.testing.assert_array_equal(a, b)
    for other in (streams(0, 2, 0), streams(0, 1, 1)):
        assert not np.array_equal(same[0], other[0])
        assert not np.array_equal(same[1], other[1])
    assert 0 <= same[0].min() and same[0].max() < 1
