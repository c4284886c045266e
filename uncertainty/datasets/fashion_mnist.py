"""Fashion-MNIST, read offline from the IDX files of Debian's `dataset-fashion-mnist`.

The files are turned into the TFDS dataset `fashion_mnist_idx` (`builders`), in their
order. When they are absent it falls back to TFDS's `fashion_mnist` (which downloads on
a machine with internet or reads a prepared copy under `data_dir`; its examples are in
another order, so runs record which source they used).
"""

import gzip
import os

import numpy as np
import tensorflow as tf

from uncertainty.errors import UserError

DEFAULT_DIR = "/usr/share/datasets/fashion-mnist"
FILES = {"train": ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz"),
         "test": ("t10k-images-idx3-ubyte.gz", "t10k-labels-idx1-ubyte.gz")}


def read_idx(path: str) -> np.ndarray:
    """Reads a (gzipped) IDX file of unsigned bytes into an array of its shape."""
    with tf.io.gfile.GFile(path, "rb") as f:
        data = f.read()
    if path.endswith(".gz"):
        data = gzip.decompress(data)
    if data[:3] != b"\x00\x00\x08":
        raise UserError(f"{path} is not an IDX file of unsigned bytes; re-install "
                        f"dataset-fashion-mnist or point --fashion_mnist_dir elsewhere")
    ndim = data[3]
    shape = tuple(int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim))
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def builder(directory: str | None = None, data_dir: str | None = None,
            download: bool = True):
    """(prepared TFDS builder, source): source "idx" (the files' order: a prepared copy
    under `data_dir`, or built from the files in `directory`) or "tfds" (TFDS's
    fashion_mnist)."""
    from uncertainty.datasets import builders, tfds_loader

    directory = directory or DEFAULT_DIR
    idx = builders.FashionMnistIdx(data_dir=data_dir, file_format=tfds_loader.FILE_FORMAT)
    if idx.is_prepared() or all(tf.io.gfile.exists(os.path.join(directory, f))
                                for files in FILES.values() for f in files):
        return tfds_loader.prepare(builders.FashionMnistIdx, data_dir,
                                   manual_dir=directory), "idx"
    try:
        return tfds_loader.prepare("fashion_mnist", data_dir, download=download), "tfds"
    except UserError as e:
        raise UserError(
            f"Fashion-MNIST not found: no IDX files in {directory} (install them with "
            f"'apt-get install dataset-fashion-mnist' or pass --fashion_mnist_dir) and "
            f"TFDS fashion_mnist failed too ({e})") from None
