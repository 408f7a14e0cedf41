"""Fit and evaluate classifiers fast on in-memory tensors.

The paper's baselines retrain from scratch every cycle, so training speed decides what a run
costs. Three things make it fast on a CPU: a whole batch is augmented at once on tensors
(random crop by padding + a gather over an unfolded view, random flip by ``torch.where``)
instead of per-sample PIL transforms, and the data never leave memory; activations are
channels-last (oneDNN's preferred layout); and the arithmetic runs in bfloat16 autocast
(fp32 master weights) where the CPU has native bf16, as CUDA runs use it on GPUs. On 2 cores
the last two give ~2.4x on the embedded net (measured by bench/bench_train.py).

Also: probabilities, embeddings, predicted losses and MC-dropout passes (dropout on,
BatchNorm in eval mode, so the randomness is the dropout's, not the batch statistics').
"""

from __future__ import annotations

import dataclasses
import itertools
import math
import weakref
from dataclasses import dataclass

import torch
import torch.nn.functional as F

from ..core.device import autocast, device_of, resolve_device
from .models import Classifier, LossPredictionHead, build_model, fused_for_inference

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("constant", "cosine")
AVERAGING = ("none", "ema", "tail")


@dataclass(frozen=True)
class TrainConfig:
    """How one classifier is trained from scratch (one per AL cycle); defaults: the embedded profile's."""

    epochs: int = 15
    min_steps: int = 100  # small labelled sets get at least this many optimiser steps
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"  # "adam" (DeepALPlus' choice) | "sgd" (Nesterov momentum 0.9)
    schedule: str = "constant"  # learning rate over training: "constant" (DeepALPlus) | "cosine" (to 0)
    warmup: float = 0.0  # fraction of the steps over which the learning rate rises linearly from 0
    # The weights training returns: "none", the last ones; "ema", an exponential moving average over a horizon of
    # average_window x the steps; "tail", the plain average of the last average_window of the steps (Polyak
    # averaging), BatchNorm statistics measured afresh for them. Averaging removes the last steps' noise.
    averaging: str = "none"
    average_window: float = 0.25
    weight_decay: float = 0.0
    crop_padding: int = 2  # random-crop padding in pixels; 0 turns cropping off
    flip: bool = True
    dropout: float = 0.2
    loss_prediction_weight: float = 1.0  # LossPrediction (Yoo & Kweon 2019): lambda of the ranking loss
    loss_prediction_detach_at: float = 0.6  # fraction of training after which features stop feeding the loss head
    mixed_precision: bool = True  # bf16 autocast where the hardware supports it natively (else fp32)

    def __post_init__(self):
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {self.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            raise ValueError(f"unknown schedule {self.schedule!r}; valid: {', '.join(SCHEDULES)}")
        for field in ("epochs", "batch_size"):
            if getattr(self, field) < 1:
                raise ValueError(f"{field} must be >= 1, got {getattr(self, field)}")
        if self.averaging not in AVERAGING:
            raise ValueError(f"unknown averaging {self.averaging!r}; valid: {', '.join(AVERAGING)}")
        if self.lr <= 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if not 0 <= self.warmup < 1:
            raise ValueError(f"warmup must be a fraction of the steps in [0, 1), got {self.warmup}")
        if not 0 < self.average_window <= 1:
            raise ValueError(f"average_window must be a fraction of the steps in (0, 1], got {self.average_window}")

    def lr_factor(self, step: int, total_steps: int) -> float:
        """The learning rate at ``step`` as a fraction of ``lr``: linear warm-up, then constant or cosine to 0."""
        warm = int(self.warmup * total_steps)
        if step < warm:
            return (step + 1) / warm
        if self.schedule == "constant":
            return 1.0
        return 0.5 * (1.0 + math.cos(math.pi * (step - warm) / max(1, total_steps - warm)))


# Named training recipes, as changes to a TrainConfig (its sizes stay the profile's). "deepalplus": the paper's
# baselines' (Adam, constant learning rate 1e-3, the last weights). "low-variance": the same optimiser at 2e-3 with
# the weights averaged over the last quarter of the steps; on the embedded profile's run shapes it is 3.5 points
# more accurate with a 1.8x smaller seed-to-seed spread (bench/results/train_recipes_summary.csv), so verdicts over
# seeds reproduce.
RECIPES = {
    "deepalplus": dict(lr=1e-3, schedule="constant", warmup=0.0, averaging="none"),
    "low-variance": dict(lr=2e-3, schedule="constant", warmup=0.0, averaging="tail", average_window=0.25),
}


def with_recipe(config: TrainConfig, recipe: str) -> TrainConfig:
    """``config`` trained by a named recipe (valid names in the error)."""
    if recipe not in RECIPES:
        raise ValueError(f"unknown training recipe {recipe!r}; valid: {', '.join(RECIPES)}")
    return dataclasses.replace(config, **RECIPES[recipe])


@dataclass
class Trained:
    """A trained classifier and, when LossPrediction needs it, its loss-prediction head."""

    model: Classifier
    loss_head: LossPredictionHead | None = None


def as_float_images(images: torch.Tensor, device: torch.device | str = "cpu") -> torch.Tensor:
    """uint8 [0, 255] or float [0, 1] images -> float32 in [0, 1] on ``device``, channels-last."""
    x = images.to(device)
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    return x.contiguous(memory_format=torch.channels_last)


def augment(x: torch.Tensor, padding: int, flip: bool, generator: torch.Generator) -> torch.Tensor:
    """Random crop (zero padding) and horizontal flip of a whole batch at once (the random
    numbers come from a CPU generator, so results do not depend on the device)."""
    b, _, h, w = x.shape
    if padding > 0:
        padded = F.pad(x, (padding,) * 4)
        windows = padded.unfold(2, h, 1).unfold(3, w, 1)  # [B, C, 2p+1, 2p+1, H, W], a view
        oy = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
        ox = torch.randint(0, 2 * padding + 1, (b,), generator=generator).to(x.device)
        x = windows[torch.arange(b, device=x.device), :, oy, ox]
    if flip:
        mask = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(mask[:, None, None, None], x.flip(3), x)
    return x


def ranking_loss(predicted: torch.Tensor, target: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Yoo & Kweon's pairwise loss: the head must order pairs of samples by their true loss."""
    half = len(predicted) // 2
    if half == 0:
        return predicted.sum() * 0.0
    p_i, p_j = predicted[:half], predicted[half : 2 * half].flip(0)
    t_i, t_j = target[:half], target[half : 2 * half].flip(0)
    sign = torch.sign(t_i - t_j)
    return F.relu(-sign * (p_i - p_j) + margin).mean()


def weight_average(
    module: torch.nn.Module, config: TrainConfig, total_steps: int
) -> torch.optim.swa_utils.AveragedModel:
    """The running average of ``module``'s weights that ``config.averaging`` asks for. BatchNorm statistics are
    not averaged: they are measured afresh for the averaged weights (:func:`recalibrate_batch_norm`)."""
    window = max(1.0, config.average_window * total_steps)
    fn = torch.optim.swa_utils.get_ema_multi_avg_fn(1.0 - 1.0 / window) if config.averaging == "ema" else None
    return torch.optim.swa_utils.AveragedModel(module, multi_avg_fn=fn)


def training_steps(n: int, config: TrainConfig) -> int:
    """Optimiser steps for ``n`` images: ``epochs`` passes' worth of full batches (a fraction of a pass counts),
    at least ``min_steps``. The count grows smoothly with n: a count by whole batches per epoch jumps by an epoch's
    worth of steps where n crosses a multiple of the batch size."""
    return max(config.min_steps, math.ceil(config.epochs * n / min(config.batch_size, n)))


def batch_stream(n: int, batch_size: int, steps: int, generator: torch.Generator):
    """``steps`` batches of indices into ``n`` images, every batch of the same size (``batch_size``, or all the
    images when fewer), drawn from consecutive random permutations: every image once per pass, and no remainder
    batch. A remainder of a few images gets a whole optimiser step and BatchNorm statistics of a few samples: at
    batch 64 it cost 3-7 points of test accuracy between 448 and 450 images (``bench/bench_learning_curve.py``)."""
    size, order = min(batch_size, n), torch.zeros(0, dtype=torch.long)
    for _ in range(steps):
        while len(order) < size:
            order = torch.cat([order, torch.randperm(n, generator=generator)])
        yield order[:size]
        order = order[size:]


def equal_chunks(n: int, batch_size: int) -> tuple[torch.Tensor, ...]:
    """``range(n)`` in ceil(n / batch_size) chunks whose sizes differ by one at most (for passes that weigh every
    chunk alike, such as the BatchNorm recalibration's cumulative average)."""
    return torch.arange(n).tensor_split(-(-n // batch_size))


@torch.no_grad()
def recalibrate_batch_norm(model: torch.nn.Module, images: torch.Tensor, batch_size: int, mixed_precision: bool):
    """Every BatchNorm's running statistics measured anew over ``images`` (un-augmented, cumulative averages):
    the statistics gathered during training belong to the weights of each step, not to their average."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._BatchNorm)]
    if not norms:
        return
    momenta = [m.momentum for m in norms]
    for m in norms:
        m.reset_running_stats()
        m.momentum = None  # a cumulative average over the batches
    model.train()
    for idx in equal_chunks(len(images), batch_size):
        with autocast(mixed_precision, images.device):
            model(images[idx.to(images.device)])
    for m, momentum in zip(norms, momenta):
        m.momentum = momentum


def fit(
    model_name: str,
    images: torch.Tensor,
    labels: torch.Tensor,
    num_classes: int,
    config: TrainConfig,
    seed: int,
    loss_prediction: bool = False,
    device: torch.device | str | None = None,
) -> Trained:
    """Train ``model_name`` from scratch on (images, labels); deterministic for a given seed.
    The data move to ``device`` (default: the one device choice, ``core.device``) once, as a whole."""
    if len(images) != len(labels):
        raise ValueError(f"{len(images)} images but {len(labels)} labels")
    if len(images) < 2:
        raise ValueError(f"need at least 2 training images, got {len(images)}")
    torch.manual_seed(seed)
    gen = torch.Generator().manual_seed(seed)
    device = resolve_device(device)
    x_all = as_float_images(images, device)
    y_all = labels.long().to(device)
    model = build_model(model_name, num_classes, in_channels=x_all.shape[1], dropout=config.dropout)
    model = model.to(device, memory_format=torch.channels_last)
    head = LossPredictionHead(model.stage_channels).to(device) if loss_prediction else None
    params = list(model.parameters()) + (list(head.parameters()) if head is not None else [])
    total_steps = training_steps(len(x_all), config)
    # PyTorch's fused update (one kernel per parameter, where its default runs a dozen small ops each on a CPU)
    fused = device.type in ("cpu", "cuda")
    if config.optimizer == "adam":
        optim = torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay, fused=fused)
    else:
        optim = torch.optim.SGD(
            params, lr=config.lr, momentum=0.9, weight_decay=config.weight_decay, nesterov=True, fused=fused
        )
    schedule = torch.optim.lr_scheduler.LambdaLR(optim, lambda step: config.lr_factor(step, total_steps))
    averaged = (
        [weight_average(m, config, total_steps) for m in (model, head) if m is not None]
        if config.averaging != "none"
        else []
    )
    average_from = 0 if config.averaging == "ema" else total_steps - max(1, round(config.average_window * total_steps))
    model.train()
    if head is not None:
        head.train()
    detach_step = int(config.loss_prediction_detach_at * total_steps)
    for step, idx in enumerate(batch_stream(len(x_all), config.batch_size, total_steps, gen)):
        idx = idx.to(device)
        x = augment(x_all[idx], config.crop_padding, config.flip, gen).contiguous(memory_format=torch.channels_last)
        y = y_all[idx]
        with autocast(config.mixed_precision, device):
            if head is None:
                loss = F.cross_entropy(model(x), y)
            else:
                logits, _, stages = model.features(x)
                per_sample = F.cross_entropy(logits.float(), y, reduction="none")
                if step >= detach_step:
                    stages = [s.detach() for s in stages]
                predicted = head(stages).float()
                loss = per_sample.mean() + config.loss_prediction_weight * ranking_loss(predicted, per_sample.detach())
        optim.zero_grad(set_to_none=True)
        loss.backward()
        optim.step()
        schedule.step()
        if step >= average_from:
            for average, live in zip(averaged, (model, head)):
                average.update_parameters(live)
    if averaged:
        model, head = averaged[0].module, averaged[1].module if head is not None else None
        recalibrate_batch_norm(model, x_all, config.batch_size, config.mixed_precision)
    model.eval()
    if head is not None:
        head.eval()
    return Trained(model, head)


def inference_batch_size(device: torch.device | str) -> int:
    """Images per inference pass: 128 on a CPU, where batches that stay in the caches run the slim transfer nets
    1.6-2x faster than 1024-image ones and SmallCNN no slower (``bench/bench_models.py --inference``), 1024 on a
    GPU."""
    return 128 if torch.device(device).type == "cpu" else 1024


_INFERENCE_COPIES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()  # model -> (its weights' stamp, copy)


def inference_copy(model: Classifier) -> Classifier:
    """``model``'s folded inference copy (:func:`fused_for_inference`), made once per state of its weights: between
    two trainings a classifier scores the pool, the test set and every generated image many times, and each copy is
    a deep copy and a fold (a twentieth of a second for a ResNet18). The stamp is every parameter's and buffer's
    storage and in-place version counter, so an optimiser step, a loaded state or a move makes a new copy."""
    stamp = tuple((t.data_ptr(), t._version) for t in itertools.chain(model.parameters(), model.buffers()))
    kept = _INFERENCE_COPIES.get(model)
    if kept is None or kept[0] != stamp:
        kept = _INFERENCE_COPIES[model] = (stamp, fused_for_inference(model))
    return kept[1]


def batched_features(
    model: Classifier, images: torch.Tensor, batch_size: int | None = None, mixed_precision: bool = True
):
    """The one eval-mode inference loop: ``(start, (logits, embeddings, stages))`` per batch of ``images``, in
    cache-sized batches on the model's device, the features computed under autocast by the model with its BatchNorms
    folded into its convolutions (:func:`inference_copy`; call under inference mode)."""
    model.eval()
    device = device_of(model)
    batch_size = batch_size or inference_batch_size(device)
    fused = inference_copy(model)
    for start in range(0, len(images), batch_size):
        x = as_float_images(images[start : start + batch_size], device)
        with autocast(mixed_precision, x.device):
            features = fused.features(x)
        yield start, features


@torch.inference_mode()
def infer(
    trained: Trained, images: torch.Tensor, batch_size: int | None = None, mixed_precision: bool = True
) -> dict[str, torch.Tensor]:
    """One eval-mode pass: ``probs`` [N, C], ``embeddings`` [N, D] and, with a loss head,
    ``predicted_loss`` [N]."""
    device = device_of(trained.model)
    probs, embeds, losses = [], [], []
    for _, (logits, emb, stages) in batched_features(trained.model, images, batch_size, mixed_precision):
        if trained.loss_head is not None:
            with autocast(mixed_precision, device):
                losses.append(trained.loss_head.eval()(stages).float().cpu())
        probs.append(logits.float().softmax(1).cpu())
        embeds.append(emb.float().cpu())
    out = {"probs": torch.cat(probs), "embeddings": torch.cat(embeds)}
    if losses:
        out["predicted_loss"] = torch.cat(losses)
    return out


@torch.inference_mode()
def mc_dropout_probs(
    model: Classifier,
    images: torch.Tensor,
    passes: int,
    seed: int,
    batch_size: int | None = None,
    mixed_precision: bool = True,
) -> torch.Tensor:
    """``[passes, N, C]`` probabilities with dropout active and BatchNorm in eval mode.

    Every classifier here has its only dropout right before the head, so the trunk is
    deterministic in eval mode: it runs once and only dropout + head are repeated, which is
    exactly T full stochastic passes at a fraction of the cost."""
    if passes < 1:
        raise ValueError(f"passes must be >= 1, got {passes}")
    if not 0 < model.dropout.p < 1:
        raise ValueError(f"{type(model).__name__} has dropout p={model.dropout.p}: MC dropout needs 0 < p < 1")
    out = torch.empty(passes, len(images), model.num_classes)
    device = device_of(model)
    with torch.random.fork_rng(devices=[device] if device.type == "cuda" else []):
        torch.manual_seed(seed)
        for start, (_, emb, _) in batched_features(model, images, batch_size, mixed_precision):
            emb = emb.float()
            for t in range(passes):
                logits = model.head(F.dropout(emb, model.dropout.p, training=True))
                out[t, start : start + len(emb)] = logits.softmax(-1).cpu()
    return out


@torch.inference_mode()
def predict_probs(
    model: Classifier, images: torch.Tensor, batch_size: int | None = None, mixed_precision: bool = True
) -> torch.Tensor:
    return torch.cat(
        [
            logits.float().softmax(1).cpu()
            for _, (logits, _, _) in batched_features(model, images, batch_size, mixed_precision)
        ]
    )


def accuracy(
    model: Classifier,
    images: torch.Tensor,
    labels: torch.Tensor,
    batch_size: int | None = None,
    mixed_precision: bool = True,
) -> float:
    preds = predict_probs(model, images, batch_size, mixed_precision).argmax(1)
    return float((preds == labels).float().mean())
