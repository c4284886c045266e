r"""The analyses' wall time against the bare forward passes they need.

Copies the runs of a finished study (`baselines/reproduce.py --scale=SCALE`) into a
scratch folder without their prediction caches, then runs every analysis stage of the
scale on the copy, in this process and in the study's order, timing each call (a
stage of several calls, e.g. cross_sections, gives one entry per call).
`predictions.predict` counts the forward passes each call makes (model, examples,
batch size); each kind is then timed bare: the same model, a `tf.function` on
in-memory inputs of the same shape and batch size, median of `--repeats` calls after
one. A call's `ratio` is its wall time over the sum of its forward passes' bare times:
the floor is 1.

Also reports the study's own wall clock split into training and analyses, as
`reproduce.py` recorded it in `<study>/stages/` (subprocesses, interpreter start-up
included), for the scale's stages; those without a record are listed as missing.

  python baselines/reproduce.py --scale=mnist1d --output_dir=results/mnist1d
  python benchmarks/analysis_overhead.py --scale=mnist1d --study_dir=results/mnist1d
"""

import json
import os
import shutil
import tempfile
import time

import common
import numpy as np
import tensorflow as tf
from absl import app, flags, logging
from absl.testing import flagsaver

from uncertainty.cli import binaries
from uncertainty.infra import files
from uncertainty.runs import predictions
from uncertainty.study import scales

flags.DEFINE_string("scale", "mnist1d", "The study's scale.")
flags.DEFINE_string("study_dir", None, "A study of --scale made by baselines/reproduce.py.")
flags.DEFINE_list("stages", None, "Only these analysis stages (default: all), by name "
                  "or prefix, e.g. ensemble,landscape.")
flags.DEFINE_integer("repeats", 5, "Timed calls per kind of forward pass.")
flags.DEFINE_string("scratch_dir", None, "Where to copy the runs (default: a temporary "
                    "folder, removed afterwards).")
flags.DEFINE_string("forward_from", None, "A report of this benchmark whose forward "
                    "passes (counts and bare times per stage) to use: for a library that "
                    "does not count them (an earlier commit, timed on the same functions).")
flags.DEFINE_string("output", "benchmarks/analysis_overhead.json", "Where to write the JSON.")
FLAGS = flags.FLAGS

def bare_forward_seconds(model, examples: int, batch_size: int) -> float:
    """Median time of `model` on `examples` random inputs in batches of `batch_size`
    (a traced call per batch, logits to numpy), as `predict` batches them."""
    shape = model.input_shape[1:]
    batches = -(-examples // batch_size)
    inputs = tf.constant(np.random.default_rng(0).normal(
        size=(batch_size, *shape)).astype(np.float32))
    forward = tf.function(lambda x: model(x, training=False))

    def once():
        for _ in range(batches):
            forward(inputs).numpy()

    return common.median_seconds(once, FLAGS.repeats)[0]


def study_split(study_dir: str, scale: scales.Scale) -> dict:
    """{training, analyses: seconds} from the records of the scale's stages in the study
    (records of stages the scale no longer has, e.g. under an earlier name, are left
    out), and the stages without a record ("missing")."""
    split = {"training": 0.0, "analyses": 0.0, "missing": []}
    for stage in scales.stages(scale, study_dir):
        path = os.path.join(study_dir, "stages", stage.name + ".json")
        if not files.exists(path):
            split["missing"].append(stage.name)
            continue
        kind = "training" if stage.name.startswith("train/") else "analyses"
        split[kind] += files.read_json(path)["seconds"]
    split["ratio"] = split["analyses"] / split["training"] if split["training"] else None
    return split


def _call_name(stage: scales.Stage, args: tuple) -> str:
    """The stage's name, and for a stage of several calls the call's output folder
    (e.g. landscape/random)."""
    if len(stage.calls) == 1:
        return stage.name
    out = next(a for a in args if a.startswith("--output_dir="))
    return f"{stage.name}/{os.path.basename(out)}"


def _timed(name: str, binary: str, main, args: tuple, forward_times: dict,
           earlier: dict | None) -> dict:
    """One call of a binary in this process, timed, with its forward passes' bare time
    (`earlier`: --forward_from's entries by name, whose forward passes to use)."""
    counted = predictions.FORWARD_PASSES
    counted.clear()
    start = time.perf_counter()
    with flagsaver.flagsaver():
        FLAGS([binary, *args])
        main([binary])
    seconds = time.perf_counter() - start
    forward, count = 0.0, 0
    if earlier is not None:
        forward, count, counted = (earlier[name]["forward_seconds"],
                                   earlier[name]["predictions"], {})
    for (ref, examples, batch), calls in counted.items():
        model = ref()
        key = (id(model), examples, batch)
        if key not in forward_times:
            forward_times[key] = bare_forward_seconds(model, examples, batch)
        forward += calls * forward_times[key]
        count += calls
    entry = {"stage": name, "seconds": round(seconds, 2), "forward_seconds": round(forward, 2),
             "predictions": count, "ratio": round(seconds / forward, 2) if forward else None}
    print(f"{name:34s} {seconds:8.1f} s  forward {forward:7.1f} s  ({count} predictions)  "
          f"ratio {entry['ratio']}", flush=True)
    return entry


def main(_):
    logging.set_verbosity(logging.WARNING)
    if not FLAGS.study_dir:
        raise app.UsageError("--study_dir is required: a study made by baselines/reproduce.py")
    scale = scales.SCALES[FLAGS.scale]
    scratch = FLAGS.scratch_dir or tempfile.mkdtemp(prefix="analysis-overhead-")
    for runs in scales.run_dirs(scale, FLAGS.study_dir):
        if files.isdir(runs):
            target = os.path.join(scratch, "runs", os.path.basename(runs))
            shutil.rmtree(target, ignore_errors=True)
            shutil.copytree(runs, target, ignore=shutil.ignore_patterns("predictions"))
    chosen = [s for s in scales.stages(scale, scratch) if not s.name.startswith("train/")
              and (not FLAGS.stages or any(s.name.startswith(p) for p in FLAGS.stages))]
    report = {"machine": common.machine(), "scale": FLAGS.scale, "stages": [],
              "study": study_split(FLAGS.study_dir, scale)}
    forward_times = {}
    earlier = None
    if FLAGS.forward_from:
        with open(FLAGS.forward_from) as f:
            earlier = {e["stage"]: e for e in json.load(f)["stages"]}
    try:
        for stage in chosen:
            for binary, args in stage.calls:
                report["stages"].append(_timed(_call_name(stage, args), binary,
                                               binaries.load(binary).main, args,
                                               forward_times, earlier))
    finally:
        if not FLAGS.scratch_dir:
            shutil.rmtree(scratch, ignore_errors=True)
    total = sum(e["seconds"] for e in report["stages"])
    forward = sum(e["forward_seconds"] for e in report["stages"])
    report["analyses_seconds"], report["forward_seconds"] = round(total, 2), round(forward, 2)
    report["ratio"] = round(total / forward, 2) if forward else None
    common.write(FLAGS.output, report)


if __name__ == "__main__":
    app.run(main)
