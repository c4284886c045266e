"""Datasets by name: `load(name, ...)` returns a `Dataset` with its splits and metadata.

Names: cifar10, cifar100, cifar10_corrupted/<type>_<severity> (TFDS, test split only),
fashion_mnist, mnist1d, their locally generated corrupted test sets
fashion_mnist_corrupted/<type>_<severity> and mnist1d_corrupted/<type>_<severity>, and
svhn_cropped (test split, out-of-distribution data for CIFAR). Every one is a TFDS
dataset prepared as ArrayRecord files under `data_dir` (TFDS's default:
~/tensorflow_datasets) and read by index (`Dataset`); the local ones are built by
`builders` on first use. Image datasets keep raw uint8 pixels; models choose their
preprocessing through `Dataset.normalizer`.
"""

import functools
import os

import tensorflow_datasets as tfds
# Defines absl flags when imported: import it now, not first inside a binary's flagsaver
# (which would drop the flags again on exit).
from array_record.python import array_record_data_source  # noqa: F401

from uncertainty.datasets import builders, corrupted, fashion_mnist, tfds_loader
from uncertainty.datasets.base import (CACHE_BYTES, PREPROCESSING, Dataset, Split,
                                       split_validation)
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
         download: bool = True, cache_bytes: int = CACHE_BYTES) -> Dataset:
    """Loads a dataset; the last `validation_examples` training examples validate (for
    TFDS data, the last of TFDS's train split, as the authors' notebook takes them).

    `data_dir`, `manual_dir` and `download` go to TFDS (see `tfds_loader`); splits up to
    `cache_bytes` are kept in host memory once read (`Dataset.cache_bytes`).
    """
    data = _load(name, validation_examples, data_dir, manual_dir, fashion_mnist_dir,
                 download)
    data.cache_bytes = cache_bytes
    return data


def _load(name, validation_examples, data_dir, manual_dir, fashion_mnist_dir, download):
    options = {"data_dir": data_dir, "manual_dir": manual_dir, "download": download}
    check(name)
    family, _, config = name.partition("/")
    if family in ("cifar10_corrupted", "svhn_cropped"):
        return _dataset(name, tfds_loader.prepare(name, **options),
                        {"test": "test"}, source="tfds")
    if family in ("fashion_mnist_corrupted", "mnist1d_corrupted"):
        clean = load(CLEAN[family], validation_examples, data_dir, manual_dir,
                     fashion_mnist_dir, download)
        # One folder per clean source: the corrupted examples follow the clean order.
        local = os.path.join(data_dir or tfds.core.constants.DATA_DIR,
                             "uncertainty_corrupted", clean.source)
        builder_class = (builders.FashionMnistCorrupted if family.startswith("fashion")
                         else builders.Mnist1dCorrupted)
        builder = tfds_loader.prepare(builder_class, local, config=config, clean=clean)
        return _dataset(name, builder, {"test": "test"}, source=clean.source,
                        max_value=clean.max_value, version=corrupted.VERSION)
    if family in ("cifar10", "cifar100"):
        builder, source = tfds_loader.prepare(family, **options), "tfds"
    elif family == "fashion_mnist":
        builder, source = fashion_mnist.builder(fashion_mnist_dir, data_dir, download)
    else:
        builder, source = tfds_loader.prepare(builders.Mnist1d, data_dir), "mnist1d"
    return _dataset(name, builder, {"train": "train", "test": "test"}, source,
                    max_value=1.0 if family == "mnist1d" else 255.0,
                    validation_examples=validation_examples)


def _dataset(name: str, builder, tfds_splits: dict[str, str], source: str,
             validation_examples: int = 0, **metadata) -> Dataset:
    """A `Dataset` over `builder`'s TFDS splits ({ours: TFDS's}); a "train" split loses
    its last `validation_examples` to the validation split."""
    sources = {split: builder.as_data_source(split) for split in tfds_splits.values()}
    splits = {}
    for ours, theirs in tfds_splits.items():
        if ours == "train":
            splits.update(split_validation(theirs, len(sources[theirs]),
                                           validation_examples, name))
        else:
            splits[ours] = Split(theirs, 0, len(sources[theirs]))
    family = name.partition("/")[0]
    return Dataset(name, _CLASSES[family], builder, splits, sources, source,
                   validation_examples=validation_examples, **metadata)
