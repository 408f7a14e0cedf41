"""The pool-based active-learning acquisition strategies, as small stateless classes.

A strategy sees only predictions and embeddings (a :class:`PoolView`), never a model or a data
set, so each one can be tested on synthetic arrays and reused by the pool-based baselines and by
GALOT alike. All of them scale to pools of ~100k candidates with 512-d embeddings and 200
classes: nothing builds an ``N x N`` distance matrix or BADGE's dense ``N x (D * C)`` gradient
embedding; pairwise distances are computed in blocks and kept as running minima.

:func:`acquisition_scores` is the differentiable form of the three probability-based scores;
GALOT maximises it by backpropagating through a text-to-image generator, and the ranking
strategies select with the very same functions so both uses share one definition.
"""

from __future__ import annotations

import dataclasses
import operator
from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from ..core.checks import all_finite

DIFFERENTIABLE_ACQUISITIONS = ("MarginSampling", "EntropySampling", "LeastConfidence")

# Rows per block in blocked distance computations: a 2048 x 2048 float32 block is 16 MB, small
# enough to stay far from N x N yet large enough for an efficient matrix multiply.
_BLOCK = 2048


@dataclass
class PoolView:
    """What a strategy may look at: N unlabelled candidates, M labelled points."""

    probs: torch.Tensor | None = None  # [N, C] softmax probabilities (eval mode)
    mc_probs: torch.Tensor | None = None  # [T, N, C] MC-dropout probabilities
    embeddings: torch.Tensor | None = None  # [N, D] penultimate-layer embeddings
    labeled_embeddings: torch.Tensor | None = None  # [M, D]
    predicted_loss: torch.Tensor | None = None  # [N] outputs of a loss-prediction module
    num_candidates: int | None = None  # N, for strategies that look at nothing else (RandomSampling)


_NDIM = {"probs": 2, "mc_probs": 3, "embeddings": 2, "labeled_embeddings": 2, "predicted_loss": 1}
_CANDIDATE_AXIS = {"probs": 0, "mc_probs": 1, "embeddings": 0, "predicted_loss": 0}


def _pool_size(view: PoolView) -> int:
    """N, after checking that the present fields have consistent shapes."""
    for field, ndim in _NDIM.items():
        t = getattr(view, field)
        if t is not None and t.dim() != ndim:
            raise ValueError(f"PoolView.{field} must be {ndim}-D, got shape {tuple(t.shape)}")
    present = {f: getattr(view, f) for f in _CANDIDATE_AXIS if getattr(view, f) is not None}
    sizes = {f: t.shape[_CANDIDATE_AXIS[f]] for f, t in present.items()}
    if view.num_candidates is not None:
        sizes["num_candidates"] = view.num_candidates
    if not sizes:
        raise ValueError("PoolView holds no per-candidate field, so the pool size N is unknown")
    if len(set(sizes.values())) > 1:
        raise ValueError(f"PoolView fields disagree on the number of candidates N: {sizes}")
    probs, mc, emb, lab = view.probs, view.mc_probs, view.embeddings, view.labeled_embeddings
    if mc is not None and mc.shape[0] < 1:
        raise ValueError("PoolView.mc_probs needs at least one MC pass")
    if probs is not None and mc is not None and probs.shape[1] != mc.shape[2]:
        raise ValueError(f"PoolView.probs has {probs.shape[1]} classes, mc_probs {mc.shape[2]}")
    if emb is not None and lab is not None and emb.shape[1] != lab.shape[1]:
        raise ValueError(f"PoolView.embeddings are {emb.shape[1]}-d but labeled_embeddings {lab.shape[1]}-d")
    return next(iter(sizes.values()))


class Strategy:
    """Base class: validates the request, then delegates to :meth:`_select`."""

    name: ClassVar[str]
    needs: ClassVar[frozenset[str]]

    def select(self, view: PoolView, n: int, generator: torch.Generator) -> np.ndarray:
        """n distinct int64 indices into the N candidates, most informative first."""
        missing = sorted(f for f in self.needs if getattr(view, f) is None)
        if missing:
            raise ValueError(f"{self.name} needs PoolView field(s) {missing}, which are missing")
        num = _pool_size(view)
        n = operator.index(n)
        if not 1 <= n <= num:
            raise ValueError(f"n must satisfy 1 <= n <= N, got n={n} with N={num}")
        # A NaN would silently scramble every ranking and distance below.
        for f in self.needs:
            if not all_finite(getattr(view, f)):
                raise ValueError(f"PoolView.{f} contains non-finite values")
        view = dataclasses.replace(view, **{f: getattr(view, f).detach().float() for f in self.needs})
        with torch.no_grad():
            picks = self._select(view, n, generator)
        return picks.cpu().numpy().astype(np.int64)

    def _select(self, view: PoolView, n: int, generator: torch.Generator) -> torch.Tensor:
        raise NotImplementedError


