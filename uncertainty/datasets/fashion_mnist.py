"""Fashion-MNIST, read offline from the IDX files of Debian's `dataset-fashion-mnist`.

When the files are absent it falls back to TFDS's `fashion_mnist` (which downloads on a
machine with internet or reads a prepared copy under `data_dir`).
"""

import gzip
import os

import numpy as np

from uncertainty.errors import UserError

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
_FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
          "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: str) -> np.ndarray:
    """Reads a (gzipped) IDX file of unsigned bytes into an array of its shape."""
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    if data[:3] != b"\x00\x00\x08":
        raise UserError(f"{path} is not an IDX file of unsigned bytes; re-install "
                        f"dataset-fashion-mnist or point --fashion_mnist_dir elsewhere")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def load(directory: str | None = None, data_dir: str | None = None,
         download: bool = True) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], str]:
    """({'train': (x, y), 'test': (x, y)}, source) with x uint8 [N, 28, 28, 1], y int64
    [N]; source is "idx" (the files' order) or "tfds" (TFDS's order: other
    validation examples)."""
    directory = directory or DEFAULT_DIR
    paths = {split: [os.path.join(directory, f) for f in files]
             for split, files in _FILES.items()}
    if all(os.path.exists(p) for files in paths.values() for p in files):
        return {split: (read_idx(images)[..., None], read_idx(labels).astype(np.int64))
                for split, (images, labels) in paths.items()}, "idx"
    try:
        from uncertainty.datasets import tfds_loader
        return tfds_loader.load("fashion_mnist", data_dir=data_dir,
                                download=download), "tfds"
    except UserError as e:
        raise UserError(
            f"Fashion-MNIST not found: no IDX files in {directory} (install them with "
            f"'apt-get install dataset-fashion-mnist' or pass --fashion_mnist_dir) and "
            f"TFDS fashion_mnist failed too ({e})") from None
