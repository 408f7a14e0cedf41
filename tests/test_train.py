"""The trainer learns, is deterministic, and its MC-dropout / inference helpers behave."""

import pytest
import torch

from galot_lib.learning.train import (
    TrainConfig,
    Trained,
    accuracy,
    augment,
    batch_stream,
    fit,
    infer,
    inference_copy,
    mc_dropout_probs,
    ranking_loss,
    training_steps,
)

FAST = TrainConfig(epochs=6, batch_size=32, lr=3e-3, crop_padding=1)


def separable_problem(n=160, seed=0):
    """Two classes told apart by where a bright square sits: learnable in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    images = torch.randint(0, 40, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
    labels = torch.arange(n) % 2
    for i, y in enumerate(labels.tolist()):
        r = 4 if y == 0 else 16
        images[i, 0, r : r + 8, 10:18] = 250
    return images, labels


def test_fit_learns_a_separable_problem():
    images, labels = separable_problem()
    test_images, test_labels = separable_problem(seed=1)
    trained = fit("SmallCNN", images, labels, 2, FAST, seed=0)
    assert accuracy(trained.model, test_images, test_labels) >= 0.95


def test_fit_is_deterministic_for_a_seed():
    images, labels = separable_problem(64)
    short = TrainConfig(**{**FAST.__dict__, "epochs": 1, "min_steps": 10})  # determinism needs no learning
    a = fit("SmallCNN", images, labels, 2, short, seed=3).model.state_dict()
    b = fit("SmallCNN", images, labels, 2, short, seed=3).model.state_dict()
    c = fit("SmallCNN", images, labels, 2, short, seed=4).model.state_dict()
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not all(torch.equal(a[k], c[k]) for k in a)


def test_min_steps_extends_training_of_tiny_sets():
    images, labels = separable_problem(16)
    few = fit("SmallCNN", images, labels, 2, TrainConfig(epochs=1, batch_size=16, min_steps=0), seed=0)
    many = fit("SmallCNN", images, labels, 2, TrainConfig(epochs=1, batch_size=16, min_steps=20), seed=0)
    diff = sum(
        (few.model.state_dict()[k].float() - many.model.state_dict()[k].float()).abs().sum()
        for k in few.model.state_dict()
    )
    assert diff > 0


@pytest.mark.parametrize("n", [2, 3, 63, 64, 65, 66, 192, 194, 448, 450, 456])
def test_every_batch_has_the_same_size_and_every_pass_sees_each_image_once(n):
    steps = 3 * n  # several passes
    batches = list(batch_stream(n, 64, steps, torch.Generator().manual_seed(n)))
    assert len(batches) == steps and {len(b) for b in batches} == {min(64, n)}  # no remainder batch
    seen = torch.cat(batches)
    for start in range(0, len(seen) - n + 1, n):  # each block of n consecutive draws is one permutation
        assert torch.equal(seen[start : start + n].sort().values, torch.arange(n))


def test_steps_grow_smoothly_with_the_images():
    config = TrainConfig(epochs=15, min_steps=100, batch_size=64)
    steps = [training_steps(n, config) for n in range(2, 1000)]
    assert min(steps) == 100 and all(0 <= b - a <= 1 for a, b in zip(steps, steps[1:]))
    assert training_steps(640, config) == 150  # 15 passes of 10 full batches


def test_augment_crops_and_flips_whole_batches():
    g = torch.Generator().manual_seed(0)
    x = torch.arange(2 * 1 * 6 * 6, dtype=torch.float32).reshape(2, 1, 6, 6)
    assert torch.equal(augment(x, 0, False, g), x)
    flipped = augment(x, 0, True, torch.Generator().manual_seed(1))
    assert all(torch.equal(f, o) or torch.equal(f, o.flip(-1)) for f, o in zip(flipped, x))
    cropped = augment(x, 2, False, g)
    assert cropped.shape == x.shape
    # a crop is a shifted window of the zero-padded image: its non-zero values are a block of x
    for c, o in zip(cropped, x):
        values = set(c[c != 0].tolist())
        assert values <= set(o.flatten().tolist())


def test_infer_and_mc_dropout_shapes_and_semantics():
    images, labels = separable_problem(40)
    trained = fit("SmallCNN", images, labels, 2, TrainConfig(epochs=1, batch_size=20), seed=0, loss_prediction=True)
    out = infer(trained, images, batch_size=16)
    assert out["probs"].shape == (40, 2) and torch.allclose(out["probs"].sum(1), torch.ones(40))
    assert out["embeddings"].shape == (40, trained.model.embedding_dim)
    assert out["predicted_loss"].shape == (40,)
    mc = mc_dropout_probs(trained.model, images, passes=5, seed=0, batch_size=16)
    assert mc.shape == (5, 40, 2)
    assert not torch.allclose(mc[0], mc[1])  # dropout is on
    assert torch.equal(mc, mc_dropout_probs(trained.model, images, passes=5, seed=0, batch_size=16))  # seeded
    assert not trained.model.training  # left in eval mode
    # eval-mode predictions are unchanged by the MC passes (BatchNorm statistics untouched)
    assert torch.allclose(infer(trained, images)["probs"], out["probs"])


def test_the_inference_copy_is_made_once_per_state_of_the_weights():
    images, labels = separable_problem(40)
    model = fit("SmallCNN", images, labels, 2, TrainConfig(epochs=1, batch_size=20), seed=0).model
    copy = inference_copy(model)
    assert inference_copy(model) is copy  # the same weights: the same copy
    before = infer(Trained(model), images)["probs"]
    with torch.no_grad():
        model.head.bias.add_(torch.tensor([5.0, -5.0]))  # an in-place change, as an optimiser step makes
    assert inference_copy(model) is not copy
    after = infer(Trained(model), images)["probs"]
    assert (after[:, 0] > before[:, 0]).all()  # scored with the new weights, not the kept copy's
    model.load_state_dict(
        fit("SmallCNN", images, labels, 2, TrainConfig(epochs=1, batch_size=20), seed=1).model.state_dict()
    )
    assert not torch.equal(infer(Trained(model), images)["probs"], after)  # a loaded state too


def test_ranking_loss_rewards_the_right_order():
    target = torch.tensor([3.0, 2.0, 1.0, 0.0])
    good = ranking_loss(torch.tensor([3.0, 2.0, 1.0, 0.0]) * 2, target)
    bad = ranking_loss(torch.tensor([0.0, 1.0, 2.0, 3.0]) * 2, target)
    assert good < bad


def test_learning_rate_warms_up_then_follows_its_schedule():
    cosine = TrainConfig(schedule="cosine", warmup=0.1)
    assert [cosine.lr_factor(s, 100) for s in (0, 9)] == pytest.approx([0.1, 1.0])
    assert [cosine.lr_factor(s, 100) for s in (10, 55, 100)] == pytest.approx([1.0, 0.5, 0.0])
    assert {TrainConfig().lr_factor(s, 100) for s in range(100)} == {1.0}  # constant, no warm-up


def state(trained):
    """The learnt weights (BatchNorm statistics are measured afresh for averaged weights)."""
    return {k: v.detach().clone() for k, v in trained.model.named_parameters()}


def test_weight_averaging_returns_the_average_of_the_chosen_steps():
    images, labels = separable_problem(64)
    last = state(fit("TinyCNN", images, labels, 2, FAST, seed=0))
    # an average over the last step alone is the last weights (FAST trains 100 steps here: a window of 1)
    one = state(
        fit(
            "TinyCNN",
            images,
            labels,
            2,
            TrainConfig(**{**FAST.__dict__, "averaging": "tail", "average_window": 0.01}),
            seed=0,
        )
    )
    assert all(torch.allclose(last[k], one[k]) for k in last)
    for averaging in ("tail", "ema"):
        config = TrainConfig(**{**FAST.__dict__, "averaging": averaging, "average_window": 0.5})
        trained = fit("TinyCNN", images, labels, 2, config, seed=0, loss_prediction=True)
        averaged = state(trained)
        assert any(not torch.allclose(last[k], averaged[k]) for k in last)  # earlier steps count
        assert trained.loss_head is not None and not trained.model.training
        assert accuracy(trained.model, *separable_problem(seed=1)) >= 0.9


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(optimizer="lbfgs"),
        dict(epochs=0),
        dict(lr=0.0),
        dict(schedule="step"),
        dict(warmup=1.0),
        dict(averaging="swa"),
        dict(average_window=0.0),
    ],
)
def test_bad_train_config_is_rejected(kwargs):
    with pytest.raises(ValueError, match=next(iter(kwargs))):
        TrainConfig(**kwargs)
