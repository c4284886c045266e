"""Ensembles under dataset shift (paper Sec. 5, Fig. 8-9): the sets of functions of
the study gathered on every evaluation set, scored by `ensemble.score`, and named and
averaged over corruptions as uncertainty-baselines names them.

Evaluation sets: the clean test set (intensity 0) and corrupted test sets
`<type>_<intensity>` (TFDS's CIFAR-10-C, or the locally generated sets); the metrics
are named as uncertainty-baselines names them (`core.names`).

Sets of functions from the model's own randomness (`catalog.MODEL_METHODS`) are drawn
here, `Options.num_posterior_samples` per run: for runs trained with
--method=variational the set "variational" (each run's posterior predictive; the
runs' own functions, "independent", are their posterior means, and
"independent+variational" is the ensemble of the runs' posterior predictives) is
always scored; "mc_dropout" (passes with each run's dropout on) when asked in
`Options.methods`.

Every function of a set is predicted under one batch-norm policy: statistics
re-estimated on the runs' training data for models with batch norm (by default), the
checkpoints' own otherwise. Predictions are cached in the runs (`RunPredictions`)."""

import collections
import concurrent.futures
import dataclasses
import os
import time

import numpy as np
from absl import logging

from uncertainty import datasets, models
from uncertainty.core import ensemble, metrics, names, ood
from uncertainty.datasets import Dataset
from uncertainty.infra import files, progress
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, layout
from uncertainty.runs.predictions import RunPredictions
from uncertainty.samplers import catalog, draw, subspace
from uncertainty.train import recipes

# Evaluation sets scored at once (`study`): each holds every function's logits.
SCORING_THREADS = 2


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
    by_identity = {layout.identity(run): run for run in runs}
    seen = {}
    for path in paths:
        result = files.read_json(path, fix=f"run baselines/subspace.py again with "
                                           f"--output_dir={os.path.dirname(path)}")
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
        asked = [m for m in catalog.PAPER_METHODS if m in samples]
    if training_method == "variational" and "variational" not in asked:
        asked = list(asked) + ["variational"]
    unknown = sorted(set(asked) - set(catalog.METHODS))
    if unknown:
        raise UserError(f"unknown --methods {', '.join(unknown)}; choose from "
                        f"{', '.join(catalog.METHODS)}")
    for method in [m for m in asked if m not in catalog.MODEL_METHODS]:
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
        self.trajectory_epochs = checkpoints.epochs(runs[0])[-size:]
        self.records = {m: {r: records[m][r][:n] for r in runs}
                        for m, n in num_samples.items()}
        self._spaces = {}

    def _space(self, run: str, num_checkpoints: int) -> subspace.Subspace:
        if (run, num_checkpoints) not in self._spaces:
            self._spaces[run, num_checkpoints] = subspace.fit(run, num_checkpoints)
        return self._spaces[run, num_checkpoints]

    def _getters(self) -> list[tuple[str, int, object]]:
        """(set, run index, get(data) -> logits on its test split) of every function:
        the runs' solutions ("independent"), the first run's last checkpoints
        ("trajectory") and each method's samples around each run."""
        first = self.predictors[self.runs[0]]
        found = [("independent", r, lambda d, p=p: p.checkpoint(d, "test", bn_data=self.bn_data))
                 for r, p in enumerate(self.predictors.values())]
        found += [("trajectory", 0, lambda d, e=e: first.checkpoint(
            d, "test", e, bn_data=self.bn_data)) for e in self.trajectory_epochs]
        for method, per_run in self.records.items():
            for r, run in enumerate(self.runs):
                found += [(method, r, lambda d, run=run, s=s: draw.sample_logits(
                    self.predictors[run], self._space(run, len(s["params"]["epochs"])), s,
                    d, "test", self.bn_data)) for s in per_run[run]]
        return found

    def predict_all(self, sets: list[Dataset]) -> None:
        """Predicts (and caches) every function on every data set, one function at a
        time: a function's weights are made, set and their batch-norm statistics
        re-estimated once for all the sets (`RunPredictions` keeps the model's state)."""
        getters = self._getters()
        meter = progress.Progress(len(getters), "predicting every function", "function")
        for _, _, get in getters:
            for data in sets:
                get(data)
            meter.update()
        meter.close()
        for data in sets:  # one line per set, not one per prediction
            counts = sum((p.counts_by_set[data.name] for p in self.predictors.values()),
                         collections.Counter())
            logging.info("%s: %d functions predicted, %d read from their caches", data.name,
                         counts["computed"], counts["from_cache"])

    def logits(self, data: Dataset) -> tuple:
        """(independent [M, N, C], trajectory [K, N, C], {method: [[S, N, C] per run]})
        logits on `data`'s test split."""
        found = {}
        for name, r, get in self._getters():
            found.setdefault(name, {}).setdefault(r, []).append(get(data))
        independent = np.stack([z for per_run in found.pop("independent").values()
                                for z in per_run])
        path = np.stack(found.pop("trajectory")[0])
        samples = {method: [np.stack(per_run[r]) for r in range(len(self.runs))]
                   for method, per_run in found.items()}
        return independent, path, samples

    def counts(self) -> dict[str, int]:
        return {k: sum(p.counts[k] for p in self.predictors.values())
                for k in ("computed", "from_cache")}


