"""The named scales of the one-command reproduction (`baselines/reproduce.py`) and the
stages each runs: which runs to train and which analyses to run on them, as the
command lines of the project's own binaries.

A scale fixes the dataset, the model, how many runs and how large every analysis is.
`quickstart`, `mnist1d` and `fmnist` (the default) run on a 2-core CPU; the `cifar10_*`
scales are the paper's studies (the paper's recipes and sample counts) for machines with
the data and an accelerator; `tiny` is the smoke test.
"""

import dataclasses
import os
import sys

from uncertainty.samplers import catalog

PAPER_METHODS = ",".join(catalog.PAPER_METHODS)
_PLANE_METHODS = ",".join(m for m in catalog.PAPER_METHODS if m != "weight_average")
# CPU networks (weight norm ~10): scales at which samples keep their run's accuracy
# within ~1-2 points, and plane scales that cover chance to the base's accuracy
# (docs/subspace.md).
_CPU_ENSEMBLE_SCALES = ("--random_scale=2", "--dropout_scale=0.02",
                        "--diagonal_gaussian_scale=0.4", "--low_rank_gaussian_scale=0.4")
_CPU_PLANE_SCALES = (f"--uniform_scales={_PLANE_METHODS}", "--dropout_scale=0.5")
# The paper's ensemble rule on CIFAR-10: random 10U, kept at validation accuracy >= 0.70.
_PAPER_ENSEMBLE_SCALES = ("--random_scale=10", "--accept_threshold=0.70")


@dataclasses.dataclass(frozen=True)
class Scale:
    """One study. train_flags go to every train.py call; plane/ensemble_scales to the
    subspace.py calls; corruptions to ensemble.py (--corruptions); variational_runs
    trains that many variational (TFP) runs beside the deterministic ones."""
    description: str
    dataset: str
    model: str
    num_runs: int = 5
    train_flags: tuple = ()
    num_checkpoints: int = catalog.NUM_CHECKPOINTS
    subspace_flags: tuple = ()
    plane_samples: int = 40
    plane_scales: tuple = _CPU_PLANE_SCALES
    ensemble_samples: int = 5
    ensemble_scales: tuple = _CPU_ENSEMBLE_SCALES
    posterior_samples: int = 10
    corruptions: str = "all"
    grid_points: int = 21
    path_points: int = 21
    connect_epochs: int = 10
    variational_runs: int = 0
    accelerator: bool = False  # the paper's scales: GPU/TPU and data the user provides


SCALES = {
    "tiny": Scale(
        "smoke test: 2 MNIST-1D runs of 3 epochs on 1,000 signals, every analysis at its "
        "smallest", "mnist1d", "cnn1d", num_runs=2,
        train_flags=("--train_epochs=3", "--train_examples=1000"), num_checkpoints=3,
        subspace_flags=("--rank=2",),
        plane_samples=3, ensemble_samples=2, posterior_samples=2,
        corruptions="gaussian_noise", grid_points=4, path_points=4, connect_epochs=1,
        variational_runs=2),
    "quickstart": Scale(
        "CNN-1D on MNIST-1D, 3 runs of the full recipe (30 epochs), every analysis at "
        "its smallest useful size", "mnist1d", "cnn1d", num_runs=3, plane_samples=10,
        ensemble_samples=3, posterior_samples=3, corruptions="gaussian_noise,shift",
        grid_points=11, path_points=11, connect_epochs=5),
    "mnist1d": Scale(
        "CNN-1D on MNIST-1D, 5 runs of the full recipe (30 epochs) and 2 variational "
        "ones, every analysis at full size", "mnist1d", "cnn1d", variational_runs=2),
    "fmnist": Scale(
        "SmallCNN on Fashion-MNIST, 5 runs of the paper's SmallCNN recipe (10 epochs) "
        "and 2 variational ones, every analysis at CPU size", "fashion_mnist", "small_cnn",
        plane_samples=20, ensemble_samples=2,
        corruptions="gaussian_noise,contrast,zoom_blur", posterior_samples=5,
        grid_points=13, path_points=13, connect_epochs=5, variational_runs=2),
    "cifar10_small_cnn": Scale(
        "the paper's SmallCNN on CIFAR-10 (10 epochs), samples and CIFAR-10-C at the "
        "paper's size", "cifar10", "small_cnn", plane_scales=(), ensemble_samples=30,
        ensemble_scales=_PAPER_ENSEMBLE_SCALES, accelerator=True),
    "cifar10_medium_cnn": Scale(
        "the paper's MediumCNN on CIFAR-10 (40 epochs; the authors' notebook), samples "
        "and CIFAR-10-C at the paper's size", "cifar10", "medium_cnn", plane_scales=(),
        ensemble_samples=30, ensemble_scales=_PAPER_ENSEMBLE_SCALES, variational_runs=5,
        accelerator=True),
    "cifar10_resnet20": Scale(
        "the paper's ResNet20v1 on CIFAR-10 (200 epochs), samples (batch-norm statistics "
        "re-estimated) and CIFAR-10-C at the paper's size", "cifar10", "resnet20_v1",
        plane_scales=(), ensemble_samples=30, ensemble_scales=_PAPER_ENSEMBLE_SCALES,
        accelerator=True),
}
DEFAULT = "fmnist"


# Between the calls of a stage that runs several in one process.
SEPARATOR = ":::"


