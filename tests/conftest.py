"""Shared fixtures: real data loaded once, and a helper that runs a binary."""

import contextlib
import os
import re
import shutil
import subprocess
import sys

import pytest

from uncertainty.cli.startup import LEGACY_KERAS

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
os.environ.setdefault(LEGACY_KERAS, "1")  # as the binaries start (before TF)
REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


@pytest.fixture(scope="session")
def fashion():
    from uncertainty import datasets
    return datasets.load("fashion_mnist")


@pytest.fixture(scope="session")
def mnist1d():
    from uncertainty import datasets
    return datasets.load("mnist1d")


@contextlib.contextmanager
def made_once(tmp_path_factory, worker_id, name: str):
    """A folder `name` of the test session that the pytest-xdist workers share: yields
    (folder, made) under a file lock, `made` False for the first worker to ask, which
    makes its content and then marks it made; the others wait for it."""
    import fcntl

    base = tmp_path_factory.getbasetemp()
    shared = base.parent if worker_id != "master" else base  # the session's folder
    folder, mark = shared / name, shared / f"{name}.made"
    with open(shared / f"{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield folder, mark.exists()
        mark.touch()


@pytest.fixture(scope="session")
def mnist1d_runs(tmp_path_factory, worker_id):
    """Three real CNN-1D runs of 4 epochs on MNIST-1D (seeds 0-2), in one folder, made
    once per test session (tests read them; `runs` is a copy to write in)."""
    with made_once(tmp_path_factory, worker_id, "mnist1d_runs") as (root, made):
        if not made:
            from uncertainty import datasets
            from uncertainty.train.train_config import TrainConfig
            from uncertainty.train.trainer import train

            data = datasets.load("mnist1d")
            for seed in range(3):
                config = TrainConfig.from_recipe("mnist1d", "cnn1d", seed, train_epochs=4)
                train(config, data, str(root / f"seed{seed}"))
    return str(root)


@pytest.fixture(scope="module")
def runs(mnist1d_runs, tmp_path_factory):
    """A module's private copy of `mnist1d_runs`, so that its prediction cache starts
    empty and what it caches stays its own."""
    copy = tmp_path_factory.mktemp("runs_copy") / "runs"
    shutil.copytree(mnist1d_runs, copy)
    return str(copy)


@contextlib.contextmanager
def mock_tfds(num_examples: int):
    """`tfds.testing.mock_data` for our TFDS data sources: fake examples of each
    dataset's real features, `num_examples` per split."""
    import tensorflow_datasets as tfds
    from tensorflow_datasets.testing import mocking

    class Records:
        """One split's fake records, fixed when its data source is made."""

        def __init__(self, source):
            self._length = len(source)
            self._getitem, self._getitems = source.__getitem__, source.__getitems__

        def __len__(self):
            return self._length

        def __getitem__(self, key):
            return self._getitem(key)

        def __getitems__(self, keys):
            return self._getitems(keys)

    class DataSource(mocking.PickableDataSourceMock):
        # Every data source it makes shares one instance, whose records the next
        # dataset's replace (JPEG bytes become pixels); give each its own.
        # (Its magic methods are mocks of this class too: leave their results alone.)
        def __call__(self, *args, **kwargs):
            made = super().__call__(*args, **kwargs)
            return Records(made) if isinstance(made, DataSource) else made

    with tfds.testing.mock_data(num_examples=num_examples,
                                mock_array_record_data_source=DataSource()):
        yield


# A line of TensorFlow's C++ log (not the project's: absl's Python log lines name a .py file)
_TENSORFLOW_LINE = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+\.(cc|h):\d+\] ")


def own_lines(stderr: str) -> list[str]:
    """A binary's stderr lines without TensorFlow's own C++ log lines (which the
    binaries show: GPU libraries not found, device errors)."""
    return [line for line in stderr.strip().splitlines() if not _TENSORFLOW_LINE.match(line)]


def command_line(values: dict) -> list[str]:
    """absl flag values as command-line arguments: --name=value, --name for True,
    --noname for False."""
    return [f"--{k}={v}" if not isinstance(v, bool) else f"--{'' if v else 'no'}{k}"
            for k, v in values.items()]


def run_binary(name: str, *args: str, timeout: float = 600) -> subprocess.CompletedProcess:
    """Runs `python baselines/<name>.py args...` as a user would."""
    return subprocess.run([sys.executable, os.path.join(REPO, "baselines", f"{name}.py"),
                           *args], capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def run_in_process(capfd, name: str, *args: str) -> tuple[int, list[str]]:
    """Runs `baselines/<name>.py args...` in this process as a call of `python -m
    uncertainty.cli.binaries` runs it (absl's app.run: a bad flag or a UserError ends in
    one line and exit code 2); its exit code and its stderr lines (`own_lines`; the log
    goes to pytest's log capture). What app.run sets for the process (flags, signal
    handlers, progress display, log level) is restored after. The tests that start the
    binaries as processes check the same lines there."""
    import signal

    from absl import logging
    from absl.testing import flagsaver

    from uncertainty.cli import binaries, common_flags
    from uncertainty.infra import interrupts, progress

    binaries.load(name)  # its flags and app.run's, defined outside the flagsaver
    common_flags.define_progress_flags()
    handlers = {s: signal.getsignal(s) for s in interrupts.SIGNALS}
    shown = (progress.ENABLED, progress.LOG_SECONDS, progress.TERMINAL)
    verbosity = logging.get_verbosity()
    capfd.readouterr()
    try:
        with flagsaver.flagsaver():
            code = binaries.run_each([(name, args)])
    finally:
        for signum, handler in handlers.items():
            signal.signal(signum, handler)
        progress.ENABLED, progress.LOG_SECONDS, progress.TERMINAL = shown
        logging.set_verbosity(verbosity)
    return code, own_lines(capfd.readouterr().err)


def load_binary(name: str):
    """baselines/<name>.py as a module (`binaries.load`), so tests can call its main
    under flagsaver."""
    from uncertainty.cli import binaries
    return binaries.load(name)
