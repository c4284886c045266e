r"""The whole study, killed again and again: does it end with exactly the results of an
uninterrupted run?

Runs `baselines/reproduce.py --scale=SCALE` into WORK_DIR/chaos, stops it `--kills`
times at random moments (seeded: `--seed` replays the same moments and signals; with
`--from_first_lock` timed from the first stage's lock, not from the start) with
a mix of SIGKILL (the whole process tree, as a preempted machine loses it) and SIGTERM
(to the study alone, as `kill`, Kubernetes or SLURM send it; the study must pass it on
and exit 143 with its one line within `--grace_seconds`, no stage left running), each
time starting it again, then lets it finish. Then it compares every result file with
an uninterrupted study of the same scale (`--reference`, or one it runs first into
WORK_DIR/reference):

  - the same files (no stage skipped, nothing extra), none damaged (JSON checksums,
    npz CRCs, every checkpoint tensor's CRC), no lock and no temporary file left;
  - identical numbers: JSON values (times, dates and paths aside), npz arrays, text
    tables, and every tensor of every checkpoint. Figures, logs, TensorBoard summaries
    and the report's pages (which hold times) must exist; their bytes are not compared.

It writes WORK_DIR/chaos.json: every kill (signal, second, the stages that held a
lock, the writes in flight) and every difference found, and exits 1 if there is one.

  python run_scripts/chaos.py --scale=tiny --kills=20 --work_dir=/tmp/chaos
"""

import json
import os
import re
import signal
import subprocess
import sys
import time

import numpy as np
from absl import app, flags

from uncertainty.infra import files, locks
from uncertainty.runs import checkpoints

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

flags.DEFINE_string("scale", "tiny", "The study's scale (baselines/reproduce.py --scale).")
flags.DEFINE_integer("kills", 20, "How many times to stop the study before letting it end.")
flags.DEFINE_integer("seed", 0, "Seeds the kills' moments and signals.")
flags.DEFINE_string("work_dir", None, "Where the studies go (chaos/, reference/, "
                    "chaos.json).")
flags.DEFINE_string("reference", None, "An uninterrupted study of the same scale to "
                    "compare with (default: run one into WORK_DIR/reference).")
flags.DEFINE_float("min_seconds", 8.0, "Shortest time from a (re)start to its kill (the "
                   "study and its first stages take ~10 s of imports on a CPU).")
flags.DEFINE_float("max_seconds", 20.0, "Longest time from a (re)start to its kill.")
flags.DEFINE_bool("from_first_lock", False, "Count each kill's time from the moment a "
                  "stage of the (re)started study first holds a lock (a run or an analysis "
                  "being written) instead of from the start, so that every kill lands in "
                  "the stages however long the start-up takes on a busy machine.")
flags.DEFINE_float("sigkill_share", 0.5, "The share of the kills that are SIGKILL.")
flags.DEFINE_float("grace_seconds", 120.0, "How long a SIGTERM'd study may take to exit.")
flags.DEFINE_string("ignore", None, "A regular expression of the reference's files (paths "
                    "relative to it) that are not the study's, left out of the comparison.")
flags.mark_flag_as_required("work_dir")
FLAGS = flags.FLAGS

# Keys whose values differ between two runs of the same study: clocks, dates, the
# machine, where the study was written, and how many predictions came from caches.
VOLATILE = re.compile(r"seconds|finished|started|time|date|devices|_dir$|^host|^pid|"
                      r"^computed$|^from_cache$")
# Compared only for presence: figures, logs, the report's pages, TensorBoard.
PRESENCE_ONLY = re.compile(r"\.(png|log|html|md|ipynb)$|(^|/)(logs|summaries)/")


def study(output_dir: str, **popen) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, os.path.join(REPO, "baselines", "reproduce.py"),
         f"--scale={FLAGS.scale}", f"--output_dir={output_dir}"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=REPO, **popen)


