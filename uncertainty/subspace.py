"""Functions sampled from subspaces around one solution (paper Sec. 4).

`fit(run_dir, num_checkpoints)` collects a run's final weights (the solution theta) and
its last K checkpoints; `sample(subspace, spec, stream)` draws one flat weight vector:

  random              theta + t * v / |v|, v ~ N(0, I), t = the scale
  dropout             theta * mask / (1 - p), mask ~ Bernoulli(1 - p) per weight, p = scale
  diagonal_gaussian   N(mean, (scale * std)^2) per weight over the K checkpoints
  low_rank_gaussian   mean + sum_i z_i a_i over the top-`rank` PCA axes a_i of the K
                      checkpoints, z ~ N(0, diag(w^2)) in the rank-k space with w = scale
                      (unit-norm axes, the notebook) or scale times the checkpoints' std
                      along each axis (SWAG)
  weight_average      the mean of the K checkpoints (SWA-like); deterministic
  variational         theta + scale * std * eps, eps ~ N(0, I): a draw from a
                      variational run's posterior (mean theta, std per weight; scale 1
                      = the posterior itself, `uncertainty.variational`)
  mc_dropout          not a weight vector: the network with its own dropout layers
                      active on the activations at inference, rate = scale (0: the
                      run's training rate), one pass = one function (Gal & Ghahramani
                      2016). Not to be confused with "dropout" above, which drops
                      weights of the solution (the paper's sampler).

The last two are the model's own randomness ("MODEL_METHODS"): they use only the last
checkpoint, and need a variational run (variational) or a deterministic one with
dropout layers (mc_dropout).

A `SamplerSpec` is everything one method's sampling needs (scale and how it is drawn,
rank, acceptance rule); `PRESETS` hold the paper's two sets. Every sample's randomness
(its scale, its direction or mask) comes from its own stream of `seeding`, built from
the user's seed, the base run, the method and the sample's index, so samples around
different runs never share a perturbation. The Gaussians are TensorFlow Probability
distributions.
"""

import dataclasses
import functools
import os

import numpy as np
import tensorflow_probability as tfp
from absl import logging

from uncertainty import (diversity, files, metrics, models, progress, seeding, similarity,
                         trajectory)
from uncertainty.datasets import Dataset
from uncertainty.errors import UserError
from uncertainty.predictions import RunPredictions

PAPER_METHODS = ("random", "dropout", "diagonal_gaussian", "low_rank_gaussian",
                 "weight_average")
MODEL_METHODS = ("variational", "mc_dropout")
METHODS = PAPER_METHODS + MODEL_METHODS
LOW_RANK_SCALINGS = ("unit", "swag")
NUM_CHECKPOINTS = 10  # the last 10 epoch checkpoints give the moments (the paper's)
SELECTION_SPLIT = "validation"  # where the acceptance rule looks; never the reported split


@dataclasses.dataclass(frozen=True)
class SamplerSpec:
    """How one method draws its samples.

    scale: the method's scale (t, p or s), or its maximum when `uniform` (value x U(0,1)
    per sample); rank, low_rank_scaling: the low-rank Gaussian's; accept_threshold:
    redraw a sample whose validation accuracy is below it, up to `accept_tries` times
    (the notebook's rule for random samples)."""

    method: str
    scale: float = 0.0
    uniform: bool = False
    rank: int = 5
    low_rank_scaling: str = "unit"
    accept_threshold: float | None = None
    accept_tries: int = 5

    def __post_init__(self):
        if self.method not in METHODS:
            raise UserError(f"unknown subspace method {self.method!r}; choose one of "
                            f"{', '.join(METHODS)}")
        if self.scale < 0:
            flag = "mc_dropout_rate" if self.method == "mc_dropout" else f"{self.method}_scale"
            raise UserError(f"--{flag} must be >= 0, got {self.scale}")
        if self.method == "dropout" and self.scale >= 1:
            raise UserError(f"--dropout_scale must be below 1, got {self.scale}")
        if self.method == "mc_dropout" and self.scale >= 1:
            raise UserError(f"--mc_dropout_rate must be below 1, got {self.scale}")
        if self.low_rank_scaling not in LOW_RANK_SCALINGS:
            raise UserError(f"unknown low-rank scaling {self.low_rank_scaling!r}; choose "
                            f"one of {', '.join(LOW_RANK_SCALINGS)}")
        if self.accept_threshold is not None and not 0 <= self.accept_threshold <= 1:
            raise UserError(f"--accept_threshold is an accuracy in [0, 1], got "
                            f"{self.accept_threshold}")
        if self.rank < 1 or self.accept_tries < 1:
            raise UserError("--rank and --accept_tries must be positive")

    def draw_scale(self, rng: np.random.Generator) -> float:
        return float(self.scale * rng.uniform()) if self.uniform else float(self.scale)


