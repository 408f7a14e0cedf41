"""GALOT's generation hook for the AL loop: GALOT, GALOT (basic) and the GAL-only baseline.

Each cycle: PGD moves every class embedding toward the current classifier's uncertainty (or
not, for GALOT basic), then ``factor x |L|`` pseudo-labelled images are generated; sets are
cached by their full provenance, so reruns and other notebooks reuse them.
"""

from __future__ import annotations

import numpy as np
import torch

from ..core.device import device_of
from ..core.hashing import state_fingerprint
from ..core.seeds import Purpose
from ..learning.loop import Generated
from .cache import make_key
from .galot import GalotConfig, classifier_scores, optimize_embeddings
from .images import class_seeds, generate_images, planned_images, split_evenly
from .prompts import fill
from .t2i import T2IModel


class GalotGenerator:
    """The loop's generation hook: GALOT, GALOT (basic) and the GAL-only baseline.

    Each cycle: eps from the schedule, one optimised embedding per class (PGD against the
    current classifier), then ``factor x |L|`` images split evenly over the classes (or
    ``oversample`` times as many, of which a random ``factor x |L|`` are kept), pseudo-labelled
    with their class. Sets are looked up in / written to the cache by their full provenance.
    """

    def __init__(self, model: T2IModel, class_names: tuple[str, ...], config: GalotConfig, cycles: int,
                 image_size: int, image_channels: int, cache=None):
        self.model, self.class_names, self.config, self.cycles = model, tuple(class_names), config, cycles
        self.size, self.channels, self.cache = image_size, image_channels, cache

    def describe(self) -> dict:
        return dict(t2i=self.model.fingerprint, classes=self.class_names, galot=self.config.as_dict(),
                    cycles=self.cycles, size=self.size, channels=self.channels)

    def class_embeddings(self) -> torch.Tensor:
        """c_y for every class: the template filled with the class word, encoded."""
        return self.model.encode([fill(self.config.template, name) for name in self.class_names]).float()

    def __call__(self, cycle: int, trained, n_labeled: int, seed: int) -> Generated:
        cfg = self.config
        n_keep = int(round(cfg.factor * n_labeled))
        n_make = int(round(cfg.oversample * n_keep))
        classifier = trained.model if trained is not None else None
        eps = self.eps_at(cycle) if classifier is not None else 0.0  # nothing to optimise against yet
        key = make_key(**self.describe(), eps=eps, cycle=cycle, seed=seed, n=n_make, keep=n_keep,
                       classifier=state_fingerprint(classifier) if self.needs_classifier(eps) else None)
        entry = self.cache.get(key) if self.cache is not None else None
        hit = entry is not None
        if entry is None:
            entry = self.make(cycle, classifier, eps, n_make, n_keep, seed)
            if self.cache is not None:
                self.cache.put(key, entry)
        return Generated(entry.images, entry.labels, dict(entry.info, cache_key=key, cache_hit=hit))

    def eps_at(self, cycle: int) -> float:
        return self.config.eps.at(cycle, self.cycles) if self.config.optimize else 0.0

    def needs_classifier(self, eps: float) -> bool:
        """Only gradient-guided PGD depends on the classifier (random directions and eps = 0 don't)."""
        return eps > 0 and self.config.acquisition != "RandomSampling" and self.config.step_size(eps) > 0

    def make(self, cycle: int, classifier, eps: float, n_make: int, n_keep: int, seed: int) -> Generated:
        cfg = self.config
        c_y = self.class_embeddings()
        c_star, before = optimize_embeddings(self.model, classifier, c_y, eps, cfg,
                                             class_seeds(seed, cycle, len(self.class_names)), self.size, self.channels)
        labels, seeds = planned_images(split_evenly(n_make, len(self.class_names), seed), seed, cycle)
        images = generate_images(self.model, c_star, labels, seeds, cfg, self.size, self.channels)
        if n_keep < n_make:  # Table 6: generate more, keep a random subset
            rng = np.random.default_rng([seed, cycle, Purpose.OVERSAMPLE_KEEP])
            keep = np.sort(rng.choice(n_make, size=n_keep, replace=False))
            images, labels = images[keep], labels[keep]
        after = float("nan")
        if len(images) and cfg.acquisition != "RandomSampling" and classifier is not None:
            with torch.no_grad():
                device = device_of(classifier)
                after = float(classifier_scores(classifier.eval(), images.to(device).float() / 255, cfg.acquisition,
                                                self.size, self.channels).mean())
        shift = (c_star - c_y).flatten(1).abs().max(1).values
        meta = dict(eps=eps, acquisition_before=float(before.nanmean()) if before.isfinite().any() else float("nan"),
                    acquisition_after=after, embedding_shift_linf=float(shift.mean()), generated_this_cycle=len(labels))
        return Generated(images, labels, meta, c_star)
