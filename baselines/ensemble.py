r"""Ensembles, ensembles of subspace samples, and dataset shift (paper Sec. 5, Fig. 8-9).

Scores, on the clean test set (intensity 0) and on every corrupted test set, the sets of
functions the paper compares, for ensemble sizes 1..M averaged over k-subsets:
independent runs; one run's last M checkpoints (trajectory); each subspace method alone
(one run's samples ensembled, averaged over runs); and ensembles whose members are each
run's subspace samples averaged (independent+<method>; with weight_average, ensembles
of weight averages). It also gives the Jensen-Shannon divergence of each set per
intensity. Subspace samples are the ones `subspace.py --save_test_predictions` drew
around each run (--subspace_dir); they are regenerated from their recorded parameters
when a set is not predicted yet. Every prediction is cached in the runs.

  python baselines/ensemble.py --runs=runs/fashion_mnist/small_cnn \
      --subspace_dir=results/ensemble/subspace --corruptions=all \
      --compare_published --output_dir=results/ensemble
"""

import functools
import glob
import json
import os

import numpy as np
from absl import flags, logging

from uncertainty import cli
from uncertainty import (UserError, datasets, ensemble, files, plotting, published,
                         similarity, subspace, trajectory)
from uncertainty.predictions import RunPredictions

cli.define_data_flags(dataset=False)
cli.define_analysis_flags(split=False)
cli.define_output_flags()  # --output_dir: ensemble.json, figures; --seed: subsets
cli.define_runs_flag()
flags.DEFINE_string("subspace_dir", None, "Folder searched for the subspace.json files "
                    "of subspace.py runs around these runs (optional).")
cli.define_methods_flag()  # default: those sampled in --subspace_dir
flags.DEFINE_integer("max_ensemble_size", None, "Largest ensemble (default: the number "
                     "of runs).")
flags.DEFINE_integer("max_subsets", 100, "Subsets per ensemble size; a seeded random "
                     "sample of them when there are more.")
flags.DEFINE_list("corruptions", ["all"], "Corruption types of the dataset's corrupted "
                  "test sets: all, a list, or none (clean test set only).")
flags.DEFINE_list("intensities", ["1", "2", "3", "4", "5"], "Corruption intensities "
                  "(the clean test set is intensity 0 and always included).")
flags.DEFINE_bool("compare_published", False, "Print and write a table of these numbers "
                  "next to the published ones (published.txt, in ensemble.json).")
FLAGS = flags.FLAGS

METRICS = tuple(ensemble.METRICS) + ("js_divergence",)
FIGURE_SIZES = (1, 2, 5)


def check_flags() -> tuple[list[int], list[str] | None]:
    """The intensities and corruption types (None = all) the flags ask for."""
    for name in ("runs", "output_dir"):
        if not getattr(FLAGS, name):
            raise UserError(f"--{name} is required")
    for name in ("max_ensemble_size", "max_subsets", "prediction_batch_size"):
        value = getattr(FLAGS, name)
        if value is not None and value < 1:
            raise UserError(f"--{name} must be positive, got {value}")
    try:
        intensities = sorted({int(i) for i in FLAGS.intensities})
    except ValueError:
        raise UserError(f"--intensities are integers 1..5, got {FLAGS.intensities}")
    kinds = FLAGS.corruptions
    if kinds == ["all"]:
        return intensities, None
    return intensities, [] if kinds == ["none"] else kinds


def find_samples(subspace_dir: str | None, runs: list[str], dataset: str
                 ) -> dict[str, dict[str, list[dict]]]:
    """{method: {run: [sample records]}} from the subspace.json files under
    `subspace_dir` whose base run is one of `runs`."""
    found = {}
    if subspace_dir is None:
        return found
    if not os.path.isdir(subspace_dir):
        raise UserError(f"--subspace_dir {subspace_dir} is not a directory")
    paths = sorted(glob.glob(os.path.join(subspace_dir, "**", "subspace.json"),
                             recursive=True))
    if not paths:
        raise UserError(f"no subspace.json under {subspace_dir}; run baselines/subspace.py "
                        f"around each run with --output_dir inside it")
    by_run = {os.path.normpath(r): r for r in runs}
    seen = {}
    for path in paths:
        result = files.read_json(path)
        run = by_run.get(os.path.normpath(result["base_run"]))
        if run is None:
            logging.info("skipping %s: its base run is not in --runs", path)
            continue
        if result["dataset"] != dataset:
            raise UserError(f"{path} sampled on {result['dataset']}, the runs are on "
                            f"{dataset}")
        for sample in result["samples"]:
            method = sample["method"]
            if seen.setdefault((method, run), path) != path:
                raise UserError(f"{path} and {seen[method, run]} both hold {method} samples "
                                f"around {run}; keep one")
            found.setdefault(method, {}).setdefault(run, []).append(sample)
    return found


