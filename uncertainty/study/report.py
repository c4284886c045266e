"""The study's report: the paper's claims checked by explicit rules, every figure, the
published comparison, the environment and the wall-clock of each stage, as
`report/report.md` and `report/index.html` (the same Markdown, rendered), with the
claims also as `report/claims.json`.

It only reads what the binaries wrote under a study folder (`scales.analysis_dir`);
figures are copied next to the pages so the report folder stands on its own.
"""

import datetime
import importlib.metadata
import os
import platform
import subprocess

import markdown

from uncertainty.core import names
from uncertainty.infra import files
from uncertainty.study import claims
from uncertainty.study.scales import analysis_dir, run_dirs

PACKAGES = ("tensorflow", "tf-keras", "tensorflow-probability", "tensorflow-datasets",
            "numpy", "scikit-learn", "matplotlib", "absl-py", "mnist1d")
_CSS = ("body{font-family:sans-serif;max-width:1150px;margin:2em auto;padding:0 1em;"
        "line-height:1.4}table{border-collapse:collapse;margin:1em 0}"
        "td,th{border:1px solid #bbb;padding:3px 7px;vertical-align:top;font-size:14px}"
        "th{background:#eee}img{max-width:100%;border:1px solid #ddd}"
        "pre{background:#f6f6f6;padding:8px;overflow-x:auto;font-size:12px}")


# every analysis the report reads, and its result file
RESULTS = {"similarity": "similarity.json", "plane": "subspace.json",
           "ensemble": "ensemble.json", "ensemble_variational": "ensemble.json",
           **{f"cross_section/{plane}": "cross_section.json"
              for plane in ("independent", "trajectory", "random")}}


def load(root: str) -> dict:
    """Every result JSON of the study at `root` that exists, by analysis name, and the
    per-example arrays beside it (per_example.npz) as "<name>/per_example"."""
    found = {}
    for name, file in RESULTS.items():
        path = os.path.join(analysis_dir(root, name), file)
        if files.exists(path):
            found[name] = files.read_json(path)
            arrays = os.path.join(analysis_dir(root, name), "per_example.npz")
            if files.exists(arrays):
                with files.read_npz(arrays) as saved:
                    found[f"{name}/per_example"] = {k: saved[k] for k in saved.files}
    return found


