"""run_scripts/setup.sh on a stock machine: it makes and uses a project virtualenv
where the system Python is externally managed (PEP 668), installs once per setup.py,
and fails in one line where there is no Python."""

import os
import shutil
import subprocess

import pytest
from conftest import REPO, own_lines

DEBIAN_PYTHON = "/usr/bin/python3"
PEP_668_MARKER = "/usr/lib/python3.11/EXTERNALLY-MANAGED"  # Debian 12's
STUB_SETUP = """import setuptools
setuptools.setup(name="stub_project", version="0.0.1", py_modules=[],
                 extras_require={"test": []})
"""


def _project(tmp_path):
    """A project with our setup.sh and a setup.py that installs nothing heavy."""
    (tmp_path / "run_scripts").mkdir()
    shutil.copy(os.path.join(REPO, "run_scripts", "setup.sh"), tmp_path / "run_scripts")
    (tmp_path / "setup.py").write_text(STUB_SETUP)
    return tmp_path


def _source(project, path):
    env = {"PATH": path, "HOME": os.environ.get("HOME", "/root")}
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
    again = _source(project, "/usr/bin:/bin")  # the same setup.py: nothing installed
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
        "setup.sh: no python3 on PATH; install Python 3.10-3.12 (Debian: apt-get install "
        "python3 python3-venv)"]
    assert not (project / ".venv").exists()
