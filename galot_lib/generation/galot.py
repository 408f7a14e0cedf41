"""GALOT: PGD on the class-prompt embedding (Eq. 5/6), its settings and the eps schedule.

For every class y, starting from c_y = E(T(y)), K projected sign-gradient steps

    c_{k+1} = Proj_{B_eps(c_y)}( c_k + eta * sign( grad_c (1/N) sum_i A(f_theta, x_0^(i)(c_k)) ) )

maximise the acquisition A of the images the diffusion model makes from c. The gradient through
the sampler is estimated as the configuration says (``estimator``: Proposition 1's last step, the
exact full chain, or a one-step clean-image estimate; see ``sampler``). Beside the paper's objective
A, ``prompt_margin`` rewards nearing the classifier's boundary only from the prompt's own side, so
the optimisation gains nothing by turning the image into another class (its pseudo-label would then
be wrong). The generation that follows (Eq. 1) is in ``images`` and ``generator``.
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass, field

import numpy as np
import torch

from ..core.checks import check_finite
from ..learning.strategies import DIFFERENTIABLE_ACQUISITIONS, acquisition_scores
from .memory import (
    INT32_ELEMENTS,
    MAX_MICRO_BATCH,
    MemoryPlan,
    cached_plan,
    chunks,
    largest_output,
    measure_path,
    memory_budget,
)
from .pixels import to_classifier_input
from .prompts import GALOT_TEMPLATE, check_template
from .sampler import sample
from .t2i import T2IModel

GAL_ACQUISITIONS = DIFFERENTIABLE_ACQUISITIONS + ("RandomSampling",)
NORMS = ("linf", "l2")
EPS_SCHEDULES = ("constant", "linear")
ESTIMATORS = ("last", "full", "x0")  # the sampler's gradient modes that PGD can use
OBJECTIVES = ("acquisition", "prompt_margin")
LABEL_FILTERS = ("none", "diffusion", "clip")
KEEP_RULES = ("any", "informative")  # which of the oversampled images are kept
HALF_PRECISION_SCALE = 2.0**15  # first loss scale of an fp16 backward (divided by 16 on overflow)
# GalotConfig fields that only shape PGD (irrelevant to the images of an unoptimised configuration)
PGD_FIELDS = (
    "acquisition",
    "eps",
    "pgd_steps",
    "grad_samples",
    "eta",
    "norm",
    "fix_first_token",
    "estimator",
    "estimator_step",
    "objective",
    "heldout_samples",
    "measure_fidelity",
    "per_image",
)


@dataclass(frozen=True)
class EpsSchedule:
    """eps per cycle: constant, or linear from ``start`` at cycle 0 to ``end`` at cycle ``cycles - 1`` (and
    ``end`` after). The paper grows eps linearly over its cycles without giving the end points. The
    schedule's own horizon (not the run's length) fixes each cycle's eps, so a shorter run is the prefix of
    a longer one and shares its computed cycles."""

    kind: str = "linear"
    start: float = 0.05  # the embedded profile's schedule (MiniLM token states of the bundled model)
    end: float = 0.25
    cycles: int = 4

    def __post_init__(self):
        if self.kind not in EPS_SCHEDULES:
            raise ValueError(f"unknown eps schedule {self.kind!r}; valid: {', '.join(EPS_SCHEDULES)}")
        if self.start < 0 or self.end < 0:
            raise ValueError(f"eps must be >= 0, got start={self.start}, end={self.end}")
        if self.cycles < 1:
            raise ValueError(f"the schedule's cycles must be >= 1, got {self.cycles}")

    @classmethod
    def constant(cls, eps: float) -> "EpsSchedule":
        return cls("constant", eps, eps, 1)

    def at(self, cycle: int) -> float:
        if self.kind == "constant" or self.cycles <= 1:
            return self.start
        return self.start + (self.end - self.start) * min(cycle, self.cycles - 1) / (self.cycles - 1)


@dataclass(frozen=True)
class GalotConfig:
    """Everything that shapes GALOT's generated data (Table 8's columns plus what it leaves out);
    defaults: the embedded profile's."""

    template: str = GALOT_TEMPLATE
    acquisition: str = "MarginSampling"  # A_GAL
    eps: EpsSchedule = field(default_factory=EpsSchedule)
    pgd_steps: int = 2  # K
    grad_samples: int = 2  # N, images per gradient estimate
    eta: float | None = None  # PGD step size; None: 2.5 * eps / K (Madry et al.'s rule, scales with the ball)
    norm: str = "linf"
    fix_first_token: bool = True  # keep the BOS/CLS token state as it is
    sampling_steps: int = 3  # T of the sampler (DDIM)
    guidance: float = 3.0
    factor: float = 1.0  # n_GAL = factor x |L|
    oversample: float = (
        1.0  # generate oversample x n_GAL, keep n_GAL (Table 6: 2; with a label filter, the passing ones)
    )
    keep_rule: str = "any"  # which oversampled images stay: "any" (random; the first that pass a filter) or
    # "informative" (the highest A_GAL under the current classifier: selection instead of optimisation)
    optimize: bool = True  # False: GALOT (basic), prompts as they are
    estimator: str = "last"  # how d(images)/d(embedding) is taken: "last" | "full" | "x0"
    estimator_step: int | None = None  # "x0" only: the sampling step whose clean estimate is differentiated
    objective: str = "acquisition"  # "acquisition" (the paper's A) | "prompt_margin" (label-aware)
    label_filter: str = "none"  # drop generated images another classifier does not see as their class
    clip_model: str | None = None  # the CLIP weights of label_filter="clip" (hub id or folder)
    heldout_samples: int = 4  # images per class on fresh seeds that measure PGD's gain (paired, held out)
    measure_fidelity: bool = False  # also take the full gradient at PGD's first step and compare
    per_image: bool = False  # one PGD per generated image, against that image's own noise (grad_samples unused),
    # instead of one c* per class shared by the cycle's images of the class
    # A label filter that passes too few images of a class to fill its share (within MAX_RENDER_FACTOR x the share)
    # stops the run; keep_short=True keeps fewer instead (giving up at KEEP_SHORT_RENDER_FACTOR x the share) and the
    # records count the shortfall (kept_short): for stand-in models whose filters judge at random (the rehearsal),
    # never for a comparison of arms.
    keep_short: bool = False

    def __post_init__(self):
        check_template(self.template)
        if self.acquisition not in GAL_ACQUISITIONS:
            raise ValueError(
                f"unknown acquisition {self.acquisition!r} for generation; valid: {', '.join(GAL_ACQUISITIONS)}"
            )
        if self.norm not in NORMS:
            raise ValueError(f"unknown norm {self.norm!r}; valid: {', '.join(NORMS)}")
        for name in ("pgd_steps", "grad_samples", "sampling_steps", "heldout_samples"):
            if (
                isinstance(getattr(self, name), bool)
                or not isinstance(getattr(self, name), int)
                or getattr(self, name) < 1
            ):
                raise ValueError(f"{name} must be an integer >= 1, got {getattr(self, name)!r}")
        if self.eta is not None and self.eta < 0:
            raise ValueError(f"eta must be >= 0 or None, got {self.eta}")
        if self.guidance < 0:
            raise ValueError(f"guidance must be >= 0, got {self.guidance}")
        if self.factor <= 0 or self.oversample < 1:
            raise ValueError(f"factor must be > 0 and oversample >= 1, got {self.factor}, {self.oversample}")
        if self.estimator not in ESTIMATORS:
            raise ValueError(f"unknown gradient estimator {self.estimator!r}; valid: {', '.join(ESTIMATORS)}")
        if self.estimator == "x0":
            step = self.estimator_step
            if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step < self.sampling_steps:
                raise ValueError(
                    f"the x0 estimator needs estimator_step from 0 to {self.sampling_steps - 1} (sampling "
                    f"runs {self.sampling_steps} steps), got {step!r}"
                )
        elif self.estimator_step is not None:
            raise ValueError(f"estimator_step is only for the x0 estimator (estimator={self.estimator!r})")
        if self.objective not in OBJECTIVES:
            raise ValueError(f"unknown objective {self.objective!r}; valid: {', '.join(OBJECTIVES)}")
        if self.label_filter not in LABEL_FILTERS:
            raise ValueError(f"unknown label_filter {self.label_filter!r}; valid: {', '.join(LABEL_FILTERS)}")
        if self.keep_rule not in KEEP_RULES:
            raise ValueError(f"unknown keep_rule {self.keep_rule!r}; valid: {', '.join(KEEP_RULES)}")
        if self.keep_rule == "informative" and self.oversample <= 1:
            raise ValueError(
                "keep_rule='informative' selects among oversampled images: it needs oversample > 1 "
                f"(for example 4: keep the most informative quarter), got oversample={self.oversample}"
            )
        if self.per_image and not self.optimize:
            raise ValueError("per_image=True optimises one prompt per image: it needs optimize=True")
        if (self.label_filter == "clip") != (self.clip_model is not None):
            raise ValueError(
                "label_filter='clip' needs clip_model (a CLIP hub id or folder), and clip_model is only "
                f"for that filter; got label_filter={self.label_filter!r}, clip_model={self.clip_model!r}"
            )

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)

    def image_settings(self) -> dict:
        """The fields that decide the generated images: all of them, or, unoptimised, none of PGD's (so every
        unoptimised configuration with the same prompt and sampling shares its images) but the acquisition that
        selection ranks by."""
        settings = self.as_dict()
        if not self.optimize:
            for name in PGD_FIELDS:
                if not (name == "acquisition" and self.keep_rule == "informative"):
                    settings.pop(name)
        return settings

    def step_size(self, eps: float) -> float:
        return self.eta if self.eta is not None else 2.5 * eps / self.pgd_steps

    @property
    def heldout_acquisition(self) -> str:
        """The acquisition that measures informativeness: A_GAL, or margin when A_GAL is random."""
        return self.acquisition if self.acquisition in DIFFERENTIABLE_ACQUISITIONS else "MarginSampling"


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


