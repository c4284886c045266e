r"""Peak host memory (RSS) of a training run against the size of its training split.

Runs `baselines/train.py` (SmallCNN, Fashion-MNIST, one epoch) on the whole training
split and on its first half, each in a fresh process, and reports each process's peak
resident set size, streaming (`--cache_data_mb=0`: examples read by index from the
TFDS data source at every step, the path of any split larger than the cache) and with
the default cache (a split this small is read once into host memory). Streaming, the
peak should not grow with the split; the split's own size is printed beside it.

  python benchmarks/memory.py --output=benchmarks/memory.json
"""

import json
import os
import subprocess
import sys
import tempfile

from absl import app, flags

flags.DEFINE_string("model", "small_cnn", "Model to train.")
flags.DEFINE_integer("epochs", 1, "Epochs per run.")
flags.DEFINE_string("output", "benchmarks/memory.json", "Where to write the JSON.")
FLAGS = flags.FLAGS

_REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_FULL = 59500  # Fashion-MNIST training examples after the 500 validation ones
_PEAK = ("import resource, subprocess, sys; r = subprocess.run(sys.argv[1:]); "
         "print(resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss, r.returncode)")


def peak_rss_mb(train_examples: int, output_dir: str, cache_mb: int) -> float:
    """Peak RSS (MB) of one train.py process on the first `train_examples`."""
    command = [sys.executable, "-c", _PEAK, sys.executable,
               os.path.join(_REPO, "baselines", "train.py"), "--dataset=fashion_mnist",
               f"--model={FLAGS.model}", f"--train_epochs={FLAGS.epochs}",
               f"--train_examples={train_examples}", f"--output_dir={output_dir}",
               f"--cache_data_mb={cache_mb}"]
    done = subprocess.run(command, capture_output=True, text=True, check=True)
    kilobytes, returncode = done.stdout.split()[-2:]
    if returncode != "0":
        raise RuntimeError(f"train.py failed:\n{done.stdout[-2000:]}")
    return int(kilobytes) / 1024


def main(_):
    results = {"model": FLAGS.model, "epochs": FLAGS.epochs, "runs": []}
    with tempfile.TemporaryDirectory() as scratch:
        for cache_mb, mode in ((0, "streaming"), (1024, "cached")):
            for examples in (_FULL, _FULL // 2):
                peak = peak_rss_mb(examples, os.path.join(scratch, f"{mode}{examples}"),
                                   cache_mb)
                split_mb = examples * 28 * 28 / 2 ** 20
                results["runs"].append({"mode": mode, "cache_data_mb": cache_mb,
                                        "train_examples": examples, "peak_rss_mb": peak,
                                        "split_uint8_mb": split_mb})
                print(f"{mode}: {examples} training examples ({split_mb:.0f} MB of "
                      f"pixels): peak RSS {peak:.0f} MB")
            full, half = (run["peak_rss_mb"] for run in results["runs"][-2:])
            results[f"{mode}_peak_ratio_full_to_half"] = full / half
            print(f"{mode}: full / half peak RSS {full / half:.3f}")
    with open(FLAGS.output, "w") as f:
        json.dump(results, f, indent=2, sort_keys=True)


if __name__ == "__main__":
    app.run(main)
