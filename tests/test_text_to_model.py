"""Text to model: a classifier from class names alone."""

import pytest
import torch

from galot_lib.generation.galot import EpsSchedule, GalotConfig
from galot_lib.generation.t2i import load_t2i
from galot_lib.text_to_model import train_from_text
from galot_lib.learning.train import TrainConfig

from test_loop import tiny_sets


def test_rounds_grow_the_generated_set_and_train(make_bundled_folder):
    t2i = load_t2i(str(make_bundled_folder(image_size=8)))
    _, test = tiny_sets()
    cfg = GalotConfig(pgd_steps=1, grad_samples=2, sampling_steps=2, guidance=2.0, eps=EpsSchedule("linear", 0.1, 0.2, cycles=2))
    result = train_from_text(["bag", "coat", "shirt"], t2i, rounds=2, images_per_round=6, model="TinyCNN",
                             size=28, channels=1, galot=cfg, train=TrainConfig(epochs=1, batch_size=8, min_steps=2),
                             test=test, progress=False)
    assert result.images.shape == (12, 1, 28, 28) and sorted(result.labels.bincount().tolist()) == [4, 4, 4]
    assert [r["n_generated"] for r in result.records] == [6, 12]
    assert result.records[0]["eps"] == 0.0 and result.records[1]["eps"] == pytest.approx(0.2)
    assert all(0 <= r["accuracy"] <= 1 for r in result.records)
    assert result.trained.model(torch.zeros(1, 1, 28, 28)).shape == (1, 3)


def test_bad_requests_are_rejected():
    with pytest.raises(ValueError, match="two class names"):
        train_from_text(["bag"], "unused")
    with pytest.raises(ValueError, match="rounds"):
        train_from_text(["bag", "coat"], "unused", rounds=0)
