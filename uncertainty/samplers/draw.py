"""Drawing functions around a run: the records that make each draw reproducible
(`draw`, `draw_model_samples`), their logits through the run's prediction cache
(`sample_logits`), and `sample_functions`, which also applies the notebook's acceptance
rule and places each function on the diversity-accuracy plane.
"""
import numpy as np
from absl import logging

from uncertainty.core import diversity, metrics, seeding
from uncertainty.datasets import Dataset
from uncertainty.infra import files, progress
from uncertainty.infra.errors import UserError
from uncertainty.runs.predictions import RunPredictions
from uncertainty.samplers import catalog, subspace


def sample_logits(predictor: RunPredictions, space: subspace.Subspace, record: dict,
                  data: Dataset, split: str, bn_data: Dataset | None = None) -> np.ndarray:
    """Logits on `split` of the sample `record` (from `draw` or `sample_functions`):
    cached, and regenerated from its parameters only when not cached yet. Batch-norm
    statistics are re-estimated on `bn_data` when given."""
    params = record["params"]
    digests = space.digests[-len(params["epochs"]):]
    identity = {"params": params, "checkpoints": list(digests)}
    if params["method"] == "mc_dropout":
        pass_seed = seeding.integer(params["seed"], "mc_dropout", params["run"],
                                    params["index"], params["attempt"])
        return predictor.mc_dropout(data, split, record["key"], params["scale"],
                                    pass_seed, identity, params["epochs"][-1], bn_data)
    return predictor.vector(data, split, record["key"],
                            lambda: subspace.regenerate(space, params), identity,
                            bn_data=bn_data)


def _record(space: subspace.Subspace, spec: catalog.SamplerSpec, seed: int, index: int,
            attempt: int, bn_data: Dataset | None) -> dict:
    """The record of one draw: its scale, parameters (all its randomness derives from
    them) and cache key."""
    scale_rng, _ = subspace.streams(seed, space, spec.method, index, attempt)
    params = {"method": spec.method, "scale": spec.draw_scale(scale_rng), "seed": seed,
              "run": space.run, "index": index, "attempt": attempt,
              "epochs": subspace.checkpoint_epochs(space, spec.method),
              "batchnorm_reestimated": bn_data is not None}
    if spec.method == "low_rank_gaussian":
        params.update(rank=spec.rank, low_rank_scaling=spec.low_rank_scaling)
    return {"method": spec.method, "index": index, "tries": attempt + 1,
            "scale": params["scale"], "params": params,
            "key": f"subspace/{spec.method}/" + files.digest(params)[:16]}


def draw(space: subspace.Subspace, spec: catalog.SamplerSpec, num_samples: int, seed: int,
         bn_data: Dataset | None = None, run: str = "the base run") -> list[dict]:
    """The records of `num_samples` draws of `spec` (resolved for `subspace`, whose
    run `run` names in errors), without the acceptance rule; their logits come from
    `sample_logits`."""
    spec = subspace.resolve(space, spec, run)
    count = 1 if spec.method == "weight_average" else num_samples
    return [_record(space, spec, seed, i, 0, bn_data) for i in range(count)]


def draw_model_samples(run_dir: str, spec: catalog.SamplerSpec, num_samples: int, seed: int,
                       bn_data: Dataset | None = None) -> tuple[subspace.Subspace, list[dict]]:
    """A model method's (`MODEL_METHODS`) records around a run: its last checkpoint's
    subspace and `draw`'s records (posterior draws, or MC-dropout passes)."""
    space = subspace.fit(run_dir, 1)
    return space, draw(space, spec, num_samples, seed, bn_data, run_dir)


def sample_functions(predictor: RunPredictions, space: subspace.Subspace, spec: catalog.SamplerSpec,
                     num_samples: int, seed: int, data: Dataset, split: str,
                     base_logits: np.ndarray, extra_splits: tuple[str, ...] = (),
                     bn_data: Dataset | None = None) -> list[dict]:
    """Draws `num_samples` functions of `spec` around the predictor's run and returns,
    for each, its scale, cache key, parameters and place on the diversity-accuracy
    plane on `split` (relative to `base_logits`); `extra_splits` are predicted (and
    cached) too. With `spec.accept_threshold`, a draw whose accuracy on the validation
    split is below it is redrawn, up to `spec.accept_tries` times, and dropped if none
    passes (the notebook's rule); `split` must then be another split, so that no
    reported number was used to select. `bn_data` re-estimates batch-norm statistics
    for every sample.
    """
    if spec.accept_threshold is not None and split == catalog.SELECTION_SPLIT:
        raise UserError(f"the acceptance rule selects samples on the {catalog.SELECTION_SPLIT} "
                        f"split; report them on another (--split=test)")
    labels = data.labels(split)
    spec = subspace.resolve(space, spec, predictor.run_dir)
    draws = 1 if spec.method == "weight_average" else num_samples
    tries = spec.accept_tries if spec.accept_threshold is not None else 1
    results = []
    meter = progress.Progress(draws, f"{spec.method} samples", "sample")
    for i in range(draws):
        for attempt in range(tries):
            record = _record(space, spec, seed, i, attempt, bn_data)

            def logits_on(on_split, record=record):
                return sample_logits(predictor, space, record, data, on_split, bn_data)

            if spec.accept_threshold is not None:
                selection = metrics.accuracy(logits_on(catalog.SELECTION_SPLIT),
                                             data.labels(catalog.SELECTION_SPLIT))
                if selection < spec.accept_threshold:
                    logging.info("%s %d/%d: scale %.4g rejected (%s accuracy %.3f < %.3f, "
                                 "try %d)", spec.method, i + 1, draws, record["scale"],
                                 catalog.SELECTION_SPLIT, selection, spec.accept_threshold,
                                 attempt + 1)
                    continue
                record["selection_accuracy"] = selection
            for extra in extra_splits:
                logits_on(extra)
            results.append({**record, **diversity.point(logits_on(split), base_logits,
                                                        labels)})
            logging.info("%s %d/%d: scale %.4g, accuracy %.4f, normalised diversity %.3f",
                         spec.method, i + 1, draws, record["scale"],
                         results[-1]["accuracy"], results[-1]["normalized_diversity"])
            break
        meter.update()
    meter.close()
    return results

