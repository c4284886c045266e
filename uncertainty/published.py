"""The published numbers this project is compared against (PAPER.md), as data.

`uncertainty/data/published.json` holds one entry per number: where it comes from,
model, dataset, method, ensemble size and corruption intensity where they apply, the
metric, and a `value` or a `range` (numbers read off the paper's figures are +-0.005).
"""

import json
import os

_PATH = os.path.join(os.path.dirname(__file__), "data", "published.json")


def load() -> dict:
    with open(_PATH) as f:
        return json.load(f)


def entries(**match) -> list[dict]:
    """The entries whose fields equal every `match` item (e.g. metric="accuracy")."""
    return [e for e in load()["entries"]
            if all(e.get(key) == value for key, value in match.items())]
