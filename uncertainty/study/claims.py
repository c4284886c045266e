"""The paper's claims as explicit rules over a study's results: one row per claim with
the paper's number where it gives one (from `published.json`), ours, the rule and the
verdict (✔ holds, ✗ does not, – not run)."""

from uncertainty.core import names, published

PASS, FAIL, NOT_RUN = "✔", "✗", "–"


# The paper's reference setting for the numbers quoted in the claims (Fig. 8-9).
_PAPER_SETTING = dict(source="fort2019", model="medium_cnn", dataset="cifar10")
_JS_LABELS = {"trajectory": "trajectory", "random": "random",
              "low_rank_gaussian": "low-rank", "diagonal_gaussian": "diagonal"}


def _published(**match) -> dict:
    """The one published entry with these fields (`published.json`)."""
    found = published.entries(**match)
    if len(found) != 1:
        raise ValueError(f"published.json has {len(found)} entries for {match}")
    return found[0]


def _paper_js(intensity: int) -> tuple[float, str]:
    """The paper's JS divergence of independent runs at `intensity`, and the other
    sets' as text."""
    def js(method):
        return _published(**_PAPER_SETTING, method=method, metric="js_divergence",
                          intensity=intensity)["value"]
    others = ", ".join(f"{label} {fmt(js(m))}" for m, label in _JS_LABELS.items())
    return js("independent"), others


def _paper_range(size: int, metric: str) -> str:
    lo, hi = _published(**_PAPER_SETTING, method="independent", ensemble_size=size,
                        intensity=0, metric=metric)["range"]
    return f"{lo:.3f}-{hi:.3f}"


def _ub(method: str, size: int, metric: str) -> float:
    return _published(source="uncertainty_baselines", model="wide_resnet28_10",
                      dataset="cifar10", method=method, ensemble_size=size, intensity=0,
                      metric=metric)["value"]


def fmt(x: float) -> str:
    """A number as the report writes it (3 decimals)."""
    return f"{x:.3f}"


def _row(claim, paper, ours, rule, holds) -> dict:
    verdict = NOT_RUN if holds is None else (PASS if holds else FAIL)
    return {"claim": claim, "paper": paper, "ours": ours, "rule": rule, "verdict": verdict}


def _clean(values: dict, name: str, size, metric: str) -> float | None:
    entry = values.get(name, {}).get(str(size), {})
    return entry.get(names.metric_key(metric))


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
             f"independent {fmt(s['independent_mean_weight_cosine'])}; last two checkpoints "
             f"{fmt(min(cos.values()))}-{fmt(max(cos.values()))}", rules[0],
             s.get("independent_cosine_below_every_consecutive_late_pair")),
        _row(text[1], "figures", f"independent {fmt(s['independent_mean_disagreement'])}; "
             f"last two checkpoints {fmt(min(dis.values()))}-{fmt(max(dis.values()))}",
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
    (paper_clean, paper_clean_others), (paper_shifted, paper_shifted_others) = (
        _paper_js(0), _paper_js(5))
    others = {n: v for n, v in js.items() if n != "independent"}
    js_clean = ", ".join(f"{n} {fmt(v[0])}" for n, v in others.items())
    js_high = ", ".join(f"{n} {fmt(v[-1])}" for n, v in others.items())
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
        _row(text[0], f"independent {fmt(paper_clean)}; {paper_clean_others} (MediumCNN, "
             f"CIFAR-10)",
             f"independent {fmt(js['independent'][0])}; {js_clean}", rules[0],
             all(js["independent"][0] > v[0] for v in others.values()) if others else None),
        _row(text[1], f"intensity 5: independent {fmt(paper_shifted)}; "
             f"{paper_shifted_others}",
             f"intensity {top}: independent {fmt(js['independent'][-1])}; {js_high}",
             rules[1], s["js_independent_largest_at_every_intensity"]),
        _row(text[2], f"{fmt(paper_clean)} → {fmt(paper_shifted)}",
             f"{fmt(js['independent'][0])} → {fmt(js['independent'][-1])} (intensity {top})",
             rules[2],
             js["independent"][-1] > js["independent"][0] if top else None),
        _row(text[3], f"5 runs vs 1: accuracy {_paper_range(5, 'accuracy')} vs "
             f"{_paper_range(1, 'accuracy')}, Brier {_paper_range(5, 'brier')} vs "
             f"{_paper_range(1, 'brier')} (clean)",
             f"{size} runs vs 1: accuracy {fmt(full['accuracy'])} vs {fmt(single['accuracy'])}, "
             f"Brier {fmt(full['brier'])} vs {fmt(single['brier'])} (clean)", rules[3],
             all(g["all_better"] for g in gains.values())),
        _row(text[4], "figures", "; ".join(f"{n} {fmt(acc)} vs independent {fmt(ind)} (k={k})"
                                          for n, (k, acc, ind) in rivals.items()),
             rules[4], all(ind > acc for _, acc, ind in rivals.values()) if rivals else None),
        _row(text[5], "figures",
             (f"best {best} {fmt(combined[best])} vs independent "
              f"{fmt(_clean(values, 'independent', size, 'brier'))} (k={size})")
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
    ours = (f"optima mean {fmt(mean)}; in-band maxima " + ", ".join(
        f"{m} {fmt(e['in_band_max_normalized_diversity'])}" for m, e in methods.items())
        if methods else f"optima mean {fmt(mean)}; no sample in the band") if mean else "—"
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
             f"{fmt(mean)} ({setting[0]} on {setting[1]})" if mean else "—",
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
             f"{fmt(bezier['min_accuracy'])}, endpoints {fmt(worst_end)}+, straight line "
             f"lowest {fmt(line['min_accuracy'])}", rules[0],
             bezier["min_accuracy"] >= worst_end - 0.05 and
             bezier["min_accuracy"] > line["min_accuracy"]),
        _row(text[1], "they do not connect in prediction space (v2)",
             f"{fmt(away)} vs late-trajectory {fmt(within)}" if within is not None
             else f"{fmt(away)}", rules[1], away > within if within is not None else None),
    ]