def environment() -> dict:
    """Versions, hardware and the code's revision, as the report records them."""
    cpu, flags = platform.processor() or platform.machine(), ""
    try:
        with open("/proc/cpuinfo") as f:
            info = f.read()
        cpu = next(line.split(":", 1)[1].strip() for line in info.splitlines()
                   if line.startswith("model name"))
        flags = "AVX-512" if "avx512f" in info else ("AVX2" if "avx2" in info else "")
    except (OSError, StopIteration):
        pass
    memory = ""
    if hasattr(os, "sysconf") and "SC_PHYS_PAGES" in os.sysconf_names:
        memory = f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB"
    try:
        revision = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True,
                                  text=True, cwd=os.path.dirname(__file__),
                                  check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        revision = "unknown"
    versions = {}
    for package in PACKAGES:
        try:
            versions[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            versions[package] = "not installed"
    return {"python": platform.python_version(), "platform": platform.platform(),
            "cpu": f"{cpu} ({flags})" if flags else cpu, "cores": os.cpu_count(),
            "memory": memory, "revision": revision, "packages": versions}


def _table(header: list[str], rows: list[list]) -> list[str]:
    def cell(x):
        return str(x).replace("|", "\\|").replace("\n", " ")
    return (["| " + " | ".join(header) + " |", "|" + "---|" * len(header)] +
            ["| " + " | ".join(cell(x) for x in row) + " |" for row in rows] + [""])


def _duration(seconds: float) -> str:
    minutes, seconds = divmod(round(seconds), 60)
    return f"{minutes} min {seconds:02d} s" if minutes else f"{seconds} s"


# (analysis, file, section, caption) of every figure the binaries write
FIGURES = (
    ("similarity", "trajectory_seed0.png", "Weight space vs function space",
     "Weight cosine and prediction disagreement along one trajectory (Fig. 2)"),
    ("similarity", "independent.png", "Weight space vs function space",
     "The same between independent solutions (Fig. 3)"),
    ("similarity", "tsne.png", "Weight space vs function space",
     "t-SNE of the predictions along three trajectories (Fig. 4)"),
    ("plane", "diversity_accuracy.png", "Subspaces: the diversity-accuracy plane",
     "Subspace samples around seed0, the independent optima and the analytic limits "
     "(Fig. 5)"),
    ("plane", "tsne_with_samples.png", "Subspaces: the diversity-accuracy plane",
     "t-SNE of trajectories with the subspace samples"),
    ("ensemble", "js_divergence.png", "Ensembles and dataset shift",
     "Jensen-Shannon divergence of each set of functions, clean and at each intensity "
     "(Fig. 9)"),
    ("ensemble", "ensemble_size.png", "Ensembles and dataset shift",
     "Metrics against ensemble size (Fig. 8)"),
    ("ensemble", "shift_accuracy_brier.png", "Ensembles and dataset shift",
     "Accuracy and Brier score against corruption intensity (Fig. 8)"),
    ("ensemble", "shift_js_divergence.png", "Ensembles and dataset shift",
     "JS divergence against corruption intensity (Fig. 9)"),
    ("ensemble_variational", "ensemble_size.png", "Bayesian baselines",
     "Variational runs: posterior means, posterior predictives and their ensembles"),
    ("cross_section/independent", "plane.png", "Weight-space cross-sections",
     "The plane through seed0's initialisation and two independent solutions (Fig. 4)"),
    ("cross_section/independent", "paths.png", "Weight-space cross-sections",
     "The straight line and the trained Bezier connector between the solutions (v2)"),
    ("cross_section/trajectory", "plane.png", "Weight-space cross-sections",
     "The plane through two checkpoints of one trajectory and another run's solution"),
    ("cross_section/random", "plane.png", "Weight-space cross-sections",
     "A filter-normalised random plane around seed0"),
)


def write(root: str, scale_name: str, scale, stage_times: list[dict], command: str) -> str:
    """Writes `root`/report/{report.md,index.html} and the figures; returns index.html."""
    study = load(root)
    out = os.path.join(root, "report")
    figure_dir = os.path.join(out, "figures")
    files.makedirs(figure_dir)
    rows = claims.claims(study)
    counts = {v: sum(r["verdict"] == v for r in rows) for v in claims.MARKS}
    lines = [f"# Deep Ensembles: A Loss Landscape Perspective — scale `{scale_name}`", "",
             f"{scale.description}. Written {datetime.datetime.now():%Y-%m-%d %H:%M} by "
             f"`{command}`.", "",
             f"**Of {len(rows)} claims: " + ", ".join(
                 f"{n} {v}" for v, n in counts.items()) + "** at this scale. Each verdict "
             "reads a 95% bootstrap interval of the compared difference (positive = the "
             "paper's direction; `value [low, high]`): holds when the interval is above "
             "zero, does not hold when below, inconclusive when it contains zero. The "
             "paper's numbers are MediumCNN or SmallCNN on CIFAR-10 unless stated, so "
             "at another setting compare orderings and gaps, not values.", "",
             "## Claims", ""]
    lines += _table(["claim", "paper", "ours (95% intervals)", "rule", "verdict"],
                    [[r["claim"], r["paper"], r["ours"], r["rule"], claims.MARKS[r["verdict"]]]
                     for r in rows])
    section = None
    for analysis, name, title, caption in FIGURES:
        source = os.path.join(analysis_dir(root, analysis), name)
        if not files.exists(source):
            continue
        if title != section:
            section = title
            lines += [f"## {title}", ""]
        target = f"{analysis.replace('/', '_')}_{name}"
        files.copy(source, os.path.join(figure_dir, target))
        lines += [f"**{caption}.**", "", f"![{caption}](figures/{target})", ""]
    lines += _ood_section(study.get("ensemble"))
    lines += _tables_section(root, study)
    lines += _published_section(study.get("ensemble"))
    lines += _results_section(study)
    lines += _environment_section({**environment(), "devices": _devices(root, scale)})
    lines += _timing_section(stage_times)
    text = "\n".join(lines) + "\n"
    files.write_text(os.path.join(out, "report.md"), text)
    files.write_json(os.path.join(out, "claims.json"), rows)
    body = markdown.markdown(text, extensions=["tables"])
    page = (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            f"<title>Deep ensembles report: {scale_name}</title><style>{_CSS}</style>"
            f"</head><body>\n{body}\n</body></html>\n")
    index = os.path.join(out, "index.html")
    files.write_text(index, page)
    return index


def _ood_section(result) -> list[str]:
    if not result or not result.get("ood"):
        return []
    size = result["summary"]["ensemble_size"]
    lines = ["## Out-of-distribution detection", "",
             f"Scores of single runs (k=1) and ensembles (k={size}), averaged over "
             f"k-subsets; in-distribution is the clean test set. AUROC, AUPRC and "
             f"(1-FPR)@95%TPR are uncertainty-baselines' (out-of-distribution as "
             f"positive, the maximum-probability score); the entropy's and the mutual "
             f"information's AUROC are exact.", ""]
    rows = []
    for outlier, found in result["ood"].items():
        for name, table in found["metrics"].items():
            for k in ("1", str(size)):
                if k in table:
                    m = table[k]
                    keys = [names.ood_key(outlier, metric) for metric in
                            ("auroc", "auprc", "(1-fpr)@95tpr")] + [
                        names.ood_key(outlier, "auroc", score)
                        for score in ("entropy", "mutual_information")]
                    rows.append([outlier, name, k] + [
                        claims.fmt(m[key]) if key in m else "–" for key in keys])
    return lines + _table(["out-of-distribution set", "functions", "k", "AUROC", "AUPRC",
                           "(1-FPR)@95%TPR", "AUROC (entropy)", "AUROC (MI)"], rows)


def _tables_section(root, study) -> list[str]:
    lines = []
    for name, title in (("ensemble", "Single runs vs ensembles"),
                        ("ensemble_variational", "Variational runs")):
        path = os.path.join(analysis_dir(root, name), "table.txt")
        if name in study and files.exists(path):
            lines += [f"## {title} (`{name}/table.txt`)", "", "```",
                      files.read_bytes(path).decode().rstrip(), "```", ""]
    return lines


def _published_section(result) -> list[str]:
    rows = (result or {}).get("published_comparison")
    if not rows:
        return []
    same = any(r["same_setting"] for r in rows)
    lines = ["## Published numbers beside ours", "",
             "Same setting." if same else
             f"**Setting differs**: ours is {rows[0]['our_model']} on "
             f"{rows[0]['our_dataset']}; compare orderings and gaps, not values.", ""]
    return lines + _table(
        ["source", "setting", "method", "k", "intensity", "metric", "published", "ours"],
        [[r["source"], f"{r['model']} {r['dataset']}", r["method"],
          r.get("ensemble_size", "–"), r["intensity"], r["metric"],
          f"{r['range'][0]:.3f}-{r['range'][1]:.3f}" if "range" in r else f"{r['value']:.4g}",
          "–" if r["ours"] is None else f"{r['ours']:.4f}"] for r in rows])


def _results_section(study) -> list[str]:
    lines = ["## Result files", ""]
    for name in (n for n in study if n in RESULTS):
        lines.append(f"- [{name}/{RESULTS[name]}](../analyses/{name}/{RESULTS[name]})")
    return lines + [""]


def _devices(root: str, scale) -> str:
    """The device line the study's first run trained with (its config.json)."""
    path = os.path.join(run_dirs(scale, root)[0], "seed0", "config.json")
    if not files.exists(path):
        return "–"
    return files.read_json(path).get("devices", {}).get("line", "not recorded")


def _environment_section(env: dict) -> list[str]:
    return (["## Environment", ""] + _table(["", ""], [
        ["training devices", env.get("devices", "–")],
        ["CPU", env["cpu"]], ["cores", env["cores"]], ["memory", env["memory"]],
        ["platform", env["platform"]], ["Python", env["python"]],
        ["code revision", env["revision"]]] + [[p, v] for p, v in env["packages"].items()]))


def _timing_section(stage_times: list[dict]) -> list[str]:
    total = sum(t["seconds"] for t in stage_times)
    rows = [[t["stage"], _duration(t["seconds"]),
             "this call" if t["ran_now"] else f"earlier ({t['finished']})"]
            for t in stage_times]
    return (["## Wall-clock per stage", "",
             f"{_duration(total)} in all, as each stage took when it ran.", ""] +
            _table(["stage", "wall-clock", "ran"], rows + [["total", _duration(total), ""]]))
