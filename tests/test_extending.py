"""docs/extending.md's worked examples (a model, a dataset, a sampler, an analysis) run
as one script, as a reader would run them, and do what the page says."""

import json
import os
import re
import subprocess
import sys

import pytest
from conftest import REPO


def _code(page: str) -> str:
    with open(os.path.join(REPO, "docs", page)) as f:
        return "\n".join(re.findall(r"```python\n(.*?)```", f.read(), re.S))


@pytest.mark.slow
def test_the_worked_examples_run_and_plug_into_the_library(tmp_path):
    done = subprocess.run([sys.executable, "-c", _code("extending.md")], cwd=tmp_path,
                          capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    lines = done.stdout.splitlines()
    assert "1000 200 300" in lines  # the registered dataset's splits
    methods = [line.split()[0] for line in lines if line.startswith(("along_", "random"))]
    assert methods == ["along_trajectory", "random"]
    work = tmp_path / "extending_example"
    runs = sorted(os.listdir(work / "runs"))
    assert runs == ["seed0", "seed1", "seed2"]
    for run in runs:  # the registered model trained with its registered recipe
        config = json.loads((work / "runs" / run / "config.json").read_text())
        assert config["model"] == "narrow_cnn1d" and config["train_epochs"] == 4
        assert config["train_examples"] == 1000 and config["learning_rate"] == 3e-3
    found = json.loads((work / "agreement.json").read_text())
    assert 0.3 < found["ensemble_accuracy"] <= 1.0
    assert len(found["agreement"]) == 3
    assert all(0.5 < a <= 1.0 for a in found["agreement"].values())
    # the sampler's samples are cached in the base run like the built-in ones
    cached = os.listdir(work / "runs" / "seed0" / "predictions")
    assert cached
