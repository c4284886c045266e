"""Corrupted test sets for datasets with no published version (Fashion-MNIST, MNIST-1D),
built locally and deterministically as TFDS datasets (`builders`), named like TFDS's
CIFAR-10-C configs: `fashion_mnist_corrupted/<type>_<severity>`, `mnist1d_corrupted/...`.

Images use TFDS's own ImageNet-C corruption functions
(`tensorflow_datasets.image_classification.corruptions`), restricted to the families
whose five severities get monotonically harsher on 28 x 28 gray images (measured: mean
absolute distance to the clean images grows with severity): noise (gaussian, shot,
impulse, speckle), blur (gaussian, defocus, zoom) and digital (brightness, contrast,
pixelate). The weather and geometric families (fog, frost, snow, spatter, elastic,
glass and motion blur), JPEG and saturation are left out: their constants are for
224-pixel colour images and are not monotone (or need ImageMagick) at this size.
MNIST-1D signals get the 1-D analogues of the same families.
"""

import numpy as np

from uncertainty.infra.errors import UserError

IMAGE_TYPES = ("brightness", "contrast", "defocus_blur", "gaussian_blur", "gaussian_noise",
               "impulse_noise", "pixelate", "shot_noise", "speckle_noise", "zoom_blur")
SIGNAL_TYPES = ("contrast", "gaussian_blur", "gaussian_noise", "impulse_noise", "shift")
TYPES = {"fashion_mnist": IMAGE_TYPES, "mnist1d": SIGNAL_TYPES}
VERSION = "v1"  # the builders' version: bump when a corruption changes
_RGB_ONLY = {"brightness", "defocus_blur", "pixelate"}  # deterministic, need 3 channels


def corrupt_images(images: np.ndarray, kind: str, severity: int, seed: int = 0) -> np.ndarray:
    """TFDS's `kind` corruption at `severity` (1..5) of uint8 images [N, H, W, C];
    the random ones are seeded per image, so the result is deterministic."""
    from tensorflow_datasets.image_classification import corruptions

    if kind == "impulse_noise":
        return _impulse_noise(images, severity, seed)
    function = getattr(corruptions, kind)
    out = np.empty_like(images)
    for i, image in enumerate(images):
        np.random.seed((seed * 1_000_003 + severity * 10_007 + i) % 2 ** 32)
        if kind in _RGB_ONLY and image.shape[-1] == 1:
            out[i] = np.asarray(function(np.repeat(image, 3, axis=-1), severity))[..., :1]
        else:
            out[i] = np.asarray(function(image, severity)).reshape(image.shape)
    return out


def _impulse_noise(images: np.ndarray, severity: int, seed: int) -> np.ndarray:
    """Salt-and-pepper noise with TFDS's amounts; TFDS draws it through scikit-image,
    whose generator it does not seed, so here it is drawn from a seeded one."""
    rng = np.random.default_rng([seed, severity, 7])
    amount = (0.03, 0.06, 0.09, 0.17, 0.27)[severity - 1]
    hit = rng.random(images.shape) < amount
    return np.where(hit, np.where(rng.random(images.shape) < 0.5, 0, 255),
                    images).astype(np.uint8)


def corrupt_signals(signals: np.ndarray, kind: str, severity: int, seed: int = 0
                    ) -> np.ndarray:
    """1-D analogues for float signals [N, L, C] (MNIST-1D is standardised to unit
    variance): additive Gaussian noise, impulses at +-3, Gaussian smoothing, contrast
    reduced towards each signal's mean, and a circular shift."""
    from scipy.ndimage import gaussian_filter1d

    rng = np.random.default_rng([seed, severity, SIGNAL_TYPES.index(kind)])
    level = severity - 1
    if kind == "gaussian_noise":
        return signals + rng.normal(0, (0.2, 0.35, 0.5, 0.75, 1.0)[level], signals.shape)
    if kind == "impulse_noise":
        hit = rng.random(signals.shape) < (0.03, 0.06, 0.1, 0.17, 0.27)[level]
        return np.where(hit, rng.choice([-3.0, 3.0], signals.shape), signals)
    if kind == "gaussian_blur":
        return gaussian_filter1d(signals, (0.6, 1.0, 1.5, 2.0, 3.0)[level], axis=1,
                                 mode="nearest")
    if kind == "contrast":
        mean = signals.mean(axis=1, keepdims=True)
        return mean + (0.6, 0.45, 0.3, 0.2, 0.1)[level] * (signals - mean)
    if kind == "shift":
        steps = rng.integers(1, (2, 4, 6, 9, 12)[level] + 1, size=len(signals))
        steps *= rng.choice([-1, 1], size=len(signals))
        return np.stack([np.roll(s, k, axis=0) for s, k in zip(signals, steps)])
    raise ValueError(kind)


def check(family: str, config: str) -> tuple[str, int]:
    """(type, severity) of `<family>_corrupted/<config>`, or a UserError."""
    kind, _, severity = config.rpartition("_")
    if kind not in TYPES[family]:
        raise UserError(f"unknown {family}_corrupted corruption {kind or config!r}; choose "
                        f"one of {', '.join(TYPES[family])}")
    if severity not in {"1", "2", "3", "4", "5"}:
        raise UserError(f"corruption severity must be 1..5, got {severity!r} in "
                        f"'{family}_corrupted/{config}'")
    return kind, int(severity)
