"""The paper's claims as explicit rules over a study's results, each decided by 95%
bootstrap intervals (`core.intervals`).

One row per claim: the paper's number where it gives one (from `published.json`), ours,
the rule, and `comparisons`: each compared quantity's difference, oriented so that the
paper's direction is positive, with its interval and verdict. A row's verdict combines
them (`intervals.combine`): holds, does not hold, inconclusive, or not run (this study
did not run the analysis it needs). The intervals resample the test examples (and the
runs, where a side has at least three) of the per-example values the analyses keep in
their per_example.npz.

How the rules follow the paper:
- diversity (JS divergence, Fig. 9) compares the independent runs with the paper's sets
  (one trajectory; the random, diagonal Gaussian and low-rank Gaussian subspaces) at
  matched accuracy: a set whose functions are less accurate than the least accurate
  independent run by more than `ACCURACY_BAND` is listed as outside the band and not
  counted. MC dropout, the weight-vector dropout sampler and VI are the Bayesian
  baselines' own claim;
- ensembling is compared with the best single member, not the mean one (against the
  mean member Jensen's inequality guarantees lower NLL and Brier);
- similarity compares whole trajectories: every checkpoint of a run against its own
  final solution and against the other runs', at the same epoch (Fig. 2-3);
- the plane evaluates every sampler and lists those without samples at the optima's
  accuracy with their nearest accuracy (Fig. 5);
- the paper's JS numbers are over 5 runs, 10 checkpoints and 30 subspace samples; ours
  over sets as large as the independent one, so they are marked as a different quantity.
"""

import numpy as np

from uncertainty.core import intervals, names, published

HOLDS, DOES_NOT_HOLD, INCONCLUSIVE, NOT_RUN = (
    intervals.HOLDS, intervals.DOES_NOT_HOLD, intervals.INCONCLUSIVE, intervals.NOT_RUN)
MARKS = {HOLDS: "✔ holds", DOES_NOT_HOLD: "✗ does not hold",
         INCONCLUSIVE: "? inconclusive", NOT_RUN: "– not run"}
ACCURACY_BAND = 0.01  # a set at matched accuracy: at most this far below every run
PAPER_SETS = ("trajectory", "random", "diagonal_gaussian", "low_rank_gaussian")
BAYESIAN_SETS = ("mc_dropout", "dropout", "variational")
# The paper's set sizes behind its JS numbers (the authors' notebook).
PAPER_JS_SIZES = {"independent": 5, "trajectory": 10, "random": 30,
                  "diagonal_gaussian": 30, "low_rank_gaussian": 30}

# The paper's reference setting for the numbers quoted in the claims (Fig. 8-9).
_PAPER_SETTING = dict(source="fort2019", model="medium_cnn", dataset="cifar10")
_LABELS = {"trajectory": "trajectory", "random": "random", "low_rank_gaussian": "low-rank",
           "diagonal_gaussian": "diagonal", "mc_dropout": "MC dropout",
           "dropout": "dropout sampler", "variational": "VI"}


def fmt(x: float) -> str:
    """A number as the report writes it (3 decimals)."""
    return f"{x:.3f}"


def fmt_estimate(estimate: dict) -> str:
    """`value [low, high]`, or the value alone without an interval."""
    if estimate.get("interval") is None:
        return f"{fmt(estimate['value'])} (no interval)"
    low, high = estimate["interval"]
    return f"{fmt(estimate['value'])} [{fmt(low)}, {fmt(high)}]"


def _published(**match) -> dict:
    """The one published entry with these fields (`published.json`)."""
    found = published.entries(**match)
    if len(found) != 1:
        raise ValueError(f"published.json has {len(found)} entries for {match}")
    return found[0]