def _presets(**scales) -> dict[str, SamplerSpec]:
    defaults = {"variational": (1.0, False)}  # mc_dropout 0: the run's training rate
    return {m: SamplerSpec(m, *scales.get(m, defaults.get(m, (0.0, False))))
            for m in METHODS}


# "ensemble": the paper's scales for ensembling; "plane": widened to cover the accuracy
# range of the diversity-accuracy plane (random 70 U, diagonal 10 U, low-rank s = 6).
PRESETS = {
    "ensemble": _presets(random=(10.0, True), dropout=(0.1, True),
                         diagonal_gaussian=(1.0, False), low_rank_gaussian=(1.0, False)),
    "plane": _presets(random=(70.0, True), dropout=(0.1, True),
                      diagonal_gaussian=(10.0, True), low_rank_gaussian=(6.0, False)),
}


@dataclasses.dataclass(frozen=True)
class Subspace:
    """A run's solution and the last K checkpoints that give the moments."""

    solution: np.ndarray  # [D], the final checkpoint
    checkpoints: np.ndarray  # [K, D]
    epochs: tuple[int, ...]
    run: str = ""  # the base run's identity (`trajectory.identity`): seeds its streams
    digests: tuple[str, ...] = ()  # the checkpoints' content, for cache keys
    model: str = ""
    training_method: str = "deterministic"  # or variational
    posterior_std: np.ndarray | None = None  # [D], a variational run's last epoch
    dropout_rate: float = 0.0  # the run's training dropout rate

    @functools.cached_property
    def mean(self) -> np.ndarray:
        return self.checkpoints.mean(axis=0)

    @functools.cached_property
    def std(self) -> np.ndarray:
        return self.checkpoints.std(axis=0)

    @functools.cached_property
    def _svd(self) -> tuple[np.ndarray, np.ndarray]:
        _, singular, axes = np.linalg.svd(self.checkpoints - self.mean, full_matrices=False)
        return singular, axes

    def pca(self, rank: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`rank` principal axes [rank, D] (unit norm) of the centred checkpoints
        and the checkpoints' standard deviation along each (singular value/sqrt(K-1))."""
        k = len(self.checkpoints)
        if not 1 <= rank < k:
            raise UserError(f"low-rank Gaussian rank must be in 1..{k - 1} for {k} "
                            f"checkpoints, got {rank}")
        singular, axes = self._svd
        return axes[:rank], singular[:rank] / np.sqrt(k - 1)


def fit(run_dir: str, num_checkpoints: int = NUM_CHECKPOINTS) -> Subspace:
    """The subspace of a run from its last `num_checkpoints` epoch checkpoints."""
    epochs = trajectory.epochs(run_dir)
    if len(epochs) < num_checkpoints:
        raise UserError(f"{run_dir} has {len(epochs)} epoch checkpoints but the subspace "
                        f"needs the last {num_checkpoints}; train longer or lower "
                        f"--num_checkpoints")
    last = tuple(epochs[-num_checkpoints:])
    checkpoints = np.stack([trajectory.load_weights(run_dir, e) for e in last])
    config = trajectory.read_config(run_dir)
    method = trajectory.method(run_dir)
    return Subspace(solution=checkpoints[-1], checkpoints=checkpoints, epochs=last,
                    run=trajectory.identity(run_dir),
                    digests=tuple(trajectory.checkpoint_digest(run_dir, e) for e in last),
                    model=config["model"], training_method=method,
                    posterior_std=(trajectory.load_posterior(run_dir, last[-1])[1]
                                   if method == "variational" else None),
                    dropout_rate=config.get("dropout_rate", 0.0))


def resolve(space: Subspace, spec: SamplerSpec, run: str = "the base run") -> SamplerSpec:
    """`spec` for sampling around `space`: refuses a model method the run cannot give
    (variational samples need a variational run; MC dropout a deterministic run with
    dropout layers) and sets MC dropout's rate 0 to the run's training rate."""
    if spec.method == "variational" and space.training_method != "variational":
        raise UserError(f"variational samples need a variational run, but {run} is "
                        f"{space.training_method}; train one with --method=variational "
                        f"or leave variational out of --methods")
    if spec.method == "mc_dropout":
        if space.training_method != "deterministic":
            raise UserError(f"mc_dropout evaluates a deterministic network's dropout, but "
                            f"{run} is {space.training_method}; use the variational "
                            f"method for it, or a deterministic run")
        if not models.has_dropout(space.model):
            raise UserError(f"{space.model} has no dropout layers for mc_dropout; leave "
                            f"mc_dropout out of --methods")
        rate = spec.scale or space.dropout_rate
        if not rate:
            raise UserError(f"{run} was trained without dropout; pass --mc_dropout_rate "
                            f"to evaluate MC dropout at a rate of your choice")
        spec = dataclasses.replace(spec, scale=rate)
    return spec


@dataclasses.dataclass(frozen=True)
class LowRankGaussian:
    """mean + z @ axes with z ~ `latent`, a TFP MultivariateNormalDiag over the rank-k
    coordinates: a proper distribution (finite `log_prob`) in the subspace, mapped into
    weight space by the orthonormal `axes` [k, D]."""

    mean: np.ndarray
    axes: np.ndarray
    latent: tfp.distributions.MultivariateNormalDiag

    def sample(self, seed) -> np.ndarray:
        z = self.latent.sample(seed=seed).numpy().astype(np.float64)
        return (self.mean + z @ self.axes).astype(np.float32)

    def coordinates(self, theta: np.ndarray) -> np.ndarray:
        """The rank-k coordinates z of a weight vector in the subspace."""
        return (np.asarray(theta, np.float64) - self.mean) @ self.axes.T

    def log_prob(self, z) -> np.ndarray:
        return self.latent.log_prob(np.asarray(z, np.float64)).numpy()


def low_rank_gaussian(subspace: Subspace, rank: int, scale: float,
                      scaling: str = "unit") -> LowRankGaussian:
    """The low-rank Gaussian of `subspace` at `scale` (see the module docstring)."""
    axes, stds = subspace.pca(rank)
    widths = scale * (stds if scaling == "swag" else np.ones(rank))
    latent = tfp.distributions.MultivariateNormalDiag(
        loc=np.zeros(rank), scale_diag=np.asarray(widths, np.float64))
    return LowRankGaussian(mean=subspace.mean.astype(np.float64),
                           axes=axes.astype(np.float64), latent=latent)


def sample(subspace: Subspace, spec: SamplerSpec, scale: float, rng: np.random.Generator
           ) -> np.ndarray:
    """One flat weight vector of `spec.method` at `scale`, all randomness from `rng`."""
    tfp_seed = rng.integers(0, 2 ** 31 - 1, size=2).astype(np.int32)
    if spec.method == "random":
        direction = rng.standard_normal(subspace.solution.shape)
        return (subspace.solution + scale * direction / np.linalg.norm(direction)).astype(
            np.float32)
    if spec.method == "dropout":
        keep = rng.random(subspace.solution.shape) >= scale
        return (subspace.solution * keep / (1.0 - scale)).astype(np.float32)
    if spec.method == "diagonal_gaussian":
        distribution = tfp.distributions.MultivariateNormalDiag(
            loc=subspace.mean, scale_diag=scale * subspace.std)
        return distribution.sample(seed=tfp_seed).numpy()
    if spec.method == "low_rank_gaussian":
        return low_rank_gaussian(subspace, spec.rank, scale, spec.low_rank_scaling).sample(
            tfp_seed)
    if spec.method == "variational":
        noise = rng.standard_normal(subspace.solution.shape)
        return (subspace.solution + scale * subspace.posterior_std * noise).astype(
            np.float32)
    if spec.method == "mc_dropout":
        raise ValueError("an MC-dropout sample is a dropout pass, not a weight vector")
    return subspace.mean.astype(np.float32)  # weight_average


def _streams(seed: int, subspace: Subspace, method: str, index: int, attempt: int):
    """The (scale, sample) generators of one draw: its own streams of the user's seed,
    the base run, the method, the sample's index and the attempt."""
    parts = (subspace.run, method, index, attempt)
    return (seeding.rng(seed, "subspace_scale", *parts),
            seeding.rng(seed, "subspace_sample", *parts))


def regenerate(subspace: Subspace, params: dict) -> np.ndarray:
    """The weight vector of a sample recorded by `sample_functions` (its "params"), e.g.
    to predict it on other data."""
    if params["method"] == "mc_dropout":
        raise UserError("an MC-dropout sample is a dropout pass, not a weight vector; "
                        "get its logits with subspace.sample_logits")
    if _epochs(subspace, params["method"]) != params["epochs"]:
        if params["method"] in MODEL_METHODS:
            raise UserError(f"the sample was drawn from epoch {params['epochs'][-1]}, the "
                            f"run's last is now {subspace.epochs[-1]}; draw it again")
        raise UserError(f"the sample was drawn from epochs {params['epochs']}, this "
                        f"subspace has {list(subspace.epochs)}; fit it with the same "
                        f"--num_checkpoints")
    if subspace.run != params["run"]:
        raise UserError("the sample was drawn around another run than this subspace's; "
                        "fit the subspace of the sample's base run")
    spec = SamplerSpec(params["method"], rank=params.get("rank", 5),
                       low_rank_scaling=params.get("low_rank_scaling", "unit"))
    _, rng = _streams(params["seed"], subspace, spec.method, params["index"],
                      params["attempt"])
    return sample(subspace, spec, params["scale"], rng)


def _epochs(subspace: Subspace, method: str) -> list[int]:
    """The checkpoints a method's samples come from: the model methods' the last."""
    return list(subspace.epochs[-1:] if method in MODEL_METHODS else subspace.epochs)


def sample_logits(predictor: RunPredictions, subspace: Subspace, record: dict,
                  data: Dataset, split: str, bn_data: Dataset | None = None) -> np.ndarray:
    """Logits on `split` of the sample `record` (from `draw` or `sample_functions`):
    cached, and regenerated from its parameters only when not cached yet. Batch-norm
    statistics are re-estimated on `bn_data` when given."""
    params = record["params"]
    digests = subspace.digests[-len(params["epochs"]):]
    identity = {"params": params, "checkpoints": list(digests)}
    if params["method"] == "mc_dropout":
        pass_seed = seeding.integer(params["seed"], "mc_dropout", params["run"],
                                    params["index"], params["attempt"])
        return predictor.mc_dropout(data, split, record["key"], params["scale"],
                                    pass_seed, identity, params["epochs"][-1], bn_data)
    return predictor.vector(data, split, record["key"],
                            lambda: regenerate(subspace, params), identity,
                            bn_data=bn_data)


def _record(subspace: Subspace, spec: SamplerSpec, seed: int, index: int, attempt: int,
            bn_data: Dataset | None) -> dict:
    """The record of one draw: its scale, parameters (all its randomness derives from
    them) and cache key."""
    scale_rng, _ = _streams(seed, subspace, spec.method, index, attempt)
    params = {"method": spec.method, "scale": spec.draw_scale(scale_rng), "seed": seed,
              "run": subspace.run, "index": index, "attempt": attempt,
              "epochs": _epochs(subspace, spec.method),
              "batchnorm_reestimated": bn_data is not None}
    if spec.method == "low_rank_gaussian":
        params.update(rank=spec.rank, low_rank_scaling=spec.low_rank_scaling)
    return {"method": spec.method, "index": index, "tries": attempt + 1,
            "scale": params["scale"], "params": params,
            "key": f"subspace/{spec.method}/" + files.digest(params)[:16]}


def draw(subspace: Subspace, spec: SamplerSpec, num_samples: int, seed: int,
         bn_data: Dataset | None = None, run: str = "the base run") -> list[dict]:
    """The records of `num_samples` draws of `spec` (resolved for `subspace`, whose
    run `run` names in errors), without the acceptance rule; their logits come from
    `sample_logits`."""
    spec = resolve(subspace, spec, run)
    count = 1 if spec.method == "weight_average" else num_samples
    return [_record(subspace, spec, seed, i, 0, bn_data) for i in range(count)]


def draw_model_samples(run_dir: str, spec: SamplerSpec, num_samples: int, seed: int,
                       bn_data: Dataset | None = None) -> tuple[Subspace, list[dict]]:
    """A model method's (`MODEL_METHODS`) records around a run: its last checkpoint's
    subspace and `draw`'s records (posterior draws, or MC-dropout passes)."""
    space = fit(run_dir, 1)
    return space, draw(space, spec, num_samples, seed, bn_data, run_dir)


def sample_functions(predictor: RunPredictions, subspace: Subspace, spec: SamplerSpec,
                     num_samples: int, seed: int, data: Dataset, split: str,
                     base_logits: np.ndarray, extra_splits: tuple[str, ...] = (),
                     bn_data: Dataset | None = None) -> list[dict]:
    """Draws `num_samples` functions of `spec` around the predictor's run and returns,
    for each, its scale, cache key, parameters and place on the diversity-accuracy
    plane on `split` (relative to `base_logits`); `extra_splits` are predicted (and
    cached) too. With `spec.accept_threshold`, a draw whose accuracy on the validation
    split is below it is redrawn, up to `spec.accept_tries` times, and dropped if none
    passes (the notebook's rule); `split` must then be another split, so that no
    reported number was used to select. `bn_data` re-estimates batch-norm statistics
    for every sample.
    """
    if spec.accept_threshold is not None and split == SELECTION_SPLIT:
        raise UserError(f"the acceptance rule selects samples on the {SELECTION_SPLIT} "
                        f"split; report them on another (--split=test)")
    labels = data.labels(split)
    spec = resolve(subspace, spec, predictor.run_dir)
    draws = 1 if spec.method == "weight_average" else num_samples
    tries = spec.accept_tries if spec.accept_threshold is not None else 1
    results = []
    meter = progress.Progress(draws, f"{spec.method} samples", "sample")
    for i in range(draws):
        for attempt in range(tries):
            record = _record(subspace, spec, seed, i, attempt, bn_data)

            def logits_on(on_split, record=record):
                return sample_logits(predictor, subspace, record, data, on_split, bn_data)

            if spec.accept_threshold is not None:
                selection = metrics.accuracy(logits_on(SELECTION_SPLIT),
                                             data.labels(SELECTION_SPLIT))
                if selection < spec.accept_threshold:
                    logging.info("%s %d/%d: scale %.4g rejected (%s accuracy %.3f < %.3f, "
                                 "try %d)", spec.method, i + 1, draws, record["scale"],
                                 SELECTION_SPLIT, selection, spec.accept_threshold,
                                 attempt + 1)
                    continue
                record["selection_accuracy"] = selection
            for extra in extra_splits:
                logits_on(extra)
            results.append({**record, **diversity.point(logits_on(split), base_logits,
                                                        labels)})
            logging.info("%s %d/%d: scale %.4g, accuracy %.4f, normalised diversity %.3f",
                         spec.method, i + 1, draws, record["scale"],
                         results[-1]["accuracy"], results[-1]["normalized_diversity"])
            break
        meter.update()
    meter.close()
    return results


def plane(base_run: str, other_runs: list[str], specs: list[SamplerSpec], data: Dataset,
          split: str, num_samples: int, seed: int, num_checkpoints: int = NUM_CHECKPOINTS,
          extra_splits: tuple[str, ...] = (), reestimate_bn: bool = True,
          batch_size: int = 500) -> dict:
    """The diversity-accuracy plane around `base_run` (paper Fig. 5): samples of every
    spec, the independent optima of `other_runs` and the base, all on `split` and all
    under one batch-norm policy (re-estimated on `data`'s training split for models
    with batch norm when `reestimate_bn`, else the checkpoints' statistics); the base
    is also reported under the other policy. Returns a JSON-ready dict."""
    config = trajectory.read_config(base_run)
    bn_data = data if reestimate_bn and models.uses_batchnorm(config["model"]) else None
    space = fit(base_run, num_checkpoints)
    specs = [resolve(space, spec, base_run) for spec in specs]  # refuse before predicting
    predictor = RunPredictions(base_run, batch_size=batch_size)
    labels = data.labels(split)
    base_logits = predictor.checkpoint(data, split, bn_data=bn_data)
    base = {"run": base_run, **diversity.point(base_logits, base_logits, labels)}
    if bn_data is not None:
        stored = predictor.checkpoint(data, split)
        base["checkpoint_statistics"] = {
            "accuracy": metrics.accuracy(stored, labels),
            "negative_log_likelihood": metrics.nll(stored, labels)}
    base["negative_log_likelihood"] = metrics.nll(base_logits, labels)
    independent = [{"run": run, **diversity.point(
        RunPredictions(run, batch_size).checkpoint(data, split, bn_data=bn_data),
        base_logits, labels)} for run in other_runs]
    samples, js = [], {}
    group = 1 + len(other_runs)  # JS of sets as large as the independent one
    for spec in specs:
        drawn = sample_functions(predictor, space, spec, num_samples, seed, data, split,
                                 base_logits, extra_splits, bn_data)
        samples += drawn
        if drawn:
            js[spec.method] = metrics.grouped_js_divergence(np.stack([
                sample_logits(predictor, space, r, data, split, bn_data) for r in drawn]),
                group if other_runs else len(drawn))
    if other_runs:
        js["independent"] = metrics.js_divergence(np.stack([base_logits] + [
            RunPredictions(run, batch_size).checkpoint(data, split, bn_data=bn_data)
            for run in other_runs]))
    accuracies = [p["accuracy"] for p in samples + independent + [base]]
    return {
        "base_run": base_run, "model": config["model"],
        "method": trajectory.method(base_run), "dataset": data.name,
        "num_classes": data.num_classes, "seed": seed,
        "splits": {"reported": split, "selection": SELECTION_SPLIT if any(
            s.accept_threshold is not None for s in specs) else None,
            "also_predicted": list(extra_splits)},
        "specs": {s.method: dataclasses.asdict(s) for s in specs},
        "subspace_epochs": list(space.epochs),
        "batchnorm": "reestimated" if bn_data is not None else "checkpoint",
        "base": base, "independent": independent, "samples": samples,
        "curves": diversity.curves(base["accuracy"], data.num_classes,
                                   min(accuracies + [1.0 / data.num_classes])),
        "summary": summarize(samples, independent, base, js),
    }


def summarize(samples: list[dict], independent: list[dict], base: dict,
              js: dict | None = None, band: float = 0.02) -> dict:
    """The paper's comparison: at accuracies within `band` of the independent optima,
    are the subspace samples less diverse than the optima's mean? With `js` ({method
    or "independent": JS divergence on the split}), each method also gets its samples'
    `js_divergence` and, with independent runs, the base and optima's
    `independent_js_divergence`; the samples' JS is the mean over groups as large as
    the base and optima together (all samples at once without optima)."""
    js = js or {}
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
        if method in js:
            entry["js_divergence"] = js[method]
        if "independent" in js:
            entry["independent_js_divergence"] = js["independent"]
        summary["methods"][method] = entry
    return summary


def tsne_points(result: dict, runs: list[str], data: Dataset, batch_size: int = 500
                ) -> tuple:
    """t-SNE of the trajectories of `runs` and the samples of a `plane` result, with each
    point's label (run name or method) and epoch (None for samples)."""
    split = result["splits"]["reported"]
    space = fit(result["base_run"], len(result["subspace_epochs"]))
    base = RunPredictions(result["base_run"], batch_size)
    bn_data = data if result["batchnorm"] == "reestimated" else None
    groups, logits = [], []
    for run in runs:
        predictor = RunPredictions(run, batch_size)
        for epoch in trajectory.epochs(run):
            logits.append(predictor.checkpoint(data, split, epoch))
            groups.append((os.path.basename(os.path.normpath(run)), epoch))
    for record in result["samples"]:
        logits.append(sample_logits(base, space, record, data, split, bn_data))
        groups.append((record["method"], None))
    points = similarity.tsne(np.stack(logits), result["seed"])
    return points, [g for g, _ in groups], [e for _, e in groups]
