"""Ensembles under dataset shift (paper Sec. 5, Fig. 8-9): the sets of functions of
the study gathered on every evaluation set, scored by `ensemble.score`, and named and
averaged over corruptions as uncertainty-baselines names them.

Evaluation sets: the clean test set (intensity 0) and corrupted test sets
`<type>_<intensity>` (TFDS's CIFAR-10-C, or the locally generated sets). Names:

  test/accuracy, test/negative_log_likelihood, test/ece, test/brier   clean
  test/<m>_<type>_<intensity>            one corrupted set (m = accuracy, nll, ece,
                                         brier, js_divergence; UB's short `nll`)
  test/<m>_mean_<intensity>, test/<m>_mean_corrupted
      the mean over the STANDARD_CORRUPTIONS evaluated (uncertainty-baselines' 15
      types), per intensity and over intensities
  test/<m>_mean_all_<intensity>, test/<m>_mean_corrupted_all
      the same over every type evaluated (19 for CIFAR-10-C, as the paper averages)

Sets of functions from the model's own randomness (`subspace.MODEL_METHODS`) are drawn
here, `Options.num_posterior_samples` per run: for runs trained with
--method=variational the set "variational" (each run's posterior predictive; the
runs' own functions, "independent", are their posterior means, and
"independent+variational" is the ensemble of the runs' posterior predictives) is
always scored; "mc_dropout" (passes with each run's dropout on) when asked in
`Options.methods`.

Every function of a set is predicted under one batch-norm policy: statistics
re-estimated on the runs' training data for models with batch norm (by default), the
checkpoints' own otherwise. Predictions are cached in the runs (`RunPredictions`).
"""

import dataclasses
import os
import time

import numpy as np
from absl import logging

from uncertainty import (datasets, ensemble, files, models, progress, published, recipes,
                         subspace, trajectory)
from uncertainty.datasets import Dataset
from uncertainty.errors import UserError
from uncertainty.predictions import RunPredictions

# uncertainty-baselines' CIFAR-10-C types (Hendrycks & Dietterich's benchmark), TFDS names.
# (TFDS names two of them differently in CIFAR-10-C and ImageNet-C: both are listed.)
STANDARD_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "frosted_glass_blur",
    "glass_blur", "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness",
    "contrast", "elastic", "elastic_transform", "pixelate", "jpeg_compression")
METRICS = tuple(ensemble.METRICS) + ("js_divergence",)
_CLEAN_NAMES = {"nll": "negative_log_likelihood"}  # UB's clean name where it differs
FIGURE_SIZES = (1, 2, 5)


def metric_key(metric: str, kind: str | None = None, intensity: int = 0) -> str:
    """A metric's name on the clean test set (kind None) or on `<kind>_<intensity>`."""
    if kind is None:
        return f"test/{_CLEAN_NAMES.get(metric, metric)}"
    return f"test/{metric}_{kind}_{intensity}"


def mean_key(metric: str, intensity: int | None = None, mean: str = "standard") -> str:
    """The name of a corrupted mean: at one intensity, or over all (None)."""
    suffix = "_all" if mean == "all" else ""
    if intensity is None:
        return f"test/{metric}_mean_corrupted{suffix}"
    return f"test/{metric}_mean{suffix}_{intensity}"


def mean_types(kinds) -> dict[str, list[str]]:
    """The corruption types each mean is over: the standard ones evaluated, and all."""
    return {"standard": [k for k in kinds if k in STANDARD_CORRUPTIONS], "all": list(kinds)}


def aggregate_corrupted(values: dict[str, float], metric: str, kinds, intensities
                        ) -> dict[str, float]:
    """Both means of `metric` (see the module doc) from its per-set `values`; the
    standard ones only when a standard type was evaluated."""
    means = {}
    for mean, types in mean_types(kinds).items():
        if not types or not intensities:
            continue
        per_intensity = [float(np.mean([values[metric_key(metric, kind, s)]
                                        for kind in types])) for s in intensities]
        means.update({mean_key(metric, s, mean): v
                      for s, v in zip(intensities, per_intensity)})
        means[mean_key(metric, None, mean)] = float(np.mean(per_intensity))
    return means


