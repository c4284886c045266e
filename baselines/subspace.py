r"""Subspace sampling around one solution and the diversity-accuracy plane (paper Fig. 5).

Draws functions around --base_run with each of --methods (random, dropout, diagonal
Gaussian, low-rank Gaussian, weight average; moments from the run's last
--num_checkpoints checkpoints; and the Bayesian baselines: variational, posterior draws
of a run trained with --method=variational, and mc_dropout, passes of a deterministic
run with its dropout layers on), places them and the independent optima of
--other_runs on the plane (accuracy, disagreement with the base / (1 - accuracy)) with
the analytic curves, and writes subspace.json (with each method's JS divergence) and
diversity_accuracy.png. The acceptance rule
(--accept_threshold) selects on the validation split; the plane is reported on --split
(test by default), which must differ from it.

  python baselines/subspace.py --base_run=runs/fashion_mnist/small_cnn/seed0 \
      --other_runs=runs/fashion_mnist/small_cnn --preset=plane --num_samples=20 \
      --output_dir=results/subspace/fashion_mnist_small_cnn
"""

from uncertainty.cli import startup

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import dataclasses
import json
import os

from absl import flags, logging

from uncertainty.analyses import plane
from uncertainty.cli import app, common_flags
from uncertainty.infra import files, locks
from uncertainty.infra.errors import UserError
from uncertainty.runs import discovery
from uncertainty.samplers import catalog
from uncertainty.study import plots

common_flags.define_data_flags(dataset=False)
common_flags.define_analysis_flags()
common_flags.define_output_flags()  # --output_dir: subspace.json, figures; --seed: samples
flags.DEFINE_string("base_run", None, "The run whose solution the subspaces surround.")
flags.DEFINE_list("other_runs", [], "Independent runs (or folders of them) to plot as "
                  "optima; the base run is skipped if listed.")
common_flags.define_methods_flag()
flags.DEFINE_integer("num_samples", 10, "Samples per method.")
flags.DEFINE_enum("preset", "plane", list(catalog.PRESETS),
                  "Scales: plane (widened, random 70U, diagonal 10U, low-rank 6) or "
                  "ensemble (random 10U, diagonal 1, low-rank 1); dropout 0.1U in both.")
for _method in catalog.PAPER_METHODS[:-1] + ("variational",):
    flags.DEFINE_float(f"{_method}_scale", None,
                       f"Override the preset's {_method} scale (its maximum when the "
                       f"preset draws it uniformly; variational: the multiple of the "
                       f"posterior std, 1).")
common_flags.define_mc_dropout_flag()
flags.DEFINE_list("uniform_scales", None, "Methods whose scale is drawn as value * U(0, 1) "
                  "(default: the preset's: random and dropout, and diagonal_gaussian in "
                  "the plane preset).")
flags.DEFINE_integer("num_checkpoints", catalog.NUM_CHECKPOINTS,
                     "Last K checkpoints that give the moments.")
flags.DEFINE_integer("rank", None, "Rank of the low-rank Gaussian (PCA axes; default "
                     f"{catalog.SamplerSpec.rank}).")
flags.DEFINE_enum("low_rank_scaling", None, list(catalog.LOW_RANK_SCALINGS),
                  "unit-norm PCA axes (the notebook; default) or SWAG's std along each "
                  "axis.")
flags.DEFINE_float("accept_threshold", None, "Keep a random sample only if its validation "
                   "accuracy reaches this (the notebook uses 0.70 on CIFAR-10).")
flags.DEFINE_integer("accept_tries", None, "Draws per random sample under the threshold "
                     f"(default {catalog.SamplerSpec.accept_tries}).")
common_flags.define_batchnorm_flag()
flags.DEFINE_bool("save_test_predictions", False, "Also predict (and cache) every sample "
                  "on the test split, for ensembling later.")
flags.DEFINE_bool("tsne", False, "Also embed the samples with the runs' trajectories.")
FLAGS = flags.FLAGS


