"""Derived seeds: every random choice draws from its own stream, named by its purpose.

A seed is derived from integers (the run's seed, the cycle, the purpose, ...) through numpy's
SeedSequence, so it is stable across runs and machines, and two purposes never share a stream.
"""

from __future__ import annotations

from enum import IntEnum

import numpy as np


class Purpose(IntEnum):
    """What a derived seed is for (the values are part of every result's identity: never renumber)."""

    INITIAL_LABELS = 0  # the random initial labelled set
    TRAINING = 1  # classifier initialisation, batch order, augmentation
    QUERY = 2  # candidate subset and the strategy's own randomness
    MC_DROPOUT = 3
    GENERATION = 4  # a cycle's generated set (PGD directions, which images, which are kept)
    ROUND_TRAINING = 5  # text to model: the classifier of a round
    IMAGE_NOISE = 7  # the initial noise of each generated image
    OVERSAMPLE_KEEP = 11  # Table 6: which generated images are kept
    FULLY_SUPERVISED = 99  # the classifier trained on the whole pool


def seed_for(*parts: int) -> int:
    """A 31-bit seed derived from integers (run seed, cycle, purpose...), stable across runs."""
    return int(np.random.SeedSequence([int(p) for p in parts]).generate_state(1)[0] & 0x7FFFFFFF)