def study(runs: list[str], data: Dataset, options: Options, subspace_dir: str | None,
          load) -> dict:
    """The whole study on the runs' clean `data` and the corrupted sets `load(name)`
    returns; subspace samples from `subspace_dir`. Returns ensemble.json's content and,
    under "per_example", the arrays of per_example.npz: `ensemble.score`'s per-example
    values as "<intensity>/<key>" (a corrupted intensity's averaged over the types, per
    test example) and `detect_ood`'s as "ood/<dataset>/<key>".
    Errors in the options or the samples, and a set that cannot be loaded, are raised
    before anything is predicted; every function is then predicted on every set
    (`Functions.predict_all`) before the sets are scored."""
    start = time.time()
    model = layout.read_config(runs[0])["model"]
    sets = datasets.shift_sets(data.name, options.corruptions, options.intensities)
    kinds = list(dict.fromkeys(kind for _, kind, _ in sets[1:]))
    intensities = sorted({s for s, _, _ in sets[1:]})
    samples = find_samples(subspace_dir, runs, data.name)
    methods = choose_methods(samples, runs, options.methods, layout.method(runs[0]))
    size = min(options.max_ensemble_size or len(runs), len(runs))
    bn_data = data if options.reestimate_bn and models.uses_batchnorm(model) else None
    for method in [m for m in methods if m in catalog.MODEL_METHODS]:
        spec = catalog.SamplerSpec(method, scale=1.0 if method == "variational" else
                                    options.mc_dropout_rate or 0.0)
        samples[method] = {run: draw.draw_model_samples(
            run, spec, options.num_posterior_samples, options.seed, bn_data)[1]
            for run in runs}
    num_samples = {m: min(len(samples[m][r]) for r in runs) for m in methods}
    functions = Functions(runs, size, samples, num_samples, bn_data, options.batch_size)
    outliers = datasets.OUT_OF_DISTRIBUTION.get(data.name, ()) if options.ood else ()
    loaded = {data.name: data} | {name: load(name) for _, _, name in sets[1:]}
    outliers = {outlier: load(outlier) for outlier in outliers}
    functions.predict_all([*loaded.values(), *outliers.values()])
    values = {}  # {set of functions: {size: {metric name: value}}}; JS under "all"
    examples, types_seen = {}, {}  # per-example sums over the types of each intensity
    meter = progress.Progress(len(sets), "ensembles on the test sets", "set")

    def add(intensity, kind, scored):  # in the sets' order: the sums are the same
        tables, js, found = scored.result()
        types_seen[intensity] = types_seen.get(intensity, 0) + 1
        for key, v in found.items():
            examples[f"{intensity}/{key}"] = examples.get(f"{intensity}/{key}", 0) + v
        for set_name, table in tables.items():
            for k, scores in table.items():
                values.setdefault(set_name, {}).setdefault(str(k), {}).update(
                    {names.metric_key(m, kind, intensity): v for m, v in scores.items()})
        for set_name, divergence in js.items():
            values[set_name].setdefault("all", {})[
                names.metric_key("js_divergence", kind, intensity)] = divergence
        meter.update()

    # Sets, and out-of-distribution detection, are scored on SCORING_THREADS threads
    # (numpy releases the GIL) while this one reads the next sets' logits; at most that
    # many sets wait to be added, in order, after the detection's per-example values
    # (the outliers' logits are read with the clean set's and held until then).
    scoring, detecting, found_ood = collections.deque(), {}, {}

    def add_next():
        for name, future in detecting.items():
            found_ood[name], found = future.result()
            examples.update(found)
        detecting.clear()
        add(*scoring.popleft())

    with concurrent.futures.ThreadPoolExecutor(SCORING_THREADS) as pool:
        for i, (intensity, kind, name) in enumerate(sets):
            shifted = loaded[name]
            logging.info("scoring %s (%d/%d)", name, i + 1, len(sets))
            logits = functions.logits(shifted)
            if intensity == 0:  # while the clean set's logits are at hand
                detecting = {outlier.name: pool.submit(
                    detect_ood, logits, functions.logits(outlier), outlier, size, options)
                    for outlier in outliers.values()}
            scoring.append((intensity, kind, pool.submit(
                ensemble.score, *logits, shifted.labels("test"), size,
                options.max_subsets, options.seed)))
            if len(scoring) > SCORING_THREADS:
                add_next()
        while scoring:
            add_next()
    meter.close()
    for key in [k for k in examples if not k.startswith("ood/")]:
        examples[key] = examples[key] / types_seen[int(key.split("/")[0])]
    for entry in (e for table in values.values() for e in table.values()):
        for metric in names.METRICS:
            if names.metric_key(metric) in entry:
                entry.update(names.aggregate_corrupted(entry, metric, kinds, intensities))
    result = {
        "runs": runs, "model": model, "method": layout.method(runs[0]),
        "dataset": data.name, "corruptions": kinds,
        "intensities": [0] + intensities, "evaluation_sets": [n for _, _, n in sets],
        "corruption_means": {mean: {"types": types, "names": [
            names.mean_key("<metric>", "<intensity>", mean),
            names.mean_key("<metric>", None, mean)]}
            for mean, types in names.mean_types(kinds).items()},
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
    result["per_example"] = examples
    return result


def detect_ood(inside: tuple, outside: tuple, outlier: Dataset, size: int,
               options: Options) -> tuple[dict, dict]:
    """Every set of functions detecting `outlier`'s test examples among the clean test
    examples, their logits on them `outside` and `inside` (`Functions.logits`), by
    `ensemble.score_ood`; and the sets' JS divergence on both. Returns that and the
    independent runs' per-example values as {"ood/<dataset>/<key>": array}: their JS
    divergence in and out of distribution, and uncertainty-baselines' score
    (`ood.UB_SCORE`) of each run alone and of each `size`-subset's ensemble."""
    logging.info("out-of-distribution detection against %s", outlier.name)
    examples = {}
    tables, js_out = ensemble.score_ood(inside, outside, outlier.name,
                                        size, options.max_subsets, options.seed)
    js_in = ensemble.js_divergences(*inside)
    prefix = f"ood/{outlier.name}/independent"
    for where, logits in (("in", inside[0]), ("out", outside[0])):
        examples[f"{prefix}/js_{where}"] = metrics.mutual_information(logits)[None]
        examples[f"{prefix}/1/score_{where}"] = np.stack(
            [ood.scores(z)[ood.UB_SCORE] for z in logits])
        examples[f"{prefix}/{size}/score_{where}"] = np.stack(
            [ood.scores(logits[list(s)])[ood.UB_SCORE] for s in ensemble.subsets(
                len(logits), size, options.max_subsets, options.seed)])
    return {"dataset": outlier.name, "num_examples": outlier.num_examples("test"),
            "metrics": {name: {str(k): v for k, v in table.items()}
                        for name, table in tables.items()},
            "js_divergence": {name: {"in_distribution": js_in[name],
                                     "out_of_distribution": js_out[name]}
                              for name in js_out}}, examples


def summarize_ood(found: dict, size: int) -> dict:
    """The paper's point off distribution: independent runs disagree more on
    out-of-distribution inputs than on their own test set, and more than the other
    sets; their `size`-ensemble's AUROC (uncertainty-baselines') against a single
    model's."""
    js = found["js_divergence"]
    independent = found["metrics"]["independent"]
    auroc = names.ood_key(found["dataset"], "auroc")
    return {
        "js_higher_out_of_distribution": {name: bool(v["out_of_distribution"] >
                                                     v["in_distribution"])
                                          for name, v in js.items()},
        "js_independent_largest_out_of_distribution": bool(all(
            js["independent"]["out_of_distribution"] > v["out_of_distribution"]
            for name, v in js.items() if name != "independent")),
        "auroc": {"1": independent["1"][auroc], str(size): independent[str(size)][auroc]},
    }


def summarize(values: dict, size: int, intensities: list[int]) -> dict:
    """The paper's claims, checked (corrupted intensities: the mean over all types):
    the `size`-member ensemble beats the mean single member in accuracy, NLL and Brier
    at every intensity; independent runs have the largest JS divergence at every
    intensity."""
    single, full = values["independent"]["1"], values["independent"][str(size)]
    better = {}
    for metric, sign in (("accuracy", 1), ("nll", -1), ("brier", -1)):
        gains = [sign * (names.at_intensity(full, metric, s) -
                         names.at_intensity(single, metric, s)) for s in intensities]
        better[metric] = {"gain_by_intensity": gains, "all_better": bool(min(gains) > 0)}
    js = {name: [names.at_intensity(t["all"], "js_divergence", s) for s in intensities]
          for name, t in values.items() if "all" in t}
    others = [name for name in js if name != "independent"]
    return {
        "ensemble_size": size, "intensities": intensities, "corruption_mean": "all",
        f"independent_{size}_vs_1": better, "js_divergence": js,
        "js_independent_largest_at_every_intensity": bool(all(
            js["independent"][i] > max(js[o][i] for o in others)
            for i in range(len(intensities)))) if others else None,
    }

