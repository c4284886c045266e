"""The published numbers this project is compared against, as data.

`published.json` (beside this module) holds one entry per number: where it comes from,
model, dataset, method, ensemble size and corruption intensity where they apply (an
intensity above 0, or "mean_corrupted", with "corruptions": the types it averages,
"all" of the dataset's or uncertainty-baselines' 15 "standard" ones), the metric, and
a `value` or a `range` (numbers read off the paper's figures are +-0.005).
"""

import json
import os

_PATH = os.path.join(os.path.dirname(__file__), "published.json")


def load() -> dict:
    with open(_PATH) as f:
        return json.load(f)


def entries(**match) -> list[dict]:
    """The entries whose fields equal every `match` item (e.g. metric="accuracy")."""
    return [e for e in load()["entries"]
            if all(e.get(key) == value for key, value in match.items())]


def compare(lookup, model: str, dataset: str, metrics=("accuracy", "brier", "nll", "ece",
                                                          "js_divergence")) -> list[dict]:
    """Side by side: every published number of `metrics` with ours for the same method,
    ensemble size and intensity (or corrupted mean), from `lookup(entry)` -> (our
    value or None, the name of our metric it reads, what ours is: {"draws": ...,
    "networks": ...}); whether the setting (model and dataset) is the same, and
    whether the quantity is (each of the entry's "draws" and "networks" equal to
    ours)."""
    rows = []
    for entry in load()["entries"]:
        if entry["metric"] not in metrics or "intensity" not in entry:
            continue
        ours, name, quantity = lookup(entry)
        differs = sorted(k for k, v in quantity.items() if k in entry and entry[k] != v)
        rows.append({**entry, "ours": ours, "ours_name": name, "our_model": model,
                     "our_dataset": dataset, "our_quantity": quantity,
                     "same_setting": entry["model"] == model and entry["dataset"] == dataset,
                     "same_quantity": not differs,
                     "quantity_differs": {k: [entry[k], quantity[k]] for k in differs}})
    return rows


def format_table(rows: list[dict]) -> str:
    """The comparison as a text table, headed by a warning when settings differ."""
    lines = []
    differ = sorted({f"{r['model']} on {r['dataset']}" for r in rows if not r["same_setting"]})
    if differ:
        ours = f"{rows[0]['our_model']} on {rows[0]['our_dataset']}"
        lines.append(f"SETTING DIFFERS: ours is {ours}; published is {', '.join(differ)}. "
                     f"Compare trends (ordering, gaps), not values.")
    if not all(r["same_quantity"] for r in rows):
        lines.append("QUANTITY DIFFERS on rows marked *: another number of posterior "
                     "draws or dropout passes per prediction, or posterior means in place "
                     "of deterministic networks, or a JS divergence over sets of another "
                     "size (the note says which, published vs ours).")
    width = max([len(r["source"]) for r in rows] + [20]) + 2
    lines.append(f"{'source':<{width}}{'setting':<28}{'method':<24}{'size':>5}{'int.':>16}"
                 f"{'metric':>15}{'published':>16}{'ours':>9}  our metric")
    marks = {False: "*", True: " "}
    for r in rows:
        published = (f"{r['range'][0]:.3f}-{r['range'][1]:.3f}" if "range" in r
                     else f"{r['value']:.4g}")
        ours = "-" if r["ours"] is None else f"{r['ours']:.4f}"
        lines.append(f"{r['source']:<{width}}{r['model'] + ' ' + r['dataset']:<28}"
                     f"{r['method']:<24}{r.get('ensemble_size', '-')!s:>5}"
                     f"{r['intensity']!s:>16}{r['metric']:>15}{published:>16}{ours:>9}"
                     f"{marks[r['same_quantity']]} {r['ours_name']}" + "".join(
                         f" ({name}: {theirs} vs {mine})" for name, (theirs, mine)
                         in r["quantity_differs"].items()))
    return "\n".join(lines)
