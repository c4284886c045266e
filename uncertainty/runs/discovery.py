"""Finding runs under the paths a user names, and refusing runs that cannot be
compared (different settings, missing checkpoints, failed training, other data)."""
import os

from uncertainty.infra import files
from uncertainty.infra.errors import UserError
from uncertainty.runs import checkpoints, layout

# Config fields that must agree for runs to be compared on the same examples.
SAME_FIELDS = ("dataset", "data_source", "model", "validation_examples", "train_examples",
               "method")


def find_runs(paths: list[str]) -> list[str]:
    """Run directories named in `paths`: each a run, or a folder of runs (sorted)."""
    runs = []
    for path in paths:
        if files.exists(os.path.join(path, layout.CONFIG)):
            runs.append(path)
        elif files.isdir(path):
            found = sorted(os.path.join(path, d) for d in files.listdir(path)
                           if files.exists(os.path.join(path, d, layout.CONFIG)))
            if not found:
                raise UserError(f"{path} holds no run directories (no */config.json); "
                                f"pass runs made by baselines/train.py")
            runs.extend(found)
        else:
            raise UserError(f"{path} does not exist; pass run directories or a folder of "
                            f"them")
    return runs


def check_runs(runs: list[str], minimum: int = 2, allow_failed: bool = False) -> dict:
    """Refuses too few runs, runs that differ in SAME_FIELDS, gaps in checkpoints, or
    (unless `allow_failed`) runs whose training failed. Returns the shared config
    values."""
    if len(runs) < minimum:
        raise UserError(f"need at least {minimum} runs to compare, got {len(runs)}; "
                        f"train more seeds with baselines/train.py")
    for run in runs:
        status = layout.read_status(run)
        if status.get("state") == "failed" and not allow_failed:
            raise UserError(f"{run} failed in training ({status.get('reason', '?')}); "
                            f"retrain it, leave it out, or pass --allow_failed_runs to "
                            f"analyse its checkpoints up to the failure")
    configs = {run: {**layout.read_config(run), "method": layout.method(run)} for run in runs}
    first = configs[runs[0]]
    for run, config in configs.items():
        for field in SAME_FIELDS:
            if config.get(field) != first.get(field):
                raise UserError(f"runs differ in {field}: {runs[0]} has {first.get(field)!r}, "
                                f"{run} has {config.get(field)!r}; compare runs of one setting")
        available = checkpoints.epochs(run)
        if available != list(range(1, len(available) + 1)) or not available:
            raise UserError(f"{run} has missing checkpoints (epochs {available}); finish or "
                            f"re-run it with baselines/train.py")
    return {field: first.get(field) for field in SAME_FIELDS}


def check_source(run: str, data) -> None:
    """Refuses data loaded from another source than the run's (other example order)."""
    source = layout.read_config(run).get("data_source")
    if source != data.source:
        raise UserError(f"the runs were trained on {data.name} from {source!r} but here it "
                        f"loads from {data.source!r}, whose examples are in another order; "
                        f"point the data flags at the runs' source")

