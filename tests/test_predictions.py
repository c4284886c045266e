"""The prediction cache: logits keyed by everything that changes their rows; a stale,
truncated or unreadable file is recomputed, never trusted."""

import logging

import numpy as np
import pytest
import tensorflow as tf

from uncertainty import datasets
from uncertainty.infra import files
from uncertainty.runs import checkpoints, layout, predictions
from uncertainty.train.train_config import TrainConfig
from uncertainty.train.trainer import train


@pytest.fixture(scope="module")
def run(tmp_path_factory, mnist1d):
    run_dir = str(tmp_path_factory.mktemp("cache") / "run")
    train(TrainConfig.from_recipe("mnist1d", "cnn1d", 0, train_epochs=1,
                                  train_examples=1000), mnist1d, run_dir)
    return run_dir


def fresh(run_dir):
    return predictions.RunPredictions(run_dir, batch_size=250)


def test_same_function_and_data_is_read_from_the_cache(run, mnist1d):
    first = fresh(run).checkpoint(mnist1d, "test")
    again = fresh(run)
    np.testing.assert_array_equal(again.checkpoint(mnist1d, "test"), first)
    assert again.counts == {"computed": 0, "from_cache": 1}
    assert first.dtype == np.float32 and first.shape == (1000, 10)  # logits, not probs


def test_changed_checkpoint_content_is_recomputed(run, mnist1d, tmp_path):
    import shutil
    copy = str(tmp_path / "run")
    shutil.copytree(run, copy)
    before = fresh(copy).checkpoint(mnist1d, "test", 1)
    model = checkpoints.restore(copy, 1)
    for weight in model.trainable_weights:
        weight.assign(0.5 * weight)
    tf.train.Checkpoint(model=model).write(layout.checkpoint_prefix(copy, 1))
    predictor = fresh(copy)
    after = predictor.checkpoint(mnist1d, "test", 1)
    assert predictor.counts["computed"] == 1 and not np.allclose(before, after)


@pytest.mark.parametrize("change", ["validation_examples", "train_examples",
                                    "corruption", "source"])
def test_each_data_key_component_forces_a_recomputation(run, mnist1d, change):
    fresh(run).checkpoint(mnist1d, "test")
    fresh(run).checkpoint(mnist1d, "test", bn_data=mnist1d.head("train", 600))
    if change == "validation_examples":
        data, bn = datasets.load("mnist1d", validation_examples=400), None
    elif change == "train_examples":
        data, bn = mnist1d, mnist1d.head("train", 700)
    elif change == "corruption":
        data, bn = datasets.load("mnist1d_corrupted/gaussian_noise_2"), None
        fresh(run).checkpoint(datasets.load("mnist1d_corrupted/gaussian_noise_1"), "test")
    else:
        import dataclasses
        data, bn = dataclasses.replace(mnist1d, source="elsewhere"), None
    predictor = fresh(run)
    predictor.checkpoint(data, "test", bn_data=bn)
    assert predictor.counts == {"computed": 1, "from_cache": 0}


def test_changed_preprocessing_is_recomputed(run, mnist1d, tmp_path):
    import shutil
    copy = str(tmp_path / "run")
    shutil.copytree(run, copy)
    before = fresh(copy).checkpoint(mnist1d, "test")
    for epoch in (0, checkpoints.epochs(copy)[-1]):  # the normaliser is in every one
        model = checkpoints.restore(copy, epoch)
        model.get_layer("normalizer").shift.assign_add(tf.ones_like(
            model.get_layer("normalizer").shift))
        tf.train.Checkpoint(model=model).write(layout.checkpoint_prefix(copy, epoch))
    predictor = fresh(copy)
    after = predictor.checkpoint(mnist1d, "test")
    assert predictor.counts["computed"] == 1 and not np.allclose(before, after)


@pytest.mark.parametrize("damage", ["truncate", "garbage", "rows"])
def test_unreadable_or_truncated_cache_is_recomputed_with_a_log_line(run, mnist1d,
                                                                      damage, caplog):
    predictor = fresh(run)
    good = predictor.checkpoint(mnist1d, "test")
    path = predictor.cache_path(mnist1d, "test", "epoch_001")
    if damage == "truncate":
        with open(path, "rb") as f:
            head = f.read()[:200]
        with open(path, "wb") as f:
            f.write(head)
    elif damage == "garbage":
        with open(path, "wb") as f:
            f.write(b"not a numpy file")
    else:  # the right identity but the wrong number of rows
        with np.load(path) as saved:
            files.write_npz(path, logits=saved["logits"][:10], identity=saved["identity"])
    caplog.set_level(logging.INFO)
    again = fresh(run)
    np.testing.assert_allclose(again.checkpoint(mnist1d, "test"), good, atol=1e-6)
    assert again.counts["computed"] == 1
    reason = {"truncate": "damaged", "garbage": "damaged",
              "rows": "rows do not match"}[damage]
    assert any(reason in r.getMessage() for r in caplog.records)


def test_analyses_see_the_training_examples_the_runs_saw():
    """Batch-norm re-estimation and connectors use the training split the runs trained
    on: `--train_examples` cuts it, and the cache key tells the two apart."""
    from absl import flags

    from uncertainty.cli import common_flags as cli

    cli.define_data_flags(dataset=False)
    flags.FLAGS(["pytest"], known_only=True)
    shared = {"dataset": "mnist1d", "validation_examples": 500, "train_examples": 700}
    cut = cli.load_run_data(shared)
    whole = cli.load_run_data({**shared, "train_examples": 0})
    assert cut.num_examples("train") == 700 and whole.num_examples("train") == 3500
    np.testing.assert_array_equal(cut.labels("train"), whole.labels("train")[:700])
    assert cut.identity("train") != whole.identity("train")
    assert cut.identity("test") == whole.identity("test")


def test_kept_batches_give_the_streamed_logits_and_match_keras(run, mnist1d):
    import dataclasses

    model = checkpoints.restore(run)
    kept = predictions.predict(model, mnist1d, "test", 300)  # 1,000 = 3 x 300 + 100
    again = predictions.predict(model, mnist1d, "test", 300)
    streamed_data = dataclasses.replace(mnist1d, cache_bytes=0, _cache={})
    streamed = predictions.predict(model, streamed_data, "test", 300)
    entries = {key[0]: e for key, e in predictions._PIPELINES.items() if key[2] == 300}
    assert isinstance(entries[id(mnist1d)][2], list)  # kept in memory
    assert not isinstance(entries[id(streamed_data)][2], list)  # a pipeline: streamed
    np.testing.assert_array_equal(kept, again)
    np.testing.assert_array_equal(kept, streamed)
    inputs, _ = mnist1d.read("test")
    np.testing.assert_allclose(kept, model.predict(inputs.astype(np.float32), verbose=0),
                               atol=1e-5)
