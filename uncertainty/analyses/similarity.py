"""Weight space vs function space across runs and along trajectories (paper Figs 2-3).

`compare(...)` gathers every checkpoint's weights and predictions and returns one
JSON-ready dict: per-trajectory and between-run matrices of weight cosine and
prediction disagreement, a joint t-SNE of the trajectories, and Jensen-Shannon
divergences. Predictions come from (and are cached by) `predictions.RunPredictions`.
"""

import time

import numpy as np
from absl import logging

from uncertainty.core import metrics, seeding
from uncertainty.datasets import Dataset
from uncertainty.infra import progress
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, discovery
from uncertainty.runs.predictions import RunPredictions


def trajectory_matrices(weights: np.ndarray, logits: np.ndarray, labels: np.ndarray
                        ) -> dict:
    """Cosine and disagreement between all pairs of a sequence of functions."""
    return {"weight_cosine": metrics.cosine_similarity(weights).tolist(),
            "disagreement": metrics.disagreement(logits).tolist(),
            "accuracy": np.atleast_1d(metrics.accuracy(logits, labels)).tolist()}


def tsne(logits: np.ndarray, seed: int) -> np.ndarray:
    """2-D t-SNE of functions [K, N, C], each one vector: its softmax outputs
    flattened (the paper's)."""
    from sklearn.manifold import TSNE

    vectors = metrics.softmax(logits).reshape(len(logits), -1)
    if len(vectors) < 3:
        raise UserError(f"t-SNE needs at least 3 checkpoints, got {len(vectors)}; embed "
                        f"more runs (--tsne_runs) or train longer")
    perplexity = max(1.0, min(30.0, (len(vectors) - 1) / 3))
    return TSNE(n_components=2, perplexity=perplexity, init="pca",
                random_state=seeding.integer(seed, "tsne")).fit_transform(vectors)


def compare(runs: list[str], data: Dataset, split: str, tsne_runs: int = 3, seed: int = 0,
            batch_size: int = 500) -> dict:
    """The similarity analysis of `runs` on `split` (see the module docstring). The
    result's "per_example" holds the arrays of per_example.npz (`whole_trajectories`)."""
    discovery.check_source(runs[0], data)
    labels = data.labels(split)
    result = {"runs": runs, "split": split, "dataset": data.name,
              "num_examples": len(labels), "trajectories": {}}
    began = time.time()
    predictors = {run: RunPredictions(run, batch_size=batch_size) for run in runs}
    finals_w = np.stack([checkpoints.load_weights(run, checkpoints.epochs(run)[-1])
                         for run in runs])
    finals_z = np.stack([predictors[run].checkpoint(data, split) for run in runs])
    shared = sorted(set.intersection(*(set(checkpoints.epochs(run)) for run in runs)))
    to_finals = {"cosine": [], "disagree": []}  # per run: each shared epoch vs every final
    late, tsne_logits, tsne_index = [], [], []
    meter = progress.Progress(sum(len(checkpoints.epochs(run)) for run in runs),
                              "similarity", "checkpoint")
    for r, run in enumerate(runs):
        epochs = checkpoints.epochs(run)
        logging.info("run %d/%d %s: %d checkpoints", r + 1, len(runs), run, len(epochs))
        weights, logits = [], []
        for e in epochs:  # a checkpoint's weights and logits together: it is read once
            weights.append(checkpoints.load_weights(run, e))
            logits.append(predictors[run].checkpoint(data, split, e))
            meter.update()
        weights, logits = np.stack(weights), np.stack(logits)
        result["trajectories"][run] = {"epochs": epochs,
                                       **trajectory_matrices(weights, logits, labels)}
        at = [epochs.index(e) for e in shared]
        to_finals["cosine"].append(metrics.cosine_similarity(
            np.concatenate([weights[at], finals_w]))[:len(at), len(at):])
        to_finals["disagree"].append(np.argmax(logits[at], -1)[:, None] !=
                                     np.argmax(finals_z, -1)[None])
        late.append(logits[-len(runs):])  # as many late checkpoints as independent runs
        if r < tsne_runs:
            tsne_logits.append(logits)
            tsne_index += [(run, e) for e in epochs]
    meter.close()
    result["independent"] = trajectory_matrices(finals_w, finals_z, labels)
    whole, result["per_example"] = whole_trajectories(
        np.stack(to_finals["cosine"]), np.stack(to_finals["disagree"]))
    result["whole_trajectories"] = {"epochs": shared, **whole}

    points = tsne(np.concatenate(tsne_logits), seed)
    result["tsne"] = {"runs": runs[:tsne_runs], "points": points.tolist(),
                      "run": [run for run, _ in tsne_index],
                      "epoch": [e for _, e in tsne_index]}
    result["js_divergence"] = {
        "independent": metrics.js_divergence(finals_z),
        "trajectory": {run: metrics.js_divergence(z) for run, z in zip(runs, late)},
        "num_functions": len(runs),
        "trajectory_num_functions": {run: len(z) for run, z in zip(runs, late)}}
    result["js_divergence"]["trajectory_mean"] = float(
        np.mean(list(result["js_divergence"]["trajectory"].values())))
    result["summary"] = summarize(result)
    counts = {k: sum(p.counts[k] for p in predictors.values())
              for k in ("computed", "from_cache")}
    result["predictions"] = {**counts, "analysis_seconds": time.time() - began}
    logging.info("analysis took %.1f s; predictions computed %d, from cache %d",
                 time.time() - began, counts["computed"], counts["from_cache"])
    return result