def choose_methods(samples: dict, runs: list[str]) -> list[str]:
    """The subspace methods to score: --methods if given (each must have been sampled
    around every run), else every method found in --subspace_dir."""
    asked = FLAGS.methods
    if FLAGS["methods"].using_default_value:
        asked = [m for m in subspace.METHODS if m in samples]
    unknown = sorted(set(asked) - set(subspace.METHODS))
    if unknown:
        raise UserError(f"unknown --methods {', '.join(unknown)}; choose from "
                        f"{', '.join(subspace.METHODS)}")
    for method in asked:
        missing = [r for r in runs if r not in samples.get(method, {})]
        if missing:
            raise UserError(f"no {method} samples around {', '.join(missing)} in "
                            f"--subspace_dir; run subspace.py --methods={method} around "
                            f"every run, or leave {method} out of --methods")
    return asked


def main(argv):
    if len(argv) > 1:
        raise UserError(f"unexpected arguments {argv[1:]}; pass options as --flag=value")
    intensities, kinds = check_flags()
    runs = trajectory.find_runs(FLAGS.runs)
    shared = trajectory.check_runs(runs)
    clean = cli.load_run_data(shared)
    for run in runs:
        trajectory.check_source(run, clean)
    sets = datasets.shift_sets(clean.name, kinds, intensities) if kinds != [] \
        else [(0, None, clean.name)]
    kinds = list(dict.fromkeys(kind for _, kind, _ in sets[1:]))
    intensities = sorted({s for s, _, _ in sets[1:]})
    samples = find_samples(FLAGS.subspace_dir, runs, clean.name)
    methods = choose_methods(samples, runs)
    size = min(FLAGS.max_ensemble_size or len(runs), len(runs))
    num_samples = {m: min(len(samples[m][r]) for r in runs) for m in methods}
    predictors = {run: RunPredictions(run, FLAGS.prediction_batch_size) for run in runs}
    last_epochs = trajectory.epochs(runs[0])[-size:]

    @functools.cache
    def fitted(run, num_checkpoints):
        return subspace.fit(run, num_checkpoints)

    def sample_probs(data, method, run):
        records = samples[method][run][:num_samples[method]]
        return np.stack([predictors[run].vector(
            data, "test", s["key"],
            lambda s=s: subspace.regenerate(fitted(run, len(s["params"]["epochs"])),
                                            s["params"]),
            train_data=clean if s["params"].get("batchnorm_reestimated") else None)
            for s in records])

    values = {}  # {set name: {size: {metric key: value}}}; JS under size "all"
    for intensity, kind, name in sets:
        data = clean if kind is None else cli.load_dataset(name, shared["validation_examples"])
        logging.info("scoring %s", name)
        tables, js = ensemble.score(
            np.stack([predictors[r].checkpoint(data, "test") for r in runs]),
            np.stack([predictors[runs[0]].checkpoint(data, "test", e) for e in last_epochs]),
            {m: [sample_probs(data, m, r) for r in runs] for m in methods},
            data.labels("test"), size, FLAGS.max_subsets, FLAGS.seed)
        for set_name, table in tables.items():
            for k, scores in table.items():
                entry = values.setdefault(set_name, {}).setdefault(str(k), {})
                entry.update({ensemble.metric_key(m, kind, intensity): v
                              for m, v in scores.items()})
        for set_name, divergence in js.items():
            values[set_name].setdefault("all", {})[
                ensemble.metric_key("js_divergence", kind, intensity)] = divergence
    for table in values.values():
        for entry in table.values():
            for metric in METRICS:
                if f"test/{metric}" in entry:
                    entry.update(ensemble.aggregate_corrupted(entry, metric, kinds,
                                                              intensities))

    counts = {k: sum(p.counts[k] for p in predictors.values()) for k in ("computed",
                                                                        "from_cache")}
    result = {
        "runs": runs, "model": shared["model"], "dataset": clean.name,
        "corruptions": kinds, "intensities": [0] + intensities,
        "evaluation_sets": [name for _, _, name in sets], "max_ensemble_size": size,
        "max_subsets": FLAGS.max_subsets, "seed": FLAGS.seed,
        "trajectory": {"run": runs[0], "epochs": last_epochs},
        "subspace_samples_per_run": num_samples, "metrics": values,
        "summary": summarize(values, size, [0] + intensities), "predictions": counts,
    }
    if FLAGS.compare_published:
        rows = published.compare(functools.partial(lookup, values), shared["model"],
                                 clean.name)
        result["published_comparison"] = rows
        table = published.format_table(rows)
        print(table)
        files.write_text(os.path.join(FLAGS.output_dir, "published.txt"), table + "\n")
    write_figures(values, result, FLAGS.output_dir)
    files.write_json(os.path.join(FLAGS.output_dir, "ensemble.json"), result)
    logging.info("predictions: %d computed, %d from cache", counts["computed"],
                 counts["from_cache"])
    print(json.dumps(result["summary"], indent=2, sort_keys=True))


