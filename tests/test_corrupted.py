"""Locally generated corrupted test sets, CIFAR-10-C and SVHN through mocked TFDS."""

import numpy as np
import pytest
from conftest import mock_tfds

from uncertainty import datasets
from uncertainty.datasets import corrupted
from uncertainty.infra.errors import UserError


@pytest.fixture(scope="module")
def images(fashion):
    return fashion.read("test", 60)[0]


@pytest.mark.parametrize("kind", corrupted.IMAGE_TYPES)
def test_image_corruptions_are_deterministic_and_get_harsher(images, kind):
    first = corrupted.corrupt_images(images, kind, 3)
    np.testing.assert_array_equal(first, corrupted.corrupt_images(images, kind, 3))
    assert first.dtype == np.uint8 and first.shape == images.shape
    distance = [np.abs(corrupted.corrupt_images(images, kind, s).astype(float) -
                       images).mean() for s in range(1, 6)]
    assert distance[0] > 0 and all(np.diff(distance) > 0), distance


@pytest.mark.parametrize("kind", corrupted.SIGNAL_TYPES)
def test_signal_corruptions_are_deterministic_and_get_harsher(mnist1d, kind):
    signals = mnist1d.read("test")[0]
    first = corrupted.corrupt_signals(signals, kind, 2)
    np.testing.assert_array_equal(first, corrupted.corrupt_signals(signals, kind, 2))
    distance = [np.abs(corrupted.corrupt_signals(signals, kind, s) - signals).mean()
                for s in range(1, 6)]
    assert distance[0] > 0 and all(np.diff(distance) > 0), distance


def test_registry_builds_a_tfds_dataset_once_and_keeps_labels(tmp_path, fashion):
    name = "fashion_mnist_corrupted/impulse_noise_4"
    data = datasets.load(name, data_dir=str(tmp_path))
    assert data.info()["num_examples"] == {"test": 10000} and data.source == "idx"
    np.testing.assert_array_equal(data.labels("test"), fashion.labels("test"))
    built = list(tmp_path.rglob("fashion_mnist_corrupted-test.array_record*"))
    assert len(built) == 1
    stamp = built[0].stat().st_mtime_ns
    again = datasets.load(name, data_dir=str(tmp_path))
    assert built[0].stat().st_mtime_ns == stamp  # read, not rebuilt
    np.testing.assert_array_equal(again.read("test")[0],
                                  corrupted.corrupt_images(fashion.read("test")[0],
                                                           "impulse_noise", 4))
    np.testing.assert_array_equal(again.read("test")[0], data.read("test")[0])
    changed = np.mean(data.read("test")[0] != fashion.read("test")[0])
    assert 0.05 < changed < 0.5  # impulse noise at severity 4 hits ~17% of the pixels


def test_names_and_errors():
    assert len(datasets.corruption_names("fashion_mnist")) == 10 * 5
    assert len(datasets.corruption_names("mnist1d")) == 5 * 5
    assert len(datasets.corruption_names("cifar10")) == 19 * 5
    with pytest.raises(UserError, match="unknown fashion_mnist_corrupted corruption 'fog'"):
        datasets.check("fashion_mnist_corrupted/fog_1")
    with pytest.raises(UserError, match="severity must be 1..5"):
        datasets.check("mnist1d_corrupted/shift_6")
    with pytest.raises(UserError, match="has no corrupted version"):
        datasets.corruption_names("cifar100")


def test_mock_cifar10_c_and_svhn():
    with mock_tfds(20):
        shifted = datasets.load("cifar10_corrupted/frost_2")
        ood = datasets.load(datasets.OUT_OF_DISTRIBUTION["cifar10"][0])
    assert shifted.info()["num_examples"] == {"test": 20}
    assert ood.name == "svhn_cropped" and ood.input_shape == (32, 32, 3)
    assert ood.info()["num_examples"] == {"test": 20}