def at_intensity(values: dict[str, float], metric: str, intensity: int,
                 mean: str = "all") -> float:
    """A metric at one intensity: the clean value at 0, a mean over types above."""
    return values[metric_key(metric) if intensity == 0 else mean_key(metric, intensity,
                                                                       mean)]


@dataclasses.dataclass(frozen=True)
class Options:
    """What the study evaluates. corruptions: types, None for all, () for the clean
    test set only; methods: subspace methods, None for every one found (each must be
    sampled around every run) and, for variational runs, variational;
    num_posterior_samples: draws (or MC-dropout passes) per run of the model methods;
    mc_dropout_rate: None for the runs' training rate; max_ensemble_size: None for the
    number of runs; max_subsets: per size; reestimate_bn: the batch-norm policy
    (models with batch norm only); ood: also score out-of-distribution detection
    against `datasets.OUT_OF_DISTRIBUTION`'s pairings, if the dataset has any."""

    corruptions: tuple[str, ...] | None = None
    intensities: tuple[int, ...] = (1, 2, 3, 4, 5)
    methods: tuple[str, ...] | None = None
    max_ensemble_size: int | None = None
    max_subsets: int = 100
    seed: int = 0
    reestimate_bn: bool = True
    batch_size: int = 500
    num_posterior_samples: int = recipes.COMMON["num_posterior_samples"]
    mc_dropout_rate: float | None = None
    ood: bool = True


def evaluation_sets(clean: str, corruptions, intensities) -> list[tuple]:
    """(intensity, type, dataset name) of every evaluation set, clean first."""
    if corruptions == ():
        return [(0, None, clean)]
    return datasets.shift_sets(clean, None if corruptions is None else list(corruptions),
                               intensities)


def find_samples(subspace_dir: str | None, runs: list[str], dataset: str
                 ) -> dict[str, dict[str, list[dict]]]:
    """{method: {run: [sample records]}} from the subspace.json files under
    `subspace_dir` whose samples were drawn around one of `runs` (matched by the run's
    identity, so a moved run still finds its samples)."""
    found = {}
    if subspace_dir is None:
        return found
    if not files.isdir(subspace_dir):
        raise UserError(f"--subspace_dir {subspace_dir} is not a directory")
    paths = files.find(subspace_dir, "subspace.json")
    if not paths:
        raise UserError(f"no subspace.json under {subspace_dir}; run baselines/subspace.py "
                        f"around each run with --output_dir inside it")
    by_identity = {trajectory.identity(run): run for run in runs}
    seen = {}
    for path in paths:
        result = files.read_json(path, fix=f"run baselines/subspace.py again with "
                                           f"--output_dir={os.path.dirname(path)}")
        if any("run" not in s.get("params", {}) for s in result["samples"]):
            raise UserError(f"{path} was written by an older subspace.py whose samples "
                            f"cannot be regenerated; run baselines/subspace.py again")
        matched = [(by_identity.get(s["params"]["run"]), s) for s in result["samples"]]
        if not any(run for run, _ in matched):
            logging.info("skipping %s: its base run is not in --runs", path)
            continue
        if result["dataset"] != dataset:
            raise UserError(f"{path} sampled on {result['dataset']}, the runs are on "
                            f"{dataset}")
        for run, sample in matched:
            method = sample["method"]
            if run is None:
                continue
            if seen.setdefault((method, run), path) != path:
                raise UserError(f"{path} and {seen[method, run]} both hold {method} "
                                f"samples around {run}; keep one")
            found.setdefault(method, {}).setdefault(run, []).append(sample)
    return found