def _comparison(name: str, estimate: dict, direction: int = 1) -> dict:
    """A compared quantity: `estimate` of a difference whose `direction` side is the
    paper's; stored oriented (positive = the paper's direction)."""
    interval = estimate.get("interval")
    oriented = None if interval is None else sorted(direction * x for x in interval)
    return {"name": name, "value": direction * estimate["value"], "interval": oriented,
            "verdict": intervals.verdict(oriented)}


def _row(claim, paper, ours, rule, comparisons=(), verdict=None, **extra) -> dict:
    comparisons = list(comparisons)
    return {"claim": claim, "paper": paper, "ours": ours, "rule": rule,
            "comparisons": comparisons,
            "verdict": verdict or intervals.combine([c["verdict"] for c in comparisons]),
            **extra}


def _not_run(claim, paper, rule) -> dict:
    return _row(claim, paper, "not run", rule, verdict=NOT_RUN)


def _compared(comparisons: list[dict]) -> str:
    return "; ".join(f"{c['name']} {fmt_estimate(c)}" for c in comparisons)


def claims(study: dict) -> list[dict]:
    """One row per claim of the paper (see the module docstring). `study` maps an
    analysis name to its result JSON and "<name>/per_example" to its arrays."""
    ensemble = _Ensemble.of(study, "ensemble")
    return [*_similarity_claims(study.get("similarity"),
                                study.get("similarity/per_example")),
            *(ensemble.claims() if ensemble else _Ensemble.not_run()),
            *_plane_claims(study.get("plane")),
            *_connector_claims(study.get("cross_section/independent"),
                               study.get("similarity")),
            *_ood_claims(study.get("ensemble"), study.get("ensemble/per_example")),
            *_bayesian_claims(ensemble, _Ensemble.of(study, "ensemble_variational"))]


# ---------------------------------------------------------------- similarity (Fig. 2-3)

def _similarity_claims(result, arrays) -> list[dict]:
    text = ("Along a trajectory, checkpoints stay closer in weight space to their own "
            "final solution than other runs' checkpoints at the same epoch (weight "
            "cosine, Fig. 2-3)",
            "… and in function space too: other runs' checkpoints disagree more with a "
            "solution than its own trajectory's, at the same epoch (Fig. 2-3)")
    rules = ("cosine(own checkpoint, own solution) - cosine(other run's checkpoint, "
             "solution) > 0, averaged over every epoch but the last (runs resampled)",
             "disagreement(other run's checkpoint, solution) - disagreement(own "
             "checkpoint, solution) > 0, averaged over every epoch but the last")
    paper = ("independent solutions ≈ 0 (Fig. 3); one trajectory high (Fig. 2)",
             "independent solutions disagree as much as early checkpoints (Fig. 2-3)")
    if not result or "whole_trajectories" not in result or arrays is None:
        return [_not_run(t, p, r) for t, p, r in zip(text, paper, rules)]
    whole, s = result["whole_trajectories"], result["summary"]
    runs = len(result["runs"])
    if runs < 2 or len(whole["epochs"]) < 2:
        return [_not_run(t, p, r) for t, p, r in zip(text, paper, rules)]
    cos = {k: np.asarray(v)[:, :-1] for k, v in whole["weight_cosine"].items()}
    within = np.asarray(arrays["disagreement_within"], np.float64)[:, :-1]
    across = np.asarray(arrays["disagreement_across_count"], np.float64)[:, :-1] / (runs - 1)
    weight = _comparison("own - other", intervals.difference(
        cos["within"], cos["across"], "similarity/cosine", examples=False))
    function = _comparison("other - own", intervals.difference(
        across, within, "similarity/disagreement"))
    first, last = whole["epochs"][0], whole["epochs"][-2]

    def per_epoch(table, i):
        return f"{fmt(np.mean(table['within'], axis=0)[i])} vs " \
               f"{fmt(np.mean(table['across'], axis=0)[i])}"

    return [
        _row(text[0], paper[0],
             f"own vs other at epoch {first}: {per_epoch(whole['weight_cosine'], 0)}, at "
             f"epoch {last}: {per_epoch(whole['weight_cosine'], -2)}; independent "
             f"solutions {fmt(s['independent_mean_weight_cosine'])}; difference "
             f"{fmt_estimate(weight)}", rules[0], [weight]),
        _row(text[1], paper[1],
             f"own vs other at epoch {first}: {per_epoch(whole['disagreement'], 0)}, at "
             f"epoch {last}: {per_epoch(whole['disagreement'], -2)}; independent "
             f"solutions {fmt(s['independent_mean_disagreement'])}; difference "
             f"{fmt_estimate(function)}", rules[1], [function]),
    ]


