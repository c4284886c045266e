r"""Ensembles, ensembles of subspace samples, and dataset shift (paper Sec. 5, Fig. 8-9).

Scores, on the clean test set (intensity 0) and on every corrupted test set, the sets of
functions the paper compares, for ensemble sizes 1..M averaged over k-subsets:
independent runs; one run's last M checkpoints (trajectory); each subspace method alone
(one run's samples ensembled, averaged over runs); and ensembles whose members are each
run's subspace samples ensembled (independent+<method>; with weight_average, ensembles
of weight averages); for runs trained with --method=variational, each run's posterior
predictive (variational) and ensembles of them (independent+variational), and with
--methods=mc_dropout, MC dropout. It also gives the Jensen-Shannon divergence of each set per
evaluation set. Subspace samples are the ones `subspace.py` drew around each run
(found under --subspace_dir); they are regenerated from their recorded parameters when
a set is not predicted yet. Every prediction is cached in the runs. Writes
ensemble.json, table.txt (single members vs ensembles, clean and corrupted), figures
and, with --compare_published, published.txt
(`uncertainty.core.names` documents the metric names and the two corrupted means).

  python baselines/ensemble.py --runs=runs/fashion_mnist/small_cnn \
      --subspace_dir=results/ensemble/subspace --corruptions=all \
      --compare_published --output_dir=results/ensemble
"""

from uncertainty.cli import startup

if __name__ == "__main__":  # a command line: before TensorFlow is imported
    startup.before_tensorflow()

import json
import os

from absl import flags, logging

from uncertainty.analyses import shift
from uncertainty.cli import app, common_flags
from uncertainty.core import published
from uncertainty.infra import files, locks
from uncertainty.infra.errors import UserError
from uncertainty.runs import discovery
from uncertainty.study import plots, shift_report

common_flags.define_data_flags(dataset=False)
common_flags.define_analysis_flags(split=False)
common_flags.define_output_flags()  # --output_dir: ensemble.json, figures; --seed: subsets
common_flags.define_runs_flag()
flags.DEFINE_string("subspace_dir", None, "Folder searched for the subspace.json files "
                    "of subspace.py runs around these runs (optional).")
common_flags.define_methods_flag()  # default: every method sampled in --subspace_dir (+ VI's)
common_flags.define_posterior_samples_flag()
common_flags.define_mc_dropout_flag()
flags.DEFINE_integer("max_ensemble_size", None, "Largest ensemble (default: the number "
                     "of runs).")
flags.DEFINE_integer("max_subsets", shift.Options.max_subsets,
                     "Subsets per ensemble size; distinct random "
                     "ones (from --seed) when there are more.")
common_flags.define_shift_flags()
common_flags.define_batchnorm_flag()
flags.DEFINE_bool("ood", True, "Also score out-of-distribution detection (AUROC, AUPRC, "
                  "FPR at 95% TPR of the maximum probability, entropy and mutual "
                  "information) against the dataset's pairings (CIFAR-10: SVHN and "
                  "CIFAR-100, Fashion-MNIST: MNIST digits, MNIST-1D: novel templates), "
                  "written to ood.txt and ensemble.json.")
flags.DEFINE_bool("compare_published", False, "Print and write a table of these numbers "
                  "next to the published ones (published.txt, in ensemble.json).")
FLAGS = flags.FLAGS


def options() -> shift.Options:
    """The flags, checked, as the study's options."""
    for name in ("runs", "output_dir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name} is required")
    for name in ("max_ensemble_size", "max_subsets", "prediction_batch_size",
                 "num_posterior_samples"):
        value = getattr(FLAGS, name)
        if value is not None and value < 1:
            raise UserError(f"--{name} must be positive, got {value}")
    corruptions, intensities = common_flags.shift_sets()
    methods = None if FLAGS["methods"].using_default_value else tuple(FLAGS.methods)
    return shift.Options(corruptions=corruptions, intensities=intensities, methods=methods,
                         max_ensemble_size=FLAGS.max_ensemble_size,
                         max_subsets=FLAGS.max_subsets, seed=FLAGS.seed,
                         reestimate_bn=FLAGS.reestimate_bn,
                         batch_size=FLAGS.prediction_batch_size,
                         num_posterior_samples=(FLAGS.num_posterior_samples or
                                                shift.Options.num_posterior_samples),
                         mc_dropout_rate=FLAGS.mc_dropout_rate, ood=FLAGS.ood)


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    settings = options()
    runs = discovery.find_runs(FLAGS.runs)
    shared = discovery.check_runs(runs, allow_failed=FLAGS.allow_failed_runs)
    data = common_flags.load_run_data(shared)
    for run in runs:
        discovery.check_source(run, data)
    with locks.hold(FLAGS.output_dir):
        write(runs, data, settings, shared)


def write(runs, data, settings, shared) -> None:
    """The study, its figures, tables and ensemble.json in --output_dir."""
    common_flags.devices()  # the device line, as the work starts
    with common_flags.strategy().scope():  # every model built and predicted under it
        def load(name):
            return common_flags.load_dataset(name, shared["validation_examples"])

        result = shift.study(runs, data, settings, FLAGS.subspace_dir, load)
    if FLAGS.compare_published:
        result["published_comparison"] = shift_report.compare_published(result)
        table = published.format_table(result["published_comparison"])
        print(table)
        files.write_text(os.path.join(FLAGS.output_dir, "published.txt"), table + "\n")
    for figure in shift_report.figures(result):
        plots.line_panels(figure["panels"], figure["xlabel"], figure["title"],
                             os.path.join(FLAGS.output_dir, figure["file"]),
                             columns=figure["columns"])
    js = result["summary"]["js_divergence"]
    plots.js_bars(js, result["summary"]["intensities"],
                     f"JS divergence ({result['model']} on {result['dataset']})",
                     os.path.join(FLAGS.output_dir, "js_divergence.png"))
    files.write_npz(os.path.join(FLAGS.output_dir, "per_example.npz"),
                    **result.pop("per_example"))
    files.write_json(os.path.join(FLAGS.output_dir, "ensemble.json"), result)
    summary_table = shift_report.table(result)
    files.write_text(os.path.join(FLAGS.output_dir, "table.txt"), summary_table + "\n")
    print(summary_table)
    if "ood" in result:
        detection = shift_report.ood_table(result)
        files.write_text(os.path.join(FLAGS.output_dir, "ood.txt"), detection + "\n")
        print(detection)
    counts = result["predictions"]
    logging.info("predictions: %d computed, %d from cache", counts["computed"],
                 counts["from_cache"])
    print(json.dumps(result["summary"], indent=2, sort_keys=True))


if __name__ == "__main__":
    app.run(main)