def _sq_norms(x: torch.Tensor) -> torch.Tensor:
    """Squared row norms without the [N, D] temporary of ``x.square().sum(1)``."""
    return torch.linalg.vector_norm(x, dim=1).square()


def _top(scores: torch.Tensor, n: int) -> torch.Tensor:
    """Indices of the n highest scores; a stable sort breaks ties by index, on every device."""
    return torch.sort(scores, descending=True, stable=True).indices[:n]


# --- differentiable, probability-based scores (higher = more informative) ---------------------


def _entropy(probs: torch.Tensor) -> torch.Tensor:
    # The clamp keeps log(0) and its gradient finite for exactly-zero probabilities.
    return -(probs * probs.clamp_min(torch.finfo(probs.dtype).tiny).log()).sum(-1)


def _negative_margin(probs: torch.Tensor) -> torch.Tensor:
    if probs.shape[-1] < 2:
        raise ValueError("MarginSampling needs at least 2 classes")
    top2 = torch.topk(probs, 2, dim=-1).values
    return -(top2[..., 0] - top2[..., 1])


def _least_confidence(probs: torch.Tensor) -> torch.Tensor:
    return 1 - probs.max(-1).values


_SCORES: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "MarginSampling": _negative_margin,
    "EntropySampling": _entropy,
    "LeastConfidence": _least_confidence,
}


def acquisition_scores(name: str, probs: torch.Tensor) -> torch.Tensor:
    """Per-sample scores ``[N]`` of ``probs [N, C]``, higher = more informative, differentiable."""
    if name not in _SCORES:
        raise ValueError(f"no differentiable acquisition {name!r}; choose one of {DIFFERENTIABLE_ACQUISITIONS}")
    if probs.dim() != 2:
        raise ValueError(f"probs must be [N, C], got shape {tuple(probs.shape)}")
    return _SCORES[name](probs)


# --- ranking strategies -----------------------------------------------------------------------


class RandomSampling(Strategy):
    """Uniform sampling without replacement: the baseline every strategy must beat.

    It needs no predictions, but PoolView conveys N only through its per-candidate fields, so
    the view must still hold one of them (any).
    """

    name = "RandomSampling"
    needs = frozenset()

    def _select(self, view, n, generator):
        return torch.randperm(_pool_size(view), generator=generator, device=generator.device)[:n]


class _ScoreRanking(Strategy):
    """Selects the n candidates with the highest :meth:`_scores`."""

    def _scores(self, view: PoolView) -> torch.Tensor:
        raise NotImplementedError

    def _select(self, view, n, generator):
        return _top(self._scores(view), n)


class _ProbabilityRanking(_ScoreRanking):
    """Ranks by the differentiable score of the same name (the one GALOT maximises)."""

    needs = frozenset({"probs"})

    def _scores(self, view):
        return acquisition_scores(self.name, view.probs)


class EntropySampling(_ProbabilityRanking):
    name = "EntropySampling"


class MarginSampling(_ProbabilityRanking):
    name = "MarginSampling"


class LeastConfidence(_ProbabilityRanking):
    name = "LeastConfidence"


class BALD(_ScoreRanking):
    """Mutual information between the prediction and the MC-dropout weights."""

    name = "BALD"
    needs = frozenset({"mc_probs"})

    def _scores(self, view):
        mc = view.mc_probs
        # One pass at a time: a [T, N, C] temporary would double an already large input.
        expected_entropy = sum(_entropy(p) for p in mc) / mc.shape[0]
        return _entropy(mc.mean(0)) - expected_entropy


class MeanSTD(_ScoreRanking):
    """Mean over classes of the (population) standard deviation across MC passes."""

    name = "MeanSTD"
    needs = frozenset({"mc_probs"})

    def _scores(self, view):
        mc = view.mc_probs
        mean = mc.mean(0)
        # Two-pass variance, one pass at a time, to avoid [T, N, C] temporaries.
        var = sum((p - mean).square() for p in mc) / mc.shape[0]
        return var.sqrt().mean(-1)


