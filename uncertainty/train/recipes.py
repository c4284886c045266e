"""Each model's training recipe (the paper, the authors' notebook, the Keras example):
the one place every training hyperparameter is defined; `register` adds one.

A binary's flags default to None, meaning "the recipe's value"; `resolve` fills them in
and the run's `config.json` records the resolved values.

Variational inference (method "variational", `models.flipout`) uses the model's
recipe with these changes and additions, uncertainty-baselines' CIFAR VI defaults
(baselines/cifar/variational_inference.py and models/wide_resnet_variational.py): a
normal prior of std 0.1 whose mean is tied to the posterior's (`prior` "tied_mean",
`prior_stddev`: only the posterior's std is penalised; "zero_mean" is N(0, 0.1^2)),
the posterior's std starting at 1e-3 (`posterior_init_stddev`, jittered as UB's: the
network starts as its deterministic initialisation and the KL term widens it), an L2
penalty of 4e-4 x sum(v^2) on the biases and batch-norm parameters, which stay point
estimates (`variational_l2`), the KL term annealed linearly per step over the first
80% of training (200 of 250 epochs there: `kl_annealing_epochs`), no dropout (the
posterior is the model's randomness), and 10 posterior draws for the posterior
predictive the run reports (`num_posterior_samples`; UB evaluates 1 draw on the clean
test set and 5 on corrupted ones).
"""

# A recipe states its learning rate as `base_learning_rate` at `reference_batch_size`
# images; the run's learning rate follows its global batch linearly, as in
# uncertainty-baselines (lr = base x batch / reference): a user who changes the batch
# (or the number of replicas with --per_core_batch_size) keeps the recipe's rate per
# image. An explicit learning_rate overrides it.
# Shared by every recipe: the paper's 500 validation examples (the last of the training
# split), the notebook's halving period, SGD's momentum, the whole training split, and
# the variational settings (used by --method=variational only).
COMMON = dict(learning_rate=None,  # None: base_learning_rate x batch_size / reference_batch_size
              validation_examples=500, lr_halving_epochs=10, momentum=0.9,
              train_examples=0, deterministic=False, dtype="float32", method="deterministic",
              prior="tied_mean", prior_stddev=0.1, posterior_init_stddev=1e-3,
              variational_l2=4e-4, num_posterior_samples=10,
              kl_annealing_epochs=None)  # None: KL_ANNEALING_FRACTION of the epochs
KL_ANNEALING_FRACTION = 0.8
METHODS = ("deterministic", "variational")
# Keras precision policies: variables stay float32, mixed ones compute in 16 bits.
DTYPES = ("float32", "mixed_bfloat16", "mixed_float16")
# Config fields that only variational runs use (and record).
VARIATIONAL_FIELDS = ("prior", "prior_stddev", "posterior_init_stddev", "variational_l2",
                      "kl_annealing_epochs", "num_posterior_samples")

_MODEL_RECIPES = {
    # Notebook (MediumCNN's): Adam 1.6e-3 halved every 10 epochs, batch 128 drawn with
    # replacement, dropout 0.1, no weight decay or augmentation, raw 0..255 pixels.
    # SmallCNN has no notebook: the paper gives its channels (16, 32, 32) and 10
    # epochs; the rest of its recipe is the notebook's MediumCNN recipe.
    "small_cnn": dict(train_epochs=10, batch_size=128, base_learning_rate=1.6e-3,
                      reference_batch_size=128,
                      lr_schedule="halving", optimizer="adam", l2=0.0, dropout_rate=0.1,
                      augment=False, preprocessing="raw", sample_with_replacement=True),
    "medium_cnn": dict(train_epochs=40, batch_size=128, base_learning_rate=1.6e-3,
                       reference_batch_size=128,
                       lr_schedule="halving", optimizer="adam", l2=0.0, dropout_rate=0.1,
                       augment=False, preprocessing="raw", sample_with_replacement=True),
    # Keras CIFAR-10 ResNet example: Adam 1e-3 with step decays, L2 1e-4 on kernels,
    # per-pixel mean subtraction, shift + flip augmentation (here pad-4 crop + flip).
    # Two deviations from the example: batch 128 (the example's is 32; 128 is the
    # paper's batch for its CNNs and 4x fewer steps), and no ReduceLROnPlateau (the
    # example's callback, factor sqrt(0.1) after 5 epochs without improvement, beside
    # the step decays): the schedule is a function of the epoch alone, so a resumed
    # run is bit-identical and the recipe is the same on every accelerator.
    "resnet20_v1": dict(train_epochs=200, batch_size=128, base_learning_rate=1e-3,
                        reference_batch_size=128,
                        lr_schedule="resnet_step", optimizer="adam", l2=1e-4,
                        dropout_rate=0.0, augment=True, preprocessing="pixel_mean",
                        sample_with_replacement=False),
    # uncertainty-baselines' ImageNet ResNet-50 (baselines/imagenet/deterministic.py):
    # 90 epochs, 128 images per accelerator, SGD with Nesterov momentum 0.9 at 0.1 per
    # 256 images of global batch (8 accelerators' 1,024: 0.4), 5 warm-up epochs then
    # x0.1 at 30, 60, 80, L2 1e-4 (there on kernels and biases), per-channel mean/std
    # inputs, no label smoothing, each image once an epoch.
    "resnet50": dict(train_epochs=90, batch_size=1024, base_learning_rate=0.1,
                     reference_batch_size=256,
                     lr_schedule="imagenet_step", optimizer="sgd_nesterov", l2=1e-4,
                     dropout_rate=0.0, augment=True, preprocessing="mean_std",
                     sample_with_replacement=False),
    # MNIST-1D: the CNN recipe of the paper, scaled to 3,500 training signals.
    "cnn1d": dict(train_epochs=30, batch_size=128, base_learning_rate=3e-3,
                  reference_batch_size=128,
                  lr_schedule="halving", optimizer="adam", l2=0.0, dropout_rate=0.1,
                  augment=False, preprocessing="raw", sample_with_replacement=True),
}
RECIPES = {model: {**COMMON, **recipe} for model, recipe in _MODEL_RECIPES.items()}



