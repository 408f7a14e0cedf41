"""The project's own sampling loop: deterministic DDIM (eta = 0), differentiable in the prompt embedding.

diffusers pipelines run under ``torch.no_grad``, and GALOT needs d(images)/d(embedding), so the loop lives
here. It follows the loop of diffusers' ``StableDiffusionPipeline.__call__`` with ``DDIMScheduler.step``
written out in closed form, and reads only the model's scheduler *config*: the timesteps and alphas come from
a fresh ``DDIMScheduler.from_config``, so a stateful scheduler (SD 2.1's PNDM) is never stepped or corrupted.

Gradient modes w.r.t. the embedding (GALOT's gradient estimators):

* ``none``: no autograd (generation);
* ``last``: Proposition 1 of the paper: only the last denoising step, the decode and the resize are
  differentiated;
* ``full``: every step, each UNet call checkpointed: the exact gradient the others estimate;
* ``x0``: the one-step clean-image estimate at an intermediate step ``grad_step`` (DDIM's predicted x0,
  Tweedie's estimate), differentiated and decoded in place of the finished sample: the proxy that
  guidance methods (DPS, universal guidance) differentiate. Cheaper than ``last`` when ``grad_step`` is
  early, and taken where the prompt still shapes the image.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch.utils.checkpoint import checkpoint

from ..core.checks import check_finite
from .pixels import to_classifier_input
from .text_attention import distinct_rows

if TYPE_CHECKING:
    from .t2i import T2IModel

GRAD_MODES = ("none", "last", "full", "x0")
PREDICTION_TYPES = ("epsilon", "v_prediction", "sample")


@dataclass(frozen=True)
class DDIMStep:
    index: int
    timestep: torch.Tensor  # 0-d int64, passed to the UNet as the pipeline passes it
    alpha: float  # alphas_cumprod[timestep]
    alpha_prev: float  # alphas_cumprod of the step's target; the final alpha at the last step


@dataclass(frozen=True)
class DDIMSchedule:
    steps: list[DDIMStep]
    prediction_type: str
    clip_range: float | None  # x0 is clamped to [-r, r] when the config says clip_sample


def ddim_schedule(scheduler_config, steps: int) -> DDIMSchedule:
    """Timesteps and alphas exactly as ``DDIMScheduler.set_timesteps`` / ``step`` would use them."""
    from diffusers import DDIMScheduler

    ddim = DDIMScheduler.from_config(scheduler_config)
    cfg = ddim.config
    if cfg.prediction_type not in PREDICTION_TYPES:
        raise ValueError(f"scheduler prediction_type {cfg.prediction_type!r} is not one of {PREDICTION_TYPES}")
    if cfg.thresholding:
        raise ValueError("the scheduler config asks for dynamic thresholding, which this sampler does not implement")
    ddim.set_timesteps(steps)
    jump = cfg.num_train_timesteps // steps  # DDIMScheduler.step's notion of the previous timestep
    schedule = []
    for i, t in enumerate(ddim.timesteps):
        prev = int(t) - jump
        alpha_prev = ddim.alphas_cumprod[prev] if prev >= 0 else ddim.final_alpha_cumprod
        schedule.append(DDIMStep(i, t, float(ddim.alphas_cumprod[t]), float(alpha_prev)))
    return DDIMSchedule(schedule, cfg.prediction_type, cfg.clip_sample_range if cfg.clip_sample else None)


def clean_and_noise(
    x: torch.Tensor, model_output: torch.Tensor, alpha: float, prediction_type: str
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps) that a model output at noise level ``alpha`` (alphas_cumprod) implies, as ``DDIMScheduler.step``
    derives them for each prediction type (the sampler's steps and the diffusion label filter use it)."""
    a = alpha
    if prediction_type == "epsilon":
        return (x - (1 - a) ** 0.5 * model_output) / a**0.5, model_output
    if prediction_type == "v_prediction":
        return a**0.5 * x - (1 - a) ** 0.5 * model_output, a**0.5 * model_output + (1 - a) ** 0.5 * x
    return model_output, (x - a**0.5 * model_output) / (1 - a) ** 0.5  # "sample"


