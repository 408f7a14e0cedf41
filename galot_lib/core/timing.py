"""Where a process's wall time goes: every computation adds its seconds to one phase of a process-wide
ledger, so a section's report can attribute its whole run time (the rest is "other": loading data,
building tables and figures, the notebook itself)."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager

PHASES = ("query", "generation", "training", "evaluation", "reference models", "judging", "other")
_started = time.perf_counter()
_seconds: dict[str, float] = defaultdict(float)


def add(phase: str, seconds: float) -> None:
    if phase not in PHASES[:-1]:
        raise ValueError(f"unknown phase {phase!r}; valid: {', '.join(PHASES[:-1])}")
    _seconds[phase] += seconds


@contextmanager
def timed(phase: str) -> Iterator[None]:
    """Adds the block's wall time to ``phase``."""
    start = time.perf_counter()
    try:
        yield
    finally:
        add(phase, time.perf_counter() - start)


def breakdown() -> list[dict]:
    """One row per phase (seconds and share of the wall time since this process started); "other" is the rest."""
    wall = time.perf_counter() - _started
    seconds = {p: _seconds[p] for p in PHASES[:-1]}
    seconds["other"] = max(wall - sum(seconds.values()), 0.0)
    return [
        dict(phase=p, seconds=round(s, 2), share=round(s / wall, 4) if wall > 0 else 0.0) for p, s in seconds.items()
    ]