def sampler_specs() -> list[catalog.SamplerSpec]:
    """One spec per --methods entry: the preset's, with the flags' overrides."""
    unknown = sorted(set(FLAGS.methods) - set(catalog.METHODS)) or (
        [] if FLAGS.methods else ["(none given)"])
    if unknown:
        raise UserError(f"unknown --methods {', '.join(unknown)}; choose from "
                        f"{', '.join(catalog.METHODS)}")
    uniform = FLAGS.uniform_scales
    scaled = catalog.PAPER_METHODS[:-1]
    unknown = sorted(set(uniform or ()) - set(scaled))
    if unknown:
        raise UserError(f"unknown --uniform_scales {', '.join(unknown)}; choose from "
                        f"{', '.join(scaled)}")
    specs = []
    for method in FLAGS.methods:
        changes = {name: getattr(FLAGS, name) for name in ("rank", "low_rank_scaling",
                                                            "accept_tries")
                   if getattr(FLAGS, name) is not None}
        if method == "random":
            changes["accept_threshold"] = FLAGS.accept_threshold
        if method in scaled + ("variational",):
            if getattr(FLAGS, f"{method}_scale") is not None:
                changes["scale"] = getattr(FLAGS, f"{method}_scale")
            if uniform is not None:
                changes["uniform"] = method in uniform
        if method == "mc_dropout" and FLAGS.mc_dropout_rate is not None:
            changes["scale"] = FLAGS.mc_dropout_rate
        specs.append(dataclasses.replace(catalog.PRESETS[FLAGS.preset][method], **changes))
    return specs


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    for name in ("base_run", "output_dir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name} is required")
    for name in ("num_samples", "num_checkpoints", "prediction_batch_size"):
        if getattr(FLAGS, name) < 1:
            raise UserError(f"--{name} must be positive, got {getattr(FLAGS, name)}")
    specs = sampler_specs()
    base_run = files.normpath(FLAGS.base_run)
    others = [r for r in (discovery.find_runs(FLAGS.other_runs) if FLAGS.other_runs
                          else []) if files.normpath(r) != base_run]
    shared = discovery.check_runs([base_run] + others, minimum=1,
                                   allow_failed=FLAGS.allow_failed_runs)
    data = common_flags.load_run_data(shared)
    discovery.check_source(base_run, data)
    with locks.hold(FLAGS.output_dir):
        write(base_run, others, specs, data, shared)


def write(base_run, others, specs, data, shared) -> None:
    """The study, its figures and subspace.json in --output_dir."""
    extra = ("test",) if FLAGS.save_test_predictions and FLAGS.split != "test" else ()
    common_flags.devices()  # the device line, as the work starts
    with common_flags.strategy().scope():  # every model built and predicted under it
        result = plane.plane(base_run, others, specs, data, FLAGS.split, FLAGS.num_samples,
                                FLAGS.seed, FLAGS.num_checkpoints, extra, FLAGS.reestimate_bn,
                                FLAGS.prediction_batch_size)
        tsne = plane.tsne_points(result, [base_run] + others[:2], data,
                                    FLAGS.prediction_batch_size) if FLAGS.tsne else None
    result["preset"] = FLAGS.preset
    setting = f"{shared['model']} on {data.name} {FLAGS.split}, preset {FLAGS.preset}"
    plots.diversity_plane(result["samples"], result["independent"], result["base"],
                             result["curves"], f"Diversity vs accuracy ({setting})",
                             os.path.join(FLAGS.output_dir, "diversity_accuracy.png"))
    if tsne is not None:
        plots.tsne_trajectories(*tsne, f"t-SNE of trajectories and subspace samples "
                                   f"({data.name} {FLAGS.split})",
                                   os.path.join(FLAGS.output_dir, "tsne_with_samples.png"))
    files.write_json(os.path.join(FLAGS.output_dir, "subspace.json"), result)
    logging.info("wrote %s", FLAGS.output_dir)
    print(json.dumps(result["summary"], indent=2, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
