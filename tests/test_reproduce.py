"""The one-command study: reproduce.sh at the tiny scale end to end, its report as a
reader sees it in headless Chromium, the example notebook run on it, the claims' rules
on hand-built results, and every bad input."""

import json
import os
import re
import shutil
import subprocess
import sys

import numpy as np
import pytest
from conftest import REPO, made_once, own_lines, run_binary, run_in_process

from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints
from uncertainty.study import claims, report, scales, scheduler

CHROMIUM, CHROMEDRIVER = shutil.which("chromium"), shutil.which("chromedriver")


def _claims_table(markdown: str) -> list[list[str]]:
    section = markdown.split("## Claims", 1)[1].split("\n## ", 1)[0]
    rows = [line.strip("| ").split(" | ") for line in section.splitlines()
            if line.startswith("| ")]
    return rows[1:]  # without the header


@pytest.fixture(scope="module")
def study(tmp_path_factory, worker_id):
    """The tiny study, made once per test session and shared by the pytest-xdist
    workers; its folder and what reproduce.sh printed."""
    with made_once(tmp_path_factory, worker_id, "study") as (folder, made):
        root, output = folder / "tiny", folder / "stdout.txt"
        if not made:
            done = subprocess.run(
                ["bash", os.path.join(REPO, "run_scripts", "reproduce.sh"), "tiny",
                 f"--output_dir={root}"], capture_output=True, text=True, timeout=900,
                cwd=REPO)
            assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
            output.write_text(done.stdout)
    return str(root), output.read_text()


def test_stages_run_side_by_side_each_after_what_it_needs():
    import threading
    import time

    stages = scales.stages(scales.SCALES["tiny"], "/study")
    names = [s.name for s in stages]
    for i, stage in enumerate(stages):  # each needs only stages listed before it
        assert set(stage.needs) <= set(names[:i]), stage.name
    started, ended, lock = {}, {}, threading.Lock()
    clock = iter(range(10 ** 6))

    def run(stage, index, prefixed):
        assert names[index] == stage.name and prefixed
        with lock:
            started[stage.name] = next(clock)
            assert sum(1 for n in started if n not in ended) <= 2
        time.sleep(0.01)
        with lock:
            ended[stage.name] = next(clock)
        return stage.name

    assert scheduler.run_stages(stages, run, jobs=2) == names
    for stage in stages:
        assert all(ended[n] < started[stage.name] for n in stage.needs), stage.name
    assert any(started[b] < ended[a] and started[a] < ended[b]
               for a in names for b in names if a != b)  # some ran side by side

    def failing(stage, index, prefixed):
        if stage.name == "train/seed0":
            raise UserError("stage train/seed0 failed")
        return run(stage, index, prefixed)

    started.clear(), ended.clear()
    with pytest.raises(UserError, match="train/seed0 failed"):
        scheduler.run_stages(stages, failing, jobs=2)
    assert not any(name.startswith(("landscape", "ensemble")) for name in started)