def classifier_scores(
    classifier: torch.nn.Module, images: torch.Tensor, acquisition: str, size: int, channels: int
) -> torch.Tensor:
    """A(f_theta, x) per image, differentiable w.r.t. the images."""
    probs = classifier(to_classifier_input(images, size, channels)).softmax(-1)
    return acquisition_scores(acquisition, probs)


def prompt_margin(probs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """``-|p_y - max_{j != y} p_j|`` per image: highest on the boundary of the prompt's class y and falling on
    both sides of it, so moving an image into another class scores worse, not better."""
    p_y = probs.gather(1, labels[:, None])[:, 0]
    rival = probs.scatter(1, labels[:, None], float("-inf")).max(1).values
    return -(p_y - rival).abs()


def objective_scores(
    classifier: torch.nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    config: GalotConfig,
    size: int,
    channels: int,
) -> torch.Tensor:
    """What PGD maximises, per image (``labels``: the class each image's prompt names)."""
    if config.objective == "prompt_margin":
        probs = classifier(to_classifier_input(images, size, channels)).softmax(-1)
        return prompt_margin(probs, labels)
    return classifier_scores(classifier, images, config.acquisition, size, channels)


@dataclass
class PGDResult:
    embeddings: torch.Tensor  # c*, [C, L, D] float32
    objective_before: torch.Tensor  # [C]: the objective on PGD's own first-step images at c_y (NaN: not measured)
    zero_share: list[float]  # per PGD step: the share of gradient entries that are exactly zero
    seconds: float
    fidelity: dict | None = None  # cosine and sign agreement with the full gradient at the first step


def optimize_embeddings(
    model: T2IModel,
    classifier: torch.nn.Module | None,
    c_y: torch.Tensor,
    eps: float,
    config: GalotConfig,
    seeds: list[int],
    size: int,
    channels: int,
    plan: MemoryPlan | None = None,
    noise_seeds: list[int] | None = None,
    classes_of_rows: torch.Tensor | None = None,
) -> PGDResult:
    """PGD from every class embedding c_y[i] ([C, L, D]) inside its eps-ball, all classes at once.

    Per-image prompts: ``c_y`` holds one row per image (its class's embedding), ``noise_seeds`` each row's own
    image noise (one gradient image per row and step, always that noise) and ``classes_of_rows`` the class each
    row's prompt names.

    The C x N gradient images are differentiated ``plan.grad_micro_batch`` at a time (default: all at
    once) and their gradients summed per class: an image depends on its own class embedding only, so
    the sum is each class's gradient whatever the split. ``seeds`` (one per class) fix each class's noise
    and random directions. RandomSampling moves in random sign directions (no classifier, no sampling):
    the paper's "random optimisation" of Sec. 4.4 and Fig. 5."""
    check_finite(c_y, "the class embeddings")
    if (noise_seeds is None) != (classes_of_rows is None):
        raise ValueError("per-image PGD needs both noise_seeds and classes_of_rows (one per row of c_y)")
    start = time.perf_counter()
    c_y = c_y.detach().float()
    c = c_y.clone()
    classes, n = len(c_y), (1 if noise_seeds is not None else config.grad_samples)
    rngs = [np.random.default_rng(s) for s in seeds]
    gens = [torch.Generator().manual_seed(int(r.integers(2**31))) for r in rngs]
    before = torch.full((classes,), float("nan"))
    eta = config.step_size(eps)
    if eps == 0 or eta == 0 or not config.optimize:
        return PGDResult(c, before, [], time.perf_counter() - start)
    random = config.acquisition == "RandomSampling"
    if not random:
        classifier.eval()
    micro = plan.grad_micro_batch if plan is not None else classes * n
    problem = GradientProblem(model, classifier, config, size, channels, micro, config.estimator, classes_of_rows)
    zero_share, fidelity = [], None
    movable = slice(1, None) if config.fix_first_token else slice(None)
    for k in range(config.pgd_steps):
        if random:
            direction = torch.stack([torch.randn(c.shape[1:], generator=g).sign() for g in gens])
        else:
            owner = torch.arange(classes).repeat_interleave(n)
            image_seeds = (
                list(noise_seeds)
                if noise_seeds is not None
                else [int(s) for r in rngs for s in r.integers(0, 2**31, size=n)]
            )
            grad, scores = problem.gradient(c, owner, image_seeds)
            check_finite(grad, f"the PGD gradient at step {k}")
            if k == 0:
                before = scores.view(classes, n).mean(1)
                if config.measure_fidelity:
                    fidelity = problem.fidelity(grad, c, owner, image_seeds, movable)
            zero_share.append(float((grad[:, movable] == 0).float().mean()))
            direction = grad.sign()
        c = project(c + eta * direction.to(c.device, c.dtype), c_y, eps, config.norm, config.fix_first_token)
        check_finite(c, f"the embeddings after PGD step {k}")
    return PGDResult(c.detach(), before, zero_share, time.perf_counter() - start, fidelity)


@dataclass(frozen=True)
class GradientProblem:
    """What PGD differentiates: the objective of ``classifier`` on ``model``'s images, sampled as ``config`` says
    (steps, guidance, objective), resized to ``size`` x ``size`` x ``channels``, through ``estimator`` (``last``,
    ``full`` or ``x0``), ``micro_batch`` images per backward pass; with per-image prompts, ``classes_of_rows`` names
    the class each row's prompt names (by default each row is its class)."""

    model: T2IModel
    classifier: torch.nn.Module
    config: GalotConfig
    size: int
    channels: int
    micro_batch: int
    estimator: str = "last"
    classes_of_rows: torch.Tensor | None = None

    def gradient(
        self, c: torch.Tensor, owner: torch.Tensor, image_seeds: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """d/dc of sum_row mean_image objective, [C, L, D], and every image's objective score.

        Image i comes from row ``owner[i]`` of ``c`` and noise ``image_seeds[i]``; the images are differentiated in
        micro-batches whose gradients add up. In half precision the objective is scaled before the backward (and
        the gradient unscaled after), so small gradients do not flush to zero; an overflow divides the scale by 16
        and retries."""
        config, model = self.config, self.model
        n = 1 if self.classes_of_rows is not None else config.grad_samples  # gradient images per row
        labels = owner if self.classes_of_rows is None else torch.as_tensor(self.classes_of_rows)[owner]
        grad = torch.zeros_like(c)
        scores = torch.empty(len(owner))
        for part in chunks(len(owner), self.micro_batch):
            who = owner[part].to(c.device)
            scale = HALF_PRECISION_SCALE if model.dtype == torch.float16 else 1.0
            while True:
                leaf = c[who].clone().requires_grad_(True)
                images = sample(
                    model,
                    leaf,
                    image_seeds[part],
                    steps=config.sampling_steps,
                    guidance=config.guidance,
                    grad=self.estimator,
                    grad_step=config.estimator_step if self.estimator == "x0" else None,
                )
                score = objective_scores(
                    self.classifier, images, labels[part].to(images.device), config, self.size, self.channels
                )
                (g,) = torch.autograd.grad(score.sum() * (scale / n), leaf)
                if torch.isfinite(g).all() or scale <= 1.0:
                    break
                scale /= 2.0**4
            grad.index_add_(0, who, g.float() / scale)
            scores[part] = score.detach().float().cpu()
        return grad, scores

    def fidelity(self, grad: torch.Tensor, c: torch.Tensor, owner, image_seeds: list[int], movable: slice) -> dict:
        """How well ``grad`` (this problem's estimator) agrees with the exact full-chain gradient on the same images:
        cosine and sign agreement (the share of coordinates whose signs match: what a sign step uses), averaged
        over classes, and the seconds the exact one took."""
        t0 = time.perf_counter()
        exact, _ = dataclasses.replace(self, estimator="full").gradient(c, owner, image_seeds)
        cosine, signs = gradient_agreement(grad[:, movable], exact[:, movable])
        return dict(
            grad_cosine_full=float(cosine.mean()),
            grad_sign_agreement_full=float(signs.mean()),
            full_gradient_s=time.perf_counter() - t0,
        )


def gradient_agreement(grad: torch.Tensor, exact: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per class ([C, ...] tensors): the cosine between an estimated and the exact gradient, and the share of
    coordinates whose signs agree (what a sign step uses)."""
    a, b = grad.flatten(1), exact.flatten(1)
    return torch.nn.functional.cosine_similarity(a, b, dim=1), (a.sign() == b.sign()).float().mean(1)


def memory_plan_for(
    model: T2IModel,
    classifier: torch.nn.Module | None,
    config: GalotConfig,
    size: int,
    channels: int,
    budget_gb: float | None,
    max_batch: int = MAX_MICRO_BATCH,
) -> MemoryPlan:
    """The memory plan of generation and (given a classifier) of PGD's gradient with the configured estimator,
    on ``model``'s device, measured once per process for each setting (see ``memory``)."""
    budget, source = memory_budget(model.device, budget_gb)
    architecture = (
        None if classifier is None else (type(classifier).__name__, sum(p.numel() for p in classifier.parameters()))
    )
    key = (
        model.fingerprint,
        str(model.device),
        str(model.dtype),
        config.estimator,
        config.estimator_step,
        config.sampling_steps,
        config.guidance,
        config.objective,
        size,
        channels,
        budget,
        max_batch,
        architecture,
    )

    def build() -> MemoryPlan:
        c = model.empty_embedding()[None].float()

        def generation(n: int):
            with torch.no_grad():
                sample(
                    model,
                    c[0],
                    list(range(n)),
                    steps=config.sampling_steps,
                    guidance=config.guidance,
                    out_size=size,
                    out_channels=channels,
                )

        def gradient(n: int):
            problem = GradientProblem(model, classifier, config, size, channels, n, config.estimator)
            problem.gradient(c, torch.zeros(n, dtype=torch.long), list(range(n)))

        sample_cost = measure_path(generation, model.device)
        generation_plan = (
            str(model.device),
            budget,
            source,
            sample_cost,
            min(max_batch, sample_cost.fitting(budget, "generation")),
        )
        if classifier is None:
            return MemoryPlan(*generation_plan)
        grad_cost = measure_path(gradient, model.device)
        largest = largest_output(lambda: gradient(1), (model.unet, model.vae, classifier))
        index_limit = max(1, INT32_ELEMENTS // max(largest, 1))
        grad_micro = min(max_batch, grad_cost.fitting(budget, "PGD's gradient"), index_limit)
        return MemoryPlan(*generation_plan, grad_cost, grad_micro, index_limit)

    return cached_plan(key, build)
