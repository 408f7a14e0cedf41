"""One device choice for everything that computes: the classifier, the text-to-image model, PGD and
GAAL's GAN all follow it, so tensors never meet on different devices; and one precision rule: bfloat16 autocast
(fp32 weights) wherever the hardware runs bf16 natively."""

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


def bf16_is_native() -> bool:
    """True on CUDA and on CPUs with native bf16 (AVX512-BF16/AMX); emulated bf16 would be slower."""
    if torch.cuda.is_available():
        return True
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def autocast(enabled: bool, device: torch.device | str = "cpu"):
    """bfloat16 autocast on ``device`` when ``enabled`` and native there (else a no-op context)."""
    device_type = torch.device(device).type
    return torch.autocast(device_type, dtype=torch.bfloat16, enabled=enabled and bf16_is_native())
