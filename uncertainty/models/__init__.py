"""Architectures by name: `build(name, input_shape, num_classes, **kwargs)`, and their
variational twins (`build(..., variational=Variational(...))`, `models.flipout`);
`register` adds one."""

import dataclasses
import warnings
from typing import Callable, Sequence

import tf_keras as keras

from uncertainty.infra.errors import UserError
from uncertainty.models import flipout
from uncertainty.models.cnn import cnn1d, medium_cnn, small_cnn
from uncertainty.models.flipout import Variational
from uncertainty.models.layers import Normalizer
from uncertainty.models.resnet import resnet20_v1
from uncertainty.models.resnet50 import resnet50


@dataclasses.dataclass(frozen=True)
class _Spec:
    builder: Callable[..., keras.Model]
    input_rank: int  # 1 for (length, channels) signals, 2 for (height, width, channels)
    dropout: bool
    batchnorm: bool
    variational: bool = True  # has a variational twin


_MODELS = {
    "small_cnn": _Spec(small_cnn, 2, dropout=True, batchnorm=False),
    "medium_cnn": _Spec(medium_cnn, 2, dropout=True, batchnorm=False),
    "resnet20_v1": _Spec(resnet20_v1, 2, dropout=False, batchnorm=True),
    "cnn1d": _Spec(cnn1d, 1, dropout=True, batchnorm=False),
    "resnet50": _Spec(resnet50, 2, dropout=False, batchnorm=True, variational=False),
}
NAMES = tuple(_MODELS)


def register(name: str, builder: Callable[..., keras.Model], input_rank: int, *,
             dropout: bool, batchnorm: bool, variational: bool = False) -> None:
    """Adds an architecture under `name`.

    `builder(input_shape, num_classes, **kwargs)` returns a Keras model from raw inputs
    to logits whose first layer is a `layers.Normalizer` named "normalizer"; it takes
    the keyword arguments the paper's builders take (`cnn.conv_net`): `normalizer`,
    `seed`, `dropout_rate`, `l2`, `mc_dropout` and `layers` (its weight layers come from
    `layers`, so that with `variational=True` the same builder makes the variational
    twin). `input_rank` is 1 for (length, channels) signals, 2 for images; `dropout`
    and `batchnorm` say whether it has dropout layers (MC dropout) and batch norm (whose
    statistics sampled weights re-estimate). A training recipe goes with it
    (`train.recipes.register`)."""
    global NAMES
    if name in _MODELS:
        raise ValueError(f"model {name!r} exists")
    _MODELS[name] = _Spec(builder, input_rank, dropout=dropout, batchnorm=batchnorm,
                          variational=variational)
    NAMES = tuple(_MODELS)


def check(name: str, input_shape: Sequence[int] | None = None,
          dropout_rate: float = 0.0, variational: bool = False) -> None:
    """Raise a UserError if `name` is unknown, does not take inputs of `input_shape`,
    has no dropout but `dropout_rate` is set, or has no variational twin but
    `variational` is asked."""
    if name not in _MODELS:
        raise UserError(f"unknown model {name!r}; choose one of {', '.join(NAMES)}")
    if dropout_rate and not _MODELS[name].dropout:
        raise UserError(f"{name} has no dropout; leave --dropout_rate unset or 0 (and "
                        f"evaluate MC dropout with a model that has dropout layers)")
    if variational and not _MODELS[name].variational:
        twins = [n for n, spec in _MODELS.items() if spec.variational]
        raise UserError(f"{name} has no variational variant; --method=variational "
                        f"takes one of {', '.join(twins)}")
    rank = _MODELS[name].input_rank
    if input_shape is not None and len(input_shape) - 1 != rank:
        kind = {1: "1-D signals (length, channels)", 2: "images (height, width, channels)"}
        raise UserError(f"model {name!r} takes {kind[rank]} but the data has "
                        f"shape {tuple(input_shape)}; pick a model for this dataset "
                        f"(e.g. cnn1d for mnist1d, small_cnn for images)")


def build(name: str, input_shape: Sequence[int], num_classes: int,
          variational: Variational | None = None, dtype: str = "float32",
          **kwargs) -> keras.Model:
    """Builds the named architecture, or with `variational` its variational twin; it
    returns logits. `mc_dropout=True` keeps its dropout on at inference. `dtype` is a
    Keras precision policy: under mixed_bfloat16 / mixed_float16 the layers compute in
    16 bits and keep float32 variables (so checkpoints load into a float32 model)."""
    check(name, input_shape, variational=variational is not None)
    if variational is not None:
        kwargs["layers"] = variational
    previous = keras.mixed_precision.global_policy()
    keras.mixed_precision.set_global_policy(dtype)  # restored below: not left global
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=flipout.ADD_VARIABLE_WARNING)
            return _MODELS[name].builder(input_shape, num_classes, **kwargs)
    finally:
        keras.mixed_precision.set_global_policy(previous)


def num_parameters(model: keras.Model) -> int:
    """The network's parameter count as papers give it: every weight (batch-norm
    statistics included, as Keras counts) except the input normaliser's."""
    normalizer = sum(w.shape.num_elements() for layer in model.submodules
                     if isinstance(layer, Normalizer) for w in layer.weights)
    return model.count_params() - normalizer


def has_dropout(name: str) -> bool:
    check(name)
    return _MODELS[name].dropout


def uses_batchnorm(name: str) -> bool:
    """Whether the model has batch normalisation (whose statistics sampled weights need
    re-estimated)."""
    check(name)
    return _MODELS[name].batchnorm
