"""GALOT's generation hook for the AL loop: GALOT, GALOT (basic) and the GAL-only baseline.

Each cycle: PGD moves every class embedding (or, with ``per_image``, every image's own copy of it)
toward the current classifier's uncertainty (or not, for GALOT basic), ``oversample x factor x |L|``
pseudo-labelled images are generated, and ``factor x |L|`` of them are kept: at random, those a
zero-shot label check passes, or the most informative (``keep_rule="informative"``: selection instead
of optimisation). The optimisation is measured on held-out seeds against the plain prompt and a random
direction (``heldout``), and every arm's kept images against the plain prompt's at the same count
(acquisition and judged labels). Sets are cached by their full provenance, so reruns and other
notebooks reuse them; the plain prompt's images are stored per class as a growing seed stream, so the
eps-0 arms, the oversampled pools and the measurements render each of them once.

The hook holds the cycle's order and the measurements; its parts each do one job: PGD (``galot``), rendering
(``rendering.Renderer``) and keeping (``keeping.Keeper``, the policy that chooses what joins the training set).
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch

from ..core.hashing import state_fingerprint
from ..learning.generated import Generated
from ..learning.strategies import acquisition_scores
from ..learning.train import predict_probs
from .cache import GeneratedCache, cached, make_key
from .galot import GalotConfig, PGDResult, memory_plan_for, optimize_embeddings
from .heldout import heldout_indices, measure_directions
from .images import class_seeds, planned_images, split_evenly
from .keeping import Keeper
from .memory import MAX_MICRO_BATCH, MemoryPlan
from .prompts import fill
from .rendering import Renderer, Renders
from .t2i import T2IModel


class GalotGenerator:
    """The loop's generation hook. ``judge`` (optional): a classifier that plays no part in the
    optimisation and says whether held-out images still show their class. ``memory_budget_gb``: the
    memory plan's budget off a GPU (on CUDA the free memory is used); ``max_batch``: the most images
    generated or differentiated at once whatever the budget allows; ``shards``: split generation over the
    processes of a launch (``shards.Shards``)."""

    def __init__(
        self,
        model: T2IModel,
        class_names: tuple[str, ...],
        config: GalotConfig,
        image_size: int,
        image_channels: int,
        cache: GeneratedCache | None = None,
        judge: torch.nn.Module | None = None,
        memory_budget_gb: float | None = None,
        max_batch: int = MAX_MICRO_BATCH,
        shards=None,
    ):
        self.model, self.class_names, self.config = model, tuple(class_names), config
        self.size, self.channels, self.judge = image_size, image_channels, judge
        self.shards = shards  # split generation over the processes of a launch (None: this process only)
        self.memory_budget_gb, self.max_batch = memory_budget_gb, max_batch
        self.renderer = Renderer(model, config, image_size, image_channels, cache, max_batch, shards)
        self.keeper = Keeper(model, self.class_names, config)

    def describe(self) -> dict:
        """What decides the generated sets (the judge and the plan only measure or batch, so are left out)."""
        return dict(
            t2i=self.model.fingerprint,
            classes=self.class_names,
            galot=self.config.image_settings(),
            size=self.size,
            channels=self.channels,
        )

    def class_embeddings(self) -> torch.Tensor:
        """c_y for every class: the template filled with the class word, encoded."""
        return self.model.encode([fill(self.config.template, name) for name in self.class_names]).float()

    def __call__(self, cycle: int, trained, n_labeled: int, seed: int) -> Generated:
        cfg = self.config
        n_keep = int(round(cfg.factor * n_labeled))
        n_make = int(round(cfg.oversample * n_keep))
        classifier = trained.model if trained is not None else None
        eps = self.eps_at(cycle) if classifier is not None else 0.0  # nothing to optimise against yet
        key = make_key(
            **self.describe(),
            eps=eps,
            cycle=cycle,
            seed=seed,
            n=n_make,
            keep=n_keep,
            # the classifier decides PGD's direction, the filter's rivals, the selection and the measurements beside
            # the plain prompt (so a set made under one classifier is never handed to another)
            classifier=state_fingerprint(classifier) if classifier is not None else None,
            judge=state_fingerprint(self.judge) if self.judge is not None else None,
        )
        entry, hit = cached(self.renderer.cache, key, lambda: self.make(cycle, classifier, eps, n_make, n_keep, seed))
        return Generated(entry.images, entry.labels, dict(entry.info, cache_key=key, cache_hit=hit))

    def eps_at(self, cycle: int) -> float:
        return self.config.eps.at(cycle) if self.config.optimize else 0.0

    @property
    def plan(self) -> MemoryPlan | None:
        return self.renderer.plan

    def planned(self, classifier) -> MemoryPlan:
        """The memory plan (measured once per setting and process, and logged then; again once a classifier
        exists to plan the gradient through); the renderer batches by it."""
        if self.plan is None or (self.plan.gradient is None and classifier is not None):
            self.renderer.plan = memory_plan_for(
                self.model, classifier, self.config, self.size, self.channels, self.memory_budget_gb, self.max_batch
            )
        return self.plan

    def make(self, cycle: int, classifier, eps: float, n_make: int, n_keep: int, seed: int) -> Generated:
        """One cycle's set, in Alg. 1's order: move the prompts (PGD), render ``n_make`` images, measure the moved
        prompts on held-out seeds, keep ``n_keep`` (rendering more where a label filter left a class short), and
        measure the kept images against the plain prompt's."""
        classes = len(self.class_names)
        self.planned(classifier)
        c_y = self.class_embeddings()
        labels, seeds = planned_images(split_evenly(n_make, classes, seed), seed, cycle)
        shared = self.shared_prompts(classifier, c_y, eps, seed, cycle)
        nothing = Renders.empty(self.channels, self.size)
        made = self.rendered(nothing, labels, seeds, c_y, shared, classifier, eps, seed, cycle)
        info = dict(
            eps=eps,
            grad_micro_batch=self.plan.grad_micro_batch,
            sample_micro_batch=self.plan.sample_micro_batch,
            pgd_objective_start=_nanmean(made.objective_before),
            embedding_shift_linf=float((made.embeddings - made.starts).flatten(1).abs().max(1).values.mean()),
            pgd_zero_gradient_share=float(np.mean(made.zero_share)) if made.zero_share else float("nan"),
            **(shared.fidelity or {}),
        )
        t1 = time.perf_counter()  # measurements against the plain prompt (judging, not generating)
        plain = None
        if classifier is not None:  # the plain prompt's images at the kept count: what every arm is measured against
            plain_labels, plain_seeds = planned_images(split_evenly(n_keep, classes, seed), seed, cycle)
            plain = (
                plain_labels,
                self.renderer.plain_stream(c_y, plain_labels, plain_seeds, seed, cycle)[0],
                plain_seeds,
            )
        if eps > 0 and classifier is not None:
            summary, per_class = self.heldout(classifier, c_y, plain, made.images, labels, seeds, eps, seed, cycle)
            info.update(summary, heldout_per_class=per_class, heldout_on_own_noise=self.per_image(eps))
        measuring_s = time.perf_counter() - t1
        keep, made = self.keeper.filled(
            made,
            n_keep,
            classifier,
            eps,
            seed,
            cycle,
            info,
            lambda earlier, labels, seeds: self.rendered(
                earlier, labels, seeds, c_y, shared, classifier, eps, seed, cycle
            ),
        )
        info.update(
            pgd_s=round(made.pgd_s, 3),
            generation_s=round(made.render_s, 3),
            rendered=len(made.labels),
            rendered_now=made.rendered_now,
            topped_up=len(made.labels) - n_make,
        )
        images, labels = made.images[keep], made.labels[keep]
        if plain is not None:
            t1 = time.perf_counter()
            info.update(self.kept_against_plain(classifier, images, labels, plain[1], plain[0]))
            measuring_s += time.perf_counter() - t1
        info.update(generated_this_cycle=len(labels), heldout_s=round(measuring_s, 3))
        embeddings = made.embeddings[keep] if self.per_image(eps) else shared.embeddings
        return Generated(images, labels, info, embeddings)

    def per_image(self, eps: float) -> bool:
        """Every image its own prompt (only where there is something to optimise)."""
        return self.config.per_image and eps > 0

    def shared_prompts(self, classifier, c_y: torch.Tensor, eps: float, seed: int, cycle: int) -> PGDResult:
        """c* per class (PGD against ``classifier``, the same in every process of a launch); c_y unmoved for
        per-image prompts, whose PGD runs image by image as they are rendered (``rendered``)."""
        if self.per_image(eps):
            return optimize_embeddings(self.model, classifier, c_y, 0.0, self.config, [], self.size, self.channels)
        pgd = optimize_embeddings(
            self.model,
            classifier,
            c_y,
            eps,
            self.config,
            class_seeds(seed, cycle, len(c_y)),
            self.size,
            self.channels,
            self.plan,
        )
        if self.shards is not None:  # every process renders from the main process's embeddings
            pgd.embeddings = self.shards.same(pgd.embeddings.cpu()).to(c_y.device)
        return pgd

    def rendered(
        self, earlier: Renders, labels, seeds: list[int], c_y, shared: PGDResult, classifier, eps, seed, cycle
    ) -> Renders:
        """``earlier`` with the images of (``labels``, ``seeds``) added: per-image prompts optimised against their
        own noise and rendered; c* rendered; or, unmoved, the plain prompt's images from its per-class store (whose
        earlier images these continue)."""
        if self.per_image(eps):
            pgd = optimize_embeddings(
                self.model,
                classifier,
                c_y[labels],
                eps,
                self.config,
                seeds,
                self.size,
                self.channels,
                self.plan,
                noise_seeds=seeds,
                classes_of_rows=labels,
            )
            t0 = time.perf_counter()
            images, now = self.renderer.render(pgd.embeddings, torch.arange(len(labels)), seeds), len(labels)
            rows = pgd.embeddings
        else:
            pgd = shared if not len(earlier.labels) else dataclasses.replace(shared, zero_share=[], seconds=0.0)
            t0 = time.perf_counter()
            rows = shared.embeddings[labels]
            if torch.equal(shared.embeddings, c_y):
                every, now = self.renderer.plain_stream(
                    c_y, torch.cat([earlier.labels, labels]), earlier.seeds + list(seeds), seed, cycle
                )
                images = every[len(earlier.labels) :]
            else:
                images, now = self.renderer.render(shared.embeddings, labels, seeds), len(labels)
        new = Renders(
            images,
            labels,
            list(seeds),
            rows,
            c_y[labels],
            pgd.objective_before if not len(earlier.labels) else torch.zeros(0),
            pgd.zero_share,
            pgd.seconds,
            time.perf_counter() - t0,
            now,
        )
        return earlier.extend(new)

    def kept_against_plain(self, classifier, images, labels, plain_images, plain_labels) -> dict:
        """What this arm adds, beside what the plain prompt would have added at the same count and seeds stream:
        the mean acquisition under the current classifier (how informative) and the judge's label accuracy (one
        pass of each network over both sets)."""
        both, kept = torch.cat([images, plain_images]), slice(0, len(images))
        plain = slice(len(images), None)
        scores = acquisition_scores(self.config.heldout_acquisition, predict_probs(classifier, both)).float()
        row = dict(
            kept_acquisition=float(scores[kept].mean()),
            plain_acquisition=float(scores[plain].mean()),
            kept_gain=float(scores[kept].mean() - scores[plain].mean()),
        )
        if self.judge is not None:
            right = predict_probs(self.judge, both).argmax(1) == torch.cat([labels, plain_labels])
            row.update(
                kept_label_correct=float(right[kept].float().mean()),
                plain_label_correct=float(right[plain].float().mean()),
            )
        return row

    def heldout(
        self,
        classifier,
        c_y: torch.Tensor,
        plain,
        images: torch.Tensor,
        labels: torch.Tensor,
        seeds: list[int],
        eps: float,
        seed: int,
        cycle: int,
    ) -> tuple[dict, list[dict]]:
        """The paired held-out measurement (see ``heldout``) on the first images of each class of this set, against
        the plain prompt's images at the same seeds (``plain``: its labels, images and seeds at the kept count).
        Per-image prompts were moved against these very seeds: their gain is on their own noise, not held out."""
        cfg = self.config
        plain_labels, plain_images, plain_seeds = plain
        plain_idx = heldout_indices(plain_labels, cfg.heldout_samples)
        hl_labels = plain_labels[plain_idx]
        counts = torch.bincount(hl_labels, minlength=len(self.class_names))
        idx = torch.cat([torch.nonzero(labels == c).flatten()[: int(n)] for c, n in enumerate(counts)])
        hl_seeds = [seeds[i] for i in idx.tolist()]
        if hl_seeds != [plain_seeds[i] for i in plain_idx.tolist()]:
            raise ValueError("the held-out images and the plain prompt's are not rendered at the same seeds")
        random_cfg = dataclasses.replace(cfg, acquisition="RandomSampling")
        c_random = optimize_embeddings(
            self.model, None, c_y, eps, random_cfg, class_seeds(seed, cycle, len(c_y)), self.size, self.channels
        ).embeddings
        rendered = {
            "optimized": images[idx],
            "plain": plain_images[plain_idx],
            "random": self.renderer.cached_render("random", c_random, hl_labels, hl_seeds),
        }
        return measure_directions(
            classifier, self.judge, rendered, hl_labels, cfg.heldout_acquisition, self.size, self.channels
        )


def _nanmean(t: torch.Tensor) -> float:
    return float(t.nanmean()) if t.isfinite().any() else float("nan")