# ---------------------------------------------------------------- ensembles (Fig. 8-9)

class _Ensemble:
    """An ensemble analysis's result and per-example arrays, with the lookups the
    rules share."""

    def __init__(self, result: dict, arrays):
        self.result, self.arrays = result, arrays
        self.values, self.summary = result["metrics"], result["summary"]
        self.size, self.intensities = self.summary["ensemble_size"], self.summary["intensities"]

    @classmethod
    def of(cls, study: dict, name: str) -> "_Ensemble | None":
        result, arrays = study.get(name), study.get(f"{name}/per_example")
        return cls(result, arrays) if result and arrays is not None else None

    def has(self, key: str) -> bool:
        return key in self.arrays

    def get(self, key: str) -> np.ndarray:
        return np.asarray(self.arrays[key], np.float64)

    def largest(self, name: str, intensity: int = 0) -> int | None:
        """The largest size k whose per-example values `name` has."""
        sizes = [int(k.split("/")[2]) for k in self.arrays
                 if k.startswith(f"{intensity}/{name}/") and k.split("/")[2].isdigit()]
        return max(sizes) if sizes else None

    def accuracy(self, name: str, k=1) -> float | None:
        entry = self.values.get(name, {}).get(str(k), {})
        return entry.get(names.metric_key("accuracy"))

    def lowest_run_accuracy(self) -> float:
        return float(self.get("0/independent/members/accuracy").mean(axis=1).min())

    def in_band(self, accuracy: float) -> bool:
        """Matched accuracy: at most ACCURACY_BAND below the least accurate run."""
        return accuracy >= self.lowest_run_accuracy() - ACCURACY_BAND

    def band(self, sets) -> tuple[list[str], dict[str, float]]:
        """The sets whose single functions' clean accuracy is `in_band`, and those
        outside it, with theirs."""
        present = [s for s in sets if self.has(f"0/{s}/js")]
        inside = [s for s in present if self.in_band(self.accuracy(s))]
        return inside, {s: self.accuracy(s) for s in present if s not in inside}

    def js_comparisons(self, sets, intensities) -> list[dict]:
        """JS(independent) minus JS(each set) at each intensity; on the clean set the
        name gives the set's single-function accuracy (a set of near-copies of the run
        is trivially less diverse: the plane tests the whole range)."""
        return [_comparison(f"{_LABELS[s]}" + (f" (intensity {i})" if i else
                                               f" (accuracy {fmt(self.accuracy(s))})"),
                            intensities_difference(self, "independent/js", f"{s}/js", i))
                for i in intensities for s in sets]

    @staticmethod
    def not_run() -> list[dict]:
        return [_not_run(t, p, r) for t, p, r in _ENSEMBLE_TEXT]

    def claims(self) -> list[dict]:
        return [self._js_clean(), self._js_shifted(), self._js_grows(),
                self._ensembling(), self._rivals(), self._complementary()]

    def _outside(self, outside: dict) -> str:
        return ("; outside the band: " + ", ".join(
            f"{_LABELS[s]} (accuracy {fmt(a)})" for s, a in outside.items())) if outside else ""

    def _js_clean(self) -> dict:
        text, paper, rule = _ENSEMBLE_TEXT[0]
        inside, outside = self.band(PAPER_SETS)
        found = self.js_comparisons(inside, [0])
        ours = (f"JS independent {fmt(self.get('0/independent/js').mean())}; "
                f"independent minus each set {_compared(found)}" + self._outside(outside)
                + f" (lowest run accuracy {fmt(self.lowest_run_accuracy())})")
        return _row(text, paper, ours, rule, found,
                    None if found else INCONCLUSIVE, outside_band=outside,
                    paper_quantity_differs=True)

    def _js_shifted(self) -> dict:
        text, paper, rule = _ENSEMBLE_TEXT[1]
        shifted = self.intensities[1:]
        if not shifted:
            return _not_run(text, paper, rule)
        inside, outside = self.band(PAPER_SETS)
        found = self.js_comparisons(inside, shifted)
        return _row(text, paper, _compared(found) + self._outside(outside), rule, found,
                    None if found else INCONCLUSIVE, outside_band=outside,
                    paper_quantity_differs=True)

    def _js_grows(self) -> dict:
        text, paper, rule = _ENSEMBLE_TEXT[2]
        top = self.intensities[-1]
        if not top:
            return _not_run(text, paper, rule)
        shifted, clean = self.get(f"{top}/independent/js"), self.get("0/independent/js")
        c = _comparison(f"intensity {top} - clean", intervals.difference(
            shifted, clean, "js_grows", paired=shifted.shape == clean.shape))
        return _row(text, paper, f"{fmt(self.get('0/independent/js').mean())} → "
                    f"{fmt(self.get(f'{top}/independent/js').mean())}; difference "
                    f"{fmt_estimate(c)}", rule, [c], paper_quantity_differs=True)

    def _ensembling(self) -> dict:
        text, paper, rule = _ENSEMBLE_TEXT[3]
        best = int(np.argmax(self.get("0/independent/members/accuracy").mean(axis=1)))
        found = []
        for i in self.intensities:
            for metric, direction in (("accuracy", 1), ("nll", -1), ("brier", -1)):
                found.append(_comparison(
                    f"{metric} (intensity {i})",
                    intervals.difference(
                        self.get(f"{i}/independent/{self.size}/{metric}"),
                        self.get(f"{i}/independent/members/{metric}")[best],
                        f"ensembling/{metric}/{i}"), direction))
        return _row(text, paper, f"{self.size} runs vs the best run (seed index {best}), "
                    f"ensemble minus best (better positive): {_compared(found)}", rule,
                    found)

    def _rivals(self) -> dict:
        text, paper, rule = _ENSEMBLE_TEXT[4]
        found = []
        for s in PAPER_SETS:
            k = self.largest(s)
            if k is None or k < 2 or not self.has(f"0/independent/{k}/accuracy"):
                continue
            found.append(_comparison(f"{_LABELS[s]} (k={k})", intervals.difference(
                self.get(f"0/independent/{k}/accuracy"), self.get(f"0/{s}/{k}/accuracy"),
                f"rivals/{s}")))
        return _row(text, paper, "independent minus each set (accuracy): " +
                    (_compared(found) or "no set of two or more"), rule, found,
                    None if found else NOT_RUN)

    def _complementary(self) -> dict:
        text, paper, rule = _ENSEMBLE_TEXT[5]
        k = self.size
        found = [_comparison(f"independent+{_LABELS.get(s, s)}", intervals.difference(
            self.get(f"0/independent+{s}/{k}/brier"), self.get(f"0/independent/{k}/brier"),
            f"complementary/{s}"), -1)
            for s in [m for m in _SUBSPACE_SETS if self.has(f"0/independent+{m}/{k}/brier")]]
        verdicts = [c["verdict"] for c in found]
        verdict = (NOT_RUN if not found else HOLDS if HOLDS in verdicts else
                   DOES_NOT_HOLD if all(v == DOES_NOT_HOLD for v in verdicts)
                   else INCONCLUSIVE)
        return _row(text, paper, f"Brier, independent (k={k}) minus independent+<set> "
                    f"(better positive): {_compared(found) or 'no subspace samples'}",
                    rule, found, verdict)


