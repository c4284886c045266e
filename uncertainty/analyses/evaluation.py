"""Scores of a trained run's checkpoints on its clean, corrupted and out-of-distribution
test sets, without training (`train.py --eval_only`).

Names follow uncertainty-baselines (`core.names`): test/accuracy,
test/negative_log_likelihood, test/ece, test/brier on the clean test set;
test/<m>_<type>_<intensity> per corrupted set and the corrupted means
test/<m>_mean_corrupted(_all); and, on the paired out-of-distribution set (CIFAR ->
SVHN and CIFAR-100, ...), out-of-distribution detection (`core.ood`):
uncertainty-baselines' ood/<dataset>_auroc, ood/<dataset>_auprc and
ood/<dataset>_(1-fpr)@95tpr, and the exact metrics of each score beside them.
Predictions go through the run's cache (`RunPredictions`).
"""

from typing import Callable

from absl import logging

from uncertainty import datasets
from uncertainty.core import ensemble, names
from uncertainty.core import ood as detection
from uncertainty.datasets import Dataset
from uncertainty.infra import progress
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, discovery, layout
from uncertainty.runs.predictions import RunPredictions


def evaluate(run_dir: str, load: Callable[[str], Dataset], epochs: list[int] | None = None,
             corruptions: tuple[str, ...] | None = (), intensities=(1, 2, 3, 4, 5),
             ood: bool = True, batch_size: int = 500, strategy=None) -> dict:
    """{epoch: scores} of the checkpoints of `epochs` (None: the last) of `run_dir`.

    `load(name)` loads a dataset with the run's validation split; `corruptions`:
    corruption types to evaluate (None: all, (): none); `ood`: also score the
    out-of-distribution set paired with the run's dataset, if it has one."""
    config = layout.read_config(run_dir)
    available = checkpoints.epochs(run_dir)
    epochs = epochs or available[-1:]
    missing = sorted(set(epochs) - set(available) - {0})
    if missing:
        raise UserError(f"{run_dir} has no checkpoints for epochs {missing}; it has "
                        f"{available}")
    clean = load(config["dataset"])
    discovery.check_source(run_dir, clean)
    sets = datasets.shift_sets(config["dataset"], corruptions, intensities)
    shifted = {name: clean if intensity == 0 else load(name)
               for intensity, _, name in sets}
    outliers = {name: load(name) for name in
                datasets.OUT_OF_DISTRIBUTION.get(config["dataset"], ()) if ood}
    predictor = RunPredictions(run_dir, batch_size, strategy)
    results = {}
    meter = progress.Progress(len(epochs) * len(sets), "evaluating checkpoints", "set")
    for epoch in epochs:
        logging.info("evaluating %s epoch %d on %d sets", run_dir, epoch, len(sets))
        scores, logits = {}, {}
        for intensity, kind, name in sets:
            data = shifted[name]
            logits[name] = predictor.checkpoint(data, "test", epoch)
            meter.update()
            for metric, score in ensemble.METRICS.items():
                scores[names.metric_key(metric, kind, intensity)] = score(
                    logits[name], data.labels("test"))
        kinds = sorted({kind for _, kind, _ in sets if kind})
        levels = sorted({intensity for intensity, _, _ in sets if intensity})
        for metric in ensemble.METRICS:
            scores.update(names.aggregate_corrupted(scores, metric, kinds, levels))
        for name, outlier in outliers.items():
            outside = predictor.checkpoint(outlier, "test", epoch)
            scores.update(detection.evaluate(logits[config["dataset"]], outside, name))
        results[epoch] = scores
    meter.close()
    return results