def clean_estimate(
    x: torch.Tensor, model_output: torch.Tensor, step: DDIMStep, schedule: DDIMSchedule
) -> tuple[torch.Tensor, torch.Tensor]:
    """(x0, eps): the closed-form clean-sample estimate and the noise it implies at ``step`` (x0 clamped when the
    config clips; eps then not re-derived)."""
    x0, eps = clean_and_noise(x, model_output, step.alpha, schedule.prediction_type)
    if schedule.clip_range is not None:
        x0 = x0.clamp(-schedule.clip_range, schedule.clip_range)
    return x0, eps


def ddim_update(x: torch.Tensor, model_output: torch.Tensor, step: DDIMStep, schedule: DDIMSchedule) -> torch.Tensor:
    """One eta = 0 DDIM step (formula 12 of the DDIM paper) via the closed-form clean-sample estimate."""
    x0, eps = clean_estimate(x, model_output, step, schedule)
    return step.alpha_prev**0.5 * x0 + (1 - step.alpha_prev) ** 0.5 * eps


def initial_noise(model: T2IModel, seeds: Sequence[int]) -> torch.Tensor:
    """``[len(seeds), *sample_shape]`` noise, one CPU generator per image (as diffusers' ``randn_tensor`` with a
    list of generators): image i depends on seeds[i] alone, so it can be regenerated without its batch."""
    noise = [
        torch.randn(
            (1, *model.sample_shape), generator=torch.Generator("cpu").manual_seed(operator.index(s)), dtype=model.dtype
        )
        for s in seeds
    ]
    return torch.cat(noise).to(model.device)


def sample(
    model: T2IModel,
    cond: torch.Tensor,
    seeds: Sequence[int],
    *,
    steps: int,
    guidance: float,
    grad: str = "none",
    grad_step: int | None = None,
    uncond: torch.Tensor | None = None,
    out_size: int | None = None,
    out_channels: int | None = None,
) -> torch.Tensor:
    """Images ``[B, C, H, W]`` in [0, 1] generated from embeddings ``cond`` ([B, L, D], or [L, D] for all seeds).

    Classifier-free guidance ``u + guidance * (c - u)`` on the UNet output (``uncond`` defaults to the
    embedding of ""; guidance == 1 skips the unconditional half). ``grad`` picks what autograd records (see the
    module docstring; ``grad_step`` is the step index of ``x0``). ``out_size``/``out_channels`` resize and convert
    with ``to_classifier_input``.
    """
    seeds = list(seeds)
    if not seeds:
        raise ValueError("seeds is empty: give one integer seed per image")
    check_sampling(model, steps, guidance, grad, grad_step)
    if out_size is not None and (isinstance(out_size, bool) or not isinstance(out_size, int) or out_size < 1):
        raise ValueError(f"out_size must be a positive integer or None, got {out_size!r}")
    if out_channels not in (None, 1, 3):
        raise ValueError(f"out_channels must be 1, 3 or None, got {out_channels!r}")
    schedule = ddim_schedule(model.scheduler.config, steps)
    first = schedule.steps[0]
    where = f"step 0 of {steps} (timestep {int(first.timestep)})"
    cond = _batched(model, cond, len(seeds), "cond", where)
    if guidance != 1:
        uncond = _batched(model, model.empty_embedding() if uncond is None else uncond, len(seeds), "uncond", where)

    # Step i runs with autograd from index `tracked` on; the x0 estimator stops at its step.
    tracked = {"none": steps, "last": steps - 1, "full": 0, "x0": grad_step}[grad]
    stop = grad_step if grad == "x0" else steps - 1
    with torch.set_grad_enabled(grad != "none"):
        cond = cond.to(model.device, model.dtype)
        if guidance != 1:
            cond = torch.cat([uncond.to(model.device, model.dtype), cond])  # the pipeline's order: uncond first
        text, text_rows = distinct_rows(cond)  # the UNet projects each distinct embedding once (text_attention.py)
    x = initial_noise(model, seeds)
    for step in schedule.steps[: stop + 1]:
        with torch.set_grad_enabled(step.index >= tracked):
            output = _guided_output(model, x, step.timestep, text, text_rows, guidance, checkpointed=grad == "full")
            if grad == "x0" and step.index == stop:
                x = clean_estimate(x, output, step, schedule)[0]
            else:
                x = ddim_update(x, output, step, schedule)
        check_finite(x, f"the sample after step {step.index} of {steps} (timestep {int(step.timestep)})")
    with torch.set_grad_enabled(grad != "none"):
        images = model.decode(x)
        check_finite(images, "the decoded images")
        if out_size is not None or out_channels is not None:
            images = to_classifier_input(images, out_size or images.shape[-1], out_channels or images.shape[1])
    return images