def in_flight(root: str, stale: dict | None = None) -> dict:
    """The folders holding a lock taken since `stale` (`locks_held` before this start:
    a lock a killed stage left behind is not a stage writing now) and the temporary
    files (writes in progress) under `root`."""
    writing = []
    for folder, dirs, names in os.walk(root):
        relative = os.path.relpath(folder, root)
        writing += [os.path.join(relative, n) for n in names + dirs
                    if n.startswith(files.TMP_PREFIX) or "_temp" in n]
    return {"locked": new_locks(root, stale), "writes": sorted(writing)}


def new_locks(root: str, stale: dict | None = None) -> list[str]:
    """The folders under `root` holding a lock other than the one `stale` recorded."""
    return sorted(folder for folder, content in locks_held(root).items()
                  if (stale or {}).get(folder) != content)


def locks_held(root: str) -> dict[str, bytes]:
    """{folder under `root`: its lock file's content} (the study's own lock aside)."""
    found = {}
    for folder, _, names in os.walk(root):
        relative = os.path.relpath(folder, root)
        if locks.LOCK_NAME in names and relative != ".":
            try:
                with open(os.path.join(folder, locks.LOCK_NAME), "rb") as f:
                    found[relative] = f.read()
            except OSError:
                continue  # released meanwhile
    return found


