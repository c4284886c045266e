"""Recipes: every default defined once, and the learning-rate schedules' worked values."""

import pytest

from uncertainty.infra.errors import UserError
from uncertainty.train import recipes
from uncertainty.train.train_config import TrainConfig


def test_halving_schedule_worked_values():
    # The notebook: 1.6e-3 halved every 10 epochs (0-based epochs).
    assert recipes.learning_rate("halving", 1.6e-3, 0) == 1.6e-3
    assert recipes.learning_rate("halving", 1.6e-3, 9) == 1.6e-3
    assert recipes.learning_rate("halving", 1.6e-3, 10) == pytest.approx(8e-4)
    assert recipes.learning_rate("halving", 1.6e-3, 39) == pytest.approx(2e-4)
    assert recipes.learning_rate("halving", 1.0, 7, halving_epochs=3) == 0.25
    # constant within an epoch
    assert recipes.epoch_learning_rates("halving", 1.0, 2, 3, halving_epochs=3) == [1.0] * 3
    assert recipes.learning_rate("halving", 1.0, 2.9, halving_epochs=3) == 1.0


def test_resnet_step_schedule_worked_values():
    # Keras CIFAR ResNet example: x0.1 after 80, x0.01 after 120, x0.001 after 160,
    # x0.0005 after 180 ("after" = the epoch index is larger).
    expected = {0: 1e-3, 80: 1e-3, 81: 1e-4, 120: 1e-4, 121: 1e-5, 160: 1e-5,
                161: 1e-6, 180: 1e-6, 181: 5e-7, 199: 5e-7}
    for epoch, rate in expected.items():
        assert recipes.learning_rate("resnet_step", 1e-3, epoch) == pytest.approx(rate)


def test_constant_and_unknown_schedules():
    assert recipes.learning_rate("constant", 0.1, 150) == 0.1
    with pytest.raises(ValueError, match="unknown learning-rate schedule"):
        recipes.learning_rate("cosine", 0.1, 0)


def test_overrides_and_defaults_come_from_the_recipe():
    config = TrainConfig.from_recipe("cifar10", "medium_cnn", 3, learning_rate=None,
                                     train_epochs=5)
    assert config.train_epochs == 5  # overridden
    assert config.learning_rate == 1.6e-3 and config.validation_examples == 500
    assert config.lr_halving_epochs == 10 and config.momentum == 0.9
    # Every TrainConfig field but the identity is a recipe field: nothing defined twice.
    fields = set(TrainConfig.__dataclass_fields__) - {"dataset", "model", "seed"}
    for model, recipe in recipes.RECIPES.items():
        assert set(recipe) == fields, model
    with pytest.raises(ValueError, match="not recipe fields: colour"):
        recipes.resolve("small_cnn", colour="red")
    with pytest.raises(UserError, match="unknown model"):
        TrainConfig.from_recipe("cifar10", "vgg", 0)


def test_variational_recipe_changes_and_annealing_follow_the_epochs():
    config = TrainConfig.from_recipe("fashion_mnist", "small_cnn", 0, method="variational")
    assert (config.dropout_rate, config.prior_stddev, config.posterior_init_stddev,
            config.num_posterior_samples) == (0.0, 0.1, 1e-3, 10)
    assert config.kl_annealing_epochs == 8  # 80% of 10 epochs (UB: 200 of 250)
    short = TrainConfig.from_recipe("mnist1d", "cnn1d", 0, method="variational",
                                    train_epochs=5)
    assert short.kl_annealing_epochs == 4
    assert TrainConfig.from_recipe("mnist1d", "cnn1d", 0, method="variational",
                                   kl_annealing_epochs=0).kl_annealing_epochs == 0
    deterministic = TrainConfig.from_recipe("fashion_mnist", "small_cnn", 0)
    assert deterministic.dropout_rate == 0.1
    # a deterministic run's config.json holds only what applies to it
    assert not {"method", *recipes.VARIATIONAL_FIELDS} & set(deterministic.record())
    assert config.record()["method"] == "variational"


def test_imagenet_schedule_warms_up_then_decays_at_scaled_epochs():
    base = 0.4
    # per step, from 0 at the first (uncertainty-baselines: base x step / 5 epochs)
    assert [recipes.learning_rate("imagenet_step", base, e) for e in range(5)] == \
        pytest.approx([0.0, 0.08, 0.16, 0.24, 0.32])
    assert recipes.epoch_learning_rates("imagenet_step", base, 1, 4) == \
        pytest.approx([0.08, 0.1, 0.12, 0.14])
    assert recipes.epoch_learning_rates("imagenet_step", base, 29, 3) == [0.4] * 3
    for epoch, rate in ((5, 0.4), (29, 0.4), (30, 0.04), (59, 0.04), (60, 0.004),
                        (80, 4e-4), (89, 4e-4)):
        assert recipes.learning_rate("imagenet_step", base, epoch) == pytest.approx(rate)
    # 45 epochs: decays at 15, 30 and 40, as uncertainty-baselines scales them
    assert recipes.learning_rate("imagenet_step", base, 15, train_epochs=45) == \
        pytest.approx(0.04)
    assert recipes.learning_rate("imagenet_step", base, 40, train_epochs=45) == \
        pytest.approx(4e-4)
