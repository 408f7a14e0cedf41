"""Finiteness checks: a NaN or inf stops the work where it appears, naming what was not finite."""

from __future__ import annotations

import torch

_SLICE = 2048 * 2048  # elements checked at a time: isfinite's temporaries stay small for huge inputs


def all_finite(t: torch.Tensor) -> bool:
    """``isfinite(t).all()`` in slices, so a [T, N, C] input never gets a same-sized boolean temporary."""
    return all(bool(torch.isfinite(chunk).all()) for chunk in t.detach().reshape(-1).split(_SLICE))


def check_finite(t: torch.Tensor, what: str) -> torch.Tensor:
    """``t`` unchanged, or a FloatingPointError saying how many values of ``what`` are NaN or inf."""
    if not all_finite(t):
        bad = int((~torch.isfinite(t.detach())).sum())
        raise FloatingPointError(f"{bad} non-finite value(s) (NaN or inf) in {what}")
    return t
