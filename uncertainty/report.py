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

from uncertainty import files, published, shift
from uncertainty.scales import analysis_dir

PASS, FAIL, NOT_RUN = "✔", "✗", "–"
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
    """Every result JSON of the study at `root` that exists, by analysis name."""
    found = {}
    for name, file in RESULTS.items():
        path = os.path.join(analysis_dir(root, name), file)
        if files.exists(path):
            found[name] = files.read_json(path)
    return found


def _f(x: float) -> str:
    return f"{x:.3f}"


def _row(claim, paper, ours, rule, holds) -> dict:
    verdict = NOT_RUN if holds is None else (PASS if holds else FAIL)
    return {"claim": claim, "paper": paper, "ours": ours, "rule": rule, "verdict": verdict}


def _clean(values: dict, name: str, size, metric: str) -> float | None:
    entry = values.get(name, {}).get(str(size), {})
    return entry.get(shift.metric_key(metric))


def claims(study: dict) -> list[dict]:
    """One row per claim of the paper: its number where it gives one, ours, the rule
    and ✔ / ✗ (– where this study did not run the analysis it needs)."""
    return [*_similarity_claims(study.get("similarity")), *_ensemble_claims(study),
            *_plane_claims(study.get("plane")),
            *_connector_claims(study.get("cross_section/independent"),
                               study.get("similarity")),
            *_ood_claims(study.get("ensemble")), _bayesian_claim(study)]


def _similarity_claims(result) -> list[dict]:
    text = ("Late checkpoints of one trajectory are close in weight space; independent "
            "solutions are not (weight cosine, Fig. 2-3)",
            "Independent solutions disagree more in function space than late checkpoints "
            "of one trajectory (prediction disagreement, Fig. 2-3)")
    rules = ("independent solutions' mean cosine < every run's last-two-checkpoint cosine",
             "independent solutions' mean disagreement > every run's last-two-checkpoint "
             "disagreement")
    if not result:
        return [_row(t, "Fig. 2-3", "not run", r, None) for t, r in zip(text, rules)]
    s = result["summary"]
    cos, dis = s["trajectory_last_two_weight_cosine"], s["trajectory_last_two_disagreement"]
    return [
        _row(text[0], "independent ≈ 0, late trajectory ≈ 1 (figures)",
             f"independent {_f(s['independent_mean_weight_cosine'])}; last two checkpoints "
             f"{_f(min(cos.values()))}-{_f(max(cos.values()))}", rules[0],
             s.get("independent_cosine_below_every_consecutive_late_pair")),
        _row(text[1], "figures", f"independent {_f(s['independent_mean_disagreement'])}; "
             f"last two checkpoints {_f(min(dis.values()))}-{_f(max(dis.values()))}",
             rules[1], s.get("independent_disagree_more_than_any_last_two_checkpoints")),
    ]