def choose_methods(samples: dict, runs: list[str], asked=None,
                   training_method: str = "deterministic") -> list[str]:
    """The methods to score: `asked`, or when None every subspace method found, and
    variational for variational runs in any case; each subspace method must have been
    sampled around every run (the model methods are drawn here)."""
    if asked is None:
        asked = [m for m in subspace.PAPER_METHODS if m in samples]
    if training_method == "variational" and "variational" not in asked:
        asked = list(asked) + ["variational"]
    unknown = sorted(set(asked) - set(subspace.METHODS))
    if unknown:
        raise UserError(f"unknown --methods {', '.join(unknown)}; choose from "
                        f"{', '.join(subspace.METHODS)}")
    for method in [m for m in asked if m not in subspace.MODEL_METHODS]:
        missing = [r for r in runs if r not in samples.get(method, {})]
        if missing:
            raise UserError(f"no {method} samples around {', '.join(missing)} in "
                            f"--subspace_dir; run subspace.py --methods={method} around "
                            f"every run, or leave {method} out of --methods")
    return list(asked)


class Functions:
    """The study's functions, predicted (and cached) on any evaluation set: the runs'
    final solutions, the first run's last `size` checkpoints, and each run's subspace
    samples (the first `num_samples[method]` of `records`), all under one batch-norm
    policy (`bn_data`: re-estimate on its training split; None: checkpoint
    statistics)."""

    def __init__(self, runs: list[str], size: int, records: dict, num_samples: dict,
                 bn_data: Dataset | None, batch_size: int):
        self.runs, self.bn_data = runs, bn_data
        self.predictors = {run: RunPredictions(run, batch_size) for run in runs}
        self.trajectory_epochs = trajectory.epochs(runs[0])[-size:]
        self.records = {m: {r: records[m][r][:n] for r in runs}
                        for m, n in num_samples.items()}
        self._spaces = {}

    def _space(self, run: str, num_checkpoints: int) -> subspace.Subspace:
        if (run, num_checkpoints) not in self._spaces:
            self._spaces[run, num_checkpoints] = subspace.fit(run, num_checkpoints)
        return self._spaces[run, num_checkpoints]

    def logits(self, data: Dataset) -> tuple:
        """(independent [M, N, C], trajectory [K, N, C], {method: [[S, N, C] per run]})
        logits on `data`'s test split."""
        first = self.predictors[self.runs[0]]
        independent = np.stack([p.checkpoint(data, "test", bn_data=self.bn_data)
                                for p in self.predictors.values()])
        path = np.stack([first.checkpoint(data, "test", e, bn_data=self.bn_data)
                         for e in self.trajectory_epochs])
        samples = {method: [np.stack([subspace.sample_logits(
            self.predictors[run], self._space(run, len(s["params"]["epochs"])), s, data,
            "test", self.bn_data) for s in per_run[run]]) for run in self.runs]
            for method, per_run in self.records.items()}
        return independent, path, samples

    def counts(self) -> dict[str, int]:
        return {k: sum(p.counts[k] for p in self.predictors.values())
                for k in ("computed", "from_cache")}


