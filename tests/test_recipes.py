"""Named training recipes: which profile trains how, and how a user switches (a recipe name where a training
configuration is expected: ``-p TRAIN low-variance`` for every notebook and the grid)."""

import pytest

from galot_lib.experiments.profiles import get_profile
from galot_lib.learning.train import RECIPES, TrainConfig, with_recipe


def test_a_recipe_changes_how_a_classifier_trains_never_its_sizes():
    sized = TrainConfig(epochs=7, min_steps=11, batch_size=13)
    low = with_recipe(sized, "low-variance")
    assert (low.epochs, low.min_steps, low.batch_size) == (7, 11, 13)
    assert (low.lr, low.averaging, low.average_window) == (2e-3, "tail", 0.25)
    assert with_recipe(low, "deepalplus") == sized  # the defaults are DeepALPlus' recipe
    with pytest.raises(ValueError, match="unknown training recipe 'fast'; valid: deepalplus, low-variance"):
        with_recipe(sized, "fast")


def test_profiles_train_by_their_recipe_and_a_user_can_switch(monkeypatch):
    monkeypatch.setenv("GALOT_TRAIN_RECIPE", "low-variance")  # no environment variable changes a profile any more
    for name, recipe in (("smoke", "low-variance"), ("embedded", "low-variance"), ("paper", "deepalplus")):
        train = get_profile(name).train
        assert train == with_recipe(train, recipe), name
    assert get_profile("paper", train="low-variance").train == with_recipe(get_profile("paper").train, "low-variance")
    assert set(RECIPES) == {"deepalplus", "low-variance"}
