"""The images GALOT generates: which labels and noise seeds, and their batched generation.

Every image has its own noise seed, derived from (run seed, cycle, class, index), so any one
image can be regenerated alone and a set does not depend on how it was batched.
"""

from __future__ import annotations

import time

import numpy as np
import torch

from ..core.seeds import Purpose
from .galot import GalotConfig
from .sampler import sample
from .t2i import T2IModel


def split_evenly(n: int, num_classes: int, seed: int) -> np.ndarray:
    """How many images each class gets: n // C each, the remainder to random classes."""
    counts = np.full(num_classes, n // num_classes)
    extra = np.random.default_rng(seed).choice(num_classes, size=n % num_classes, replace=False)
    counts[extra] += 1
    return counts


def image_seeds(seed: int, cycle: int, label: int, count: int) -> list[int]:
    """The noise seed of every generated image, so any one can be regenerated alone."""
    ss = np.random.SeedSequence([seed, cycle, label, Purpose.IMAGE_NOISE])
    return [int(s) & 0x7FFFFFFF for s in ss.generate_state(count)]


def class_seeds(seed: int, cycle: int, num_classes: int) -> list[int]:
    """One PGD seed per class (its gradient noise and random directions)."""
    return [int(np.random.SeedSequence([seed, cycle, label]).generate_state(1)[0]) for label in range(num_classes)]


def planned_images(counts, seed: int, cycle: int) -> tuple[torch.Tensor, list[int]]:
    """Labels and noise seeds of the images to generate: ``counts[c]`` images of class c."""
    labels = torch.cat([torch.full((int(n),), c, dtype=torch.long) for c, n in enumerate(counts)])
    seeds = [s for c, n in enumerate(counts) for s in image_seeds(seed, cycle, c, int(n))]
    return labels, seeds


@torch.no_grad()
def generate_images(
    model: T2IModel,
    embeddings: torch.Tensor,
    labels,
    seeds: list[int],
    config: GalotConfig,
    size: int,
    channels: int,
    batch_size: int = 128,
    shards=None,
) -> torch.Tensor:
    """uint8 images [n, channels, size, size]; image i from ``embeddings[labels[i]]`` ([C, L, D])
    and noise seed ``seeds[i]``, in batches that may mix classes. ``shards`` (a ``shards.Shards``) splits the
    batches over the processes of a launch; every process gets the whole set."""
    labels = torch.as_tensor(labels, dtype=torch.long)

    def render(j: int) -> torch.Tensor:
        chunk = slice(j * batch_size, (j + 1) * batch_size)
        images = sample(
            model,
            embeddings[labels[chunk]],
            seeds[chunk],
            steps=config.sampling_steps,
            guidance=config.guidance,
            out_size=size,
            out_channels=channels,
        )
        return images.mul(255).round().clamp(0, 255).to(torch.uint8).cpu()

    batches = -(-len(seeds) // batch_size)
    out = shards.map_batches(batches, render) if shards is not None else [render(j) for j in range(batches)]
    return torch.cat(out) if out else torch.zeros(0, channels, size, size, dtype=torch.uint8)


def images_per_second(model, steps: int, guidance: float, batch: int = 100, repeats: int = 2) -> float:
    """Generation throughput (best of ``repeats`` batches, after a warm-up batch)."""
    cond = model.encode(["a photo of a bag"])
    cfg = GalotConfig(sampling_steps=steps, guidance=guidance)
    size, channels = model.image_size, model.image_channels
    generate_images(model, cond, [0] * 8, list(range(8)), cfg, size, channels)
    best = float("inf")
    for r in range(repeats):
        t0 = time.perf_counter()
        generate_images(
            model, cond, [0] * batch, list(range(r * batch, (r + 1) * batch)), cfg, size, channels, batch_size=batch
        )
        best = min(best, time.perf_counter() - t0)
    return batch / best