def whole_trajectories(cosine: np.ndarray, disagree: np.ndarray) -> tuple[dict, dict]:
    """Every checkpoint of every trajectory against every run's final solution, at the
    epochs all runs share: `cosine` [R, E, R] (run b's checkpoint at epoch e vs run a's
    final weights) and `disagree` [R, E, R, N] (the same, per example, predicted
    labels differ). Returns the per-epoch means as JSON, for each run a: "within"
    (its own checkpoints) and "across" (the other runs' checkpoints at the same epoch,
    as far along their training), as [R, E] lists; and the per-example arrays
    {"disagreement_within" [R, E, N] uint8, "disagreement_across_count" [R, E, N]
    uint8: how many other runs' checkpoints disagree}."""
    runs = cosine.shape[0]
    own = np.arange(runs)
    cos_within = cosine[own, :, own]  # [R, E]: run a's checkpoints vs its final
    cos_across = (cosine.sum(axis=0).T - cos_within) / max(runs - 1, 1)  # [R, E]
    within = disagree[own, :, own]  # [R, E, N]
    across = disagree.sum(axis=0).transpose(1, 0, 2) - within  # [R, E, N] counts
    json_part = {"weight_cosine": {"within": cos_within.tolist(),
                                   "across": cos_across.tolist()},
                 "disagreement": {"within": within.mean(-1).tolist(),
                                  "across": (across.mean(-1) / max(runs - 1, 1)).tolist()}}
    return json_part, {"disagreement_within": within.astype(np.uint8),
                       "disagreement_across_count": across.astype(np.uint8)}


def summarize(result: dict) -> dict:
    """The paper's comparison in a few numbers: independent optima vs late checkpoints."""
    off = ~np.eye(len(result["runs"]), dtype=bool)
    independent = {k: np.asarray(result["independent"][k]) for k in
                   ("weight_cosine", "disagreement")}
    last_two = {run: t["disagreement"][-1][-2] for run, t in result["trajectories"].items()
                if len(t["epochs"]) > 1}
    consecutive = {run: t["weight_cosine"][-1][-2]
                   for run, t in result["trajectories"].items() if len(t["epochs"]) > 1}
    summary = {
        "independent_mean_disagreement": float(independent["disagreement"][off].mean()),
        "independent_mean_weight_cosine": float(independent["weight_cosine"][off].mean()),
        "trajectory_last_two_disagreement": last_two,
        "trajectory_last_two_weight_cosine": consecutive,
        "js_independent": result["js_divergence"]["independent"],
        "js_trajectory_mean": result["js_divergence"]["trajectory_mean"],
    }
    if last_two:
        summary["independent_disagree_more_than_any_last_two_checkpoints"] = bool(
            summary["independent_mean_disagreement"] > max(last_two.values()))
        summary["independent_cosine_below_every_consecutive_late_pair"] = bool(
            summary["independent_mean_weight_cosine"] < min(consecutive.values()))
    return summary