def group_members(group: int) -> list[str]:
    """The command lines of the live processes in process group `group`."""
    found = []
    for pid in filter(str.isdigit, os.listdir("/proc")):
        try:
            with open(f"/proc/{pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            if int(fields[2]) == group and fields[0] != "Z":  # pgrp; not a zombie
                with open(f"/proc/{pid}/cmdline", "rb") as f:
                    found.append(f.read().replace(b"\0", b" ").decode()[:200])
        except (OSError, IndexError, ValueError):
            continue
    return found


def kill_repeatedly(root: str) -> list[dict]:
    """Starts the study `--kills` times, each stopped after a random time; the kills
    that landed (a study that ended first is not killed)."""
    rng = np.random.default_rng(FLAGS.seed)
    kills = []
    for attempt in range(FLAGS.kills):
        delay = float(rng.uniform(FLAGS.min_seconds, FLAGS.max_seconds))
        signum = signal.SIGKILL if rng.random() < FLAGS.sigkill_share else signal.SIGTERM
        stale = locks_held(root)
        process = study(root, start_new_session=True)  # its own process group
        locked_once = False
        if FLAGS.from_first_lock:  # (its output before the first stage fits the pipe)
            while process.poll() is None and not locked_once:
                locked_once = bool(new_locks(root, stale))
                time.sleep(0.2)
        began = time.time()
        try:
            output, _ = process.communicate(timeout=delay)
            print(f"kill {attempt + 1}: the study ended first ({process.returncode})")
            if process.returncode != 0:
                raise SystemExit(f"the study failed between kills:\n{output[-3000:]}")
            break
        except subprocess.TimeoutExpired:
            pass
        if signum == signal.SIGTERM:
            where = in_flight(root, stale)
            process.send_signal(signal.SIGTERM)
            try:
                output, _ = process.communicate(timeout=FLAGS.grace_seconds)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                raise SystemExit(f"kill {attempt + 1}: the study did not stop within "
                                 f"{FLAGS.grace_seconds:g} s of SIGTERM")
            last = output.strip().splitlines()[-1] if output.strip() else ""
            if process.returncode != 128 + signal.SIGTERM or "stopped by SIGTERM" not in last:
                raise SystemExit(f"kill {attempt + 1}: SIGTERM ended the study with "
                                 f"{process.returncode} and {last!r}")
            # The study waits for its stages; a stage's stderr filter (a forked copier,
            # uncertainty/cli/notices.py) ends at its pipe's end, a moment later.
            deadline = time.time() + 10
            while (left := group_members(process.pid)) and time.time() < deadline:
                time.sleep(0.2)
            if left:
                os.killpg(process.pid, signal.SIGKILL)
                raise SystemExit(f"kill {attempt + 1}: the study exited after SIGTERM "
                                 f"but left processes of its stages running: {left}")
        else:
            os.killpg(process.pid, signal.SIGKILL)
            process.communicate()
            where = in_flight(root, stale)
        kills.append({"kill": attempt + 1, "signal": signal.Signals(signum).name,
                      "seconds": round(time.time() - began, 1),
                      "after_first_lock": locked_once, **where})
        print(f"kill {attempt + 1}: {kills[-1]['signal']} after {delay:.1f} s; "
              f"writing: {', '.join(where['locked']) or 'no stage'}; in flight: "
              f"{', '.join(where['writes']) or 'nothing'}", flush=True)
    return kills


def landed(kills: list[dict]) -> dict[str, int]:
    """How many kills landed in start-up (no stage writing yet), in training (a run's
    lock held), in the analyses (only analyses' locks held) and between writes (after
    a stage of that start had held a lock, none held: stages starting or ending)."""
    found = {"in start-up": 0, "in training": 0, "in the analyses": 0, "between writes": 0}
    for kill in kills:
        where = ("in training" if any(p.startswith("runs") for p in kill["locked"]) else
                 "in the analyses" if kill["locked"] else
                 "between writes" if kill.get("after_first_lock") else "in start-up")
        found[where] += 1
    return found


def finish(root: str) -> None:
    process = study(root)
    output, _ = process.communicate()
    if process.returncode != 0:
        raise SystemExit(f"the study did not finish after the kills:\n{output[-3000:]}")


def result_files(root: str) -> set[str]:
    """The study's files, relative to `root`; TensorBoard's event files (named by
    time, host and process) as their folder + "/<events>"."""
    found = set()
    for folder, dirs, names in os.walk(root):
        dirs[:] = [d for d in dirs if d != "set_aside"]
        found.update(os.path.relpath(os.path.join(folder, "<events>" if "tfevents" in n
                                                  else n), root) for n in names)
    return found


def normalized(value, root: str):
    """`value` with volatile keys dropped and `root` written as <root>."""
    if isinstance(value, dict):
        return {k.replace(root, "<root>"): normalized(v, root) for k, v in value.items()
                if not VOLATILE.search(k)}
    if isinstance(value, list):
        return [normalized(v, root) for v in value]
    if isinstance(value, str):
        return value.replace(root, "<root>")
    return value


def differences(reference: str, got: str) -> list[str]:
    """Every way the study in `got` differs from `reference`, or is damaged or left
    unfinished."""
    problems = []
    expected, found = result_files(reference), result_files(got)
    if FLAGS.ignore:
        expected = {n for n in expected if not re.fullmatch(FLAGS.ignore, n)}
    for name in sorted(found):
        base = os.path.basename(name)
        if base == locks.LOCK_NAME:
            problems.append(f"{name}: a lock is left")
        elif base.startswith(files.TMP_PREFIX) or "_temp" in name:
            problems.append(f"{name}: a temporary file is left")
        elif "/checkpoints/steps/" in name:
            problems.append(f"{name}: a step checkpoint is left")
    leftovers = re.compile(rf"(^|/){re.escape(locks.LOCK_NAME)}$|{re.escape(files.TMP_PREFIX)}"
                           r"|_temp|/checkpoints/steps/")
    expected = {n for n in expected if not leftovers.search(n)}
    found = {n for n in found if not leftovers.search(n)}
    problems += [f"{n}: missing" for n in sorted(expected - found)]
    problems += [f"{n}: not in the reference" for n in sorted(found - expected)]
    prefixes = set()
    for name in sorted(expected & found):
        a, b = os.path.join(reference, name), os.path.join(got, name)
        try:
            if PRESENCE_ONLY.search(name) or name.endswith(files.CHECKSUM_SUFFIX):
                continue
            if "/checkpoints/" in name and re.search(r"\.(index|data-\d+-of-\d+)$", name):
                prefixes.add(re.sub(r"\.(index|data-\d+-of-\d+)$", "", name))
            elif name.endswith(".json"):
                if normalized(files.read_json(a), reference) != normalized(
                        files.read_json(b), got):
                    problems.append(f"{name}: other values")
            elif name.endswith(".npz"):
                with files.read_npz(a) as x, files.read_npz(b) as y:
                    if sorted(x.files) != sorted(y.files) or not all(
                            _same(x[k], y[k], reference, got) for k in x.files):
                        problems.append(f"{name}: other arrays")
            elif name.endswith("/checkpoints/checkpoint"):
                continue  # the manager's state file: its paths are absolute
            elif (files.read_bytes(a).decode().replace(reference, "<root>") !=
                  files.read_bytes(b).decode().replace(got, "<root>")):
                problems.append(f"{name}: other content")
        except Exception as e:  # noqa: BLE001 (any failure to read is damage)
            problems.append(f"{name}: cannot be read ({type(e).__name__}: {e})"[:300])
    for prefix in sorted(prefixes):
        problems += [f"{prefix}: {p}" for p in _checkpoint_differences(
            os.path.join(reference, prefix), os.path.join(got, prefix))]
    return problems


def _same(x: np.ndarray, y: np.ndarray, reference: str, got: str) -> bool:
    if x.dtype.kind in "US":
        return np.array_equal(np.char.replace(x.astype(str), reference, "<root>"),
                              np.char.replace(y.astype(str), got, "<root>"))
    return x.shape == y.shape and np.array_equal(x, y, equal_nan=x.dtype.kind == "f")


def _checkpoint_differences(reference: str, got: str) -> list[str]:
    import tensorflow as tf

    problems = []
    run_dir = os.path.dirname(os.path.dirname(got))
    epoch = int(re.search(r"-(\d+)$", got).group(1))
    damage = checkpoints.checkpoint_problem(run_dir, epoch)
    if damage:
        return [f"damaged ({damage})"]
    x, y = (tf.compat.v1.train.NewCheckpointReader(p) for p in (reference, got))
    names = x.get_variable_to_shape_map()
    if names != y.get_variable_to_shape_map():
        return ["other tensors"]
    for name in names:
        if not np.array_equal(x.get_tensor(name), y.get_tensor(name)):
            problems.append(f"other values in {name}")
    return problems


def main(argv):
    del argv
    work = os.path.abspath(FLAGS.work_dir)
    reference, root = FLAGS.reference, os.path.join(work, "chaos")
    if files.exists(root):
        raise SystemExit(f"chaos.py: error: {root} exists; remove it or pick another "
                         f"--work_dir")
    if reference is None:
        reference = os.path.join(work, "reference")
        print(f"the uninterrupted study: {reference}", flush=True)
        finish(reference)
    began = time.time()
    kills = kill_repeatedly(root)
    finish(root)
    seconds = time.time() - began
    problems = differences(os.path.abspath(reference), root)
    report = {"scale": FLAGS.scale, "seed": FLAGS.seed, "kills_asked": FLAGS.kills,
              "kills": kills, "survived": len(kills) if not problems else None,
              "landed": landed(kills),
              "seconds": round(seconds, 1), "compared_files": len(result_files(root)),
              "problems": problems}
    files.write_text(os.path.join(work, "chaos.json"), json.dumps(report, indent=2))
    by_signal = {s: sum(k["signal"] == s for k in kills) for s in ("SIGKILL", "SIGTERM")}
    print(f"{len(kills)} kills ({by_signal['SIGKILL']} SIGKILL, {by_signal['SIGTERM']} "
          f"SIGTERM; {', '.join(f'{n} {where}' for where, n in report['landed'].items())})"
          f" in {seconds:.0f} s; {len(problems)} differences from the uninterrupted "
          f"study{':' if problems else ''}")
    for problem in problems:
        print(f"  {problem}")
    if problems:
        sys.exit(1)


if __name__ == "__main__":
    app.run(main)