_SUBSPACE_SETS = ("random", "dropout", "diagonal_gaussian", "low_rank_gaussian",
                  "weight_average")


def intensities_difference(ensemble: _Ensemble, a: str, b: str, intensity: int) -> dict:
    """mean(a) - mean(b) at `intensity`, on the same examples."""
    return intervals.difference(ensemble.get(f"{intensity}/{a}"),
                                ensemble.get(f"{intensity}/{b}"), f"{a}-{b}/{intensity}")


def _paper_js(intensity: int) -> str:
    def js(method):
        return _published(**_PAPER_SETTING, method=method, metric="js_divergence",
                          intensity=intensity)["value"]
    return ", ".join(f"{_LABELS.get(m, m)} {fmt(js(m))} ({n} functions)"
                     for m, n in PAPER_JS_SIZES.items())


def _paper_range(size: int, metric: str) -> str:
    lo, hi = _published(**_PAPER_SETTING, method="independent", ensemble_size=size,
                        intensity=0, metric=metric)["range"]
    return f"{lo:.3f}-{hi:.3f}"


_SETS_RULE = (f"independent's JS minus each of trajectory, random, diagonal and low-rank "
              f"(sets as large as the independent one; only sets whose functions are at "
              f"most {ACCURACY_BAND} less accurate than the least accurate run)")
