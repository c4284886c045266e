"""MNIST-1D (Greydanus 2020), generated offline by the `mnist1d` package.

The package's default arguments (5,000 signals of length 40, 80/20 train/test split,
seed 42) make the standard dataset; generation is deterministic and never downloads.
"""

import numpy as np


def load() -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """{'train': (x, y), 'test': (x, y)} with x float32 [N, 40, 1], y int64 [N]."""
    from mnist1d.data import get_dataset_args, make_dataset

    data = make_dataset(get_dataset_args(as_dict=False))
    return {"train": (data["x"].astype(np.float32)[..., None], data["y"].astype(np.int64)),
            "test": (data["x_test"].astype(np.float32)[..., None],
                     data["y_test"].astype(np.int64))}