def study(runs: list[str], data: Dataset, options: Options, subspace_dir: str | None,
          load) -> dict:
    """The whole study on the runs' clean `data` and the corrupted sets `load(name)`
    returns; subspace samples from `subspace_dir`. Returns ensemble.json's content.
    Errors in the options or the samples, and a first corrupted set that cannot be
    loaded, are raised before anything is predicted."""
    start = time.time()
    model = trajectory.read_config(runs[0])["model"]
    sets = evaluation_sets(data.name, options.corruptions, options.intensities)
    kinds = list(dict.fromkeys(kind for _, kind, _ in sets[1:]))
    intensities = sorted({s for s, _, _ in sets[1:]})
    samples = find_samples(subspace_dir, runs, data.name)
    methods = choose_methods(samples, runs, options.methods, trajectory.method(runs[0]))
    size = min(options.max_ensemble_size or len(runs), len(runs))
    bn_data = data if options.reestimate_bn and models.uses_batchnorm(model) else None
    for method in [m for m in methods if m in subspace.MODEL_METHODS]:
        spec = subspace.SamplerSpec(method, scale=1.0 if method == "variational" else
                                    options.mc_dropout_rate or 0.0)
        samples[method] = {run: subspace.draw_model_samples(
            run, spec, options.num_posterior_samples, options.seed, bn_data)[1]
            for run in runs}
    num_samples = {m: min(len(samples[m][r]) for r in runs) for m in methods}
    functions = Functions(runs, size, samples, num_samples, bn_data, options.batch_size)
    loaded = {data.name: data} | ({sets[1][2]: load(sets[1][2])} if sets[1:] else {})
    values = {}  # {set of functions: {size: {metric name: value}}}; JS under "all"
    outliers = datasets.OUT_OF_DISTRIBUTION.get(data.name, ()) if options.ood else ()
    meter = progress.Progress(len(sets), "ensembles on the test sets", "set")
    for i, (intensity, kind, name) in enumerate(sets):
        shifted = loaded.pop(name) if name in loaded else load(name)
        logging.info("scoring %s (%d/%d)", name, i + 1, len(sets))
        logits = functions.logits(shifted)
        if intensity == 0 and outliers:  # while the clean set's logits are at hand
            found_ood = {outlier: detect_ood(functions, logits, load(outlier), size,
                                             options) for outlier in outliers}
        tables, js = ensemble.score(*logits, shifted.labels("test"), size,
                                    options.max_subsets, options.seed)
        for set_name, table in tables.items():
            for k, scores in table.items():
                values.setdefault(set_name, {}).setdefault(str(k), {}).update(
                    {metric_key(m, kind, intensity): v for m, v in scores.items()})
        for set_name, divergence in js.items():
            values[set_name].setdefault("all", {})[
                metric_key("js_divergence", kind, intensity)] = divergence
        meter.update()
    meter.close()
    for entry in (e for table in values.values() for e in table.values()):
        for metric in METRICS:
            if metric_key(metric) in entry:
                entry.update(aggregate_corrupted(entry, metric, kinds, intensities))
    result = {
        "runs": runs, "model": model, "method": trajectory.method(runs[0]),
        "dataset": data.name, "corruptions": kinds,
        "intensities": [0] + intensities, "evaluation_sets": [n for _, _, n in sets],
        "corruption_means": {mean: {"types": types, "names": [
            mean_key("<metric>", "<intensity>", mean), mean_key("<metric>", None, mean)]}
            for mean, types in mean_types(kinds).items()},
        "max_ensemble_size": size, "max_subsets": options.max_subsets,
        "seed": options.seed,
        "batchnorm": "checkpoint" if bn_data is None else "reestimated",
        "trajectory": {"run": runs[0], "epochs": functions.trajectory_epochs},
        "methods": methods, "subspace_samples_per_run": num_samples, "metrics": values,
        "summary": summarize(values, size, [0] + intensities),
    }
    if outliers:
        result["ood"] = found_ood
        result["summary"]["ood"] = {name: summarize_ood(found, size)
                                    for name, found in result["ood"].items()}
    result["predictions"] = {**functions.counts(), "analysis_seconds": time.time() - start}
    return result


def detect_ood(functions: "Functions", inside: tuple, outlier: Dataset, size: int,
               options: Options) -> dict:
    """Every set of functions detecting `outlier`'s test examples among the clean test
    examples, on which their logits are `inside` (`Functions.logits`), by
    `ensemble.score_ood`; and the sets' JS divergence on both."""
    logging.info("out-of-distribution detection against %s", outlier.name)
    tables, js_out = ensemble.score_ood(inside, functions.logits(outlier), size,
                                        options.max_subsets, options.seed)
    js_in = ensemble.js_divergences(*inside)
    return {"dataset": outlier.name, "num_examples": outlier.num_examples("test"),
            "metrics": {name: {str(k): v for k, v in table.items()}
                        for name, table in tables.items()},
            "js_divergence": {name: {"in_distribution": js_in[name],
                                     "out_of_distribution": js_out[name]}
                              for name in js_out}}