_ENSEMBLE_TEXT = (
    ("Independent runs are more diverse than one trajectory and than the subspace "
     "samples at matched accuracy (JS divergence, clean test set, Fig. 9)",
     f"MediumCNN, CIFAR-10: {_paper_js(0)}; a different quantity (other set sizes)",
     _SETS_RULE + " > 0 on the clean test set"),
    ("… at every corruption intensity (Fig. 9)",
     f"intensity 5: {_paper_js(5)}", _SETS_RULE + " > 0 at every intensity"),
    ("The diversity of independent runs grows with the shift (Fig. 9)",
     "0.274 → 0.377 (5 runs, intensity 0 → 5)",
     "JS(independent) at the highest intensity minus on the clean test set > 0 (the same "
     "test images)"),
    ("Ensembling independent runs beats the best single run in accuracy, NLL and Brier "
     "at every intensity (Fig. 8)",
     f"5 runs vs 1: accuracy {_paper_range(5, 'accuracy')} vs "
     f"{_paper_range(1, 'accuracy')}, Brier {_paper_range(5, 'brier')} vs "
     f"{_paper_range(1, 'brier')} (clean)",
     "the largest ensemble minus the run most accurate on the clean test set, better "
     "positive, for accuracy, NLL and Brier at every intensity (corrupted: per test "
     "image, the mean over types)"),
    ("An ensemble of independent runs beats one of the same size drawn from one "
     "trajectory or one subspace (Fig. 8)", "figures",
     "clean accuracy of the independent k-ensemble minus that of the trajectory's and "
     "each subspace's k-ensemble > 0, k the largest size both have"),
    ("Subspace sampling and ensembling are complementary: ensembling each run's "
     "subspace samples first improves the independent ensemble (Fig. 8)", "figures",
     "some independent+<subspace> ensemble's clean Brier score is lower than the "
     "independent ensemble's of the same size (holds when one interval is; does not "
     "hold when every one is higher)"),
)


# ---------------------------------------------------------------- the plane (Fig. 5)