@dataclasses.dataclass(frozen=True)
class Stage:
    """One step of a study: calls of binaries of baselines/ (`calls`: (binary, flags)
    each) and the stages whose outputs it reads (`needs`: it starts once they have
    finished). A stage of several calls runs them one after another in one process
    (`uncertainty.cli.binaries`), which starts TensorFlow once."""
    name: str
    calls: tuple
    needs: tuple = ()

    @property
    def arguments(self) -> tuple:
        """What the stage runs: one call's flags, or every call's binary and flags
        separated by SEPARATOR (`join_calls`)."""
        if len(self.calls) == 1:
            return tuple(self.calls[0][1])
        return join_calls(self.calls)

    def command(self) -> list[str]:
        """The command line, run by this interpreter."""
        if len(self.calls) == 1:
            binary, flags = self.calls[0]
            return [sys.executable, binary_path(binary), *flags]
        return [sys.executable, "-m", "uncertainty.cli.binaries", *self.arguments]


def join_calls(calls) -> tuple:
    """`binary flags ::: binary flags ...` of calls (binary, flags); `split_calls`
    reads it back."""
    return tuple(arg for binary, flags in calls for arg in (SEPARATOR, binary, *flags))[1:]


def split_calls(args) -> list[tuple[str, tuple]]:
    """`args` cut at each SEPARATOR: each call's (binary, flags), the binary first."""
    calls = [[]]
    for arg in args:
        if arg == SEPARATOR:
            calls.append([])
        else:
            calls[-1].append(arg)
    return [(c[0] if c else "", tuple(c[1:])) for c in calls]


# baselines/ beside the uncertainty package (three levels above this file)
BASELINES = os.path.join(
    os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
    "baselines")


def binary_path(name: str) -> str:
    """baselines/<name>.py."""
    return os.path.join(BASELINES, f"{name}.py")


def analysis_dir(root: str, name: str) -> str:
    """Where the study at `root` writes analysis `name` (e.g. "cross_section/random")."""
    return os.path.join(root, "analyses", name)


def run_dirs(scale: Scale, root: str) -> tuple[str, str]:
    """The folders of the deterministic and the variational runs."""
    runs = os.path.join(root, "runs")
    return (os.path.join(runs, scale.model), os.path.join(runs, f"{scale.model}_variational"))


def stages(scale: Scale, root: str, extra: tuple = ()) -> list[Stage]:
    """Every stage of `scale`'s study under `root`, in order (the longest chain of
    analyses, ensemble samples then ensembles, first); `extra` flags (strategy, data
    location) go to every binary."""
    det, vi = run_dirs(scale, root)

    def calls(name, each, needs=()):  # several calls in one process: (binary, flags)
        return Stage(name, tuple((binary, (*args, *extra)) for binary, args in each),
                     tuple(needs))

    def call(name, binary, *args, needs=()):
        return calls(name, [(binary, args)], needs)

    train = [f"--dataset={scale.dataset}", f"--model={scale.model}", *scale.train_flags]
    out = [call(f"train/seed{i}", "train", *train, f"--seed={i}",
                f"--output_dir={det}/seed{i}") for i in range(scale.num_runs)]
    out += [call(f"train/variational_seed{i}", "train", *train, "--method=variational",
                 f"--seed={i}", f"--output_dir={vi}/seed{i}")
            for i in range(scale.variational_runs)]
    trained = [f"train/seed{i}" for i in range(scale.num_runs)]
    samples = analysis_dir(root, "ensemble_samples")
    checkpoints = (f"--num_checkpoints={scale.num_checkpoints}", *scale.subspace_flags)
    shift = [f"--corruptions={scale.corruptions}",
             f"--num_posterior_samples={scale.posterior_samples}", "--compare_published"]
    # subspace samples around every run, then the ensembles under shift that score
    # them: the longest chain, first
    out.append(calls("ensemble", [
        *(("subspace", (f"--base_run={det}/seed{i}", f"--methods={PAPER_METHODS}",
                        "--preset=ensemble", *scale.ensemble_scales,
                        f"--num_samples={scale.ensemble_samples}", *checkpoints,
                        f"--output_dir={samples}/seed{i}")) for i in range(scale.num_runs)),
        ("ensemble", (f"--runs={det}", f"--subspace_dir={samples}",
                      f"--methods={PAPER_METHODS},mc_dropout", *shift,
                      f"--output_dir={analysis_dir(root, 'ensemble')}"))], needs=trained))
    pair = [f"--runs={det}/seed0,{det}/seed1", "--split=test",
            f"--grid_points={scale.grid_points}", f"--path_points={scale.path_points}"]
    variational = [f"train/variational_seed{i}" for i in range(scale.variational_runs)]
    # the weight- and function-space analyses of the runs: similarity, the
    # diversity-accuracy plane and the cross-sections; then the variational runs'
    # ensembles, when the scale has them
    out.append(calls("landscape", [
        ("similarity", (f"--runs={det}", "--split=test",
                        f"--tsne_runs={min(3, scale.num_runs)}",
                        f"--output_dir={analysis_dir(root, 'similarity')}")),
        ("subspace", (f"--base_run={det}/seed0", f"--other_runs={det}",
                      f"--methods={_PLANE_METHODS},mc_dropout", "--preset=plane",
                      *scale.plane_scales, f"--num_samples={scale.plane_samples}",
                      *checkpoints, "--split=test", "--tsne",
                      f"--output_dir={analysis_dir(root, 'plane')}")),
        *(("cross_section", (
            *pair, f"--plane={plane}",
            *(("--connect", f"--connect_epochs={scale.connect_epochs}")
              if plane == "independent" else ()),
            f"--output_dir={analysis_dir(root, 'cross_section/' + plane)}"))
          for plane in ("independent", "trajectory", "random")),
        *([("ensemble", (f"--runs={vi}", *shift, "--output_dir=" +
                         analysis_dir(root, "ensemble_variational")))] if variational else [])],
        needs=trained + variational))
    return out
