"""ImageNet: its crops against hand-worked windows, the TFDS loaders through mock data
(every ImageNet-C config), and the errors of a machine without the files."""

import os

import numpy as np
import pytest
import tensorflow as tf
from conftest import mock_tfds, run_in_process

from uncertainty import datasets
from uncertainty.datasets import image_crops
from uncertainty.infra.errors import UserError


@pytest.fixture(scope="module")
def manual_dir(tmp_path_factory):
    """A folder holding (empty stand-ins for) the archives TFDS builds ImageNet from;
    under mock data nothing reads them."""
    folder = tmp_path_factory.mktemp("manual")
    for name in ("ILSVRC2012_img_train.tar", "ILSVRC2012_img_val.tar"):
        (folder / name).touch()
    return str(folder)


def _jpeg(image: np.ndarray) -> tf.Tensor:
    return tf.io.encode_jpeg(image, quality=100, chroma_downsampling=False)


def _gradient(height: int, width: int) -> np.ndarray:
    """An image whose red channel is the row and green the column (scaled to 0..255)."""
    rows, cols = np.mgrid[:height, :width]
    return np.stack([rows * 255 // (height - 1), cols * 255 // (width - 1),
                     np.full_like(rows, 128)], -1).astype(np.uint8)


def _expected_center_crop(jpeg, size=224, full_decode=True):
    """The evaluation crop worked out by hand: the central square of side
    size/(size+32) of the shorter side, resized; cut from the fully decoded image, or
    decoded alone (libjpeg's chroma upsampling differs at a window's edges: for
    random-noise images only, that is visible)."""
    height, width, _ = tf.image.extract_jpeg_shape(jpeg).numpy()
    side = int(size / (size + 32) * min(height, width))
    top, left = (height - side + 1) // 2, (width - side + 1) // 2
    if full_decode:
        image = tf.io.decode_jpeg(jpeg, channels=3).numpy()
        window = image[top:top + side, left:left + side]
    else:
        window = tf.image.decode_and_crop_jpeg(jpeg, [top, left, side, side], channels=3)
    return np.clip(tf.image.resize(window, [size, size], method="bicubic").numpy(), 0, 255)


def test_center_crop_is_the_central_window_resized():
    jpeg = _jpeg(_gradient(300, 400))
    # by hand: side int(224/256*300) = 262, top (300-262+1)//2 = 19, left 69
    crop = image_crops.center_crop(jpeg, 224).numpy()
    assert crop.shape == (224, 224, 3) and crop.dtype == np.float32
    np.testing.assert_allclose(crop, _expected_center_crop(jpeg), atol=1e-3)
    assert abs(crop[0, :, 0].mean() - 19 * 255 / 299) < 1.5  # first row ~ row 19


def test_random_resized_crops_respect_the_area_and_aspect_ranges():
    height, width = 240, 320
    jpeg = _jpeg(_gradient(height, width))
    windows = []
    for seed in range(40):
        crop = image_crops.random_resized_crop(jpeg, tf.constant([seed, 7]), 224).numpy()
        assert crop.shape == (224, 224, 3) and 0 <= crop.min() and crop.max() <= 255
        np.testing.assert_array_equal(
            crop, image_crops.random_resized_crop(jpeg, tf.constant([seed, 7]), 224))
        # the window's extent, read back from the coordinates the pixels carry
        rows = (crop[-1, :, 0].mean() - crop[0, :, 0].mean()) * (height - 1) / 255
        cols = (crop[:, -1, 1].mean() - crop[:, 0, 1].mean()) * (width - 1) / 255
        rows, cols = rows * 224 / 223, cols * 224 / 223  # first to last pixel centre
        windows.append((rows, cols))
    windows = np.array(windows)
    area = windows.prod(1) / (height * width)
    aspect = windows[:, 1] / windows[:, 0]
    assert area.min() > 0.08 * 0.9 and area.max() < 1.05, area
    assert aspect.min() > 0.75 * 0.93 and aspect.max() < 4 / 3 * 1.07, aspect
    assert len(np.unique(windows.round(0), axis=0)) > 30  # the seeds differ