def _plane_claims(result) -> list[dict]:
    text = ("On the diversity-accuracy plane, samples as accurate as the independent "
            "optima are less diverse than them (Fig. 5)",
            "Independent optima's normalised diversity (Fig. 5)")
    rules = ("for every sampler with samples within 0.02 of the optima's accuracies: the "
             "optima's mean normalised diversity minus the in-band samples' mean > 0 "
             "(samples and optima resampled); samplers without such samples are listed "
             "with their nearest accuracy",
             "the interval of the optima's mean meets the paper's range (same model, "
             "dataset and split only)")
    paper_ranges = {(e["model"], e["dataset"], e.get("split")): e["range"]
                    for e in published.load()["entries"]
                    if e["metric"] == "plane_normalized_diversity"}
    paper_text = "; ".join(f"{m} {d}" + (f" ({s})" if s else "") + f": {lo:.2f}-{hi:.2f}"
                           for (m, d, s), (lo, hi) in paper_ranges.items())
    if not result or not result.get("independent"):
        return [_not_run(text[0], "every sample below the optima", rules[0]),
                _not_run(text[1], paper_text, rules[1])]
    s = result["summary"]
    optima = np.array([p["normalized_diversity"] for p in result["independent"]])
    low, high = s["independent_accuracy_band"]
    found, outside = [], {}
    for method in s["methods"]:
        points = [p for p in result["samples"] if p["method"] == method]
        near = np.array([p["normalized_diversity"] for p in points
                         if low <= p["accuracy"] <= high])
        near = near[~np.isnan(near)]
        if len(near):
            found.append(_comparison(f"{method} ({len(near)} in band)", intervals.difference(
                optima, near, f"plane/{method}", paired=False)))
        else:
            nearest = min((p["accuracy"] for p in points),
                          key=lambda a: min(abs(a - low), abs(a - high)))
            outside[method] = nearest
    ours = (f"optima {fmt(optima.mean())} (accuracy {fmt(low + 0.02)}-{fmt(high - 0.02)}); "
            f"optima minus in-band samples: {_compared(found) or 'none in band'}" +
            ("; no sample in the band: " + ", ".join(
                f"{m} (nearest accuracy {fmt(a)})" for m, a in outside.items())
             if outside else ""))
    setting = (result.get("model"), result.get("dataset"), result["splits"]["reported"])
    paper = paper_ranges.get(setting)
    mean = intervals.mean(optima, "plane/optima", examples=False)
    if paper:
        meets = mean["interval"] is None or (mean["interval"][0] <= paper[1] and
                                             mean["interval"][1] >= paper[0])
        verdict = HOLDS if meets else DOES_NOT_HOLD
    else:
        verdict = NOT_RUN
    return [
        _row(text[0], "every sample below the optima at the same accuracy", ours, rules[0],
             found, None if found else INCONCLUSIVE, outside_band=outside),
        _row(text[1], paper_text, f"{fmt_estimate(mean)} ({setting[0]} on {setting[1]} "
             f"{setting[2]})" + ("" if paper else "; the paper has no number for this "
                                                  "setting"),
             rules[1], verdict=verdict,
             comparisons=[{"name": "optima's mean", **mean, "verdict": verdict}]),
    ]


# ---------------------------------------------------------------- connectors (v2)

