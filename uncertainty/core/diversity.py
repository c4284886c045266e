"""The diversity-accuracy plane (paper Fig. 5): how different a function is from a base
solution, relative to how wrong it is.

A function with accuracy a that disagrees with the base (accuracy a*) on a fraction d
of the examples sits at (a, d / (1 - a)). The paper draws two analytic curves for C
classes, each the diversity of a simple random model of a function at accuracy a:
- lower: the base's predictions with a random fraction q of them replaced by labels
  drawn uniformly from all C classes (a = a*(1 - q) + q/C, d = q(C - 1)/C): a function
  that is the base plus label noise;
- upper: a classifier that is right with probability a independently of the base, and
  when both are wrong picks uniformly among the C - 1 wrong classes.
`tests/test_subspace.py` checks both against a Monte-Carlo simulation of these models.
"""

import numpy as np

from uncertainty.core import metrics


def lower_limit(a, base_accuracy: float, num_classes: int):
    """Normalised diversity of the base plus uniform label noise at accuracy `a`:
    d = (a* - a) / (a* + (a* - 1)/(C - 1)), divided by (1 - a)."""
    a = np.asarray(a, np.float64)
    d = (base_accuracy - a) / (base_accuracy + (base_accuracy - 1) / (num_classes - 1))
    return _normalise(d, a)


def upper_limit(a, base_accuracy: float, num_classes: int):
    """Normalised diversity of a classifier whose errors are independent of the base's:
    d = a*(1 - a) + a(1 - a*) + (1 - a*)(1 - a)(C - 2)/(C - 1), divided by (1 - a)."""
    a = np.asarray(a, np.float64)
    s = base_accuracy
    d = s * (1 - a) + a * (1 - s) + (1 - s) * (1 - a) * (num_classes - 2) / (num_classes - 1)
    return _normalise(d, a)


def _normalise(d, a):
    out = np.divide(d, 1 - a, out=np.full_like(d, np.nan), where=a < 1)
    return float(out) if out.ndim == 0 else out


def point(logits: np.ndarray, base_logits: np.ndarray, labels: np.ndarray) -> dict:
    """A function's place on the plane relative to the base function."""
    return {"accuracy": metrics.accuracy(logits, labels),
            "disagreement": metrics.disagreement(logits, base_logits),
            "normalized_diversity": metrics.normalized_diversity(logits, base_logits,
                                                                 labels)}


def curves(base_accuracy: float, num_classes: int, lowest: float, points: int = 200
           ) -> dict:
    """Both limit curves on a grid of accuracies from `lowest` to the base's."""
    grid = np.linspace(lowest, base_accuracy, points)
    return {"accuracy": grid.tolist(),
            "lower": lower_limit(grid, base_accuracy, num_classes).tolist(),
            "upper": upper_limit(grid, base_accuracy, num_classes).tolist()}