def test_imagenet_through_mock_data(manual_dir):
    with mock_tfds(12):
        data = datasets.load("imagenet2012", validation_examples=2, manual_dir=manual_dir)
        assert data.info()["num_examples"] == {"train": 10, "validation": 2, "test": 12}
        assert data.input_shape == (224, 224, 3) and data.num_classes == 1000
        jpegs, labels = data.read("test")
        assert isinstance(jpegs[0], bytes)  # read undecoded
        np.testing.assert_array_equal(data.labels("test"), labels)

        # evaluation: every image's center crop, in order, the last batch masked
        batches = list(data.eval_pipeline("test", 5).as_numpy_iterator())
        images = np.concatenate([x for x, _, _ in batches])
        mask = np.concatenate([m for _, _, m in batches])
        np.testing.assert_array_equal(mask, [1] * 12 + [0] * 3)
        np.testing.assert_array_equal(np.concatenate([y for _, y, _ in batches])[:12],
                                      labels)
        for image, jpeg in zip(images, jpegs):
            np.testing.assert_allclose(image, _expected_center_crop(jpeg, full_decode=False),
                                       atol=1e-3)

        # training: random-resized crops, flips; a function of (seed, epoch) and of
        # the position in the global batch only
        def batches_of(epoch, context=None, normalizer=None):
            return [x for x, _ in data.train_pipeline(
                4, 2, seed=1, epoch=epoch, augment=True, normalizer=normalizer,
                input_context=context).as_numpy_iterator()]

        first = batches_of(0)
        assert [x.shape for x in first] == [(4, 224, 224, 3)] * 2
        assert all(x.dtype == np.float32 and x.min() >= 0 and x.max() <= 255
                   for x in first)
        np.testing.assert_array_equal(np.stack(first), np.stack(batches_of(0)))
        assert not np.array_equal(np.stack(first), np.stack(batches_of(1)))
        context = tf.distribute.InputContext(num_input_pipelines=1, input_pipeline_id=0,
                                             num_replicas_in_sync=2)
        shards = batches_of(0, context)
        np.testing.assert_array_equal(np.concatenate(shards[:2]), first[0])
        normalized = batches_of(0, normalizer=data.normalizer("mean_std"))[0]
        low, high = (0 - 0.485) / 0.229, (1 - 0.406) / 0.225
        assert low - 1e-5 <= normalized.min() and normalized.max() <= high + 1e-5
        with pytest.raises(UserError, match="pixel_mean needs inputs of one stored shape"):
            data.normalizer("pixel_mean")


def test_every_imagenet_c_config_loads_under_mock_data(manual_dir):
    names = datasets.corruption_names("imagenet2012")
    kinds = datasets.corruption_types("imagenet2012_corrupted")
    assert len(kinds) == 19 and len(names) == 19 * 5
    assert {"gaussian_noise", "glass_blur", "elastic_transform", "frost"} <= set(kinds)
    with mock_tfds(3):
        for name in names:
            data = datasets.load(name, manual_dir=manual_dir)
            assert data.info()["num_examples"] == {"test": 3}, name
            images, labels = data.read("test", 2)
            assert images.shape == (2, 224, 224, 3) and images.dtype == np.uint8
            assert 0 <= labels.min() and labels.max() < 1000


@pytest.mark.parametrize("name,message", [
    ("imagenet2012_corrupted/frosted_glass_blur_1",
     "unknown ImageNet-C corruption 'frosted_glass_blur'; choose one of brightness, "
     "contrast, defocus_blur, elastic_transform"),
    ("imagenet2012_corrupted/fog_6", "ImageNet-C severity must be 1..5"),
    ("imagenet2012_corrupted", "unknown dataset"),
    ("imagenet", "unknown dataset"),
])
def test_bad_imagenet_names(name, message):
    with pytest.raises(UserError, match=message):
        datasets.check(name)


def test_unknown_imagenet_c_type_in_a_shift_study_lists_the_valid_ones():
    with pytest.raises(UserError, match="unknown corruption elastic for imagenet2012; "
                                        "choose from brightness, contrast"):
        datasets.shift_sets("imagenet2012", ["elastic"], [1])


def test_cifar100_has_no_corrupted_version_in_tfds():
    with pytest.raises(UserError, match=r"cifar100 has no corrupted version \(TFDS has "
                                        r"no CIFAR-100-C\)"):
        datasets.corruption_names("cifar100")


def test_imagenet_run_without_its_files_fails_with_one_line(tmp_path, capfd):
    data_dir, run = tmp_path / "tfds", tmp_path / "run"
    code, lines = run_in_process(capfd, "train", "--dataset=imagenet2012", "--model=resnet50",
                                 f"--data_dir={data_dir}", f"--output_dir={run}")
    assert code == 2, lines
    assert len(lines) == 1, lines
    assert ("put ILSVRC2012_img_train.tar, ILSVRC2012_img_val.tar in "
            f"{data_dir / 'downloads' / 'manual'} (or pass --manual_dir") in lines[0]
    assert not os.path.exists(run)


def test_imagenet_c_without_the_validation_archive_names_it(tmp_path):
    with pytest.raises(UserError, match="put ILSVRC2012_img_val.tar in .*empty"):
        datasets.load("imagenet2012_corrupted/frost_3", data_dir=str(tmp_path / "tfds"),
                      manual_dir=str(tmp_path / "empty"))