def summarize_ood(found: dict, size: int) -> dict:
    """The paper's point off distribution: independent runs disagree more on
    out-of-distribution inputs than on their own test set, and more than the other
    sets; their `size`-ensemble's AUROC against a single model's."""
    js = found["js_divergence"]
    independent = found["metrics"]["independent"]
    return {
        "js_higher_out_of_distribution": {name: bool(v["out_of_distribution"] >
                                                     v["in_distribution"])
                                          for name, v in js.items()},
        "js_independent_largest_out_of_distribution": bool(all(
            js["independent"]["out_of_distribution"] > v["out_of_distribution"]
            for name, v in js.items() if name != "independent")),
        "auroc_max_probability": {"1": independent["1"]["ood/auroc_max_probability"],
                                  str(size): independent[str(size)][
                                      "ood/auroc_max_probability"]},
    }


def summarize(values: dict, size: int, intensities: list[int]) -> dict:
    """The paper's claims, checked (corrupted intensities: the mean over all types):
    the `size`-member ensemble beats the mean single member in accuracy, NLL and Brier
    at every intensity; independent runs have the largest JS divergence at every
    intensity."""
    single, full = values["independent"]["1"], values["independent"][str(size)]
    better = {}
    for metric, sign in (("accuracy", 1), ("nll", -1), ("brier", -1)):
        gains = [sign * (at_intensity(full, metric, s) - at_intensity(single, metric, s))
                 for s in intensities]
        better[metric] = {"gain_by_intensity": gains, "all_better": bool(min(gains) > 0)}
    js = {name: [at_intensity(t["all"], "js_divergence", s) for s in intensities]
          for name, t in values.items() if "all" in t}
    others = [name for name in js if name != "independent"]
    return {
        "ensemble_size": size, "intensities": intensities, "corruption_mean": "all",
        f"independent_{size}_vs_1": better, "js_divergence": js,
        "js_independent_largest_at_every_intensity": bool(all(
            js["independent"][i] > max(js[o][i] for o in others)
            for i in range(len(intensities)))) if others else None,
    }


def lookup(values: dict, entry: dict) -> tuple[float | None, str]:
    """Our number for a published entry and its name: the same set of functions,
    ensemble size (JS: the whole set), and intensity (0: clean), or the entry's
    corrupted mean (its "corruptions": standard or all types)."""
    metric, intensity = entry["metric"], entry["intensity"]
    size = "all" if metric == "js_divergence" else str(entry.get("ensemble_size"))
    key = (metric_key(metric) if intensity == 0 else mean_key(
        metric, None if intensity == "mean_corrupted" else intensity, entry["corruptions"]))
    return values.get(entry["method"], {}).get(size, {}).get(key), key


def compare_published(result: dict) -> list[dict]:
    """The published numbers next to ours (`published.compare`)."""
    return published.compare(lambda entry: lookup(result["metrics"], entry),
                             result["model"], result["dataset"])


def table(result: dict) -> str:
    """Accuracy, NLL, ECE and Brier of every set of functions, single member (k=1) and
    the largest ensemble, on the clean test set and averaged over the corrupted sets
    (all types, all intensities): deterministic vs Bayesian vs deep ensembles at a
    glance. For a set <method>, k counts samples; for independent+<method>, runs (each
    member all its samples ensembled: MC dropout's or VI's predictive at k=1)."""
    values, largest = result["metrics"], result["max_ensemble_size"]
    corrupted = len(result["intensities"]) > 1
    header = f"{'set of functions':<30}{'k':>3}" + "".join(
        f"{name:>10}" for name in ("acc", "nll", "ece", "brier")) + (
        "".join(f"{'c-' + name:>10}" for name in ("acc", "nll", "ece", "brier"))
        if corrupted else "")
    lines = [header]
    for name, by_size in values.items():
        for k in sorted({1, largest}):
            entry = by_size.get(str(k))
            if entry is None:
                continue
            cells = [entry[metric_key(m)] for m in ("accuracy", "nll", "ece", "brier")]
            if corrupted:
                cells += [entry[mean_key(m, None, "all")]
                          for m in ("accuracy", "nll", "ece", "brier")]
            lines.append(f"{name:<30}{k:>3}" + "".join(f"{v:>10.4f}" for v in cells))
    return "\n".join(lines)


