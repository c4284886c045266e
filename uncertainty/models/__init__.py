"""Architectures by name: `build(name, input_shape, num_classes, **kwargs)`."""

from typing import Callable, Sequence

import tf_keras as keras

from uncertainty.errors import UserError
from uncertainty.models.cnn import cnn1d, medium_cnn, small_cnn
from uncertainty.models.resnet import resnet20_v1

# name -> (builder, input rank it accepts: 1 for (L, C) signals, 2 for (H, W, C) images,
#          whether it has dropout)
_MODELS: dict[str, tuple[Callable[..., keras.Model], int, bool]] = {
    "small_cnn": (small_cnn, 2, True),
    "medium_cnn": (medium_cnn, 2, True),
    "resnet20_v1": (resnet20_v1, 2, False),
    "cnn1d": (cnn1d, 1, True),
}

NAMES = tuple(_MODELS)


def check(name: str, input_shape: Sequence[int] | None = None,
          dropout_rate: float = 0.0) -> None:
    """Raise a UserError if `name` is unknown, does not take inputs of `input_shape`,
    or has no dropout but `dropout_rate` is set."""
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(NAMES)}")
    if dropout_rate and not _MODELS[name][2]:
        raise UserError(f"{name} has no dropout; leave --dropout_rate unset or 0")
    if input_shape is not None and len(input_shape) - 1 != _MODELS[name][1]:
        kind = {1: "1-D signals (length, channels)", 2: "images (height, width, channels)"}
        raise UserError(f"model {name!r} takes {kind[_MODELS[name][1]]} but the data has "
                        f"shape {tuple(input_shape)}; pick a model for this dataset "
                        f"(e.g. cnn1d for mnist1d, small_cnn for images)")


def build(name: str, input_shape: Sequence[int], num_classes: int, **kwargs) -> keras.Model:
    """Builds the named architecture; it returns logits."""
    check(name, input_shape)
    return _MODELS[name][0](input_shape, num_classes, **kwargs)
