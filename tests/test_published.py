"""The published-numbers data file holds PAPER.md's figures."""

from uncertainty import published


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