def ood_table(result: dict) -> str:
    """Out-of-distribution detection of every set of functions, single member and the
    largest ensemble: AUROC of each score, FPR at 95% TPR of the maximum probability,
    and the set's JS divergence in and out of distribution."""
    largest = result["max_ensemble_size"]
    names = [("auroc msp", "ood/auroc_max_probability"),
             ("auroc ent", "ood/auroc_entropy"),
             ("auroc mi", "ood/auroc_mutual_information"),
             ("fpr95 msp", "ood/fpr_at_95_tpr_max_probability")]
    lines = []
    for outlier, found in result["ood"].items():
        lines += [""] if lines else []
        lines += [f"{result['dataset']} vs {outlier} (out of distribution)",
                  f"{'set of functions':<30}{'k':>3}" + "".join(f"{n:>11}" for n, _ in names)
                  + f"{'js in':>9}{'js out':>9}"]
        for name, by_size in found["metrics"].items():
            js = found["js_divergence"].get(name)
            for k in sorted({1, largest}):
                entry = by_size.get(str(k))
                if entry is None:
                    continue
                cells = "".join(f"{entry[key]:>11.4f}" if key in entry else f"{'-':>11}"
                                for _, key in names)
                spread = (f"{js['in_distribution']:>9.4f}"
                          f"{js['out_of_distribution']:>9.4f}" if js and k == largest else "")
                lines.append(f"{name:<30}{k:>3}{cells}{spread}")
    return "\n".join(lines)


def figures(result: dict) -> list[dict]:
    """What to draw (for `plotting.line_panels`): accuracy and Brier vs intensity for
    1-, 2-, 5- and M-member ensembles; JS vs intensity; accuracy, NLL and Brier vs
    ensemble size on the clean test set. Corrupted points: the mean over all types."""
    values, intensities = result["metrics"], result["intensities"]
    setting = f"{result['model']} on {result['dataset']}"
    largest = result["max_ensemble_size"]
    sizes = sorted({s for s in FIGURE_SIZES if s <= largest} | {largest})

    def curve(table, metric):
        return intensities, [at_intensity(table, metric, s) for s in intensities]

    shift_panels = [(f"{k}-member ensembles" if k > 1 else "single member", metric,
                     {name: curve(t[str(k)], metric) for name, t in values.items()
                      if str(k) in t}) for metric in ("accuracy", "brier") for k in sizes]
    js = {name: curve(t["all"], "js_divergence") for name, t in values.items()
          if "all" in t}

    def versus_size(table, metric):
        sizes = [k for k in table if k != "all"]
        return [int(k) for k in sizes], [table[k][metric_key(metric)] for k in sizes]

    size_panels = [(metric, metric, {name: versus_size(t, metric)
                                     for name, t in values.items()})
                   for metric in ("accuracy", "nll", "brier")]
    return [
        {"file": "shift_accuracy_brier.png", "panels": shift_panels,
         "xlabel": "corruption intensity", "columns": len(sizes),
         "title": f"Under dataset shift ({setting}; mean over all corruption types)"},
        {"file": "shift_js_divergence.png", "xlabel": "corruption intensity",
         "panels": [("Jensen-Shannon divergence of each set of functions",
                     "JS divergence", js)], "columns": 1, "title": setting},
        {"file": "ensemble_size.png", "panels": size_panels, "xlabel": "ensemble size",
         "columns": 3, "title": f"Clean test set ({setting})"},
    ]
