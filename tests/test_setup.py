"""run_scripts/setup.sh on a stock machine: it makes and uses a project virtualenv
where the system Python is externally managed (PEP 668), installs once per
pyproject.toml and constraints.txt, says what to install where apt-get cannot run, and
fails in one line where there is no Python."""

import os
import shutil
import subprocess

import pytest
from conftest import REPO, own_lines

DEBIAN_PYTHON = "/usr/bin/python3"
PEP_668_MARKER = "/usr/lib/python3.11/EXTERNALLY-MANAGED"  # Debian 12's
STUB_PROJECT = """[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "stub-project"
version = "0.0.1"

[project.optional-dependencies]
tf = []
test = []

[tool.setuptools]
py-modules = []
"""


def _project(tmp_path):
    """A project with our setup.sh and a pyproject.toml that installs nothing heavy."""
    (tmp_path / "run_scripts").mkdir()
    shutil.copy(os.path.join(REPO, "run_scripts", "setup.sh"), tmp_path / "run_scripts")
    (tmp_path / "pyproject.toml").write_text(STUB_PROJECT)
    (tmp_path / "constraints.txt").write_text("")
    return tmp_path


def _source(project, path, **env):
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root"), **env}
    return subprocess.run(["bash", "-c", "source run_scripts/setup.sh && command -v python && "
                           "python -c 'import sys; print(sys.prefix)'"],
                          cwd=project, env=env, capture_output=True, text=True, timeout=600)


@pytest.mark.slow
@pytest.mark.skipif(not os.path.exists(PEP_668_MARKER),
                    reason="needs Debian 12's externally managed /usr/bin/python3")
def test_makes_and_uses_a_venv_where_the_system_python_is_externally_managed(tmp_path):
    project = _project(tmp_path)
    refused = subprocess.run([DEBIAN_PYTHON, "-m", "pip", "install", "--dry-run", "six"],
                             capture_output=True, text=True)
    assert "externally-managed-environment" in refused.stderr  # what PEP 668 does
    done = _source(project, "/usr/bin:/bin")  # Debian's python3, and no `python`
    assert done.returncode == 0, done.stderr[-2000:]
    python, prefix = done.stdout.split()
    assert python == str(project / ".venv" / "bin" / "python")
    assert prefix == str(project / ".venv")
    stamp = (project / ".venv" / ".uncertainty-setup").read_text()
    again = _source(project, "/usr/bin:/bin")  # the same files: nothing installed
    assert again.returncode == 0 and again.stdout == done.stdout
    assert (project / ".venv" / ".uncertainty-setup").read_text() == stamp


def test_no_python_is_one_line(tmp_path):
    project = _project(tmp_path)
    tools = tmp_path / "bin"
    tools.mkdir()
    for tool in ("bash", "dirname", "cat", "rm"):
        os.symlink(shutil.which(tool), tools / tool)
    done = _source(project, str(tools))
    assert done.returncode == 1
    assert own_lines(done.stderr) == [
        "setup.sh: no python3 on PATH; install Python 3.11 or newer (Debian: apt-get "
        "install python3 python3-venv)"]
    assert not (project / ".venv").exists()


@pytest.mark.slow
def test_missing_fashion_mnist_without_apt_is_one_line_and_set_up_goes_on(tmp_path):
    """Where apt-get cannot run (here: not on PATH), the missing package is named in one
    line and the environment is still made and used."""
    project = _project(tmp_path)
    done = _source(project, str(_no_apt(tmp_path)),  # /bin is /usr/bin on Debian 12
                   FASHION_MNIST_DIR=str(tmp_path / "nowhere"))
    assert done.returncode == 0, done.stderr[-2000:]
    lines = own_lines(done.stderr)
    assert lines[0] == ("setup.sh: Fashion-MNIST's files (the fmnist scale and its tests) are "
                        "missing; install dataset-fashion-mnist (Debian: apt-get install "
                        "dataset-fashion-mnist), then run again")
    assert done.stdout.split()[0] == str(project / ".venv" / "bin" / "python")


def _no_apt(tmp_path):
    """A bin folder with /usr/bin's tools but apt-get and sudo."""
    tools = tmp_path / "usr_bin"
    tools.mkdir()
    for name in os.listdir("/usr/bin"):
        if name not in ("apt-get", "sudo"):
            os.symlink(os.path.join("/usr/bin", name), tools / name)
    return tools
