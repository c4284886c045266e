"""Figures in the paper's style, written atomically as PNG.

Figures are `matplotlib.figure.Figure` objects, not pyplot's: drawing them needs no
backend and leaves pyplot's state (a notebook's inline figures) alone."""

import os

import matplotlib
import numpy as np
from matplotlib.figure import Figure

from uncertainty.infra import files

METHOD_STYLE = {"random": ("tab:orange", "o"), "dropout": ("tab:green", "s"),
                "diagonal_gaussian": ("tab:purple", "^"),
                "low_rank_gaussian": ("tab:red", "D"), "weight_average": ("tab:brown", "P"),
                "variational": ("tab:cyan", "v"), "mc_dropout": ("tab:olive", "h")}


def save(fig, path: str) -> None:
    """Writes `fig` to `path` as PNG, atomically."""
    files.write_figure(path, fig, format="png", dpi=120, bbox_inches="tight")


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
    fig = Figure(figsize=(12, 5), layout="constrained")
    left, right = fig.subplots(1, 2)
    _heatmap(left, cosine, ticks, axis_label, "Cosine similarity of weights", "RdBu_r",
             -1.0, 1.0, "cosine")
    _heatmap(right, disagreement, ticks, axis_label, "Disagreement of predictions",
             "viridis", 0.0, max(float(np.max(disagreement)), 1e-6),
             "fraction of labels that differ")
    fig.suptitle(title)
    save(fig, path)


def tsne_trajectories(points, runs_of_points, epochs_of_points, title: str,
                      path: str) -> None:
    """t-SNE of functions: checkpoints (an epoch) as one coloured path per run with its
    first epoch starred; points whose epoch is None (subspace samples) as a scatter
    per label (method)."""
    points = np.asarray(points)
    fig = Figure(figsize=(6.5, 5.5), layout="constrained")
    ax = fig.subplots()
    colours = matplotlib.colormaps["tab10"]
    trajectories = [r for r, e in zip(runs_of_points, epochs_of_points) if e is not None]
    for i, run in enumerate(dict.fromkeys(trajectories)):
        index = [k for k, (r, e) in enumerate(zip(runs_of_points, epochs_of_points))
                 if r == run and e is not None]
        index.sort(key=lambda k: epochs_of_points[k])
        xy = points[index]
        ax.plot(xy[:, 0], xy[:, 1], "-o", color=colours(i % 10), markersize=4,
                label=os.path.basename(os.path.normpath(run)))
        ax.scatter(*xy[0], s=160, marker="*", color=colours(i % 10), edgecolor="black",
                   zorder=3)
    samples = [r for r, e in zip(runs_of_points, epochs_of_points) if e is None]
    for label in dict.fromkeys(samples):
        index = [k for k, (r, e) in enumerate(zip(runs_of_points, epochs_of_points))
                 if r == label and e is None]
        colour, marker = METHOD_STYLE.get(label, ("tab:gray", "x"))
        ax.scatter(points[index, 0], points[index, 1], s=18, marker=marker, color=colour,
                   alpha=0.7, label=label.replace("_", " "))
    if trajectories:
        ax.scatter([], [], s=160, marker="*", color="white", edgecolor="black",
                   label="first epoch")
    ax.set_xlabel("t-SNE axis 1")
    ax.set_ylabel("t-SNE axis 2")
    ax.set_title(title)
    ax.legend(fontsize=8)
    save(fig, path)


def diversity_plane(samples: list[dict], independent: list[dict], base: dict, curves: dict,
                    title: str, path: str) -> None:
    """Normalised diversity vs accuracy: subspace samples by method, independent optima
    and the base as stars, the analytic upper and lower limits as lines."""
    fig = Figure(figsize=(7, 5.2), layout="constrained")
    ax = fig.subplots()
    ax.plot(curves["accuracy"], curves["upper"], "k--", lw=1.2,
            label="upper limit: errors independent of the base")
    ax.plot(curves["accuracy"], curves["lower"], "k:", lw=1.5,
            label="lower limit: the base with labels redrawn at random")
    for method in dict.fromkeys(s["method"] for s in samples):
        colour, marker = METHOD_STYLE.get(method, ("tab:gray", "o"))
        points = [s for s in samples if s["method"] == method]
        ax.scatter([s["accuracy"] for s in points],
                   [s["normalized_diversity"] for s in points], s=22, alpha=0.75,
                   color=colour, marker=marker, label=method.replace("_", " "))
    if independent:
        ax.scatter([p["accuracy"] for p in independent],
                   [p["normalized_diversity"] for p in independent], s=220, marker="*",
                   color="gold", edgecolor="black", zorder=4, label="independent optima")
    ax.scatter([base["accuracy"]], [0.0], s=260, marker="*", color="black", zorder=4,
               label="base solution")
    ax.set_xlabel("accuracy")
    ax.set_ylabel("normalised diversity: disagreement / (1 - accuracy)")
    ax.set_ylim(bottom=-0.02)
    ax.set_title(title)
    ax.legend(fontsize=8, loc="upper left")
    save(fig, path)