class VarRatio(Strategy):
    """1 - (votes for the modal MC prediction) / T; ties go to the lower max mean probability."""

    name = "VarRatio"
    needs = frozenset({"mc_probs"})

    def _select(self, view, n, generator):
        mc = view.mc_probs
        num_passes, num, num_classes = mc.shape
        votes = torch.zeros(num, num_classes, device=mc.device)
        votes.scatter_add_(1, mc.argmax(-1).T, torch.ones(num, num_passes, device=mc.device))
        ratio = 1 - votes.max(1).values / num_passes
        tie_break = 1 - mc.mean(0).max(1).values
        # Lexicographic order: sort by the tie-break, then stably by the (discrete) ratio.
        order = torch.sort(tie_break, descending=True, stable=True).indices
        return order[_top(ratio[order], n)]


class LossPrediction(_ScoreRanking):
    """The candidates whose loss the loss-prediction module expects to be highest."""

    name = "LossPrediction"
    needs = frozenset({"predicted_loss"})

    def _scores(self, view):
        return view.predicted_loss


# --- geometry-based strategies ----------------------------------------------------------------


def _sample(weights: torch.Tensor, generator: torch.Generator) -> int:
    """One index drawn with probability proportional to ``weights`` (>= 0, positive sum).

    Inverse-CDF sampling from a single generator draw works on any device whatever the
    generator's device, unlike ``torch.multinomial``.
    """
    cdf = weights.double().cumsum(0)
    u = torch.rand((), generator=generator, device=generator.device, dtype=torch.float64)
    i = int(torch.searchsorted(cdf, u.to(cdf.device) * cdf[-1], right=True))
    if i == len(cdf):  # u * total rounded up to total: take the last positive weight
        i = int(torch.searchsorted(cdf, cdf[-1]))
    return i


def _d2_seeding(
    first: int, sq_dist_to: Callable[[int], torch.Tensor], n: int, generator: torch.Generator
) -> torch.Tensor:
    """k-means++ seeding: after ``first``, draw each seed with probability ~ D^2 to the nearest.

    ``sq_dist_to(i)`` gives the squared distances ``[N]`` from point i to every point, so the
    caller decides the geometry (BADGE uses factored gradient embeddings) and only a running
    minimum ``[N]`` is kept. Once every remaining point coincides with a seed (D^2 all zero),
    seeds are drawn uniformly among the unpicked points so that n distinct ones are returned.
    """
    picks = [first]
    min_sq = sq_dist_to(first).clamp_min(0)
    picked = torch.zeros_like(min_sq, dtype=torch.bool)
    picked[first] = True
    for _ in range(n - 1):
        weights = min_sq.masked_fill(picked, 0)
        if not weights.sum() > 0:
            weights = (~picked).double()
        i = _sample(weights, generator)
        picks.append(i)
        picked[i] = True
        min_sq = torch.minimum(min_sq, sq_dist_to(i).clamp_min(0))
    return torch.tensor(picks, device=min_sq.device)


def _nearest(
    x: torch.Tensor, y: torch.Tensor, y_valid: torch.Tensor | None = None, block: int = _BLOCK
) -> tuple[torch.Tensor, torch.Tensor]:
    """For each row of x, the squared distance to and index of its nearest valid row of y.

    Computed in ``block x block`` tiles with running minima, never materialising ``len(x) x
    len(y)``. Rows of x with no valid y get distance inf.
    """
    y_sq = _sq_norms(y)
    if y_valid is not None:
        y_sq = y_sq.masked_fill(~y_valid, float("inf"))
    best_sq = torch.full((len(x),), float("inf"), device=x.device)
    best_idx = torch.zeros(len(x), dtype=torch.long, device=x.device)
    for s in range(0, len(x), block):
        xb = x[s : s + block]
        xb_sq = _sq_norms(xb).unsqueeze(1)
        for t in range(0, len(y), block):
            yb, yb_sq = y[t : t + block], y_sq[t : t + block]
            d = torch.addmm(yb_sq.unsqueeze(0), xb, yb.T, alpha=-2).add_(xb_sq)
            m, j = d.min(1)
            better = m < best_sq[s : s + block]
            best_sq[s : s + block] = torch.where(better, m, best_sq[s : s + block])
            best_idx[s : s + block] = torch.where(better, j + t, best_idx[s : s + block])
    return best_sq.clamp_min(0), best_idx


class BADGE(Strategy):
    """k-means++ seeding on the last-layer gradient embeddings ``(p - onehot(argmax p)) x e``.

    The embeddings are ``N x (C * D)``, too large to build, so distances use the factored form
    ``<g_i, g_j> = <q_i, q_j> <e_i, e_j>`` with ``q = p - onehot(argmax p)``.
    """

    name = "BADGE"
    needs = frozenset({"probs", "embeddings"})

    def _select(self, view, n, generator):
        q = view.probs.clone()
        q[torch.arange(len(q), device=q.device), q.argmax(1)] -= 1
        e = view.embeddings
        g_sq = _sq_norms(q) * _sq_norms(e)

        def sq_dist_to(i):
            return (q @ q[i]).mul_(e @ e[i]).mul_(-2).add_(g_sq).add_(g_sq[i])

        return _d2_seeding(int(g_sq.argmax()), sq_dist_to, n, generator)


