"""Datasets by name: `load(name, ...)` returns a `Dataset` with its splits and metadata.

Names: cifar10, cifar100, cifar10_corrupted/<type>_<severity> (test split only),
fashion_mnist, mnist1d. Image datasets keep raw uint8 pixels; models choose their
preprocessing through `Dataset.normalizer`.
"""

import functools

from uncertainty.datasets import fashion_mnist, mnist1d, tfds_loader
from uncertainty.datasets.base import PREPROCESSING, Dataset, split_validation
from uncertainty.errors import UserError

NAMES = ("cifar10", "cifar100", "cifar10_corrupted/<type>_<severity>", "fashion_mnist",
         "mnist1d")
SEVERITIES = (1, 2, 3, 4, 5)
_CLASSES = {"cifar10": 10, "cifar100": 100, "cifar10_corrupted": 10, "fashion_mnist": 10,
            "mnist1d": 10}

__all__ = ["Dataset", "NAMES", "PREPROCESSING", "check", "corruption_types", "load"]


@functools.cache
def corruption_types() -> tuple[str, ...]:
    """The 19 CIFAR-10-C corruption types, as TFDS's `cifar10_corrupted` names them."""
    import tensorflow_datasets as tfds

    configs = tfds.builder_cls("cifar10_corrupted").BUILDER_CONFIGS
    return tuple(sorted({c.name.rsplit("_", 1)[0] for c in configs}))


def check(name: str) -> None:
    """Raise a UserError if `name` is not a dataset this registry can load."""
    family, _, config = name.partition("/")
    if family not in _CLASSES or bool(config) != (family == "cifar10_corrupted"):
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    if config:
        kind, _, severity = config.rpartition("_")
        if kind not in corruption_types():
            raise UserError(f"unknown CIFAR-10-C corruption {kind or config!r}; choose one "
                            f"of {', '.join(corruption_types())}")
        if severity not in {str(s) for s in SEVERITIES}:
            raise UserError(f"CIFAR-10-C severity must be 1..5, got {severity!r} in "
                            f"{name!r}")


def load(name: str, validation_examples: int = 500, data_dir: str | None = None,
         manual_dir: str | None = None, fashion_mnist_dir: str | None = None,
         download: bool = True) -> Dataset:
    """Loads a dataset; the last `validation_examples` training examples validate (for
    TFDS data, the last of TFDS's train split, as the authors' notebook takes them).

    `data_dir`, `manual_dir` and `download` go to TFDS (see `tfds_loader`).
    """
    tfds_options = {"data_dir": data_dir, "manual_dir": manual_dir, "download": download}
    check(name)
    family = name.partition("/")[0]
    if family == "cifar10_corrupted":
        splits = tfds_loader.load(name, splits=("test",), **tfds_options)
        return Dataset(name, _CLASSES[family], splits, source="tfds")
    if family in ("cifar10", "cifar100"):
        raw, source = tfds_loader.load(family, **tfds_options), "tfds"
    elif family == "fashion_mnist":
        raw, source = fashion_mnist.load(fashion_mnist_dir, data_dir=data_dir,
                                         download=download)
    else:
        raw, source = mnist1d.load(), "mnist1d"
    splits = split_validation(*raw["train"], validation_examples, name)
    splits["test"] = raw["test"]
    max_value = 1.0 if family == "mnist1d" else 255.0
    return Dataset(name, _CLASSES[family], splits, source=source, max_value=max_value)