def _line_style(label: str) -> dict:
    """Independent runs black, one trajectory gray, a subspace method in its colour;
    ensembles of subspace-averaged members (independent+<method>) dashed."""
    method = label.split(" ")[0].removeprefix("independent+")
    colour, marker = {"independent": ("black", "*"), "trajectory": ("tab:gray", "x"),
                      "linear": ("tab:gray", "."), "bezier": ("tab:red", "o")}.get(
        method, METHOD_STYLE.get(method, ("tab:blue", "o")))
    return {"color": colour, "marker": marker, "markersize": 5,
            "linestyle": "--" if label.startswith("independent+") else "-"}


def line_panels(panels: list[tuple[str, str, dict]], xlabel: str, title: str,
                path: str, columns: int = 3) -> None:
    """One panel per (title, ylabel, {label: (xs, ys)}), lines styled by their set of
    functions, one shared legend."""
    rows = -(-len(panels) // columns)
    columns = min(columns, len(panels))
    fig = Figure(figsize=(4.6 * columns, 3.6 * rows), layout="constrained")
    axes = fig.subplots(rows, columns, squeeze=False)
    handles = {}
    for ax, (panel_title, ylabel, lines) in zip(axes.flat, panels):
        for label, (xs, ys) in lines.items():
            (handles[label],) = ax.plot(xs, ys, label=label.replace("_", " "),
                                        **_line_style(label))
        ax.set_title(panel_title, fontsize=10)
        ax.set_xlabel(xlabel)
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    for ax in axes.flat[len(panels):]:
        ax.axis("off")
    fig.legend(handles.values(), [h.get_label() for h in handles.values()],
               loc="outside right upper", fontsize=8)
    fig.suptitle(title)
    save(fig, path)


def plane_contours(section: dict, title: str, path: str) -> None:
    """Accuracy, loss and disagreement with the reference solution as filled contours
    over a weight-space plane, the defining points marked and named."""
    x, y = np.asarray(section["x"]), np.asarray(section["y"])
    panels = [("accuracy", "accuracy", "viridis"), ("loss", "loss (NLL, log scale)",
                                                   "magma_r"),
              ("disagreement_a", "disagreement with the first solution", "cividis")]
    fig = Figure(figsize=(16, 4.8), layout="constrained")
    axes = fig.subplots(1, 3)
    for ax, (key, label, cmap) in zip(axes, panels):
        values = np.asarray(section[key], float)
        if key == "loss":
            values = np.log10(values)
        image = ax.contourf(x, y, values, levels=20, cmap=cmap)
        fig.colorbar(image, ax=ax, label=("log10 " if key == "loss" else "") + key)
        for name, point in section["points"].items():
            ax.plot(*point["xy"], "w*", ms=14, mec="black")
            ax.annotate(name, point["xy"], textcoords="offset points", xytext=(6, 6),
                        fontsize=8, color="white",
                        bbox=dict(boxstyle="round", fc="black", alpha=0.5))
        ax.set_title(label, fontsize=10)
        ax.set_aspect("equal")
    fig.suptitle(title)
    save(fig, path)


def js_bars(js: dict[str, list[float]], intensities: list[int], title: str,
            path: str) -> None:
    """The paper's JS-divergence bars: one group per set of functions, one bar per
    corruption intensity (0 = the clean test set)."""
    names = list(js)
    width = 0.8 / len(intensities)
    fig = Figure(figsize=(max(6.0, 1.1 * len(names)), 3.8), layout="constrained")
    ax = fig.subplots()
    colours = matplotlib.colormaps["viridis"](np.linspace(0.0, 0.85, len(intensities)))
    for i, (intensity, colour) in enumerate(zip(intensities, colours)):
        ax.bar(np.arange(len(names)) + (i - (len(intensities) - 1) / 2) * width,
               [js[n][i] for n in names], width, color=colour,
               label="clean" if intensity == 0 else f"intensity {intensity}")
    ax.set_xticks(np.arange(len(names)), [n.replace("_", " ") for n in names],
                  rotation=30, ha="right", fontsize=8)
    ax.set_ylabel("Jensen-Shannon divergence")
    ax.legend(fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    ax.set_title(title, fontsize=10)
    save(fig, path)
