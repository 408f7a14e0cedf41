"""GALOT's generation hook for the AL loop: GALOT, GALOT (basic) and the GAL-only baseline.

Each cycle: PGD moves every class embedding toward the current classifier's uncertainty (or not, for
GALOT basic), ``factor x |L|`` pseudo-labelled images are generated (optionally filtered by a
zero-shot label check), and the optimisation is measured on held-out seeds against the plain prompt
and a random direction (``heldout``). Sets are cached by their full provenance, so reruns and other
notebooks reuse them; the held-out renderings of the plain prompt and of the random direction are
cached too, and shared by every run that asks for the same images.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..core.device import device_of
from ..core.hashing import state_fingerprint, tensor_digest
from ..core.seeds import Purpose
from ..learning.generated import Generated
from ..learning.train import predict_probs
from .cache import GeneratedCache, cached, make_key
from .galot import GalotConfig, PGDResult, classifier_scores, memory_plan_for, optimize_embeddings
from .heldout import DIRECTIONS, heldout_indices, paired_summary
from .images import class_seeds, generate_images, planned_images, split_evenly
from .label_filters import DiffusionZeroShot, label_filter_for
from .memory import MAX_MICRO_BATCH, MemoryPlan
from .prompts import fill
from .t2i import T2IModel


class GalotGenerator:
    """The loop's generation hook. ``judge`` (optional): a classifier that plays no part in the
    optimisation and says whether held-out images still show their class. ``memory_budget_gb``: the
    memory plan's budget off a GPU (on CUDA the free memory is used); ``max_batch``: the most images
    generated or differentiated at once whatever the budget allows; ``shards``: split generation over the
    processes of a launch (``shards.Shards``)."""

    def __init__(self, model: T2IModel, class_names: tuple[str, ...], config: GalotConfig, image_size: int,
                 image_channels: int, cache: GeneratedCache | None = None, judge: torch.nn.Module | None = None,
                 memory_budget_gb: float | None = None, max_batch: int = MAX_MICRO_BATCH, shards=None):
        self.model, self.class_names, self.config = model, tuple(class_names), config
        self.size, self.channels, self.cache, self.judge = image_size, image_channels, cache, judge
        self.shards = shards  # split generation over the processes of a launch (None: this process only)
        self.memory_budget_gb, self.max_batch = memory_budget_gb, max_batch
        self.plan: MemoryPlan | None = None
        self.label_filter = label_filter_for(config, model, self.class_names)
        self._plain: GalotGenerator | None = None

    def describe(self) -> dict:
        """What decides the generated sets (the judge and the plan only measure or batch, so are left out)."""
        return dict(t2i=self.model.fingerprint, classes=self.class_names, galot=self.config.image_settings(),
                    size=self.size, channels=self.channels)

    def plain_counterpart(self) -> "GalotGenerator":
        """This generator with the prompts as they are (no PGD, no extra images, no filter): its set of a cycle
        holds the plain prompt's images at the very seeds this one renders, and it is the set an unoptimised
        run with the same template makes (Table 1's "GALOT template, eps 0"), so the two share it."""
        if self._plain is None:
            cfg = dataclasses.replace(self.config, optimize=False, oversample=1.0, label_filter="none", clip_model=None)
            self._plain = GalotGenerator(self.model, self.class_names, cfg, self.size, self.channels, self.cache,
                                         self.judge, self.memory_budget_gb, self.max_batch, self.shards)
        return self._plain

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
                       classifier=state_fingerprint(classifier) if self.needs_classifier(eps) else None,
                       judge=state_fingerprint(self.judge) if self.judge is not None else None)
        entry, hit = cached(self.cache, key, lambda: self.make(cycle, classifier, eps, n_make, n_keep, seed, n_labeled))
        return Generated(entry.images, entry.labels, dict(entry.info, cache_key=key, cache_hit=hit))

    def eps_at(self, cycle: int) -> float:
        return self.config.eps.at(cycle) if self.config.optimize else 0.0

    def needs_classifier(self, eps: float) -> bool:
        """Only gradient-guided PGD and the diffusion filter (which checks against the classifier's rival class)
        depend on the classifier (random directions and eps = 0 don't)."""
        guided = eps > 0 and self.config.acquisition != "RandomSampling" and self.config.step_size(eps) > 0
        return guided or isinstance(self.label_filter, DiffusionZeroShot)

    def planned(self, classifier) -> MemoryPlan:
        """The memory plan (measured once per setting and process, and logged then; again once a classifier
        exists to plan the gradient through)."""
        if self.plan is None or (self.plan.gradient is None and classifier is not None):
            self.plan = memory_plan_for(self.model, classifier, self.config, self.size, self.channels,
                                        self.memory_budget_gb, self.max_batch)
        return self.plan

    def make(self, cycle: int, classifier, eps: float, n_make: int, n_keep: int, seed: int,
             n_labeled: int) -> Generated:
        cfg, classes = self.config, len(self.class_names)
        self.planned(classifier)
        c_y = self.class_embeddings()
        pgd = optimize_embeddings(self.model, classifier, c_y, eps, cfg, class_seeds(seed, cycle, classes),
                                  self.size, self.channels, self.plan)
        if self.shards is not None:  # every process renders from the main process's embeddings
            pgd.embeddings = self.shards.same(pgd.embeddings.cpu()).to(c_y.device)
        t0 = time.perf_counter()
        labels, seeds = planned_images(split_evenly(n_make, classes, seed), seed, cycle)
        images = self.render(pgd.embeddings, labels, seeds)
        generation_s = time.perf_counter() - t0
        info = dict(eps=eps, pgd_s=round(pgd.seconds, 3), generation_s=round(generation_s, 3),
                    grad_micro_batch=self.plan.grad_micro_batch, sample_micro_batch=self.plan.sample_micro_batch,
                    pgd_objective_start=_nanmean(pgd.objective_before),
                    embedding_shift_linf=float((pgd.embeddings - c_y).flatten(1).abs().max(1).values.mean()),
                    pgd_zero_gradient_share=float(np.mean(pgd.zero_share)) if pgd.zero_share else float("nan"),
                    **(pgd.fidelity or {}))
        if eps > 0 and classifier is not None:
            t1 = time.perf_counter()
            summary, per_class = self.heldout(classifier, c_y, pgd, images, labels, seeds, eps, seed, cycle, n_labeled)
            info.update(summary, heldout_per_class=per_class, heldout_s=round(time.perf_counter() - t1, 3))
        keep = self.kept(images, labels, n_keep, seed, cycle, info, classifier)
        images, labels = images[keep], labels[keep]
        info["generated_this_cycle"] = len(labels)
        return Generated(images, labels, info, pgd.embeddings)

    def render(self, embeddings: torch.Tensor, labels: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        batch = self.plan.sample_micro_batch if self.plan is not None else self.max_batch
        return generate_images(self.model, embeddings, labels, seeds, self.config, self.size, self.channels, batch,
                               self.shards)

    def kept(self, images, labels, n_keep: int, seed: int, cycle: int, info: dict, classifier) -> torch.Tensor:
        """Which generated images join the training set: all; or (Table 6) a random ``n_keep`` of them; or,
        with a label filter, the first of each class that pass it, up to the class's share of ``n_keep``."""
        if self.label_filter is not None:
            t0 = time.perf_counter()
            passed = self.passes_filter(images, labels, classifier)
            info.update(label_filter_pass=float(passed.float().mean()), filter_s=round(time.perf_counter() - t0, 3))
            quota = split_evenly(n_keep, len(self.class_names), seed)
            picks = [torch.nonzero(passed & (labels == c)).flatten()[: int(q)] for c, q in enumerate(quota)]
            return torch.sort(torch.cat(picks)).values
        if n_keep < len(labels):
            rng = np.random.default_rng([seed, cycle, Purpose.OVERSAMPLE_KEEP])
            return torch.from_numpy(np.sort(rng.choice(len(labels), size=n_keep, replace=False)))
        return torch.arange(len(labels))

    def passes_filter(self, images: torch.Tensor, labels: torch.Tensor, classifier) -> torch.Tensor:
        """The label filter's verdict per image: the diffusion model against the current classifier's rival
        class (or over all classes before any classifier exists); CLIP over all classes."""
        if isinstance(self.label_filter, DiffusionZeroShot) and classifier is not None:
            probs = predict_probs(classifier, images)
            rivals = probs.scatter(1, labels[:, None], -1.0).argmax(1)
            return self.label_filter.keeps(images, labels, rivals)
        return self.label_filter.predict(images) == labels

    def heldout(self, classifier, c_y: torch.Tensor, pgd: PGDResult, images: torch.Tensor, labels: torch.Tensor,
                seeds: list[int], eps: float, seed: int, cycle: int, n_labeled: int) -> tuple[dict, list[dict]]:
        """The paired held-out measurement (see ``heldout``) on the first images of each class of this set; the
        plain prompt's images at those seeds come from the plain counterpart's set (computed once, shared)."""
        cfg = self.config
        plain = self.plain_counterpart()(cycle, None, n_labeled, seed)
        plain_idx = heldout_indices(plain.labels, cfg.heldout_samples)
        hl_labels = plain.labels[plain_idx]
        counts = torch.bincount(hl_labels, minlength=len(self.class_names))
        idx = torch.cat([torch.nonzero(labels == c).flatten()[: int(n)] for c, n in enumerate(counts)])
        hl_seeds = [seeds[i] for i in idx.tolist()]
        random_cfg = dataclasses.replace(cfg, acquisition="RandomSampling")
        c_random = optimize_embeddings(self.model, None, c_y, eps, random_cfg, class_seeds(seed, cycle, len(c_y)),
                                       self.size, self.channels).embeddings
        rendered = {"optimized": images[idx], "plain": plain.images[plain_idx],
                    "random": self.cached_render("random", c_random, hl_labels, hl_seeds)}
        device = device_of(classifier)
        with torch.no_grad():
            scores = {d: classifier_scores(classifier.eval(), rendered[d].to(device).float() / 255,
                                           cfg.heldout_acquisition, self.size, self.channels) for d in DIRECTIONS}
        correct = None
        if self.judge is not None:
            correct = {d: predict_probs(self.judge, rendered[d]).argmax(1) == hl_labels for d in DIRECTIONS}
        return paired_summary(hl_labels, scores, correct)

    def cached_render(self, kind: str, embeddings: torch.Tensor, labels: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """Images of ``embeddings`` at ``seeds``, looked up by what they are (so every run that needs the same
        plain-prompt or random-direction images renders them once)."""
        key = make_key(kind=kind, t2i=self.model.fingerprint, embeddings=tensor_digest(embeddings.float().cpu()),
                       labels=labels.tolist(), seeds=seeds, steps=self.config.sampling_steps,
                       guidance=self.config.guidance, size=self.size, channels=self.channels)
        entry, _ = cached(self.cache, key,
                          lambda: Generated(self.render(embeddings, labels, seeds), labels.clone(), {"kind": kind}))
        return entry.images


def _nanmean(t: torch.Tensor) -> float:
    return float(t.nanmean()) if t.isfinite().any() else float("nan")
