r"""Subspace sampling around one solution and the diversity-accuracy plane (paper Fig. 5).

Draws functions around --base_run with each of --methods (random, dropout, diagonal
Gaussian, low-rank Gaussian, weight average; moments from the run's last
--num_checkpoints checkpoints), places them and the independent optima of --other_runs
on the plane (accuracy, disagreement with the base / (1 - accuracy)) with the analytic
limits, and writes subspace.json and diversity_accuracy.png.

  python baselines/subspace.py --base_run=runs/fashion_mnist/small_cnn/seed0 \
      --other_runs=runs/fashion_mnist/small_cnn --preset=plane --num_samples=20 \
      --split=test --output_dir=results/subspace/fashion_mnist_small_cnn
"""

import json
import os

import numpy as np
from absl import flags, logging

from uncertainty import cli
from uncertainty import (UserError, diversity, files, models, plotting, similarity, subspace,
                         trajectory)
from uncertainty.predictions import RunPredictions

cli.define_data_flags(dataset=False)
cli.define_analysis_flags()
cli.define_output_flags()  # --output_dir: subspace.json, figures; --seed: samples
flags.DEFINE_string("base_run", None, "The run whose solution the subspaces surround.")
flags.DEFINE_list("other_runs", [], "Independent runs (or folders of them) to plot as "
                  "optima; the base run is skipped if listed.")
cli.define_methods_flag()
flags.DEFINE_integer("num_samples", 10, "Samples per method.")
flags.DEFINE_enum("preset", "plane", list(subspace.PRESETS),
                  "Scales: plane (widened, random 70U, diagonal 10U, low-rank 6) or "
                  "ensemble (random 10U, diagonal 1, low-rank 1); dropout 0.1U in both.")
for _method in subspace.METHODS[:-1]:
    flags.DEFINE_float(f"{_method}_scale", None,
                       f"Override the preset's {_method} scale (its maximum when the "
                       f"preset draws it uniformly).")
flags.DEFINE_list("uniform_scales", None, "Methods whose scale is drawn as value * U(0, 1) "
                  "(default: the preset's: random and dropout, and diagonal_gaussian in "
                  "the plane preset).")
flags.DEFINE_integer("num_checkpoints", 10, "Last K checkpoints that give the moments.")
flags.DEFINE_integer("rank", 5, "Rank of the low-rank Gaussian (PCA axes).")
flags.DEFINE_enum("low_rank_scaling", "unit", list(subspace.LOW_RANK_SCALINGS),
                  "unit-norm PCA axes (the notebook) or SWAG's std along each axis.")
flags.DEFINE_float("accept_threshold", None, "Keep a random sample only if its validation "
                   "accuracy reaches this (the notebook uses 0.70 on CIFAR-10).")
flags.DEFINE_integer("accept_tries", 5, "Draws per random sample under the threshold.")
flags.DEFINE_bool("reestimate_bn", True, "Re-estimate batch-norm statistics of every "
                  "sample on training data (models with batch norm only).")
flags.DEFINE_bool("save_test_predictions", False, "Also predict (and cache) every sample "
                  "on the test split, for ensembling later.")
flags.DEFINE_bool("tsne", False, "Also embed the samples with the runs' trajectories.")
FLAGS = flags.FLAGS


def scale_specs() -> dict[str, subspace.ScaleSpec]:
    """The preset's scales with the per-method overrides applied."""
    specs = dict(subspace.PRESETS[FLAGS.preset])
    uniform = FLAGS.uniform_scales
    unknown = sorted(set(uniform or ()) - set(subspace.METHODS[:-1]))
    if unknown:
        raise UserError(f"unknown --uniform_scales {', '.join(unknown)}; choose from "
                        f"{', '.join(subspace.METHODS[:-1])}")
    for method in subspace.METHODS[:-1]:
        value = getattr(FLAGS, f"{method}_scale")
        if value is not None and value < 0:
            raise UserError(f"--{method}_scale must be >= 0, got {value}")
        specs[method] = subspace.ScaleSpec(
            specs[method].value if value is None else value,
            specs[method].uniform if uniform is None else method in uniform)
    return specs