def _connector_claims(result, similarity) -> list[dict]:
    text = ("A low-loss path connects two independent solutions (v2, Bezier connector)",
            "… but the functions along it are not the endpoints' (v2)")
    rules = ("the connector's lowest accuracy minus the straight line's lowest > 0, and "
             "minus (the worse endpoint's - 0.05) > 0 (normal intervals for proportions)",
             "along the connector, the largest min(disagreement with either end) minus "
             "the disagreement of the last checkpoint before the end with the solution > 0")
    paper = ("connectors exist (v2)", "they do not connect in prediction space (v2)")
    if not result or "bezier" not in result["summary"]:
        return [_not_run(t, p, r) for t, p, r in zip(text, paper, rules)]
    s, n = result["summary"], result.get("num_examples")
    bezier, line = s["bezier"], s["linear"]
    worst_end = min(bezier["endpoint_accuracy"])
    away = bezier["max_over_path_of_min_disagreement_with_endpoints"]
    path = [_comparison("minus straight line", intervals.proportion_difference(
        bezier["min_accuracy"], line["min_accuracy"], n)),
        _comparison("minus (endpoint - 0.05)", intervals.proportion_difference(
            bezier["min_accuracy"], worst_end - 0.05, n))]
    rows = [_row(text[0], paper[0], f"Bezier lowest accuracy {fmt(bezier['min_accuracy'])}, "
                 f"endpoints {fmt(worst_end)}+, straight line lowest "
                 f"{fmt(line['min_accuracy'])}: {_compared(path)}", rules[0], path)]
    whole = (similarity or {}).get("whole_trajectories")
    if whole is None or len(whole["epochs"]) < 2:
        return rows + [_not_run(text[1], paper[1], rules[1])]
    late = float(np.mean(np.asarray(whole["disagreement"]["within"])[:, -2]))
    c = _comparison("path minus late trajectory",
                    intervals.proportion_difference(away, late, n))
    return rows + [_row(text[1], paper[1], f"{fmt(away)} vs late trajectory {fmt(late)}: "
                        f"{fmt_estimate(c)}", rules[1], [c])]


# ---------------------------------------------------------------- out of distribution

