"""Metric names as uncertainty-baselines writes them, and the corrupted means.

  test/accuracy, test/negative_log_likelihood, test/ece, test/brier   clean
  test/<m>_<type>_<intensity>            one corrupted set (m = accuracy, nll, ece,
                                         brier, js_divergence; UB's short `nll`)
  test/<m>_mean_<intensity>, test/<m>_mean_corrupted
      the mean over the STANDARD_CORRUPTIONS evaluated (uncertainty-baselines' 15
      types), per intensity and over intensities
  test/<m>_mean_all_<intensity>, test/<m>_mean_corrupted_all
      the same over every type evaluated (19 for CIFAR-10-C, as the paper averages)
  ood/<dataset>_auroc, ood/<dataset>_auprc, ood/<dataset>_(1-fpr)@95tpr
      out-of-distribution detection against <dataset> (`ood_key`, `core.ood`)
"""

import numpy as np

# uncertainty-baselines' CIFAR-10-C types (Hendrycks & Dietterich's benchmark), TFDS names.
# (TFDS names two of them differently in CIFAR-10-C and ImageNet-C: both are listed.)
STANDARD_CORRUPTIONS = (
    "gaussian_noise", "shot_noise", "impulse_noise", "defocus_blur", "frosted_glass_blur",
    "glass_blur", "motion_blur", "zoom_blur", "snow", "frost", "fog", "brightness",
    "contrast", "elastic", "elastic_transform", "pixelate", "jpeg_compression")
# What each evaluation set reports: `ensemble.METRICS`' scores and the set's JS divergence.
METRICS = ("accuracy", "nll", "brier", "ece", "js_divergence")


_CLEAN_NAMES = {"nll": "negative_log_likelihood"}  # UB's clean name where it differs


def metric_key(metric: str, kind: str | None = None, intensity: int = 0,
               split: str = "test") -> str:
    """A metric's name on a clean split (kind None: `<split>/<metric>`, UB's long name
    for nll) or on the corrupted test set `<kind>_<intensity>`."""
    if kind is None:
        return f"{split}/{_CLEAN_NAMES.get(metric, metric)}"
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


def ood_key(dataset: str, metric: str, score: str | None = None) -> str:
    """The name of an out-of-distribution metric against `dataset` (`core.ood`):
    uncertainty-baselines' `ood/<dataset>_<metric>` (auroc, auprc, (1-fpr)@95tpr: the
    maximum-probability score), or, with `score`, the exact metric of that score,
    `ood/<dataset>_<score>_<metric>`."""
    return f"ood/{dataset}_{metric}" if score is None else f"ood/{dataset}_{score}_{metric}"
