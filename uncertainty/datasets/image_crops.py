"""ImageNet's input crops, from JPEG bytes of any size to `size` x `size` RGB floats.

The standard ResNet preprocessing (the Cloud TPU ResNet reference, which
uncertainty-baselines' ImageNet baselines and TFDS's `imagenet2012_corrupted` follow):
- training, `random_resized_crop`: a box covering 8%-100% of the image with aspect
  ratio 3/4-4/3 (10 attempts, else the center crop), decoded alone and resized;
- evaluation, `center_crop`: the central square of side size / (size + 32) of the
  shorter side (224 of 256), resized.
Only the crop window is decoded (`decode_and_crop_jpeg`). Resizing is bicubic, clipped
to the pixel range [0, 255]; the crop is drawn statelessly from `seed`, so it is a
function of the example's position in the run (see `Dataset.train_pipeline`).
"""

import tensorflow as tf

CROP_PADDING = 32
AREA_RANGE = (0.08, 1.0)
ASPECT_RATIO_RANGE = (3 / 4, 4 / 3)
MIN_OBJECT_COVERED = 0.1
MAX_ATTEMPTS = 10


def center_crop(jpeg: tf.Tensor, size: int) -> tf.Tensor:
    """The evaluation crop of one JPEG image: float32 [size, size, 3]."""
    shape = tf.image.extract_jpeg_shape(jpeg)
    height, width = shape[0], shape[1]
    side = tf.cast(size / (size + CROP_PADDING) *
                   tf.cast(tf.minimum(height, width), tf.float64), tf.int32)
    window = tf.stack([(height - side + 1) // 2, (width - side + 1) // 2, side, side])
    return _decode_resize(jpeg, window, size)


def random_resized_crop(jpeg: tf.Tensor, seed: tf.Tensor, size: int) -> tf.Tensor:
    """The training crop of one JPEG image, drawn from `seed` (2 integers): float32
    [size, size, 3]. Falls back to `center_crop` when no box is found."""
    shape = tf.image.extract_jpeg_shape(jpeg)
    begin, extent, _ = tf.image.stateless_sample_distorted_bounding_box(
        shape, bounding_boxes=tf.constant([[[0.0, 0.0, 1.0, 1.0]]]), seed=seed,
        min_object_covered=MIN_OBJECT_COVERED, aspect_ratio_range=ASPECT_RATIO_RANGE,
        area_range=AREA_RANGE, max_attempts=MAX_ATTEMPTS,
        use_image_if_no_bounding_boxes=True)
    window = tf.stack([begin[0], begin[1], extent[0], extent[1]])
    whole = tf.reduce_all(tf.equal(extent[:2], shape[:2]))  # no box found
    return tf.cond(whole, lambda: center_crop(jpeg, size),
                   lambda: _decode_resize(jpeg, window, size))


def _decode_resize(jpeg: tf.Tensor, window: tf.Tensor, size: int) -> tf.Tensor:
    image = tf.image.decode_and_crop_jpeg(jpeg, window, channels=3)
    image = tf.image.resize(image, [size, size], method=tf.image.ResizeMethod.BICUBIC)
    return tf.clip_by_value(image, 0.0, 255.0)


def crop_batch(jpegs: tf.Tensor, size: int, seeds: tf.Tensor | None = None) -> tf.Tensor:
    """A batch [k] of JPEG strings as float32 [k, size, size, 3]: random-resized crops
    drawn from `seeds` [k, 2], or center crops without them."""
    spec = tf.TensorSpec([size, size, 3], tf.float32)
    if seeds is None:
        return tf.map_fn(lambda jpeg: center_crop(jpeg, size), jpegs,
                         fn_output_signature=spec)
    return tf.map_fn(lambda args: random_resized_crop(args[0], args[1], size),
                     (jpegs, seeds), fn_output_signature=spec)
