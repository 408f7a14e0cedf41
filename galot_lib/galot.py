"""GALOT: PGD on the class-prompt embedding, the eps schedule, and generation with pseudo-labels.

For every class y, starting from c_y = E(T(y)), K projected sign-gradient steps (Eq. 5/6)

    c_{k+1} = Proj_{B_eps(c_y)}( c_k + eta * sign( grad_c (1/N) sum_i A(f_theta, x_0^(i)(c_k)) ) )

maximise the acquisition A of the images the diffusion model makes from c, with the gradient
taken through the last denoising step only (Proposition 1; ``grad="last"`` of the sampler).
Then n images are generated from the optimised embeddings, split evenly over the classes and
labelled with their class (Eq. 1).
"""

from __future__ import annotations

import dataclasses
import hashlib
from dataclasses import dataclass, field

import numpy as np
import torch

from .prompts import check_template, fill
from .sampler import sample, to_classifier_input
from .strategies import DIFFERENTIABLE_ACQUISITIONS, acquisition_scores
from .t2i import T2IModel
from .train import device_of

GAL_ACQUISITIONS = DIFFERENTIABLE_ACQUISITIONS + ("RandomSampling",)
NORMS = ("linf", "l2")
EPS_SCHEDULES = ("constant", "linear")


@dataclass(frozen=True)
class EpsSchedule:
    """eps per cycle: constant, or linear from ``start`` (first cycle) to ``end`` (last cycle).

    The paper grows eps linearly over the cycles without giving the end points."""

    kind: str = "linear"
    start: float = 0.0
    end: float = 0.5

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
    """Everything that shapes GALOT's generated data (Table 8's columns plus what it leaves out)."""

    template: str = "a realistic photo of a {label}"
    acquisition: str = "MarginSampling"  # A_GAL
    eps: EpsSchedule = field(default_factory=EpsSchedule)
    pgd_steps: int = 6  # K
    grad_samples: int = 10  # N, images per gradient estimate
    eta: float | None = None  # PGD step size; None: 2.5 * eps / K (Madry et al.'s rule, scales with the ball)
    norm: str = "linf"
    fix_first_token: bool = True  # keep the BOS/CLS token state as it is
    sampling_steps: int = 6  # T of the sampler (DDIM)
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


def check_finite(t: torch.Tensor, what: str):
    if not torch.isfinite(t).all():
        bad = (~torch.isfinite(t)).sum().item()
        raise FloatingPointError(f"{bad} non-finite value(s) in {what}")


