"""Generated pixels as a classifier sees them: the one resize / channel conversion shared by the sampler, the
text-to-image models' model-space hooks and PGD's objective (a leaf, so that none of them imports another for it)."""

from __future__ import annotations

import torch
import torch.nn.functional as F

LUMA = (0.299, 0.587, 0.114)  # ITU-R BT.601, as PIL's convert("L")


def to_classifier_input(images: torch.Tensor, size: int, channels: int) -> torch.Tensor:
    """Images in [0, 1] -> ``[B, channels, size, size]``, differentiably. Bilinear, antialiased when shrinking
    (a plain bilinear shrink aliases, and the classifier's gradient would see the aliasing); grey -> RGB
    repeats the channel, RGB -> grey takes BT.601 luma."""
    if images.ndim != 4 or images.shape[1] not in (1, 3) or channels not in (1, 3):
        raise ValueError(
            f"expected [B, 1 or 3, H, W] images and channels 1 or 3, got {list(images.shape)} and {channels!r}"
        )
    if images.shape[1] == 3 and channels == 1:
        weights = torch.tensor(LUMA, device=images.device, dtype=images.dtype).view(1, 3, 1, 1)
        images = (images * weights).sum(dim=1, keepdim=True)
    height, width = images.shape[-2:]
    if (height, width) != (size, size):
        images = F.interpolate(
            images, size=(size, size), mode="bilinear", align_corners=False, antialias=size < max(height, width)
        )
    if images.shape[1] == 1 and channels == 3:
        images = images.repeat(1, 3, 1, 1)
    return images