def register(model: str, like: str | None = None, **fields) -> None:
    """Adds the recipe of a model registered with `models.register`: the fields of
    `like`'s recipe (a model that has one) changed by `fields`, or, without `like`,
    `fields` alone, which must then name every field a recipe has."""
    if model in RECIPES:
        raise ValueError(f"model {model!r} has a recipe")
    base = RECIPES[like] if like else COMMON
    unknown = sorted(set(fields) - set(RECIPES["cnn1d"]))
    missing = sorted(set(RECIPES["cnn1d"]) - set(base) - set(fields))
    if unknown or missing:
        raise ValueError(f"recipe fields unknown: {unknown}; missing: {missing}")
    RECIPES[model] = {**base, **fields}


LR_SCHEDULES = ("halving", "resnet_step", "imagenet_step", "constant")
OPTIMIZERS = ("adam", "sgd", "sgd_nesterov")
IMAGENET_WARMUP_EPOCHS = 5


_METHOD_CHANGES = {"variational": dict(dropout_rate=0.0)}


def resolve(model: str, **overrides) -> dict:
    """The recipe of `model` (for the `method` override, deterministic by default) with
    every override that is not None applied, and the learning rate resolved: the
    override, or base_learning_rate x batch_size / reference_batch_size."""
    unknown = sorted(set(overrides) - set(RECIPES[model]))
    if unknown:
        raise ValueError(f"not recipe fields: {', '.join(unknown)}")
    method = overrides.get("method") or RECIPES[model]["method"]
    recipe = {**RECIPES[model], **_METHOD_CHANGES.get(method, {})}
    resolved = {name: value if overrides.get(name) is None else overrides[name]
                for name, value in recipe.items()}
    if resolved["learning_rate"] is None:
        resolved["learning_rate"] = (resolved["base_learning_rate"] * resolved["batch_size"]
                                     / resolved["reference_batch_size"])
    if resolved["kl_annealing_epochs"] is None:
        resolved["kl_annealing_epochs"] = round(KL_ANNEALING_FRACTION *
                                                resolved["train_epochs"])
    return resolved


def learning_rate(schedule: str, base: float, epoch: float, halving_epochs: int = 10,
                  train_epochs: int = 90) -> float:
    """Learning rate at (0-based, fractional: step / steps per epoch) `epoch`.

    halving: base / 2 ** (epoch // halving_epochs) (the notebook);
    resnet_step: the Keras example's x0.1 after epoch 80, x0.01 after 120, x0.001
    after 160, x0.0005 after 180; imagenet_step: uncertainty-baselines' ImageNet
    schedule, a linear warm-up per step, base x epoch / 5, over the first 5 epochs
    (0 at the first step, as there), then x0.1 from epoch 30, x0.01 from 60, x0.001
    from 80, those epochs scaled by `train_epochs` / 90 as there; constant: base.
    Only the warm-up changes within an epoch.
    """
    if schedule == "imagenet_step":
        if epoch < IMAGENET_WARMUP_EPOCHS:
            return base * epoch / IMAGENET_WARMUP_EPOCHS
        decays = [(train_epochs * start) // 90 for start in (30, 60, 80)]
        return base * 0.1 ** sum(epoch >= start for start in decays)
    whole = int(epoch)
    if schedule == "halving":
        return base * 0.5 ** (whole // halving_epochs)
    if schedule == "resnet_step":
        for after, factor in ((180, 0.5e-3), (160, 1e-3), (120, 1e-2), (80, 1e-1)):
            if whole > after:
                return base * factor
        return base
    if schedule == "constant":
        return base
    raise ValueError(f"unknown learning-rate schedule {schedule!r}")


def epoch_learning_rates(schedule: str, base: float, epoch: int, steps: int,
                         halving_epochs: int = 10, train_epochs: int = 90) -> list[float]:
    """The learning rate of each of the `steps` steps of (0-based) `epoch`."""
    return [learning_rate(schedule, base, epoch + step / steps, halving_epochs,
                          train_epochs) for step in range(steps)]
