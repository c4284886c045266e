"""The package's metadata: ranges wide enough for TensorFlow 2.20 (Cloud TPU's
`tensorflow-tpu`) and 2.21, TensorFlow only through extras, a distribution name of its
own, the Python versions the pinned set supports, and constraints.txt's exact versions
inside every declared range (read from the files; no network)."""

import os
import tomllib

import pytest
from conftest import REPO
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

with open(os.path.join(REPO, "pyproject.toml"), "rb") as f:
    PROJECT = tomllib.load(f)["project"]


def _requirements(*extras) -> dict[str, Requirement]:
    found = [Requirement(r) for r in PROJECT["dependencies"]]
    for extra in extras:
        found += [Requirement(r) for r in PROJECT["optional-dependencies"][extra]]
    return {canonicalize_name(r.name): r for r in found}


def _pins() -> dict[str, str]:
    with open(os.path.join(REPO, "constraints.txt")) as f:
        lines = [line.strip() for line in f if line.strip() and not line.startswith("#")]
    return {canonicalize_name(name): version
            for name, version in (line.split("==") for line in lines)}


@pytest.mark.parametrize("extra", ["tf", "gpu"])
@pytest.mark.parametrize("tensorflow", ["2.20.0", "2.21.0"])
def test_tensorflow_2_20_and_2_21_are_admitted(extra, tensorflow):
    declared = _requirements(extra)
    assert declared["tensorflow"].specifier.contains(tensorflow)
    assert declared["tf-keras"].specifier.contains(tensorflow)
    assert declared["tensorboard"].specifier.contains(tensorflow)
    assert declared["tensorflow-probability"].specifier.contains("0.25.0")
    assert ("and-cuda" in declared["tensorflow"].extras) == (extra == "gpu")


def test_tensorflow_is_not_a_core_dependency():
    """A machine's own TensorFlow (a TPU VM's) is kept: TensorFlow and tf-keras (which
    requires the `tensorflow` distribution) come only through the extras."""
    core = _requirements()
    assert "tensorflow" not in core and "tf-keras" not in core
    assert not any("tensorflow" in r.extras for r in core.values())


def test_name_and_python_versions():
    assert canonicalize_name(PROJECT["name"]) != "uncertainty"  # an unrelated PyPI project
    python = Requirement(f"python{PROJECT['requires-python']}").specifier
    assert not python.contains("3.10") and python.contains("3.11") and python.contains("3.12")


def test_every_pin_is_inside_its_declared_range():
    pins = _pins()
    declared = _requirements("tf", "test")
    assert set(declared) <= set(pins), sorted(set(declared) - set(pins))
    outside = {name: (str(r.specifier), pins[name]) for name, r in declared.items()
               if not r.specifier.contains(pins[name])}
    assert not outside
