"""The paper's experiments as functions of a profile: what the notebooks call.

Each function runs (or resumes) its runs under ``runs_dir/<profile>/...`` and returns tidy
records (one per cycle and run, each with its seed and configuration hash), so a notebook is
left with composing, plotting and saving.
"""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from .data import ImageSet, load_dataset
from .loop import ALConfig, run_active_learning
from .profiles import Profile

SUBSET_SEED = 12345


def runs_root() -> Path:
    """Where run states live: ``$GALOT_RUNS_DIR`` or ``<repo>/runs``."""
    return Path(os.environ.get("GALOT_RUNS_DIR", Path(__file__).resolve().parent.parent / "runs"))


def fixed_subset(data: ImageSet, size: int | None) -> ImageSet:
    """A class-stratified random subset, the same for every run of a profile."""
    if size is None or size >= len(data):
        return data
    rng = np.random.default_rng(SUBSET_SEED)
    labels = data.labels.numpy()
    per_class = np.bincount(labels, minlength=data.num_classes) * size / len(data)
    take = np.floor(per_class).astype(int)
    take[np.argsort(per_class - take)[::-1][: size - take.sum()]] += 1
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), t, replace=False) for c, t in enumerate(take)])
    return data.subset(np.sort(idx))


def load_data(profile: Profile, dataset: str | None = None) -> tuple[ImageSet, ImageSet]:
    """(pool, test) of a profile's data set, subsampled as the profile says."""
    name = dataset or profile.dataset
    pool = fixed_subset(load_dataset(name, "pool"), profile.pool_size)
    test = fixed_subset(load_dataset(name, "test"), profile.test_size)
    return pool, test


def al_config(profile: Profile, strategy: str, cycles: int | None = None, **changes) -> ALConfig:
    """The profile's AL settings for one strategy (changes: any ALConfig field)."""
    base = ALConfig(strategy=strategy, model=profile.model, initial_labeled=profile.initial_labeled,
                    query_size=profile.query_size, cycles=cycles or profile.cycles, candidates=profile.candidates,
                    train=profile.train)
    return replace(base, **changes) if changes else base


def run_dir(profile: Profile, *parts) -> Path:
    return runs_root().joinpath(profile.name, *[str(p) for p in parts])


def run_baseline(profile: Profile, strategy: str, seed: int, pool: ImageSet, test: ImageSet,
                 section: str = "al", cycles: int | None = None, **changes) -> list[dict]:
    """One pool-based AL run (no generation)."""
    config = al_config(profile, strategy, cycles, **changes)
    return run_active_learning(config, pool, test, seed, run_dir(profile, section, pool.name.split("/")[0],
                                                                  config.label, f"seed{seed}"))
