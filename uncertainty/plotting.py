"""Figures in the paper's style, written atomically as PNG (matplotlib, Agg)."""

import os
import tempfile

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402


def save(fig, path: str) -> None:
    """Writes `fig` to `path` via a temporary file, then closes it."""
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=os.path.dirname(os.path.abspath(path)), suffix=".png")
    os.close(fd)
    try:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
        os.replace(tmp, path)
    finally:
        plt.close(fig)
        if os.path.exists(tmp):
            os.remove(tmp)


def _heatmap(ax, matrix, ticks, axis_label, title, cmap, vmin, vmax, colorbar_label):
    image = ax.imshow(np.asarray(matrix), cmap=cmap, vmin=vmin, vmax=vmax,
                      origin="lower", interpolation="nearest")
    positions = np.arange(len(ticks))
    step = max(1, len(ticks) // 10)
    ax.set_xticks(positions[::step], [str(t) for t in ticks][::step])
    ax.set_yticks(positions[::step], [str(t) for t in ticks][::step])
    ax.set_xlabel(axis_label)
    ax.set_ylabel(axis_label)
    ax.set_title(title)
    ax.figure.colorbar(image, ax=ax, shrink=0.9, label=colorbar_label)


def cosine_and_disagreement(cosine, disagreement, ticks, axis_label: str, title: str,
                            path: str) -> None:
    """Side by side: weight cosine (diverging, -1..1) and prediction disagreement."""
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 5), layout="constrained")
    _heatmap(left, cosine, ticks, axis_label, "Cosine similarity of weights", "RdBu_r",
             -1.0, 1.0, "cosine")
    _heatmap(right, disagreement, ticks, axis_label, "Disagreement of predictions",
             "viridis", 0.0, max(float(np.max(disagreement)), 1e-6),
             "fraction of labels that differ")
    fig.suptitle(title)
    save(fig, path)


def tsne_trajectories(points, runs_of_points, epochs_of_points, title: str,
                      path: str) -> None:
    """t-SNE of the checkpoints' predictions, one coloured path per run, start marked."""
    points = np.asarray(points)
    fig, ax = plt.subplots(figsize=(6.5, 5.5))
    runs = list(dict.fromkeys(runs_of_points))
    colours = plt.get_cmap("tab10")
    for i, run in enumerate(runs):
        index = [k for k, r in enumerate(runs_of_points) if r == run]
        index.sort(key=lambda k: epochs_of_points[k])
        xy = points[index]
        ax.plot(xy[:, 0], xy[:, 1], "-o", color=colours(i % 10), markersize=4,
                label=os.path.basename(os.path.normpath(run)))
        ax.scatter(*xy[0], s=160, marker="*", color=colours(i % 10), edgecolor="black",
                   zorder=3)
    ax.scatter([], [], s=160, marker="*", color="white", edgecolor="black",
               label="first epoch")
    ax.set_xlabel("t-SNE axis 1")
    ax.set_ylabel("t-SNE axis 2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    save(fig, path)