def _ood_claims(result) -> list[dict]:
    text = ("Independent runs disagree more on out-of-distribution inputs than on "
            "their own test set",
            "The ensemble detects out-of-distribution inputs better than one model")
    rules = ("JS(independent) out of distribution > in distribution, for every pairing",
             "AUROC (uncertainty-baselines': the maximum probability): largest ensemble > "
             "one run, every pairing")
    found = (result or {}).get("ood")
    if not found:
        return [_row(t, "SVHN (Sec. 5)", "not run", r, None) for t, r in zip(text, rules)]
    size = result["summary"]["ensemble_size"]
    js = {n: f["js_divergence"]["independent"] for n, f in found.items()}
    auroc = {n: s["auroc"] for n, s in result["summary"]["ood"].items()}
    return [
        _row(text[0], "SVHN as out-of-distribution data (figure)", "; ".join(
            f"{n}: {fmt(v['in_distribution'])} → {fmt(v['out_of_distribution'])}"
            for n, v in js.items()), rules[0],
            all(v["out_of_distribution"] > v["in_distribution"] for v in js.values())),
        _row(text[1], "—", "; ".join(f"{n}: {fmt(a['1'])} → {fmt(a[str(size)])} (k={size})"
                                     for n, a in auroc.items()), rules[1],
             all(a[str(size)] > a["1"] for a in auroc.values())),
    ]


def _bayesian_claim(study: dict) -> dict:
    text = "Deep ensembles beat the Bayesian baselines: MC dropout and mean-field VI"
    rule = ("the independent ensemble's clean accuracy and NLL beat one run's MC-dropout "
            "predictive and one variational run's posterior predictive (those this "
            "study ran)")
    paper = ("uncertainty-baselines WRN-28-10: " + ", ".join(
        f"{label} {fmt(_ub(method, size, 'accuracy'))} / {fmt(_ub(method, size, 'nll'))}"
        for label, method, size in (("ensemble", "independent", 4),
                                    ("MC dropout", "independent+mc_dropout", 1),
                                    ("VI", "variational", 1))) + " (accuracy / NLL)")
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
    cells = [f"ensemble of {size} {fmt(ours['independent'])} / "
             f"{fmt(_clean(values, 'independent', size, 'nll'))}"]
    holds = True
    for label, (table, name) in rivals.items():
        acc, nll = _clean(table, name, 1, "accuracy"), _clean(table, name, 1, "nll")
        cells.append(f"{label} {fmt(acc)} / {fmt(nll)}")
        holds &= (ours["independent"] > acc and
                  _clean(values, "independent", size, "nll") < nll)
    return _row(text, paper, "; ".join(cells) + " (accuracy / NLL)", rule, holds)