def _ensemble_claims(study: dict) -> list[dict]:
    result = study.get("ensemble")
    text = ("Independent runs are more diverse than one trajectory and than every subspace "
            "method (JS divergence, clean test set, Fig. 9)",
            "… at every corruption intensity (Fig. 9)",
            "The diversity of independent runs grows with the shift (Fig. 9)",
            "Ensembling independent runs improves accuracy, NLL and Brier at every "
            "intensity (Fig. 8)",
            "An ensemble of independent runs beats one of the same size drawn from one "
            "trajectory or one subspace (Fig. 8)",
            "Subspace sampling and ensembling are complementary: ensembling each run's "
            "subspace samples first improves the independent ensemble (Fig. 8)")
    rules = ("JS(independent) > JS(every other set) on the clean test set",
             "JS(independent) > JS(every other set) at every intensity",
             "JS(independent) at the highest intensity > on the clean test set",
             "the largest independent ensemble beats the mean single run in accuracy, NLL "
             "and Brier at every intensity (corrupted: mean over types)",
             "clean accuracy of the independent ensemble > that of trajectory and every "
             "subspace method's ensemble, each at the largest size both have",
             "some independent+<method> ensemble has a lower clean Brier score than the "
             "independent ensemble of the same size")
    if not result:
        return [_row(t, "Fig. 8-9", "not run", r, None) for t, r in zip(text, rules)]
    s, values = result["summary"], result["metrics"]
    js, size = s["js_divergence"], s["ensemble_size"]
    others = {n: v for n, v in js.items() if n != "independent"}
    js_clean = ", ".join(f"{n} {_f(v[0])}" for n, v in others.items())
    js_high = ", ".join(f"{n} {_f(v[-1])}" for n, v in others.items())
    top = s["intensities"][-1]
    gains = s[f"independent_{size}_vs_1"]
    single = {m: _clean(values, "independent", 1, m) for m in ("accuracy", "brier")}
    full = {m: _clean(values, "independent", size, m) for m in ("accuracy", "brier")}
    rivals = {}  # sets of one run's functions with ensembles of 2 or more members
    for name, table in values.items():
        sizes = [int(k) for k in table if k.isdigit() and 2 <= int(k) <= size]
        if sizes and name != "independent" and not name.startswith("independent+"):
            k = max(sizes)
            rivals[name] = (k, _clean(values, name, k, "accuracy"),
                            _clean(values, "independent", k, "accuracy"))
    combined = {n: _clean(values, n, size, "brier") for n in values
                if n.startswith("independent+") and str(size) in values[n]}
    best = min(combined, key=combined.get) if combined else None
    return [
        _row(text[0], "independent 0.274; trajectory 0.091, random 0.081, low-rank 0.050, "
             "diagonal 0.022 (MediumCNN, CIFAR-10)",
             f"independent {_f(js['independent'][0])}; {js_clean}", rules[0],
             all(js["independent"][0] > v[0] for v in others.values()) if others else None),
        _row(text[1], "intensity 5: independent 0.377; trajectory 0.147, random 0.123, "
             "low-rank 0.080, diagonal 0.036",
             f"intensity {top}: independent {_f(js['independent'][-1])}; {js_high}",
             rules[1], s["js_independent_largest_at_every_intensity"]),
        _row(text[2], "0.274 → 0.377", f"{_f(js['independent'][0])} → "
             f"{_f(js['independent'][-1])} (intensity {top})", rules[2],
             js["independent"][-1] > js["independent"][0] if top else None),
        _row(text[3], "5 runs vs 1: accuracy 0.769-0.773 vs 0.718-0.729, Brier "
             "0.320-0.325 vs 0.414-0.452 (clean)",
             f"{size} runs vs 1: accuracy {_f(full['accuracy'])} vs {_f(single['accuracy'])}, "
             f"Brier {_f(full['brier'])} vs {_f(single['brier'])} (clean)", rules[3],
             all(g["all_better"] for g in gains.values())),
        _row(text[4], "figures", "; ".join(f"{n} {_f(acc)} vs independent {_f(ind)} (k={k})"
                                          for n, (k, acc, ind) in rivals.items()),
             rules[4], all(ind > acc for _, acc, ind in rivals.values()) if rivals else None),
        _row(text[5], "figures",
             (f"best {best} {_f(combined[best])} vs independent "
              f"{_f(_clean(values, 'independent', size, 'brier'))} (k={size})")
             if best else "no subspace samples", rules[5],
             combined[best] < _clean(values, "independent", size, "brier") if best else None),
    ]