def check_sampling(model: T2IModel, steps: int, guidance: float, grad: str = "none", grad_step: int | None = None):
    """Reject sampling settings this model cannot run, naming the accepted values, before any work."""
    if grad not in GRAD_MODES:
        raise ValueError(f"grad must be one of {GRAD_MODES}, got {grad!r}")
    train_steps = model.scheduler.config.num_train_timesteps
    if isinstance(steps, bool) or not isinstance(steps, int) or not 1 <= steps <= train_steps:
        raise ValueError(f"steps must be an integer from 1 to {train_steps}, got {steps!r}")
    if isinstance(guidance, bool) or not isinstance(guidance, (int, float)) or not 0 <= guidance < math.inf:
        raise ValueError(f"guidance must be a finite number >= 0 (1 = no guidance), got {guidance!r}")
    if grad == "x0":
        if isinstance(grad_step, bool) or not isinstance(grad_step, int) or not 0 <= grad_step < steps:
            raise ValueError(
                f"the x0 estimator needs a step index from 0 to {steps - 1} (the model samples in "
                f"{steps} steps), got {grad_step!r}"
            )
    elif grad_step is not None:
        raise ValueError(f"grad_step is only for grad='x0', got grad={grad!r} with grad_step={grad_step!r}")


def _batched(model: T2IModel, emb, batch: int, what: str, where: str) -> torch.Tensor:
    """Validate an embedding against the model and broadcast [L, D] to [batch, L, D]."""
    length, width = model.embedding_shape
    if not isinstance(emb, torch.Tensor):
        raise TypeError(
            f"{what} must be a tensor [B, {length}, {width}] or [{length}, {width}], got {type(emb).__name__}"
        )
    if emb.ndim == 2:
        emb = emb.expand(batch, -1, -1)
    if emb.ndim != 3 or tuple(emb.shape[1:]) != (length, width):
        raise ValueError(
            f"{what} must be [B, {length}, {width}] or [{length}, {width}] (tokens, width) for "
            f"{model.name}, got {list(emb.shape)}"
        )
    if emb.shape[0] != batch:
        raise ValueError(
            f"{what} has {emb.shape[0]} embeddings for {batch} seeds: give one per seed, or one "
            f"[{length}, {width}] embedding for all"
        )
    check_finite(emb, f"{what}, which would enter {where}")
    return emb


def _guided_output(model: T2IModel, x, t, text, text_rows, guidance: float, checkpointed: bool) -> torch.Tensor:
    """The UNet's output with classifier-free guidance, both halves in one batched call; ``text[text_rows]`` is
    every row's embedding (the unconditional half first)."""
    if guidance != 1:
        x = torch.cat([x, x])

    def unet(x_in, emb):
        return model.predict(x_in, t, emb, text_rows)

    output = checkpoint(unet, x, text, use_reentrant=False) if checkpointed else unet(x, text)
    if guidance == 1:
        return output
    out_uncond, out_cond = output.chunk(2)
    return out_uncond + guidance * (out_cond - out_uncond)
