"""One device choice for everything that computes: the classifier, the text-to-image model, PGD and
GAAL's GAN all follow it, so tensors never meet on different devices."""

from __future__ import annotations

import os

import torch


def default_device() -> torch.device:
    """``$GALOT_DEVICE`` if set (e.g. ``cpu``, ``cuda:1``), else CUDA when there is a GPU, else the CPU."""
    name = os.environ.get("GALOT_DEVICE") or ("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(name)
    except RuntimeError as err:
        raise ValueError(f"$GALOT_DEVICE={name!r} is not a device name (e.g. 'cpu', 'cuda', 'cuda:1')") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"$GALOT_DEVICE={name!r} asks for CUDA, but torch sees no GPU; use 'cpu' or unset it")
    return device


def resolve_device(device=None) -> torch.device:
    """``device`` as a torch.device, or the default choice when None."""
    return torch.device(device) if device is not None else default_device()


def device_of(module: torch.nn.Module) -> torch.device:
    return next(module.parameters()).device
