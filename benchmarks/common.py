"""What every benchmark shares: the machine it ran on, a median timer, a JSON writer."""

import json
import os
import platform
import statistics
import time

from uncertainty.cli import startup

os.environ.setdefault(startup.LEGACY_KERAS, "1")  # as the binaries start (before TF)


def machine() -> dict:
    """CPU model, core count and whether it has AVX-512 (epochs differ ~3.5x on CPU)."""
    model, flags = "", ""
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name") and not model:
                    model = line.split(":", 1)[1].strip()
                if line.startswith("flags") and not flags:
                    flags = line
    return {"cpu": model or platform.processor(), "cores": os.cpu_count(),
            "avx512f": " avx512f " in f" {flags} "}


def write(path: str, report: dict) -> None:
    with open(path, "w") as f:
        json.dump(report, f, indent=2, sort_keys=True)
    print(json.dumps(report, indent=2, sort_keys=True))


def median_seconds(call, repeats: int):
    """(median seconds of `repeats` calls of `call` after one untimed call, the last
    call's result)."""
    result = call()
    seconds = []
    for _ in range(repeats):
        began = time.perf_counter()
        result = call()
        seconds.append(time.perf_counter() - began)
    return statistics.median(seconds), result


# Input shape and classes of the datasets whose models the benchmarks build.
SHAPES = {"imagenet2012": ((224, 224, 3), 1000), "cifar10": ((32, 32, 3), 10),
          "mnist1d": ((40, 1), 10)}


def model_and_optimizer(dataset: str, model_name: str):
    """(the recipe's config, the model at `dataset`'s shape, its optimizer with every
    slot built): a run's whole training state, as the trainer makes it."""
    from uncertainty import models
    from uncertainty.train import loop, train_config

    config = train_config.TrainConfig.from_recipe(dataset, model_name, seed=0)
    model = models.build(model_name, *SHAPES[dataset])
    optimizer = loop.make_optimizer(config.optimizer, config.learning_rate, config.momentum)
    optimizer.build(model.trainable_variables)
    return config, model, optimizer
