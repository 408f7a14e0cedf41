"""GALOT: PGD on the class-prompt embedding, the eps schedule, and generation with pseudo-labels.

For every class y, starting from c_y = E(T(y)), K projected sign-gradient steps (Eq. 5/6)

    c_{k+1} = Proj_{B_eps(c_y)}( c_k + eta * sign( grad_c (1/N) sum_i A(f_theta, x_0^(i)(c_k)) ) )

maximise the acquisition A of the images the diffusion model makes from c, with the gradient
taken through the last denoising step only (Proposition 1; ``grad="last"`` of the sampler).
The generation that follows (n images from the optimised embeddings, split evenly over the
classes and labelled with their class, Eq. 1) is in ``images`` and ``generator``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.checks import check_finite
from ..learning.strategies import DIFFERENTIABLE_ACQUISITIONS, acquisition_scores
from .prompts import GALOT_TEMPLATE, check_template
from .sampler import sample, to_classifier_input
from .t2i import T2IModel

GAL_ACQUISITIONS = DIFFERENTIABLE_ACQUISITIONS + ("RandomSampling",)
NORMS = ("linf", "l2")
EPS_SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class EpsSchedule:
    """eps per cycle: constant, or linear from ``start`` (first cycle) to ``end`` (last cycle).

    The paper grows eps linearly over the cycles without giving the end points."""

    kind: str = "linear"
    start: float = 0.05  # the embedded profile's schedule (MiniLM token states of the bundled model)
    end: float = 0.25

    def __post_init__(self):
        if self.kind not in EPS_SCHEDULES:
            raise ValueError(f"unknown eps schedule {self.kind!r}; valid: {', '.join(EPS_SCHEDULES)}")
        if self.start < 0 or self.end < 0:
            raise ValueError(f"eps must be >= 0, got start={self.start}, end={self.end}")

    @classmethod
    def constant(cls, eps: float) -> "EpsSchedule":
        return cls("constant", eps, eps)

    def at(self, cycle: int, cycles: int) -> float:
        if self.kind == "constant" or cycles <= 1:
            return self.start
        return self.start + (self.end - self.start) * cycle / (cycles - 1)


@dataclass(frozen=True)
class GalotConfig:
    """Everything that shapes GALOT's generated data (Table 8's columns plus what it leaves out);
    defaults: the embedded profile's."""

    template: str = GALOT_TEMPLATE
    acquisition: str = "MarginSampling"  # A_GAL
    eps: EpsSchedule = field(default_factory=EpsSchedule)
    pgd_steps: int = 2  # K
    grad_samples: int = 4  # N, images per gradient estimate
    eta: float | None = None  # PGD step size; None: 2.5 * eps / K (Madry et al.'s rule, scales with the ball)
    norm: str = "linf"
    fix_first_token: bool = True  # keep the BOS/CLS token state as it is
    sampling_steps: int = 4  # T of the sampler (DDIM)
    guidance: float = 3.0
    factor: float = 1.0  # n_GAL = factor x |L|
    oversample: float = 1.0  # generate oversample x n_GAL, keep a random n_GAL (Table 6: 2)
    optimize: bool = True  # False: GALOT (basic), prompts as they are

    def __post_init__(self):
        check_template(self.template)
        if self.acquisition not in GAL_ACQUISITIONS:
            raise ValueError(f"unknown acquisition {self.acquisition!r} for generation; valid: {', '.join(GAL_ACQUISITIONS)}")
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; valid: {', '.join(NORMS)}")
        for name in ("pgd_steps", "grad_samples", "sampling_steps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.eta is not None and self.eta < 0:
            raise ValueError(f"eta must be >= 0 or None, got {self.eta}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        if self.factor <= 0 or self.oversample < 1:
            raise ValueError(f"factor must be > 0 and oversample >= 1, got {self.factor}, {self.oversample}")

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def step_size(self, eps: float) -> float:
        return self.eta if self.eta is not None else 2.5 * eps / self.pgd_steps


def project(c: torch.Tensor, c_y: torch.Tensor, eps: float, norm: str, fix_first_token: bool) -> torch.Tensor:
    """Projection onto the eps-ball around c_y, per class embedding (tensors [..., L, D])."""
    delta = c - c_y
    if norm == "linf":
        delta = delta.clamp(-eps, eps)
    else:
        length = delta.flatten(-2).norm(dim=-1)[..., None, None]
        delta = delta * torch.where(length > eps, eps / length.clamp_min(1e-12), torch.ones_like(length))
    if fix_first_token:
        delta[..., 0, :] = 0
    return c_y + delta


def classifier_scores(classifier: torch.nn.Module, images: torch.Tensor, acquisition: str, size: int, channels: int) -> torch.Tensor:
    """A(f_theta, x) per image, differentiable w.r.t. the images."""
    probs = classifier(to_classifier_input(images, size, channels)).softmax(-1)
    return acquisition_scores(acquisition, probs)


def optimize_embeddings(
    model: T2IModel,
    classifier: torch.nn.Module | None,
    c_y: torch.Tensor,
    eps: float,
    config: GalotConfig,
    seeds: list[int],
    size: int,
    channels: int,
    max_batch: int = 64,
) -> tuple[torch.Tensor, torch.Tensor]:
    """PGD from every class embedding c_y[i] ([C, L, D]) inside its eps-ball, all classes at once.

    Returns c* [C, L, D] and the mean acquisition of each class's first N images (at c_y).
    Classes are batched together (an image depends on its own class embedding only, so the
    gradient of the summed per-class objectives is each class's own gradient), in chunks of at
    most ``max_batch`` images. ``seeds`` (one per class) fix each class's noise and directions
    whatever the chunking. RandomSampling moves in random sign directions (no classifier, no
    sampling): the paper's "random optimisation" of Sec. 4.4 and Fig. 5."""
    check_finite(c_y, "the class embeddings")
    c_y = c_y.detach().float()
    c = c_y.clone()
    classes = len(c_y)
    rngs = [np.random.default_rng(s) for s in seeds]
    gens = [torch.Generator().manual_seed(int(r.integers(2**31))) for r in rngs]
    before = torch.full((classes,), float("nan"))
    eta = config.step_size(eps)
    if eps == 0 or eta == 0 or not config.optimize:
        return c, before
    random = config.acquisition == "RandomSampling"
    if not random:
        classifier.eval()
    n = config.grad_samples
    per_chunk = max(1, max_batch // n)
    for k in range(config.pgd_steps):
        if random:
            direction = torch.stack([torch.randn(c.shape[1:], generator=g).sign() for g in gens])
        else:
            direction = torch.empty_like(c)
            for lo in range(0, classes, per_chunk):
                hi = min(classes, lo + per_chunk)
                c_k = c[lo:hi].clone().requires_grad_(True)
                image_seeds_k = [int(s) for r in rngs[lo:hi] for s in r.integers(0, 2**31, size=n)]
                images = sample(model, c_k.repeat_interleave(n, 0), image_seeds_k, steps=config.sampling_steps,
                                guidance=config.guidance, grad="last")
                scores = classifier_scores(classifier, images, config.acquisition, size, channels).view(hi - lo, n).mean(1)
                (grad,) = torch.autograd.grad(scores.sum(), c_k)
                check_finite(grad, f"the PGD gradient at step {k} (classes {lo}-{hi - 1})")
                if k == 0:
                    before[lo:hi] = scores.detach().float()
                direction[lo:hi] = grad.sign()
        c = project(c + eta * direction.to(c.device, c.dtype), c_y, eps, config.norm, config.fix_first_token)
        check_finite(c, f"the embeddings after PGD step {k}")
    return c.detach(), before