def test_calls_of_binaries_in_one_process_each_from_the_defaults(tmp_path):
    """uncertainty.cli.binaries: reproduce.py --list_stages three times in one process;
    the second call's --scale is the default again, the third fails with its one line
    and exit code, and the fourth does not run. An unknown binary is one line, before
    any call runs."""
    first, second, fourth = (str(tmp_path / name) for name in ("a", "b", "d"))
    sep = scales.SEPARATOR
    done = subprocess.run(
        [sys.executable, "-m", "uncertainty.cli.binaries", "reproduce", "--scale=tiny",
         "--list_stages", f"--output_dir={first}", sep, "reproduce", "--list_stages",
         f"--output_dir={second}", sep, "reproduce", "--list_stages", "stray", sep,
         "reproduce", "--scale=tiny", "--list_stages", f"--output_dir={fourth}"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert done.returncode == 2
    assert own_lines(done.stderr)[-1].startswith(
        "reproduce.py: error: unexpected arguments ['stray']")
    listed = [line.split(": ", 1) for line in done.stdout.splitlines()]
    tiny = scales.stages(scales.SCALES["tiny"], first)
    default = scales.stages(scales.SCALES[scales.DEFAULT], second)
    assert [name for name, _ in listed] == [s.name for s in tiny + default]
    landscape = next(s for s in default if s.name == "landscape")
    assert [b for b, _ in landscape.calls] == (["similarity", "subspace"] +
                                               ["cross_section"] * 3 + ["ensemble"])
    ensemble = next(s for s in default if s.name == "ensemble")
    assert [b for b, _ in ensemble.calls] == ["subspace"] * 5 + ["ensemble"]
    assert dict(listed[:len(tiny)])["landscape"].split() == next(
        s for s in tiny if s.name == "landscape").command()
    assert fourth not in done.stdout
    assert not os.path.exists(first) and not os.path.exists(second)

    unknown = subprocess.run(
        [sys.executable, "-m", "uncertainty.cli.binaries", "reproduce", "--list_stages",
         f"--output_dir={first}", sep, "similarity.py", "--runs=x"],
        capture_output=True, text=True, cwd=tmp_path, timeout=300)
    assert unknown.returncode == 2 and not unknown.stdout
    assert own_lines(unknown.stderr) == [
        f"binaries.py: error: 'similarity.py' is not a binary of {scales.BASELINES}; each "
        f"call is a binary's name (e.g. subspace), then its flags, calls separated by "
        f"'{sep}'"]


@pytest.mark.slow
def test_tiny_study_writes_every_claim_and_figure(study, mnist1d):
    root, stdout = study
    index = os.path.join(root, "report", "index.html")
    assert stdout.rstrip().splitlines()[-1].startswith(f"report: {index}")
    text = open(os.path.join(root, "report", "report.md")).read()
    rows = _claims_table(text)
    assert len(rows) == len(claims.claims({})) == 16
    verdicts = [row[-1] for row in rows]
    assert set(verdicts) <= set(claims.MARKS.values())
    # every analysis ran: only the plane-range row (no paper number for MNIST-1D) is open
    assert [row[0] for row in rows if row[-1] == claims.MARKS[claims.NOT_RUN]] == [
        "Independent optima's normalised diversity (Fig. 5)"]
    saved = json.load(open(os.path.join(root, "report", "claims.json")))
    assert [r["verdict"] for r in saved] == [
        next(v for v, mark in claims.MARKS.items() if mark == row[-1]) for row in rows]
    for row in saved:
        for c in row["comparisons"]:
            assert c["verdict"] in claims.MARKS
            if c["interval"] is not None:
                assert c["interval"][0] <= c["value"] <= c["interval"][1], c
    for image in re.findall(r"!\[[^]]*\]\((figures/[^)]+)\)", text):
        assert os.path.getsize(os.path.join(root, "report", image)) > 1000, image
    assert len(re.findall(r"!\[", text)) == len(report.FIGURES)
    for heading in ("## Out-of-distribution detection", "## Published numbers beside ours",
                    "## Environment", "## Wall-clock per stage", "## Variational runs"):
        assert heading in text
    stages = [s.name for s in scales.stages(scales.SCALES["tiny"], root)]
    timing = text.split("## Wall-clock per stage", 1)[1]
    assert all(f"| {name} |" in timing for name in stages)

    # The ensemble claim's numbers against the runs' final weights in Keras, averaged
    # by numpy: accuracy of the 2-ensemble and the mean single run, and their JS.
    from uncertainty import models
    probabilities = []
    for seed in (0, 1):
        run = os.path.join(root, "runs", "cnn1d", f"seed{seed}")
        model = models.build("cnn1d", mnist1d.input_shape, mnist1d.num_classes)
        model.set_weights(checkpoints.load_arrays(run, checkpoints.epochs(run)[-1]))
        logits = model.predict(mnist1d.read("test")[0].astype(np.float32), verbose=0)
        e = np.exp(logits - logits.max(axis=1, keepdims=True))
        probabilities.append(e / e.sum(axis=1, keepdims=True))
    labels = mnist1d.read("test")[1]
    ensemble = np.mean(probabilities, axis=0)
    correct = [p.argmax(1) == labels for p in probabilities]
    best = int(np.argmax([c.mean() for c in correct]))
    gain = (ensemble.argmax(1) == labels).astype(float) - correct[best]
    ours = next(row for row in saved if row["claim"].startswith("Ensembling independent"))
    clean = next(c for c in ours["comparisons"] if c["name"] == "accuracy (intensity 0)")
    assert clean["value"] == pytest.approx(gain.mean(), abs=1e-6)
    # the bootstrap interval's width against the normal approximation's, 2 x 1.96 sd/sqrt(N)
    width = 2 * 1.96 * gain.std() / np.sqrt(len(gain))
    assert clean["interval"][1] - clean["interval"][0] == pytest.approx(width, rel=0.2)

    def entropy(p):
        return -np.sum(p * np.log(p + 1e-5), axis=-1)
    js = np.mean(entropy(ensemble) - np.mean([entropy(p) for p in probabilities], axis=0))
    diverse = next(row[2] for row in rows if row[0].startswith("Independent runs are more"))
    assert diverse.startswith(f"JS independent {js:.3f};")


@pytest.mark.slow
@pytest.mark.skipif(not (CHROMIUM and CHROMEDRIVER), reason="needs Debian's chromium and "
                    "chromium-driver (run_scripts/setup.sh test installs them)")
def test_report_as_a_reader_sees_it_in_headless_chromium(study):
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    root, _ = study
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu",
                     "--disable-dev-shm-usage", "--allow-file-access-from-files"):
        options.add_argument(argument)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        driver.get("file://" + os.path.join(root, "report", "index.html"))
        images = driver.execute_script(
            "return Array.from(document.images, i => [i.getAttribute('src'), i.complete, "
            "i.naturalWidth]);")
        assert len(images) == len(report.FIGURES)
        assert all(complete and width > 0 for _, complete, width in images), images
        links = driver.execute_script("return Array.from(document.links, a => a.href);")
        assert links, "the report links its result files"
        for link in links:
            assert link.startswith("file://"), link
            assert os.path.isfile(link.removeprefix("file://")), f"broken link {link}"
        assert "Claims" in driver.title + driver.find_element("tag name", "body").text
        height = driver.execute_script("return document.body.scrollHeight;")
        driver.set_window_size(1280, height)
        screenshot = os.path.join(root, "report", "screenshot.png")
        assert driver.save_screenshot(screenshot)
        assert os.path.getsize(screenshot) > 10000
    finally:
        driver.quit()


@pytest.mark.slow
def test_rerun_skips_finished_stages_and_rewrites_the_report(study):
    root, _ = study
    done = run_binary("reproduce", "--scale=tiny", f"--output_dir={root}")
    assert done.returncode == 0, done.stderr[-2000:]
    stages = scales.stages(scales.SCALES["tiny"], root)
    assert done.stdout.count("done earlier") == len(stages)
    assert "report: " in done.stdout


@pytest.mark.slow
def test_example_notebook_runs_on_the_study(study, tmp_path, monkeypatch):
    """examples/explore_a_study.ipynb, stored without outputs, runs top to bottom in a
    Jupyter kernel of this interpreter on the tiny study: both figures are drawn, and
    the ensemble accuracy it computes from the runs' cached logits (no prediction) is
    the one ensemble.py reported."""
    import nbclient
    import nbformat

    root, _ = study
    notebook = nbformat.read(os.path.join(REPO, "examples", "explore_a_study.ipynb"),
                             as_version=4)
    code = [cell for cell in notebook.cells if cell.cell_type == "code"]
    assert code and not any(cell.outputs or cell.execution_count for cell in code)
    # A kernel spec for this interpreter where Jupyter looks first (JUPYTER_PATH), so
    # the test needs no kernel installed on the machine.
    prefix = tmp_path / "jupyter"
    subprocess.run([sys.executable, "-m", "ipykernel", "install", "--prefix", str(prefix),
                    "--name", "python3"], check=True, capture_output=True)
    monkeypatch.setenv("JUPYTER_PATH", str(prefix / "share" / "jupyter"))
    monkeypatch.setenv("STUDY_DIR", root)
    nbclient.NotebookClient(notebook, kernel_name="python3", timeout=600, resources={
        "metadata": {"path": os.path.join(REPO, "examples")}}).execute()

    figures = [cell for cell in code if any("image/png" in out.get("data", {})
                                            for out in cell.outputs)]
    assert len(figures) == 2
    stdout = "".join(out.get("text", "") for out in code[-1].outputs
                     if out.output_type == "stream" and out.name == "stdout")
    with open(os.path.join(root, "analyses", "ensemble", "ensemble.json")) as f:
        reported = json.load(f)["metrics"]["independent"]["2"]["test/accuracy"]
    assert f"ensemble of 2 runs: accuracy {reported:.4f}" in stdout, stdout
    assert "read from the cache: 2 of 2" in stdout, stdout


@pytest.mark.slow
def test_study_killed_at_random_ends_with_the_uninterrupted_results(study, tmp_path):
    """run_scripts/chaos.py: the tiny study stopped twice while a stage was writing
    (SIGTERM to the study alone: exit 143, one line, no stage left running; then SIGKILL
    to its process tree), then finished; every result file is compared with the
    uninterrupted study's."""
    done = subprocess.run(
        [sys.executable, os.path.join(REPO, "run_scripts", "chaos.py"), "--scale=tiny",
         "--kills=2", "--seed=4", "--from_first_lock", "--min_seconds=1",
         "--max_seconds=10",
         f"--reference={study[0]}", f"--work_dir={tmp_path}",
         "--ignore=report/screenshot.png"],  # the browser test's, not the study's
        capture_output=True, text=True, timeout=900, cwd=REPO)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    report = json.loads((tmp_path / "chaos.json").read_text())
    assert report["problems"] == [] and report["survived"] == 2
    assert {k["signal"] for k in report["kills"]} == {"SIGKILL", "SIGTERM"}
    assert report["landed"]["in start-up"] == 0, report["kills"]  # each after a lock
    assert report["compared_files"] > 300
    assert "2 kills (" in done.stdout and "0 differences" in done.stdout


def test_bad_input_one_line_and_nothing_mixed(tmp_path, capfd):
    unknown = subprocess.run(["bash", os.path.join(REPO, "run_scripts", "reproduce.sh"),
                              "cifar11"], capture_output=True, text=True, cwd=REPO)
    assert unknown.returncode != 0
    assert own_lines(unknown.stderr)[-1].startswith("reproduce.py: error: ")
    assert "mnist1d" in unknown.stderr and "cifar10_resnet20" in unknown.stderr

    other = tmp_path / "other"
    files.write_json(str(other / "study.json"), {"scale": "mnist1d"})
    code, lines = run_in_process(capfd, "reproduce", "--scale=tiny", f"--output_dir={other}")
    assert code == 2
    assert lines == [(
        f"reproduce.py: error: {other} holds the 'mnist1d' study; pass another "
        f"--output_dir for 'tiny' (or remove {other})")]
    assert sorted(os.listdir(other)) == ["study.json", "study.json.sha256"]

    empty = tmp_path / "no_tfds"
    absent = run_binary("reproduce", "--scale=cifar10_small_cnn",
                        f"--output_dir={tmp_path / 'cifar'}", "--", f"--data_dir={empty}",
                        "--nodownload")
    assert absent.returncode == 2
    line = own_lines(absent.stderr)[-1]
    assert line.startswith("reproduce.py: error: stage train/seed0 failed: train.py: error: ")
    assert "cifar10" in line and "--manual_dir" in line, line
    assert not os.path.exists(tmp_path / "cifar" / "report")

    code, lines = run_in_process(capfd, "reproduce", "--scale=tiny",
                                 f"--output_dir={tmp_path / 't'}", "x")
    assert code == 2 and len(lines) == 1 and "go after '--'" in lines[0], lines
