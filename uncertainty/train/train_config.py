"""`TrainConfig`: everything that determines a run, built from a model's recipe
(`recipes`) and the user's overrides, and checked against the data before anything is
written.
"""
import dataclasses

from uncertainty import models
from uncertainty.datasets import Dataset
from uncertainty.infra.errors import UserError
from uncertainty.runs import layout
from uncertainty.train import recipes

# Training steps per host call (`fit`); measured below in benchmarks/train_vs_fit.py.
STEPS_PER_LOOP = 100


@dataclasses.dataclass(frozen=True)
class TrainConfig:
    """Everything that determines a run: the model's recipe (`recipes.RECIPES`, where
    every default lives) with the user's overrides; build it with `from_recipe`."""

    dataset: str
    model: str
    seed: int
    train_epochs: int
    batch_size: int  # global, over all replicas
    learning_rate: float  # resolved (recipes.resolve)
    base_learning_rate: float  # per reference_batch_size images
    reference_batch_size: int
    lr_schedule: str
    optimizer: str
    l2: float
    dropout_rate: float
    augment: bool
    preprocessing: str
    sample_with_replacement: bool
    validation_examples: int
    lr_halving_epochs: int
    momentum: float  # for sgd
    train_examples: int  # 0 = the whole training split
    deterministic: bool
    dtype: str  # Keras precision policy (recipes.DTYPES)
    method: str  # deterministic, or variational: the fields below are its settings
    prior: str  # models.flipout.PRIORS
    prior_stddev: float
    posterior_init_stddev: float
    variational_l2: float
    kl_annealing_epochs: int
    num_posterior_samples: int

    def record(self) -> dict:
        """The fields that define the run, for config.json: only those that apply (a
        deterministic run records no method and no variational settings, a float32 run
        no dtype), so the run's identity (`layout.identity`) depends on nothing else."""
        fields = dataclasses.asdict(self)
        if self.method == "deterministic":
            for name in ("method",) + recipes.VARIATIONAL_FIELDS:
                del fields[name]
        if self.dtype == "float32":
            del fields["dtype"]
        return fields

    @classmethod
    def from_recipe(cls, dataset: str, model: str, seed: int, **overrides
                    ) -> "TrainConfig":
        """`model`'s recipe with the overrides that are not None."""
        models.check(model)
        return cls(dataset=dataset, model=model, seed=seed,
                   **recipes.resolve(model, **overrides))

    @classmethod
    def of_run(cls, run_dir: str) -> "TrainConfig":
        """The config the run in `run_dir` was trained with."""
        saved = layout.read_config(run_dir)
        return cls.from_recipe(saved["dataset"], saved["model"], saved["seed"],
                               **{k: saved.get(k) for k in recipes.RECIPES[saved["model"]]})


def check(config: TrainConfig, data: Dataset, replicas: int) -> None:
    """Refuses a config the data cannot serve, before anything is written."""
    models.check(config.model, data.input_shape, config.dropout_rate,
                 variational=config.method == "variational")
    if "train" not in data.splits:
        raise UserError(f"{data.name} has no training split; train on its clean dataset "
                        f"and evaluate on this one")
    if config.augment and len(data.input_shape) != 3:
        raise UserError(f"--augment applies to images; {data.name} has inputs of shape "
                        f"{data.input_shape}")
    if config.batch_size > data.num_examples("train"):
        raise UserError(f"--batch_size {config.batch_size} exceeds the "
                        f"{data.num_examples('train')} training examples; lower it")
    if config.method == "variational" and config.dtype != "float32":
        raise UserError(f"--dtype={config.dtype} is for deterministic networks; train "
                        f"--method=variational in float32")
    if config.batch_size % replicas:
        raise UserError(f"--batch_size {config.batch_size} must be divisible by the "
                        f"{replicas} replicas")