def split_evenly(n: int, num_classes: int, seed: int) -> np.ndarray:
    """How many images each class gets: n // C each, the remainder to random classes."""
    counts = np.full(num_classes, n // num_classes)
    extra = np.random.default_rng(seed).choice(num_classes, size=n % num_classes, replace=False)
    counts[extra] += 1
    return counts


def image_seeds(seed: int, cycle: int, label: int, count: int) -> list[int]:
    """The noise seed of every generated image, so any one can be regenerated alone."""
    ss = np.random.SeedSequence([seed, cycle, label, 7])
    return [int(s) & 0x7FFFFFFF for s in ss.generate_state(count)]


@torch.no_grad()
def generate_images(model: T2IModel, embeddings: torch.Tensor, labels, seeds: list[int], config: GalotConfig,
                    size: int, channels: int, batch_size: int = 128) -> torch.Tensor:
    """uint8 images [n, channels, size, size]; image i from ``embeddings[labels[i]]`` ([C, L, D])
    and noise seed ``seeds[i]``, in batches that may mix classes."""
    labels = torch.as_tensor(labels, dtype=torch.long)
    out = []
    for start in range(0, len(seeds), batch_size):
        chunk = slice(start, start + batch_size)
        images = sample(model, embeddings[labels[chunk]], seeds[chunk], steps=config.sampling_steps,
                        guidance=config.guidance, out_size=size, out_channels=channels)
        out.append(images.mul(255).round().clamp(0, 255).to(torch.uint8).cpu())
    return torch.cat(out) if out else torch.zeros(0, channels, size, size, dtype=torch.uint8)


def class_seeds(seed: int, cycle: int, num_classes: int) -> list[int]:
    """One PGD seed per class (its gradient noise and random directions)."""
    return [int(np.random.SeedSequence([seed, cycle, label]).generate_state(1)[0]) for label in range(num_classes)]


def planned_images(counts, seed: int, cycle: int) -> tuple[torch.Tensor, list[int]]:
    """Labels and noise seeds of the images to generate: ``counts[c]`` images of class c."""
    labels = torch.cat([torch.full((int(n),), c, dtype=torch.long) for c, n in enumerate(counts)])
    seeds = [s for c, n in enumerate(counts) for s in image_seeds(seed, cycle, c, int(n))]
    return labels, seeds


def state_fingerprint(module: torch.nn.Module) -> str:
    """Hash of a classifier's weights: part of the cache key of what it guided."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


class GalotGenerator:
    """The loop's generation hook: GALOT, GALOT (basic) and the GAL-only baseline.

    Each cycle: eps from the schedule, one optimised embedding per class (PGD against the
    current classifier), then ``factor x |L|`` images split evenly over the classes (or
    ``oversample`` times as many, of which a random ``factor x |L|`` are kept), pseudo-labelled
    with their class. Sets are looked up in / written to the cache by their full provenance.
    """

    def __init__(self, model: T2IModel, class_names: tuple[str, ...], config: GalotConfig, cycles: int,
                 image_size: int, image_channels: int, cache=None):
        self.model, self.class_names, self.config, self.cycles = model, tuple(class_names), config, cycles
        self.size, self.channels, self.cache = image_size, image_channels, cache

    def describe(self) -> dict:
        return dict(t2i=self.model.fingerprint, classes=self.class_names, galot=self.config.as_dict(),
                    cycles=self.cycles, size=self.size, channels=self.channels)

    def class_embeddings(self) -> torch.Tensor:
        """c_y for every class: the template filled with the class word, encoded."""
        return self.model.encode([fill(self.config.template, name) for name in self.class_names]).float()

    def __call__(self, cycle: int, trained, n_labeled: int, seed: int):
        from .cache import CachedSet, make_key
        from .loop import Generated

        cfg = self.config
        n_keep = int(round(cfg.factor * n_labeled))
        n_make = int(round(cfg.oversample * n_keep))
        classifier = trained.model if trained is not None else None
        eps = self.eps_at(cycle) if classifier is not None else 0.0  # nothing to optimise against yet
        key = make_key(**self.describe(), eps=eps, cycle=cycle, seed=seed, n=n_make, keep=n_keep,
                       classifier=state_fingerprint(classifier) if self.needs_classifier(eps) else None)
        entry = self.cache.get(key) if self.cache is not None else None
        hit = entry is not None
        if entry is None:
            entry = self.make(cycle, classifier, eps, n_make, n_keep, seed)
            if self.cache is not None:
                self.cache.put(key, entry)
        info = dict(entry.meta, cache_key=key, cache_hit=hit)
        return Generated(entry.images, entry.labels, info)

    def eps_at(self, cycle: int) -> float:
        return self.config.eps.at(cycle, self.cycles) if self.config.optimize else 0.0

    def needs_classifier(self, eps: float) -> bool:
        """Only gradient-guided PGD depends on the classifier (random directions and eps = 0 don't)."""
        return eps > 0 and self.config.acquisition != "RandomSampling" and self.config.step_size(eps) > 0

    def make(self, cycle: int, classifier, eps: float, n_make: int, n_keep: int, seed: int):
        from .cache import CachedSet

        cfg = self.config
        c_y = self.class_embeddings()
        c_star, before = optimize_embeddings(self.model, classifier, c_y, eps, cfg,
                                             class_seeds(seed, cycle, len(self.class_names)), self.size, self.channels)
        labels, seeds = planned_images(split_evenly(n_make, len(self.class_names), seed), seed, cycle)
        images = generate_images(self.model, c_star, labels, seeds, cfg, self.size, self.channels)
        if n_keep < n_make:  # Table 6: generate more, keep a random subset
            keep = np.sort(np.random.default_rng([seed, cycle, 11]).choice(n_make, size=n_keep, replace=False))
            images, labels = images[keep], labels[keep]
        after = float("nan")
        if len(images) and cfg.acquisition != "RandomSampling" and classifier is not None:
            with torch.no_grad():
                device = device_of(classifier)
                after = float(classifier_scores(classifier.eval(), images.to(device).float() / 255, cfg.acquisition,
                                                self.size, self.channels).mean())
        shift = (c_star - c_y).flatten(1).abs().max(1).values
        meta = dict(eps=eps, acquisition_before=float(before.nanmean()) if before.isfinite().any() else float("nan"),
                    acquisition_after=after, embedding_shift_linf=float(shift.mean()), generated_this_cycle=len(labels))
        return CachedSet(images, labels, meta, c_star)