def _plane_claims(result) -> list[dict]:
    text = ("On the diversity-accuracy plane, subspace samples as accurate as the "
            "independent optima are less diverse than them (Fig. 5)",
            "Independent optima's normalised diversity (Fig. 5)")
    rules = ("every sample within 0.02 of the optima's accuracies lies below the optima's "
             "mean normalised diversity, and some sample is in that band",
             "inside the paper's range (same model and dataset only)")
    if not result:
        return [_row(t, "Fig. 5", "not run", r, None) for t, r in zip(text, rules)]
    s = result["summary"]
    methods = {m: e for m, e in s["methods"].items() if e.get("in_band")}
    mean = s.get("independent_mean_normalized_diversity")
    ours = (f"optima mean {_f(mean)}; in-band maxima " + ", ".join(
        f"{m} {_f(e['in_band_max_normalized_diversity'])}" for m, e in methods.items())
        if methods else f"optima mean {_f(mean)}; no sample in the band") if mean else "—"
    ranges = {(e["model"], e["dataset"]): e["range"] for e in published.load()["entries"]
              if e["metric"] == "plane_normalized_diversity"}
    setting = (result.get("model"), result.get("dataset"))
    paper = ranges.get(setting)
    return [
        _row(text[0], "every sample below the optima", ours, rules[0],
             bool(methods) and all(e["in_band_all_below_independent_mean"]
                                   for e in methods.values()) if mean else None),
        _row(text[1], "; ".join(f"{m} {d}: {lo:.2f}-{hi:.2f}" for (m, d), (lo, hi)
                                 in ranges.items()),
             f"{_f(mean)} ({setting[0]} on {setting[1]})" if mean else "—",
             rules[1] + ("" if paper else "; the paper has no number for this setting"),
             paper[0] <= mean <= paper[1] if paper and mean else None),
    ]


def _connector_claims(result, similarity) -> list[dict]:
    text = ("A low-loss path connects two independent solutions (v2, Bezier connector)",
            "… but the functions along it are not the endpoints' (v2)")
    rules = ("the connector's lowest accuracy is within 0.05 of the worse endpoint's and "
             "above the straight line's lowest",
             "along the connector, the largest min(disagreement with either end) exceeds "
             "every late-trajectory disagreement (functions leave the endpoints' mode)")
    if not result or "bezier" not in result["summary"]:
        return [_row(t, "v2", "not run", r, None) for t, r in zip(text, rules)]
    s = result["summary"]
    bezier, line = s["bezier"], s["linear"]
    worst_end = min(bezier["endpoint_accuracy"])
    away = bezier["max_over_path_of_min_disagreement_with_endpoints"]
    within = (max(similarity["summary"]["trajectory_last_two_disagreement"].values())
              if similarity else None)
    return [
        _row(text[0], "connectors exist (v2)", f"Bezier lowest accuracy "
             f"{_f(bezier['min_accuracy'])}, endpoints {_f(worst_end)}+, straight line "
             f"lowest {_f(line['min_accuracy'])}", rules[0],
             bezier["min_accuracy"] >= worst_end - 0.05 and
             bezier["min_accuracy"] > line["min_accuracy"]),
        _row(text[1], "they do not connect in prediction space (v2)",
             f"{_f(away)} vs late-trajectory {_f(within)}" if within is not None
             else f"{_f(away)}", rules[1], away > within if within is not None else None),
    ]


def _ood_claims(result) -> list[dict]:
    text = ("Independent runs disagree more on out-of-distribution inputs than on "
            "their own test set",
            "The ensemble detects out-of-distribution inputs better than one model")
    rules = ("JS(independent) out of distribution > in distribution, for every pairing",
             "AUROC of the maximum probability: largest ensemble > one run, every pairing")
    found = (result or {}).get("ood")
    if not found:
        return [_row(t, "SVHN (Sec. 5)", "not run", r, None) for t, r in zip(text, rules)]
    size = result["summary"]["ensemble_size"]
    js = {n: f["js_divergence"]["independent"] for n, f in found.items()}
    auroc = {n: s["auroc_max_probability"] for n, s in result["summary"]["ood"].items()}
    return [
        _row(text[0], "SVHN as out-of-distribution data (figure)", "; ".join(
            f"{n}: {_f(v['in_distribution'])} → {_f(v['out_of_distribution'])}"
            for n, v in js.items()), rules[0],
            all(v["out_of_distribution"] > v["in_distribution"] for v in js.values())),
        _row(text[1], "—", "; ".join(f"{n}: {_f(a['1'])} → {_f(a[str(size)])} (k={size})"
                                     for n, a in auroc.items()), rules[1],
             all(a[str(size)] > a["1"] for a in auroc.values())),
    ]


