"""What `baselines/ensemble.py` writes from a shift study's result (`shift.study`):
text tables (every set of functions, single member and largest ensemble; OOD
detection), the figure specifications for `study.plots.line_panels`, and the
comparison with the published numbers (`core.published`).
"""
from uncertainty.core import names, published

FIGURE_SIZES = (1, 2, 5)


def lookup(result: dict, entry: dict) -> tuple[float | None, str, dict]:
    """Our number for a published entry, its name and what it is: the same set of
    functions, ensemble size (JS: the whole set), and intensity (0: clean), or the
    entry's corrupted mean (its "corruptions": standard or all types). What it is:
    "draws", the posterior draws or dropout passes each prediction averages (1 for a
    set of single draws; a run's `subspace_samples_per_run` for its predictive,
    independent+<method> at k=1), "networks" of the independent runs
    (deterministic, or a variational study's posterior means), and for a JS divergence
    the "functions" in the set (the trajectory's checkpoints, or as many as the runs:
    a method's samples are grouped to that size)."""
    metric, intensity, method = entry["metric"], entry["intensity"], entry["method"]
    size = "all" if metric == "js_divergence" else str(entry.get("ensemble_size"))
    key = (names.metric_key(metric) if intensity == 0 else names.mean_key(
        metric, None if intensity == "mean_corrupted" else intensity, entry["corruptions"]))
    quantity = {}
    if method in ("mc_dropout", "variational"):
        quantity["draws"] = 1
    elif method.startswith("independent+") and size == "1":
        quantity["draws"] = result.get("subspace_samples_per_run", {}).get(
            method.partition("+")[2])
    elif method == "independent":
        quantity["networks"] = ("posterior means" if result.get("method") == "variational"
                                else "deterministic")
    if metric == "js_divergence":
        quantity["functions"] = (len(result["trajectory"]["epochs"]) if method == "trajectory"
                                 else len(result["runs"]))
    return result["metrics"].get(method, {}).get(size, {}).get(key), key, quantity


def compare_published(result: dict) -> list[dict]:
    """The published numbers next to ours (`published.compare`)."""
    return published.compare(lambda entry: lookup(result, entry), result["model"],
                             result["dataset"])


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
            cells = [entry[names.metric_key(m)] for m in ("accuracy", "nll", "ece", "brier")]
            if corrupted:
                cells += [entry[names.mean_key(m, None, "all")]
                          for m in ("accuracy", "nll", "ece", "brier")]
            lines.append(f"{name:<30}{k:>3}" + "".join(f"{v:>10.4f}" for v in cells))
    return "\n".join(lines)


def ood_table(result: dict) -> str:
    """Out-of-distribution detection of every set of functions, single member and the
    largest ensemble: uncertainty-baselines' AUROC, AUPRC and (1-FPR)@95%TPR, the exact
    AUROC of the entropy and the mutual information, and the set's JS divergence in
    and out of distribution."""
    largest = result["max_ensemble_size"]
    lines = []
    for outlier, found in result["ood"].items():
        columns = [("auroc", names.ood_key(outlier, "auroc")),
                   ("auprc", names.ood_key(outlier, "auprc")),
                   ("1-fpr@95", names.ood_key(outlier, "(1-fpr)@95tpr")),
                   ("auroc ent", names.ood_key(outlier, "auroc", "entropy")),
                   ("auroc mi", names.ood_key(outlier, "auroc", "mutual_information"))]
        lines += [""] if lines else []
        lines += [f"{result['dataset']} vs {outlier} (out of distribution)",
                  f"{'set of functions':<30}{'k':>3}" + "".join(f"{n:>11}" for n, _ in columns)
                  + f"{'js in':>9}{'js out':>9}"]
        for name, by_size in found["metrics"].items():
            js = found["js_divergence"].get(name)
            for k in sorted({1, largest}):
                entry = by_size.get(str(k))
                if entry is None:
                    continue
                cells = "".join(f"{entry[key]:>11.4f}" if key in entry else f"{'-':>11}"
                                for _, key in columns)
                spread = (f"{js['in_distribution']:>9.4f}"
                          f"{js['out_of_distribution']:>9.4f}" if js and k == largest else "")
                lines.append(f"{name:<30}{k:>3}{cells}{spread}")
    return "\n".join(lines)


def figures(result: dict) -> list[dict]:
    """What to draw (for `plots.line_panels`): accuracy and Brier vs intensity for
    1-, 2-, 5- and M-member ensembles; JS vs intensity; accuracy, NLL and Brier vs
    ensemble size on the clean test set. Corrupted points: the mean over all types."""
    values, intensities = result["metrics"], result["intensities"]
    setting = f"{result['model']} on {result['dataset']}"
    largest = result["max_ensemble_size"]
    sizes = sorted({s for s in FIGURE_SIZES if s <= largest} | {largest})

    def curve(table, metric):
        return intensities, [names.at_intensity(table, metric, s) for s in intensities]

    shift_panels = [(f"{k}-member ensembles" if k > 1 else "single member", metric,
                     {name: curve(t[str(k)], metric) for name, t in values.items()
                      if str(k) in t}) for metric in ("accuracy", "brier") for k in sizes]
    js = {name: curve(t["all"], "js_divergence") for name, t in values.items()
          if "all" in t}

    def versus_size(table, metric):
        sizes = [k for k in table if k != "all"]
        return [int(k) for k in sizes], [table[k][names.metric_key(metric)] for k in sizes]

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