def _nearest_distinct(centres: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """For each centre, the nearest row of x, all distinct (needs ``len(centres) <= len(x)``).

    Rounds of nearest-untaken search: when centres claim the same candidate, the closest centre
    gets it and the others search again, so every round settles at least one centre.
    """
    chosen = torch.empty(len(centres), dtype=torch.long, device=x.device)
    taken = torch.zeros(len(x), dtype=torch.bool, device=x.device)
    pending = torch.arange(len(centres), device=x.device)
    while len(pending):
        sq, idx = _nearest(centres[pending], x, y_valid=~taken)
        order = torch.sort(sq, stable=True).indices
        _, claim = torch.unique(idx[order], return_inverse=True)
        first = torch.full((int(claim.max()) + 1,), len(order), device=x.device)
        first = first.scatter_reduce(0, claim, torch.arange(len(order), device=x.device), "amin")
        winners = order[first]
        chosen[pending[winners]] = idx[winners]
        taken[idx[winners]] = True
        keep = torch.ones(len(pending), dtype=torch.bool, device=x.device)
        keep[winners] = False
        pending = pending[keep]
    return chosen


class KMeans(Strategy):
    """k-means with k = n; returns the candidate nearest each centre, largest clusters first."""

    name = "KMeans"
    needs = frozenset({"embeddings"})

    def __init__(self, max_iter: int = 10):
        # Lloyd iterations cost N * n * D each; a bounded count keeps the cost predictable.
        if max_iter < 1:
            raise ValueError(f"max_iter must be >= 1, got {max_iter}")
        self.max_iter = max_iter

    def _select(self, view, n, generator):
        x = view.embeddings
        x_sq = _sq_norms(x)

        def sq_dist_to(i):
            return (x @ x[i]).mul_(-2).add_(x_sq).add_(x_sq[i])

        first = _sample(torch.ones(len(x), device=x.device), generator)
        centres = x[_d2_seeding(first, sq_dist_to, n, generator)]
        assign = None
        for _ in range(self.max_iter):
            _, new_assign = _nearest(x, centres)
            if assign is not None and torch.equal(new_assign, assign):
                break
            assign = new_assign
            sums = torch.zeros_like(centres).index_add_(0, assign, x)
            counts = torch.bincount(assign, minlength=n)
            filled = counts > 0  # an empty cluster keeps its old centre
            centres[filled] = sums[filled] / counts[filled].unsqueeze(1)
        sizes = torch.bincount(assign, minlength=n)
        by_size = torch.sort(sizes, descending=True, stable=True).indices
        return _nearest_distinct(centres[by_size], x)


class CoreSet(Strategy):
    """Greedy k-centre: each pick is the candidate farthest from the labelled set and the picks.

    ``labeled_embeddings`` is required but may be empty (``[0, D]``); then the first pick is the
    candidate farthest from the pool mean.
    """

    name = "CoreSet"
    needs = frozenset({"embeddings", "labeled_embeddings"})

    def _select(self, view, n, generator):
        x = view.embeddings
        x_sq = _sq_norms(x)
        if len(view.labeled_embeddings):
            min_sq, _ = _nearest(x, view.labeled_embeddings)
        else:
            min_sq = _sq_norms(x - x.mean(0))
        picks = []
        for _ in range(n):
            i = int(min_sq.argmax())
            picks.append(i)
            sq_to_pick = (x @ x[i]).mul_(-2).add_(x_sq).add_(x_sq[i]).clamp_min_(0)
            min_sq = torch.minimum(min_sq, sq_to_pick)
            # -1 keeps a pick from recurring even when every remaining distance is zero.
            min_sq[i] = -1
        return torch.tensor(picks, device=x.device)


STRATEGIES: dict[str, type[Strategy]] = {
    cls.name: cls
    for cls in (
        RandomSampling,
        EntropySampling,
        MarginSampling,
        LeastConfidence,
        BALD,
        BADGE,
        MeanSTD,
        VarRatio,
        KMeans,
        CoreSet,
        LossPrediction,
    )
}


def get_strategy(name: str) -> Strategy:
    """A default-configured instance of the strategy registered under ``name``."""
    if name not in STRATEGIES:
        raise ValueError(f"unknown strategy {name!r}; valid names: {', '.join(STRATEGIES)}")
    return STRATEGIES[name]()