def _auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Exact AUROC of scores, out-of-distribution as positive (ties count one half)."""
    ordered = np.sort(inside)
    below = np.searchsorted(ordered, outside, side="left")
    equal = np.searchsorted(ordered, outside, side="right") - below
    return float((below + equal / 2).sum() / (len(inside) * len(outside)))


def _ood_claims(result, arrays) -> list[dict]:
    text = ("Independent runs disagree more on out-of-distribution inputs than on "
            "their own test set",
            "The ensemble detects out-of-distribution inputs better than one model")
    rules = ("JS(independent) out of distribution minus in distribution > 0, every "
             "pairing (each side's examples resampled apart)",
             "exact AUROC of uncertainty-baselines' score (1 - maximum probability): the "
             "largest ensemble's minus one run's (mean over runs) > 0, every pairing")
    paper = ("SVHN as out-of-distribution data (figure)", "—")
    found = (result or {}).get("ood")
    if not found or arrays is None:
        return [_not_run(t, p, r) for t, p, r in zip(text, paper, rules)]
    size = result["summary"]["ensemble_size"]
    js, auroc = [], []
    for name in found:
        prefix = f"ood/{name}/independent"
        js.append(_comparison(name, intervals.difference(
            arrays[f"{prefix}/js_out"], arrays[f"{prefix}/js_in"], f"ood/js/{name}",
            paired=False)))
        single = (arrays[f"{prefix}/1/score_in"], arrays[f"{prefix}/1/score_out"])
        full = (arrays[f"{prefix}/{size}/score_in"], arrays[f"{prefix}/{size}/score_out"])

        def gain(ex, _, single=single, full=full):
            def mean_auroc(scores):
                return np.mean([_auroc(i[ex[0]], o[ex[1]]) for i, o in zip(*scores)])
            return mean_auroc(full) - mean_auroc(single)

        every = [np.arange(len(single[0][0])), np.arange(len(single[1][0]))]
        estimate = {"value": gain(every, None), "interval": intervals.bootstrap(
            gain, [len(single[0][0]), len(single[1][0])], (), f"ood/auroc/{name}")}
        auroc.append(_comparison(f"{name} (k={size} minus k=1)", estimate))
    return [_row(text[0], paper[0], f"out minus in: {_compared(js)}", rules[0], js),
            _row(text[1], paper[1], _compared(auroc), rules[1], auroc)]


# ---------------------------------------------------------------- Bayesian baselines

def _ub(method: str, size: int, metric: str) -> float:
    return _published(source="uncertainty_baselines", model="wide_resnet28_10",
                      dataset="cifar10", method=method, ensemble_size=size, intensity=0,
                      metric=metric)["value"]


_BAYES_TEXT = (
    ("Independent runs are more diverse than the Bayesian baselines' functions at matched "
     "accuracy: MC dropout, the dropout sampler and VI's posterior draws (JS divergence)",
     "figures (Sec. 4)",
     f"independent's JS minus each baseline's (one run's functions in sets as large as "
     f"the independent one; only baselines whose functions are at most {ACCURACY_BAND} "
     f"less accurate than the least accurate run)"),
    ("Deep ensembles beat the Bayesian baselines: MC dropout and mean-field VI",
     "uncertainty-baselines WRN-28-10 (accuracy / NLL): " + ", ".join(
         f"{label} {fmt(_ub(method, size, 'accuracy'))} / {fmt(_ub(method, size, 'nll'))}"
         for label, method, size in (("ensemble of 4", "independent", 4),
                                     ("MC dropout", "independent+mc_dropout", 1),
                                     ("VI", "variational", 1))),
     "the independent ensemble's clean accuracy minus, and NLL below, one run's MC-dropout "
     "predictive and one variational run's posterior predictive (each at its number of "
     "draws; those this study ran)"),
)


def _bayesian_claims(ensemble: _Ensemble | None, variational: _Ensemble | None
                     ) -> list[dict]:
    if ensemble is None:
        return [_not_run(*t) for t in _BAYES_TEXT]
    return [_bayesian_diversity(ensemble, variational),
            _bayesian_performance(ensemble, variational)]


def _bayesian_diversity(ensemble: _Ensemble, variational: _Ensemble | None) -> dict:
    text, paper, rule = _BAYES_TEXT[0]
    inside, outside = ensemble.band(BAYESIAN_SETS)
    found = ensemble.js_comparisons(inside, [0])
    notes = []
    if variational and variational.has("0/variational/js"):
        runs = len(variational.result["runs"])
        if runs == len(ensemble.result["runs"]):
            if ensemble.in_band(variational.accuracy("variational")):
                found.append(_comparison("VI", intervals.difference(
                    ensemble.get("0/independent/js"), variational.get("0/variational/js"),
                    "bayes/js/variational")))
            else:
                outside["variational"] = variational.accuracy("variational")
        else:
            notes.append(f"VI not compared: its draws are grouped by its {runs} runs, "
                         f"the independent set has {len(ensemble.result['runs'])}")
    ours = (f"independent minus each: {_compared(found) or 'none in band'}" +
            ensemble._outside(outside) + "".join(f"; {n}" for n in notes))
    if not found and not outside:
        return _row(text, paper, ours if notes else "not run", rule, verdict=NOT_RUN)
    return _row(text, paper, ours, rule, found, None if found else INCONCLUSIVE,
                outside_band=outside)


def _bayesian_performance(ensemble: _Ensemble, variational: _Ensemble | None) -> dict:
    text, paper, rule = _BAYES_TEXT[1]
    rivals = [(label, ensemble, name) for label, name in (("MC dropout", "mc_dropout"),)
              if ensemble.has(f"0/{name}/predictive/accuracy")]
    if variational and variational.has("0/variational/predictive/accuracy"):
        rivals.append(("VI", variational, "variational"))
    if not rivals:
        return _not_run(text, paper, rule)
    k = ensemble.size
    found = []
    for label, source, name in rivals:
        draws = source.result["subspace_samples_per_run"][name]
        for metric, direction in (("accuracy", 1), ("nll", -1)):
            found.append(_comparison(f"{label} ({draws} draws) {metric}", intervals.difference(
                ensemble.get(f"0/independent/{k}/{metric}"),
                source.get(f"0/{name}/predictive/{metric}"), f"bayes/{name}/{metric}"),
                direction))
    return _row(text, paper, f"ensemble of {k} minus each (better positive): "
                f"{_compared(found)}", rule, found, paper_quantity_differs=True)