def _bayesian_claim(study: dict) -> dict:
    text = "Deep ensembles beat the Bayesian baselines: MC dropout and mean-field VI"
    rule = ("the independent ensemble's clean accuracy and NLL beat one run's MC-dropout "
            "predictive and one variational run's posterior predictive (those this "
            "study ran)")
    paper = ("uncertainty-baselines WRN-28-10: ensemble 0.966 / 0.114, MC dropout "
             "0.961 / 0.145, VI 0.947 / 0.211 (accuracy / NLL)")
    result, vi = study.get("ensemble"), study.get("ensemble_variational")
    if not result:
        return _row(text, paper, "not run", rule, None)
    values, size = result["metrics"], result["summary"]["ensemble_size"]
    ours = {"independent": _clean(values, "independent", size, "accuracy")}
    rivals = {}
    if "independent+mc_dropout" in values:
        rivals["MC dropout"] = (values, "independent+mc_dropout")
    if vi and "independent+variational" in vi["metrics"]:
        rivals["VI"] = (vi["metrics"], "independent+variational")
    if not rivals:
        return _row(text, paper, "not run", rule, None)
    cells = [f"ensemble of {size} {_f(ours['independent'])} / "
             f"{_f(_clean(values, 'independent', size, 'nll'))}"]
    holds = True
    for label, (table, name) in rivals.items():
        acc, nll = _clean(table, name, 1, "accuracy"), _clean(table, name, 1, "nll")
        cells.append(f"{label} {_f(acc)} / {_f(nll)}")
        holds &= (ours["independent"] > acc and
                  _clean(values, "independent", size, "nll") < nll)
    return _row(text, paper, "; ".join(cells) + " (accuracy / NLL)", rule, holds)


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
    rows = claims(study)
    passed = sum(r["verdict"] == PASS for r in rows)
    checked = sum(r["verdict"] != NOT_RUN for r in rows)
    lines = [f"# Deep Ensembles: A Loss Landscape Perspective — scale `{scale_name}`", "",
             f"{scale.description}. Written {datetime.datetime.now():%Y-%m-%d %H:%M} by "
             f"`{command}`.", "",
             f"**{passed} of {checked} checked claims hold** ({len(rows) - checked} not run "
             f"at this scale). Each rule is decided from the result files linked below; "
             f"the paper's numbers are MediumCNN or SmallCNN on CIFAR-10 unless stated, so "
             f"at another setting compare orderings and gaps, not values.", "",
             "## Claims", ""]
    lines += _table(["claim", "paper", "ours", "rule", "holds"],
                    [[r["claim"], r["paper"], r["ours"], r["rule"], r["verdict"]]
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
    lines += _environment_section(environment())
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
             f"k-subsets; in-distribution is the clean test set.", ""]
    rows = []
    for outlier, found in result["ood"].items():
        for name, table in found["metrics"].items():
            for k in ("1", str(size)):
                if k in table:
                    m = table[k]
                    rows.append([outlier, name, k] + [_f(m[f"ood/{metric}"]) for metric in (
                        "auroc_max_probability", "auroc_entropy", "auprc_in_max_probability",
                        "fpr_at_95_tpr_max_probability")] + [
                        _f(m["ood/auroc_mutual_information"])
                        if "ood/auroc_mutual_information" in m else "–"])
    return lines + _table(["out-of-distribution set", "functions", "k", "AUROC (MSP)",
                           "AUROC (entropy)", "AUPRC-in (MSP)", "FPR@95%TPR (MSP)",
                           "AUROC (MI)"], rows)


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
    for name in study:
        lines.append(f"- [{name}/{RESULTS[name]}](../analyses/{name}/{RESULTS[name]})")
    return lines + [""]


def _environment_section(env: dict) -> list[str]:
    return (["## Environment", ""] + _table(["", ""], [
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
