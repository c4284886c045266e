r"""The whole study at a named scale, then its report: one command.

Trains the scale's runs and runs every analysis through the project's binaries (each
stage one process, listed by `uncertainty.study.scales`: a `python baselines/X.py ...`
call, or several calls run by `uncertainty.cli.binaries`), then writes
<output_dir>/report/index.html and report.md (`uncertainty.study.report`): the paper's
claims checked by explicit rules, every figure, the published comparison, the
environment and the wall-clock of every stage. Re-running skips every stage that
finished with the same command (and the binaries themselves resume and reuse their
caches), so an interrupted study continues where it stopped. With --jobs above 1,
stages whose inputs are ready run side by side (each one's progress lines prefixed
with its name; its whole output in <output_dir>/logs/).

  python baselines/reproduce.py --scale=mnist1d
  python baselines/reproduce.py --scale=cifar10_medium_cnn --output_dir=gs://b/study \
      -- --strategy=tpu --tpu=NAME    # flags after -- go to every binary
"""

from uncertainty.cli import startup
from uncertainty.infra import interrupts

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import os
import re
import shlex
import subprocess
import sys
import time

from absl import flags, logging

from uncertainty.cli import app, common_flags
from uncertainty.infra import files, locks, progress
from uncertainty.infra.errors import UserError
from uncertainty.study import report, scales, scheduler

flags.DEFINE_enum("scale", scales.DEFAULT, list(scales.SCALES), "The study's scale: " + "; ".join(
    f"{name}: {s.description}" for name, s in scales.SCALES.items()))
common_flags.define_output_dir_flag()  # the study's folder (default results/<scale>)
flags.DEFINE_bool("list_stages", False, "Print the stages' commands and exit.")
flags.DEFINE_integer("jobs", 0, "Stages run side by side (each a process using every "
                     "core: a second one fills the cores the first leaves idle). 0: 2 on "
                     "a CPU with 2 or more cores, 1 with an accelerator (a --strategy "
                     "other than default after --, or a paper scale).")
FLAGS = flags.FLAGS
STUDY = "study.json"
# absl's log prefix, e.g. "I1202 19:40:01.123456 1234 progress.py:80] "
_LOG_PREFIX = re.compile(r"^[IWEF]\d{4} [\d:.]+\s+\d+ \S+:\d+\] ")


def main(argv):
    extra = tuple(argv[1:])
    bad = [a for a in extra if not a.startswith("--")]
    if bad:
        raise UserError(f"unexpected arguments {bad}; flags for every binary go after "
                        f"'--' as --flag=value")
    scale = scales.SCALES[FLAGS.scale]
    root = files.normpath(FLAGS.output_dir or os.path.join("results", FLAGS.scale))
    stages = scales.stages(scale, root, extra)
    if FLAGS.list_stages:
        for stage in stages:
            print(f"{stage.name}: {shlex.join(stage.command())}")
        return
    if scale.accelerator:
        logging.warning("scale %s is the paper's: it expects %s's data and a GPU or TPU "
                        "(pass -- --strategy=mirrored or --strategy=tpu --tpu=NAME)",
                        FLAGS.scale, scale.dataset)
    with locks.hold(root, "reproduce"):
        _claim(root)
        began = time.time()
        times = _run_all(stages, root, began, _jobs(scale, extra))
        index = report.write(root, FLAGS.scale, scale, times, shlex.join(sys.argv))
    print(f"report: {index} (and report.md beside it); "
          f"{time.time() - began:.0f} s for this call")


def _claim(root: str) -> None:
    """Refuses a folder that holds another scale's study; records this one's."""
    path = os.path.join(root, STUDY)
    if files.exists(path):
        found = files.read_json(path).get("scale")
        if found != FLAGS.scale:
            raise UserError(f"{root} holds the '{found}' study; pass another --output_dir "
                            f"for '{FLAGS.scale}' (or remove {root})")
    else:
        files.write_json(path, {"scale": FLAGS.scale})


def _jobs(scale: scales.Scale, extra: tuple) -> int:
    """--jobs, or its default for this machine and these flags."""
    if FLAGS.jobs < 0:
        raise UserError(f"--jobs must be >= 0, got {FLAGS.jobs}")
    if FLAGS.jobs:
        return FLAGS.jobs
    accelerated = scale.accelerator or any(
        a.startswith("--strategy=") and a != "--strategy=default" for a in extra)
    return 1 if accelerated else min(2, os.cpu_count() or 1)


def _run_all(stages: list[scales.Stage], root: str, began: float, jobs: int) -> list[dict]:
    """Runs the stages (`scheduler.run_stages`); a stop request goes on to the running
    stages' processes, which stop cleanly."""
    def forward(interrupt):
        for process in list(_CHILDREN):
            process.send_signal(interrupts.signal_of(interrupt))

    return scheduler.run_stages(
        stages, lambda stage, index, prefixed: _run(stage, root, index, len(stages), began,
                                                    prefixed), jobs, forward)


def _run(stage: scales.Stage, root: str, index: int, count: int, began: float,
         prefixed: bool = False) -> dict:
    """Runs `stage` unless it finished before with the same flags; its timing."""
    marker = os.path.join(root, "stages", stage.name + ".json")
    done = files.read_json(marker) if files.exists(marker) else None
    head = f"[{index + 1:2d}/{count}] {stage.name}"
    if done and done["flags"] == list(stage.arguments):
        print(f"{head}: done earlier ({done['seconds']:.0f} s)", flush=True)
        return {"stage": stage.name, "seconds": done["seconds"], "ran_now": False,
                "finished": done["finished"]}
    print(f"{head} (study {progress.clock(time.time() - began)} so far)", flush=True)
    start = time.time()
    lines, failed = _execute(stage, f"{stage.name}: " if prefixed else "")
    seconds = time.time() - start
    log = os.path.join(root, "logs", stage.name + ".log")
    files.write_text(log, "".join(lines))
    if failed:
        error = next((line.strip() for line in reversed(lines) if ": error: " in line),
                     lines[-1].strip() if lines else "no output")
        raise UserError(f"stage {stage.name} failed: {error} (log: {log})")
    finished = time.strftime("%Y-%m-%d %H:%M")
    files.write_json(marker, {"flags": list(stage.arguments), "seconds": seconds,
                              "finished": finished})
    print(f"    {stage.name + ': ' if prefixed else ''}done in {progress.clock(seconds)}",
          flush=True)
    return {"stage": stage.name, "seconds": seconds, "ran_now": True, "finished": finished}


def _execute(stage: scales.Stage, prefix: str = "") -> tuple[list[str], bool]:
    """Runs the stage: its output lines (progress and error lines echoed, after
    `prefix`) and whether it failed. An interrupted stage interrupts the study."""
    env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2"}
    process = subprocess.Popen(stage.command(), stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT, text=True, env=env)
    _CHILDREN.add(process)
    try:
        lines = []
        for line in process.stdout:
            lines.append(line)
            text = _LOG_PREFIX.sub("", line.rstrip())
            if "ETA" in text or ": error: " in text:
                print(f"    {prefix}{text}", flush=True)
        code = process.wait()
    finally:
        _CHILDREN.discard(process)
    for signum in interrupts.SIGNALS:
        if code in (128 + signum, -signum):  # the stage was stopped: so is the study
            raise interrupts.Interrupted(signum)
    return lines, code != 0


_CHILDREN: set = set()  # the stages' running processes


if __name__ == "__main__":
    app.run(main)