def lookup(values: dict, entry: dict) -> float | None:
    """Our number for a published entry: same set of functions, ensemble size (JS:
    the whole set) and intensity (or the mean over corruptions)."""
    size = "all" if entry["metric"] == "js_divergence" else str(entry.get("ensemble_size"))
    table = values.get(entry["method"], {}).get(size)
    if table is None:
        return None
    intensity = entry["intensity"]
    key = (f"test/{entry['metric']}_mean_corrupted" if intensity == "mean_corrupted"
           else f"test/{entry['metric']}" if intensity == 0
           else f"test/{entry['metric']}_mean_{intensity}")
    return table.get(key)


def summarize(values: dict, size: int, intensities: list[int]) -> dict:
    """The paper's claims, checked: the M-member ensemble beats the mean single member
    in accuracy, NLL and Brier at every intensity; independent runs have the largest JS
    divergence at every intensity."""
    single, full = values["independent"]["1"], values["independent"][str(size)]
    better = {}
    for metric, sign in (("accuracy", 1), ("nll", -1), ("brier", -1)):
        gains = [sign * (ensemble.at_intensity(full, metric, s)
                         - ensemble.at_intensity(single, metric, s)) for s in intensities]
        better[metric] = {"gain_by_intensity": gains, "all_better": bool(min(gains) > 0)}
    js = {name: [ensemble.at_intensity(t["all"], "js_divergence", s) for s in intensities]
          for name, t in values.items() if "all" in t}
    others = [name for name in js if name != "independent"]
    return {
        "ensemble_size": size, "intensities": intensities,
        f"independent_{size}_vs_1": better,
        "js_divergence": js,
        "js_independent_largest_at_every_intensity": bool(all(
            js["independent"][i] > max(js[o][i] for o in others)
            for i in range(len(intensities)))) if others else None,
    }


def write_figures(values: dict, result: dict, output_dir: str) -> None:
    """Accuracy and Brier vs intensity for 1-, 2- and M-member ensembles; JS vs
    intensity; accuracy, NLL and Brier vs ensemble size on the clean test set."""
    intensities = result["intensities"]
    setting = f"{result['model']} on {result['dataset']}"
    sizes = sorted({s for s in FIGURE_SIZES if s <= result["max_ensemble_size"]}
                   | {result["max_ensemble_size"]})

    def curve(table, metric):
        return intensities, [ensemble.at_intensity(table, metric, s) for s in intensities]

    panels = [(f"{k}-member ensembles" if k > 1 else "single member", metric,
               {name: curve(t[str(k)], metric) for name, t in values.items() if str(k) in t})
              for metric in ("accuracy", "brier") for k in sizes]
    plotting.line_panels(panels, "corruption intensity", f"Under dataset shift ({setting})",
                         os.path.join(output_dir, "shift_accuracy_brier.png"),
                         columns=len(sizes))
    js = {name: curve(t["all"], "js_divergence") for name, t in values.items() if "all" in t}
    plotting.line_panels([("Jensen-Shannon divergence of each set of functions",
                           "JS divergence", js)], "corruption intensity", setting,
                         os.path.join(output_dir, "shift_js_divergence.png"))
    panels = [(metric, metric, {name: ([int(k) for k in t if k != "all"],
                                       [t[k][f"test/{metric}"] for k in t if k != "all"])
                                for name, t in values.items()})
              for metric in ("accuracy", "nll", "brier")]
    plotting.line_panels(panels, "ensemble size", f"Clean test set ({setting})",
                         os.path.join(output_dir, "ensemble_size.png"))


if __name__ == "__main__":
    cli.run(main)
