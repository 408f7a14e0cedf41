"""Tests of the acquisition strategies on small synthetic pools with known answers."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

from galot_lib.learning.strategies import (
    DIFFERENTIABLE_ACQUISITIONS,
    STRATEGIES,
    PoolView,
    _d2_seeding,
    _nearest,
    acquisition_scores,
    get_strategy,
)

NAMES = sorted(STRATEGIES)


def gen(seed: int = 0) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def random_view(n: int = 30, c: int = 5, d: int = 8, m: int = 12, t: int = 6, seed: int = 0) -> PoolView:
    """A PoolView with every field filled with generic random values."""
    g = gen(seed)
    return PoolView(
        probs=torch.randn(n, c, generator=g).softmax(-1),
        mc_probs=torch.randn(t, n, c, generator=g).softmax(-1),
        embeddings=torch.randn(n, d, generator=g),
        labeled_embeddings=torch.randn(m, d, generator=g),
        predicted_loss=torch.rand(n, generator=g),
    )


def confident(n: int, c: int) -> torch.Tensor:
    """[n, c] probabilities, each row confidently on class i % c."""
    p = torch.full((n, c), 0.02)
    p[torch.arange(n), torch.arange(n) % c] = 1 - 0.02 * (c - 1)
    return p


def probs_view() -> PoolView:
    """Candidate 7 uniform (most uncertain), 3 nearly a coin flip, the rest confident."""
    probs = confident(10, 4)
    probs[7] = 0.25
    probs[3] = torch.tensor([0.4, 0.35, 0.15, 0.1])
    return PoolView(probs=probs)


def mc_view() -> PoolView:
    """MC passes: 7 swings between all 4 classes, 3 between 2; 5 is uniform in every pass.

    Candidate 5 has the highest predictive entropy but no disagreement between passes, so
    BALD, MeanSTD and VarRatio must not prefer it.
    """
    passes = 8
    mc = torch.stack([confident(10, 4) for _ in range(passes)])
    for t in range(passes):
        mc[t, 7] = confident(4, 4)[t % 4]
        mc[t, 3] = confident(4, 4)[t % 2]
    mc[:, 5] = 0.25
    return PoolView(mc_probs=mc)


def badge_view() -> PoolView:
    """Gradient embeddings: 8 near-copies of candidate 7 (the largest), and 3 orthogonal to them."""
    probs = torch.tensor([0.6, 0.4, 0.0, 0.0]).repeat(10, 1)
    probs[3] = torch.tensor([0.0, 0.0, 0.6, 0.4])
    emb = torch.tensor([1.0, 0.0]).repeat(10, 1) * 0.999
    emb[7] = torch.tensor([1.0, 0.0])
    emb[3] = torch.tensor([0.0, 0.9])
    return PoolView(probs=probs, embeddings=emb)


def kmeans_view() -> PoolView:
    """Two symmetric blobs whose means are candidates 7 (7 points) and 3 (3 points)."""
    emb = torch.zeros(10, 2)
    left, right = torch.tensor([-10.0, 0.0]), torch.tensor([10.0, 0.0])
    offsets = {5: (1, 0), 6: (-1, 0), 8: (0, 1), 9: (0, -1), 0: (1, 1), 1: (-1, -1), 7: (0, 0)}
    for i, off in offsets.items():
        emb[i] = left + torch.tensor(off, dtype=torch.float32)
    for i, off in {2: (1, 0), 4: (-1, 0), 3: (0, 0)}.items():
        emb[i] = right + torch.tensor(off, dtype=torch.float32)
    return PoolView(embeddings=emb)


def coreset_view() -> PoolView:
    """Labelled points around the origin; 7 lies far out on +x, 3 a little less far on +y."""
    g = gen(1)
    emb = torch.randn(10, 2, generator=g) * 0.5
    emb[7] = torch.tensor([20.0, 0.0])
    emb[3] = torch.tensor([0.0, 15.0])
    return PoolView(embeddings=emb, labeled_embeddings=torch.randn(20, 2, generator=g))


def loss_view() -> PoolView:
    loss = torch.rand(10, generator=gen(2))
    loss[7], loss[3] = 5.0, 4.0
    return PoolView(predicted_loss=loss)


KNOWN_ANSWERS = {
    "EntropySampling": probs_view,
    "MarginSampling": probs_view,
    "LeastConfidence": probs_view,
    "BALD": mc_view,
    "MeanSTD": mc_view,
    "VarRatio": mc_view,
    "BADGE": badge_view,
    "KMeans": kmeans_view,
    "CoreSet": coreset_view,
    "LossPrediction": loss_view,
}


def test_registry_holds_exactly_the_eleven_strategies():
    assert set(STRATEGIES) == {
        "RandomSampling",
        "EntropySampling",
        "MarginSampling",
        "LeastConfidence",
        "BALD",
        "BADGE",
        "MeanSTD",
        "VarRatio",
        "KMeans",
        "CoreSet",
        "LossPrediction",
    }
    for name, cls in STRATEGIES.items():
        assert cls.name == name
        assert isinstance(get_strategy(name), cls)


@pytest.mark.parametrize("name", sorted(KNOWN_ANSWERS))
def test_known_answer_is_picked_most_informative_first(name):
    picks = get_strategy(name).select(KNOWN_ANSWERS[name](), 2, gen(0))
    assert picks.tolist() == [7, 3]


def test_random_sampling_is_uniform_and_seeded():
    view = PoolView(predicted_loss=torch.zeros(1000))
    strategy = get_strategy("RandomSampling")
    a = strategy.select(view, 50, gen(0))
    assert len(set(a.tolist())) == 50 and a.min() >= 0 and a.max() < 1000
    np.testing.assert_array_equal(a, strategy.select(view, 50, gen(0)))
    assert not np.array_equal(a, strategy.select(view, 50, gen(1)))
    # Picking everything is a permutation.
    assert sorted(strategy.select(view, 1000, gen(0)).tolist()) == list(range(1000))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [1, 7, 30])
def test_returns_n_distinct_in_range_int64_indices(name, n):
    picks = get_strategy(name).select(random_view(), n, gen(0))
    assert isinstance(picks, np.ndarray) and picks.dtype == np.int64
    assert picks.shape == (n,)
    assert len(np.unique(picks)) == n
    assert picks.min() >= 0 and picks.max() < 30


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_same_answer(name):
    strategy = get_strategy(name)
    view = random_view(n=200)
    np.testing.assert_array_equal(strategy.select(view, 20, gen(3)), strategy.select(view, 20, gen(3)))


@pytest.mark.parametrize("name", NAMES)
@pytest.mark.parametrize("n", [0, -1, 31])
def test_n_out_of_range_raises(name, n):
    with pytest.raises(ValueError, match=rf"n={n} with N=30"):
        get_strategy(name).select(random_view(), n, gen(0))


@pytest.mark.parametrize("name, field", [(name, field) for name in NAMES for field in sorted(STRATEGIES[name].needs)])
def test_missing_needed_field_raises_naming_it(name, field):
    view = dataclasses.replace(random_view(), **{field: None})
    with pytest.raises(ValueError, match=rf"{name} needs .*{field}"):
        get_strategy(name).select(view, 2, gen(0))


def test_random_sampling_without_any_field_raises():
    with pytest.raises(ValueError, match="pool size N is unknown"):
        get_strategy("RandomSampling").select(PoolView(), 1, gen(0))


@pytest.mark.parametrize(
    "change, message",
    [
        ({"embeddings": torch.randn(29, 8)}, "number of candidates"),
        ({"mc_probs": torch.rand(6, 30, 4)}, "classes"),
        ({"labeled_embeddings": torch.randn(12, 7)}, "-d"),
        ({"probs": torch.rand(30)}, "must be 2-D"),
    ],
)
def test_inconsistent_shapes_raise(change, message):
    view = dataclasses.replace(random_view(), **change)
    with pytest.raises(ValueError, match=message):
        get_strategy("RandomSampling").select(view, 2, gen(0))


def test_non_finite_input_raises():
    view = random_view()
    view.predicted_loss[4] = float("nan")
    with pytest.raises(ValueError, match="non-finite"):
        get_strategy("LossPrediction").select(view, 2, gen(0))


def test_unknown_name_raises_listing_valid_names():
    with pytest.raises(ValueError, match="valid names") as info:
        get_strategy("Entropy")
    assert all(name in str(info.value) for name in STRATEGIES)


def test_var_ratio_breaks_ties_by_mean_probability():
    # Both candidates always predict class 0 (ratio 0); candidate 1 is less sure of it.
    mc = torch.tensor([[0.9, 0.1], [0.6, 0.4]]).expand(4, 2, 2).clone()
    assert get_strategy("VarRatio").select(PoolView(mc_probs=mc), 2, gen(0)).tolist() == [1, 0]


def test_coreset_without_labelled_points_starts_farthest_from_mean():
    emb = torch.randn(10, 3, generator=gen(4))
    emb[6] = 30.0
    view = PoolView(embeddings=emb, labeled_embeddings=torch.empty(0, 3))
    assert get_strategy("CoreSet").select(view, 1, gen(0)).tolist() == [6]


@pytest.mark.parametrize("name", ["BADGE", "KMeans", "CoreSet"])
def test_geometric_strategies_stay_distinct_on_duplicate_points(name):
    # Identical points and one-hot predictions make every distance (and gradient) zero.
    view = PoolView(
        probs=torch.eye(4)[torch.zeros(12, dtype=torch.long)],
        embeddings=torch.ones(12, 3),
        labeled_embeddings=torch.ones(5, 3),
    )
    picks = get_strategy(name).select(view, 12, gen(0))
    assert sorted(picks.tolist()) == list(range(12))


def test_coreset_matches_brute_force_greedy():
    view = random_view(n=40, d=5, m=15, seed=5)
    x, lab = view.embeddings.double(), view.labeled_embeddings.double()
    min_dist = torch.cdist(x, lab).min(1).values
    expected = []
    for _ in range(10):
        i = int(min_dist.argmax())
        expected.append(i)
        min_dist = torch.minimum(min_dist, torch.cdist(x, x[i : i + 1])[:, 0])
    assert get_strategy("CoreSet").select(view, 10, gen(0)).tolist() == expected


def test_badge_matches_dense_gradient_embeddings():
    view = random_view(n=40, c=4, d=5, seed=6)
    q = view.probs - torch.eye(4)[view.probs.argmax(1)]
    dense = (q[:, :, None] * view.embeddings[:, None, :]).reshape(40, -1).double()

    def sq_dist_to(i):
        return (dense - dense[i]).square().sum(1)

    expected = _d2_seeding(int(dense.norm(dim=1).argmax()), sq_dist_to, 12, gen(7))
    assert get_strategy("BADGE").select(view, 12, gen(7)).tolist() == expected.tolist()


def test_blocked_nearest_matches_cdist():
    x, y = torch.randn(11, 4, generator=gen(8)), torch.randn(9, 4, generator=gen(9))
    valid = torch.ones(9, dtype=torch.bool)
    valid[[0, 5]] = False
    sq, idx = _nearest(x, y, y_valid=valid, block=3)
    dist = torch.cdist(x, y).masked_fill(~valid, float("inf"))
    torch.testing.assert_close(sq, dist.min(1).values.square(), rtol=1e-4, atol=1e-5)
    assert idx.tolist() == dist.argmin(1).tolist()


class LargestTensor(TorchDispatchMode):
    """Records the element count of the largest tensor any torch op produces."""

    def __init__(self):
        super().__init__()
        self.largest = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                self.largest = max(self.largest, t.numel())
        return out


@pytest.mark.parametrize("name", ["BADGE", "CoreSet", "KMeans"])
def test_moderate_pool_never_allocates_n_by_n(name):
    n_pool, d, c = 20_000, 64, 50
    g = gen(10)
    view = PoolView(
        probs=torch.randn(n_pool, c, generator=g).softmax(-1),
        embeddings=torch.randn(n_pool, d, generator=g),
        labeled_embeddings=torch.randn(5_000, d, generator=g),
    )
    with LargestTensor() as mode:
        picks = get_strategy(name).select(view, 20, gen(0))
    assert len(np.unique(picks)) == 20
    # N x N would be 4e8 elements and BADGE's dense gradient embedding N x D x C 6.4e7;
    # the blocked distances stay at 2048 x 2048 = 4.2e6.
    assert mode.largest <= 2**22


@pytest.mark.parametrize("name", DIFFERENTIABLE_ACQUISITIONS)
def test_acquisition_scores_rank_and_match_select(name):
    probs = probs_view().probs
    scores = acquisition_scores(name, probs)
    assert scores.shape == (10,)
    assert torch.sort(scores, descending=True).indices[:2].tolist() == [7, 3]
    random_probs = random_view(n=50).probs
    expected = torch.sort(acquisition_scores(name, random_probs), descending=True).indices[:10]
    assert get_strategy(name).select(PoolView(probs=random_probs), 10, gen(0)).tolist() == expected.tolist()


@pytest.mark.parametrize("name", DIFFERENTIABLE_ACQUISITIONS)
def test_acquisition_scores_have_finite_nonzero_gradients(name):
    logits = torch.randn(6, 5, generator=gen(11), requires_grad=True)
    acquisition_scores(name, logits.softmax(-1)).sum().backward()
    assert torch.isfinite(logits.grad).all() and logits.grad.abs().sum() > 0
    # Exactly-zero probabilities must not turn the gradient into NaN or inf.
    probs = torch.tensor([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]], requires_grad=True)
    acquisition_scores(name, probs).sum().backward()
    assert torch.isfinite(probs.grad).all() and probs.grad.abs().sum() > 0


def test_acquisition_scores_rejects_other_names():
    with pytest.raises(ValueError) as info:
        acquisition_scores("BALD", probs_view().probs)
    assert all(name in str(info.value) for name in DIFFERENTIABLE_ACQUISITIONS)
