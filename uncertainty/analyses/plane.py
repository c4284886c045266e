"""The diversity-accuracy plane (paper Fig. 5): `plane` samples functions around a
base run with every method, places them and the independent optima on the plane (the
accuracy against the fraction of labels that differ from the base, over 1 - accuracy),
with the analytic limits (`core.diversity`); `summarize` compares them at matched
accuracy; `tsne_points` embeds trajectories and samples together.
"""
import dataclasses
import os

import numpy as np

from uncertainty import models
from uncertainty.analyses import similarity
from uncertainty.core import diversity, metrics
from uncertainty.datasets import Dataset
from uncertainty.runs import checkpoints, layout
from uncertainty.runs.predictions import RunPredictions
from uncertainty.samplers import catalog, draw, subspace


def plane(base_run: str, other_runs: list[str], specs: list[catalog.SamplerSpec], data: Dataset,
          split: str, num_samples: int, seed: int, num_checkpoints: int = catalog.NUM_CHECKPOINTS,
          extra_splits: tuple[str, ...] = (), reestimate_bn: bool = True,
          batch_size: int = 500) -> dict:
    """The diversity-accuracy plane around `base_run` (paper Fig. 5): samples of every
    spec, the independent optima of `other_runs` and the base, all on `split` and all
    under one batch-norm policy (re-estimated on `data`'s training split for models
    with batch norm when `reestimate_bn`, else the checkpoints' statistics); the base
    is also reported under the other policy. Returns a JSON-ready dict."""
    config = layout.read_config(base_run)
    bn_data = data if reestimate_bn and models.uses_batchnorm(config["model"]) else None
    space = subspace.fit(base_run, num_checkpoints)
    specs = [subspace.resolve(space, spec, base_run) for spec in specs]  # refuse before predicting
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
        drawn = draw.sample_functions(predictor, space, spec, num_samples, seed, data, split,
                                 base_logits, extra_splits, bn_data)
        samples += drawn
        if drawn:
            js[spec.method] = metrics.grouped_js_divergence(np.stack([
                draw.sample_logits(predictor, space, r, data, split, bn_data) for r in drawn]),
                group if other_runs else len(drawn))
    if other_runs:
        js["independent"] = metrics.js_divergence(np.stack([base_logits] + [
            RunPredictions(run, batch_size).checkpoint(data, split, bn_data=bn_data)
            for run in other_runs]))
    accuracies = [p["accuracy"] for p in samples + independent + [base]]
    return {
        "base_run": base_run, "model": config["model"],
        "method": layout.method(base_run), "dataset": data.name,
        "num_classes": data.num_classes, "seed": seed,
        "splits": {"reported": split, "selection": catalog.SELECTION_SPLIT if any(
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
    space = subspace.fit(result["base_run"], len(result["subspace_epochs"]))
    base = RunPredictions(result["base_run"], batch_size)
    bn_data = data if result["batchnorm"] == "reestimated" else None
    groups, logits = [], []
    for run in runs:
        predictor = RunPredictions(run, batch_size)
        for epoch in checkpoints.epochs(run):
            logits.append(predictor.checkpoint(data, split, epoch))
            groups.append((os.path.basename(os.path.normpath(run)), epoch))
    for record in result["samples"]:
        logits.append(draw.sample_logits(base, space, record, data, split, bn_data))
        groups.append((record["method"], None))
    points = similarity.tsne(np.stack(logits), result["seed"])
    return points, [g for g, _ in groups], [e for _, e in groups]

