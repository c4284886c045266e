"""Shared fixtures: real data loaded once, and a helper that runs a binary."""

import os
import subprocess
import sys

import pytest

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def fashion():
    from uncertainty import datasets
    return datasets.load("fashion_mnist")


@pytest.fixture(scope="session")
def mnist1d():
    from uncertainty import datasets
    return datasets.load("mnist1d")


def run_binary(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs `python baselines/<name>.py args...` as a user would."""
    return subprocess.run([sys.executable, os.path.join(REPO, "baselines", f"{name}.py"),
                           *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)