def check_flags() -> None:
    if len(set(FLAGS.methods) - set(subspace.METHODS)) or not FLAGS.methods:
        unknown = sorted(set(FLAGS.methods) - set(subspace.METHODS)) or ["(none given)"]
        raise UserError(f"unknown --methods {', '.join(unknown)}; choose from "
                        f"{', '.join(subspace.METHODS)}")
    for name in ("base_run", "output_dir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name} is required")
    for name in ("num_samples", "num_checkpoints", "rank", "accept_tries",
                 "prediction_batch_size"):
        if getattr(FLAGS, name) < 1:
            raise UserError(f"--{name} must be positive, got {getattr(FLAGS, name)}")
    if FLAGS.accept_threshold is not None and not 0 <= FLAGS.accept_threshold <= 1:
        raise UserError(f"--accept_threshold is an accuracy in [0, 1], got "
                        f"{FLAGS.accept_threshold}")
    if FLAGS.dropout_scale is not None and FLAGS.dropout_scale >= 1:
        raise UserError(f"--dropout_scale must be below 1, got {FLAGS.dropout_scale}")


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    check_flags()
    specs = scale_specs()
    base_run = os.path.normpath(FLAGS.base_run)
    others = [r for r in (trajectory.find_runs(FLAGS.other_runs) if FLAGS.other_runs else [])
              if os.path.normpath(r) != base_run]
    shared = trajectory.check_runs([base_run] + others, minimum=1)
    data = cli.load_run_data(shared)
    trajectory.check_source(base_run, data)
    space = subspace.fit(base_run, FLAGS.num_checkpoints)
    predictor = RunPredictions(base_run, batch_size=FLAGS.prediction_batch_size)
    labels = data.labels(FLAGS.split)
    base_probs = predictor.checkpoint(data, FLAGS.split)
    base = diversity.point(base_probs, base_probs, labels)
    independent = [{"run": run, **diversity.point(
        RunPredictions(run, FLAGS.prediction_batch_size).checkpoint(data, FLAGS.split),
        base_probs, labels)} for run in others]

    splits = (FLAGS.split,) + (("test",) if FLAGS.save_test_predictions
                               and FLAGS.split != "test" else ())
    train_data = data if FLAGS.reestimate_bn and models.uses_batchnorm(shared["model"]) \
        else None
    samples = []
    for method in FLAGS.methods:
        samples += subspace.sample_functions(
            predictor, space, method, specs[method], FLAGS.num_samples, FLAGS.seed, data,
            splits, base_probs, rank=FLAGS.rank, low_rank_scaling=FLAGS.low_rank_scaling,
            accept_threshold=FLAGS.accept_threshold if method == "random" else None,
            tries=FLAGS.accept_tries, train_data=train_data)

    accuracies = [s["accuracy"] for s in samples] + [p["accuracy"] for p in independent]
    lowest = min(accuracies + [base["accuracy"], 1.0 / data.num_classes])
    result = {
        "base_run": base_run, "model": shared["model"], "dataset": data.name,
        "split": FLAGS.split, "num_classes": data.num_classes, "preset": FLAGS.preset,
        "scales": {m: {"value": s.value, "uniform": s.uniform} for m, s in specs.items()
                   if m in FLAGS.methods},
        "subspace_epochs": list(space.epochs), "rank": FLAGS.rank,
        "low_rank_scaling": FLAGS.low_rank_scaling, "seed": FLAGS.seed,
        "accept_threshold": FLAGS.accept_threshold,
        "batchnorm_reestimated": train_data is not None,
        "base": {"run": base_run, **base}, "independent": independent,
        "samples": samples,
        "curves": diversity.curves(base["accuracy"], data.num_classes, lowest),
        "summary": summarize(samples, independent, base),
        "predicted_splits": list(splits),
    }
    tsne = tsne_of_samples(base_run, others, predictor, samples, data) if FLAGS.tsne \
        else None
    setting = f"{shared['model']} on {data.name} {FLAGS.split}, preset {FLAGS.preset}"
    plotting.diversity_plane(samples, independent, result["base"], result["curves"],
                             f"Diversity vs accuracy ({setting})",
                             os.path.join(FLAGS.output_dir, "diversity_accuracy.png"))
    if tsne is not None:
        plotting.tsne_trajectories(*tsne, f"t-SNE of trajectories and subspace samples "
                                   f"({data.name} {FLAGS.split})",
                                   os.path.join(FLAGS.output_dir, "tsne_with_samples.png"))
    files.write_json(os.path.join(FLAGS.output_dir, "subspace.json"), result)
    logging.info("wrote %s", FLAGS.output_dir)
    print(json.dumps(result["summary"], indent=2, sort_keys=True))


def summarize(samples: list[dict], independent: list[dict], base: dict,
              band: float = 0.02) -> dict:
    """The paper's comparison: at accuracies within `band` of the independent optima,
    are the subspace samples less diverse than the optima's mean?"""
    summary = {"base_accuracy": base["accuracy"], "methods": {}}
    if independent:
        diversities = [p["normalized_diversity"] for p in independent]
        low = min(p["accuracy"] for p in independent) - band
        high = max(p["accuracy"] for p in independent) + band
        summary.update({"independent_mean_normalized_diversity": float(np.mean(diversities)),
                        "independent_accuracy_band": [low, high]})
    for method in dict.fromkeys(s["method"] for s in samples):
        points = [s for s in samples if s["method"] == method]
        entry = {"num_samples": len(points),
                 "accuracy_range": [min(p["accuracy"] for p in points),
                                    max(p["accuracy"] for p in points)],
                 "max_normalized_diversity": float(np.nanmax(
                     [p["normalized_diversity"] for p in points]))}
        if independent:
            near = [p["normalized_diversity"] for p in points if low <= p["accuracy"] <= high]
            entry["in_band"] = len(near)
            if near:
                entry["in_band_max_normalized_diversity"] = float(np.nanmax(near))
                entry["in_band_all_below_independent_mean"] = bool(
                    np.nanmax(near) < summary["independent_mean_normalized_diversity"])
        summary["methods"][method] = entry
    return summary


def tsne_of_samples(base_run, others, predictor, samples, data) -> tuple:
    """t-SNE points of the runs' trajectories (base first, up to two others) and the
    samples, with each point's run or method and epoch (None for samples)."""
    groups, probs = [], []
    for run in [base_run] + others[:2]:
        runner = RunPredictions(run, FLAGS.prediction_batch_size)
        for epoch in trajectory.epochs(run):
            probs.append(runner.checkpoint(data, FLAGS.split, epoch))
            groups.append((os.path.basename(os.path.normpath(run)), epoch))
    for s in samples:
        probs.append(np.load(predictor.cache_path(data, FLAGS.split, s["key"])))
        groups.append((s["method"], None))
    points = similarity.tsne(np.stack(probs), FLAGS.seed)
    return points, [g for g, _ in groups], [e for _, e in groups]


if __name__ == "__main__":
    cli.run(main)
