"""Memory layouts that keep a diffusion UNet fast on a CPU.

oneDNN runs convolutions fastest on channels-last tensors, but PyTorch's CPU GroupNorm is 5x (fp32) to 19x (bf16)
slower on them than on contiguous ones (a [128, 128, 14, 14] batch on 2 cores: 3.3 / 12.7 ms against 0.7 ms), and a
UNet normalises before nearly every convolution. :func:`contiguous_group_norms` keeps the convolutions channels-last
and runs each GroupNorm on contiguous memory, handing its output back channels-last; the values are the same
kernel's (``bench/bench_generation.py`` measures the speed and the images). :func:`weights_rounded_for_autocast`
stores the convolution and linear weights in the precision bf16 autocast computes them in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


class ContiguousGroupNorm(torch.nn.GroupNorm):
    """A GroupNorm that normalises contiguous memory and returns the input's layout."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.ndim != 4 or x.is_contiguous():
            return super().forward(x)
        out = F.group_norm(x.contiguous(), self.num_groups, self.weight, self.bias, self.eps)
        return out.contiguous(memory_format=torch.channels_last)


def contiguous_group_norms(module: torch.nn.Module) -> torch.nn.Module:
    """Every GroupNorm of ``module`` made a :class:`ContiguousGroupNorm` in place (weights kept); returns it."""
    for norm in module.modules():
        if type(norm) is torch.nn.GroupNorm:
            norm.__class__ = ContiguousGroupNorm
    return module


def weights_rounded_for_autocast(module: torch.nn.Module) -> torch.nn.Module:
    """Every convolution and linear layer of ``module`` stored in bf16, in place; returns it. Under bf16 autocast the
    results are the same, bit for bit: autocast rounds these weights so on every call anyway, caching only the casts
    of weights that take gradients, and a frozen UNet's take none (``bench/bench_generation.py``)."""
    for layer in module.modules():
        if isinstance(layer, (torch.nn.Conv2d, torch.nn.Linear)):
            layer.to(torch.bfloat16)
    return module
