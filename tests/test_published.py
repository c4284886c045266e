"""The published-numbers data file holds the paper's and uncertainty-baselines' numbers."""

from uncertainty.core import published


def test_published_numbers_match_the_paper():
    def one(**match):
        [entry] = published.entries(**match)
        return entry.get("value", entry.get("range"))

    assert one(model="medium_cnn", method="independent", ensemble_size=5, intensity=0,
               metric="accuracy") == [0.769, 0.773]
    assert one(model="medium_cnn", method="independent", ensemble_size=1, intensity=5,
               metric="brier") == [0.694, 0.757]
    js = {e["method"]: e["value"] for e in published.entries(metric="js_divergence",
                                                              intensity=5)}
    assert js == {"independent": 0.377, "trajectory": 0.147, "random": 0.123,
                  "low_rank_gaussian": 0.080, "low_rank_of_random": 0.049,
                  "diagonal_gaussian": 0.036}
    assert one(source="uncertainty_baselines", dataset="cifar100", metric="accuracy") == 0.827
    sources = published.load()["sources"]
    assert all(e["source"] in sources for e in published.load()["entries"])


def test_uncertainty_baselines_bayesian_rows_are_the_readme_s():
    """baselines/cifar/README.md: MC Dropout (size=1, size=30), Variational inference
    (sample=1) and Deterministic, WRN-28-10 on CIFAR-10: test NLL/accuracy/ECE and
    cNLL/cA/cCE."""
    rows = {}
    for e in published.entries(source="uncertainty_baselines", dataset="cifar10",
                               ensemble_size=1):
        rows.setdefault((e["method"], e["intensity"]), {})[e["metric"]] = e["value"]
    assert rows["mc_dropout", 0] == {"nll": 0.160, "accuracy": 0.959, "ece": 0.0241}
    assert rows["mc_dropout", "mean_corrupted"] == {"nll": 1.27, "accuracy": 0.688,
                                                    "ece": 0.166}
    assert rows["independent+mc_dropout", 0] == {"nll": 0.145, "accuracy": 0.961,
                                                 "ece": 0.019}
    assert rows["variational", 0] == {"nll": 0.211, "accuracy": 0.947, "ece": 0.029}
    assert rows["variational", "mean_corrupted"] == {"nll": 1.46, "accuracy": 0.713,
                                                     "ece": 0.181}
    assert rows["independent", "mean_corrupted"] == {"nll": 1.05, "accuracy": 0.761,
                                                     "ece": 0.153}


def test_uncertainty_baselines_imagenet_rows_are_the_readme_s():
    """baselines/imagenet/README.md, ResNet-50: ImageNet and ImageNet-C NLL / accuracy /
    ECE of Deterministic, Ensemble (size=4) and Monte Carlo Dropout (size=10)."""
    rows = {}
    for e in published.entries(source="uncertainty_baselines_imagenet"):
        assert (e["model"], e["dataset"]) == ("resnet50", "imagenet2012")
        rows.setdefault((e["method"], e["ensemble_size"], e["intensity"]), {})[
            e["metric"]] = e["value"]
    assert rows == {
        ("independent", 1, 0): {"nll": 0.939, "accuracy": 0.762, "ece": 0.032},
        ("independent", 1, "mean_corrupted"): {"nll": 3.21, "accuracy": 0.405, "ece": 0.103},
        ("independent", 4, 0): {"nll": 0.857, "accuracy": 0.779, "ece": 0.017},
        ("independent", 4, "mean_corrupted"): {"nll": 2.82, "accuracy": 0.449, "ece": 0.047},
        ("independent+mc_dropout", 1, 0): {"nll": 0.919, "accuracy": 0.766, "ece": 0.026},
        ("independent+mc_dropout", 1, "mean_corrupted"): {"nll": 2.96, "accuracy": 0.424,
                                                          "ece": 0.046}}
