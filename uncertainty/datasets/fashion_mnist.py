"""Fashion-MNIST, read offline from the IDX files of Debian's `dataset-fashion-mnist`.

The files are turned into the TFDS dataset `fashion_mnist_idx`, in their order, by
`builders.FashionMnistIdx`; `builders.fashion_mnist_builder` chooses between it and
TFDS's own `fashion_mnist`.
"""

import gzip

import numpy as np
import tensorflow as tf

from uncertainty.infra.errors import UserError

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

