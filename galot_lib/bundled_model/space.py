"""The bundled model's sample space: pixels in [0, 1] scaled to its value range, then folded 2x2 into channels
(space-to-depth), so that the UNet works at half the image size. Its training script and the model's loader
(``generation.t2i``) both convert through these, so the two cannot disagree."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def to_model_space(images: torch.Tensor, value_range=(-1.0, 1.0), space_to_depth: int = 2) -> torch.Tensor:
    """Pixels in [0, 1], [B, C, H, W] -> model samples [B, C * s^2, H / s, W / s] in ``value_range``."""
    low, high = value_range
    return F.pixel_unshuffle(images * (high - low) + low, space_to_depth)


def from_model_space(samples: torch.Tensor, value_range=(-1.0, 1.0), space_to_depth: int = 2) -> torch.Tensor:
    """The inverse: model samples -> pixels in [0, 1] (clamped: a sample may overshoot its range)."""
    low, high = value_range
    return ((F.pixel_shuffle(samples.float(), space_to_depth) - low) / (high - low)).clamp(0, 1)
