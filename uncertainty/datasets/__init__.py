"""Datasets by name: `load(name, ...)` returns a `Dataset` with its splits and metadata.

Names: cifar10, cifar100, cifar10_corrupted/<type>_<severity> (TFDS, test split only),
fashion_mnist, mnist1d, their locally generated corrupted test sets
fashion_mnist_corrupted/<type>_<severity> and mnist1d_corrupted/<type>_<severity>, and
svhn_cropped (test split, out-of-distribution data for CIFAR). Image datasets keep raw uint8 pixels; models choose their
preprocessing through `Dataset.normalizer`.
"""

import functools
import os

from uncertainty.datasets import corrupted, fashion_mnist, mnist1d, tfds_loader
from uncertainty.datasets.base import PREPROCESSING, Dataset, split_validation
from uncertainty.errors import UserError

NAMES = ("cifar10", "cifar100", "cifar10_corrupted/<type>_<severity>", "fashion_mnist",
         "fashion_mnist_corrupted/<type>_<severity>", "mnist1d",
         "mnist1d_corrupted/<type>_<severity>", "svhn_cropped")
SEVERITIES = (1, 2, 3, 4, 5)
_CLASSES = {"cifar10": 10, "cifar100": 100, "cifar10_corrupted": 10, "fashion_mnist": 10,
            "fashion_mnist_corrupted": 10, "mnist1d": 10, "mnist1d_corrupted": 10,
            "svhn_cropped": 10}
_CORRUPTED = ("cifar10_corrupted", "fashion_mnist_corrupted", "mnist1d_corrupted")
# The clean dataset each corrupted one shifts, and the out-of-distribution pairing.
CLEAN = {"cifar10_corrupted": "cifar10", "fashion_mnist_corrupted": "fashion_mnist",
         "mnist1d_corrupted": "mnist1d"}
OUT_OF_DISTRIBUTION = {"cifar10": "svhn_cropped", "cifar100": "svhn_cropped"}

__all__ = ["CLEAN", "Dataset", "NAMES", "OUT_OF_DISTRIBUTION", "PREPROCESSING", "check",
           "corruption_names", "corruption_types", "load", "shift_sets"]


@functools.cache
def corruption_types() -> tuple[str, ...]:
    """The 19 CIFAR-10-C corruption types, as TFDS's `cifar10_corrupted` names them."""
    import tensorflow_datasets as tfds

    configs = tfds.builder_cls("cifar10_corrupted").BUILDER_CONFIGS
    return tuple(sorted({c.name.rsplit("_", 1)[0] for c in configs}))


def corruption_names(clean: str) -> list[str]:
    """Every `<family>_corrupted/<type>_<severity>` config that shifts `clean`."""
    family = {v: k for k, v in CLEAN.items()}.get(clean)
    if family is None:
        raise UserError(f"{clean} has no corrupted version; choose one of "
                        f"{', '.join(CLEAN.values())}")
    kinds = corruption_types() if family == "cifar10_corrupted" else \
        corrupted.TYPES[clean]
    return [f"{family}/{kind}_{s}" for kind in kinds for s in SEVERITIES]


def shift_sets(clean: str, kinds: list[str] | None, intensities) -> list[tuple]:
    """The evaluation sets of a dataset-shift study as (intensity, type, name): the clean
    test set at intensity 0, then each of `kinds` (None = all) at each intensity 1..5."""
    available = {}
    for name in corruption_names(clean):
        kind, _, severity = name.partition("/")[2].rpartition("_")
        available.setdefault(kind, {})[int(severity)] = name
    unknown = sorted(set(kinds or ()) - set(available))
    if unknown:
        raise UserError(f"unknown corruption {', '.join(unknown)} for {clean}; choose from "
                        f"{', '.join(available)}")
    bad = sorted(set(intensities) - set(SEVERITIES) - {0})
    if bad:
        raise UserError(f"corruption intensities are 1..5 (0 = clean), got {bad}")
    return [(0, None, clean)] + [
        (s, kind, available[kind][s]) for s in sorted(set(intensities) - {0})
        for kind in (available if kinds is None else kinds)]


def check(name: str) -> None:
    """Raise a UserError if `name` is not a dataset this registry can load."""
    family, _, config = name.partition("/")
    if family not in _CLASSES or bool(config) != (family in _CORRUPTED):
        raise UserError(f"unknown dataset {name!r}; choose one of {', '.join(NAMES)}")
    if family in ("fashion_mnist_corrupted", "mnist1d_corrupted"):
        corrupted.check(CLEAN[family], config)
    elif config:
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
    family, _, config = name.partition("/")
    if family == "cifar10_corrupted":
        splits = tfds_loader.load(name, splits=("test",), **tfds_options)
        return Dataset(name, _CLASSES[family], splits, source="tfds")
    if family == "svhn_cropped":
        splits = tfds_loader.load(name, splits=("test",), **tfds_options)
        return Dataset(name, _CLASSES[family], splits, source="tfds")
    if family in ("fashion_mnist_corrupted", "mnist1d_corrupted"):
        clean = load(CLEAN[family], validation_examples, data_dir, manual_dir,
                     fashion_mnist_dir, download)
        splits = corrupted.load(CLEAN[family], config, clean.splits["test"], clean.source,
                                cache_dir=os.path.join(data_dir, "uncertainty")
                                if data_dir else None)
        return Dataset(name, _CLASSES[family], splits, source=clean.source,
                       max_value=clean.max_value, version=corrupted.VERSION)
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
    return Dataset(name, _CLASSES[family], splits, source=source, max_value=max_value,
                   validation_examples=validation_examples)
