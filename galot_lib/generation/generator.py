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
"""

from __future__ import annotations

import dataclasses
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..core.hashing import state_fingerprint, tensor_digest
from ..core.seeds import Purpose
from ..learning.generated import Generated
from ..learning.strategies import acquisition_scores
from ..learning.train import predict_probs
from .cache import GeneratedCache, cached, make_key
from .galot import GalotConfig, PGDResult, memory_plan_for, optimize_embeddings
from .heldout import heldout_indices, measure_directions
from .images import class_seeds, generate_images, image_seeds, planned_images, split_evenly
from .label_filters import DiffusionZeroShot, label_filter_for
from .memory import MAX_MICRO_BATCH, MemoryPlan
from .prompts import fill
from .t2i import T2IModel

MAX_RENDER_FACTOR = 50  # a class's images rendered at most this many times its kept share (label filter top-ups)


@dataclass
class Renders:
    """A cycle's images rendered so far, in order, each with the prompt it came from, and what making them cost."""

    images: torch.Tensor  # uint8 [n, C, H, W]
    labels: torch.Tensor  # [n]: the class each prompt names
    seeds: list[int]  # each image's noise seed
    embeddings: torch.Tensor  # [n, L, D]: the prompt each image came from
    starts: torch.Tensor  # [n, L, D]: its class's c_y
    objective_before: torch.Tensor  # per prompt optimised: the objective at c_y (NaN: not measured)
    zero_share: list[float]  # per PGD step: the share of exactly-zero gradient entries
    pgd_s: float
    render_s: float
    rendered_now: int  # images rendered (not read from the plain prompt's store)

    @classmethod
    def empty(cls, channels: int, size: int) -> Renders:
        images, none = torch.zeros(0, channels, size, size, dtype=torch.uint8), torch.zeros(0)
        return cls(images, none.long(), [], none, none, none, [], 0.0, 0.0, 0)

    def extend(self, more: Renders) -> Renders:
        if not len(self.labels):
            return more
        return Renders(
            torch.cat([self.images, more.images]),
            torch.cat([self.labels, more.labels]),
            self.seeds + more.seeds,
            torch.cat([self.embeddings, more.embeddings]),
            torch.cat([self.starts, more.starts]),
            torch.cat([self.objective_before, more.objective_before]),
            self.zero_share + more.zero_share,
            self.pgd_s + more.pgd_s,
            self.render_s + more.render_s,
            self.rendered_now + more.rendered_now,
        )


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
        self.size, self.channels, self.cache, self.judge = image_size, image_channels, cache, judge
        self.shards = shards  # split generation over the processes of a launch (None: this process only)
        self.memory_budget_gb, self.max_batch = memory_budget_gb, max_batch
        self.plan: MemoryPlan | None = None
        self.label_filter = label_filter_for(config, model, self.class_names)

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
        entry, hit = cached(self.cache, key, lambda: self.make(cycle, classifier, eps, n_make, n_keep, seed))
        return Generated(entry.images, entry.labels, dict(entry.info, cache_key=key, cache_hit=hit))

    def eps_at(self, cycle: int) -> float:
        return self.config.eps.at(cycle) if self.config.optimize else 0.0

    def planned(self, classifier) -> MemoryPlan:
        """The memory plan (measured once per setting and process, and logged then; again once a classifier
        exists to plan the gradient through)."""
        if self.plan is None or (self.plan.gradient is None and classifier is not None):
            self.plan = memory_plan_for(
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
            plain = plain_labels, self.plain_stream(c_y, plain_labels, plain_seeds, seed, cycle)[0], plain_seeds
        if eps > 0 and classifier is not None:
            summary, per_class = self.heldout(classifier, c_y, plain, made.images, labels, seeds, eps, seed, cycle)
            info.update(summary, heldout_per_class=per_class, heldout_on_own_noise=self.per_image(eps))
        measuring_s = time.perf_counter() - t1
        keep, made = self.filled(made, n_keep, c_y, shared, classifier, eps, seed, cycle, info)
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
            images, now = self.render(pgd.embeddings, torch.arange(len(labels)), seeds), len(labels)
            rows = pgd.embeddings
        else:
            pgd = shared if not len(earlier.labels) else dataclasses.replace(shared, zero_share=[], seconds=0.0)
            t0 = time.perf_counter()
            rows = shared.embeddings[labels]
            if torch.equal(shared.embeddings, c_y):
                every, now = self.plain_stream(
                    c_y, torch.cat([earlier.labels, labels]), earlier.seeds + list(seeds), seed, cycle
                )
                images = every[len(earlier.labels) :]
            else:
                images, now = self.render(shared.embeddings, labels, seeds), len(labels)
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

    def filled(
        self, made: Renders, n_keep: int, c_y, shared: PGDResult, classifier, eps, seed: int, cycle: int, info: dict
    ) -> tuple[torch.Tensor, Renders]:
        """The indices of ``made`` to keep, ``n_keep`` of them (each class its share), and ``made`` as it ended:
        where a label filter leaves a class short, the next images of its seed stream are rendered and judged until
        its share is full, so that arms differ in which images they train on, not in how many. A class the filter
        passes too rarely to fill its share within ``MAX_RENDER_FACTOR`` times it stops the run, saying what to
        change."""
        quota = torch.as_tensor(split_evenly(n_keep, len(self.class_names), seed))
        verdicts, given_up = None, torch.zeros(len(quota), dtype=torch.bool)
        while True:
            keep, verdicts = self.kept(made, n_keep, seed, cycle, info, classifier, verdicts)
            short = (quota - torch.bincount(made.labels[keep], minlength=len(quota))).masked_fill(given_up, 0)
            if not short.any() or (self.label_filter is None and self.config.keep_rule == "any"):
                return keep, made  # a random n_keep of the rendered (Table 6) keeps n_keep, not each class's share
            rendered = torch.bincount(made.labels, minlength=len(quota))
            passed = torch.bincount(made.labels[verdicts[0]], minlength=len(quota))
            checked = torch.bincount(made.labels[verdicts[1]], minlength=len(quota))
            rate = (passed.float() + 1) / (checked.float() + 2)  # the pass rate so far (Laplace's estimate)
            extra = torch.where(short > 0, (short / rate).ceil().long() + 1, 0)
            hopeless = (short > 0) & (rendered + extra > MAX_RENDER_FACTOR * quota)
            if hopeless.any() and not self.config.keep_short:
                c = int(torch.nonzero(hopeless)[0])
                raise ValueError(
                    f"the label filter ({self.config.label_filter}) passed {int(passed[c])} of {int(checked[c])} images "
                    f"of class {self.class_names[c]!r} (cycle {cycle}, eps {eps:g}); {int(short[c])} more of its "
                    f"share of {int(quota[c])} would take over {MAX_RENDER_FACTOR} x that share: raise oversample, "
                    "lower eps or drop the filter"
                )
            if hopeless.any():  # keep_short: stated, the records count what was not filled
                info["kept_short"] = info.get("kept_short", 0) + int(short[hopeless].sum())
                given_up |= hopeless
                extra[hopeless] = 0
                if not extra.any():
                    return keep, made
            labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(extra.tolist())])
            seeds = [
                s
                for c, n in enumerate(extra.tolist())
                for s in image_seeds(seed, cycle, c, int(rendered[c]) + n)[int(rendered[c]) :]
            ]
            made = self.rendered(made, labels, seeds, c_y, shared, classifier, eps, seed, cycle)
            verdicts = tuple(torch.cat([v, torch.zeros(len(labels), dtype=torch.bool)]) for v in verdicts)

    def render(self, embeddings: torch.Tensor, labels: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        batch = self.plan.sample_micro_batch if self.plan is not None else self.max_batch
        return generate_images(
            self.model, embeddings, labels, seeds, self.config, self.size, self.channels, batch, self.shards
        )

    def plain_stream(
        self, c_y: torch.Tensor, labels: torch.Tensor, seeds: list[int], seed: int, cycle: int
    ) -> tuple[torch.Tensor, int]:
        """The plain prompt's images at the planned seeds, from a per-class store that only grows: a class's
        seeds of a cycle are one stream (``images.image_seeds``), so every unoptimised arm (eps 0, oversampled
        for a filter, the selection pools) and every measurement against the plain prompt renders each image
        once and reads the shorter sets as prefixes of the longer ones. Also returns how many it rendered now."""
        streams = {}  # class -> (store key, images stored, images needed)
        for c in torch.unique(labels).tolist():
            need = int((labels == c).sum())
            key = make_key(
                kind="plain-class-stream",
                t2i=self.model.fingerprint,
                seed=seed,
                cycle=cycle,
                label=c,
                embedding=tensor_digest(c_y[c].float().cpu()),
                steps=self.config.sampling_steps,
                guidance=self.config.guidance,
                size=self.size,
                channels=self.channels,
            )
            have = self.cache.get(key) if self.cache is not None else None
            streams[c] = key, (have.images if have is not None else None), need
        missing = [
            (c, s)
            for c, (_, have, need) in streams.items()
            for s in image_seeds(seed, cycle, c, need)[0 if have is None else len(have) :]
        ]
        if missing:  # one render for every class's missing images (batches may mix classes)
            rendered = self.render(c_y, torch.tensor([c for c, _ in missing]), [s for _, s in missing])
        out = torch.empty(len(labels), self.channels, self.size, self.size, dtype=torch.uint8)
        for c, (key, have, need) in streams.items():
            extra = rendered[torch.tensor([m == c for m, _ in missing])] if missing else out[:0]
            stored = extra if have is None else torch.cat([have, extra])
            if len(extra) and self.cache is not None:
                now = self.cache.get(key)  # another process may have stored a longer stream meanwhile: keep it
                if now is None or len(now.images) < len(stored):
                    self.cache.put(
                        key, Generated(stored, torch.full((len(stored),), c), {"kind": "plain-class-stream"})
                    )
            where = torch.nonzero(labels == c).flatten()
            if [seeds[i] for i in where.tolist()] != image_seeds(seed, cycle, c, need):
                raise ValueError(f"class {c}'s images are not the first of its seed stream of cycle {cycle}")
            out[where] = stored[:need]
        return out, len(missing)

    def kept(
        self, made: Renders, n_keep: int, seed: int, cycle: int, info: dict, classifier, verdicts=None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Which generated images join the training set, and the label filter's verdicts so far (passed, checked):
        all; or (Table 6) a random ``n_keep`` of them; or, with a label filter, the first of each class that pass
        it, up to the class's share of ``n_keep``; or, with ``keep_rule="informative"``, each class's share with
        the highest A_GAL under the current classifier (among those that pass the filter, if there is one; the
        first ones before any classifier)."""
        cfg, images, labels = self.config, made.images, made.labels
        none = torch.zeros(len(labels), dtype=torch.bool)
        verdicts = verdicts or (none, none.clone())
        rank = torch.zeros(len(labels))  # lower first; ties keep the set's order
        if cfg.keep_rule == "informative" and classifier is not None:
            t0 = time.perf_counter()
            scores = acquisition_scores(cfg.heldout_acquisition, predict_probs(classifier, images)).float().cpu()
            rank = -scores
            info.update(selection_s=round(time.perf_counter() - t0, 3), candidate_acquisition=float(scores.mean()))
        elif cfg.keep_rule == "any" and self.label_filter is None and n_keep < len(labels):
            rng = np.random.default_rng([seed, cycle, Purpose.OVERSAMPLE_KEEP])
            return torch.from_numpy(np.sort(rng.choice(len(labels), size=n_keep, replace=False))), verdicts
        quota = split_evenly(n_keep, len(self.class_names), seed)
        orders = [torch.nonzero(labels == c).flatten() for c in range(len(quota))]
        orders = [pool[torch.sort(rank[pool], stable=True).indices] for pool in orders]
        passed = torch.ones(len(labels), dtype=torch.bool)
        if self.label_filter is not None:
            verdicts = self.filtered_in_order(images, labels, orders, quota, classifier, info, verdicts)
            passed = verdicts[0]
        keep = torch.sort(torch.cat([order[passed[order]][: int(q)] for order, q in zip(orders, quota)])).values
        return keep, verdicts

    def filtered_in_order(
        self, images, labels, orders: list[torch.Tensor], quota, classifier, info: dict, verdicts
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The label filter's verdicts (passed, checked), asked in each class's keeping order only until the class's
        quota has passed (the filter judges every image on its own, so the images kept are those a check of all
        would keep, for a fraction of its cost); images never checked count as not passed, and those checked before
        (``verdicts``) are not asked again."""
        t0 = time.perf_counter()
        passed, checked = verdicts[0].clone(), verdicts[1].clone()
        while True:
            ask = []
            for order, q in zip(orders, quota):
                missing = int(q) - int(passed[order].sum())
                unchecked = order[~checked[order]]
                if missing > 0:
                    ask.append(unchecked[: missing + (missing + 3) // 4])  # a few spare: most images pass
            ask = torch.cat(ask) if ask else torch.zeros(0, dtype=torch.long)
            if len(ask) == 0:
                break
            passed[ask] = self.passes_filter(images[ask], labels[ask], classifier)
            checked[ask] = True
        info.update(
            label_filter_pass=float(passed[checked].float().mean()) if checked.any() else float("nan"),
            filter_checked=int(checked.sum()),
            filter_s=round(info.get("filter_s", 0.0) + time.perf_counter() - t0, 3),
        )
        return passed, checked

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

    def passes_filter(self, images: torch.Tensor, labels: torch.Tensor, classifier) -> torch.Tensor:
        """The label filter's verdict per image: the diffusion model against the current classifier's rival
        class (or over all classes before any classifier exists); CLIP over all classes."""
        if isinstance(self.label_filter, DiffusionZeroShot) and classifier is not None:
            probs = predict_probs(classifier, images)
            rivals = probs.scatter(1, labels[:, None], -1.0).argmax(1)
            return self.label_filter.keeps(images, labels, rivals)
        return self.label_filter.predict(images) == labels

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
            "random": self.cached_render("random", c_random, hl_labels, hl_seeds),
        }
        return measure_directions(
            classifier, self.judge, rendered, hl_labels, cfg.heldout_acquisition, self.size, self.channels
        )

    def cached_render(
        self, kind: str, embeddings: torch.Tensor, labels: torch.Tensor, seeds: list[int]
    ) -> torch.Tensor:
        """Images of ``embeddings`` at ``seeds``, looked up by what they are (so every run that needs the same
        random-direction images renders them once)."""
        key = make_key(
            kind=kind,
            t2i=self.model.fingerprint,
            embeddings=tensor_digest(embeddings.float().cpu()),
            labels=labels.tolist(),
            seeds=seeds,
            steps=self.config.sampling_steps,
            guidance=self.config.guidance,
            size=self.size,
            channels=self.channels,
        )
        entry, _ = cached(
            self.cache, key, lambda: Generated(self.render(embeddings, labels, seeds), labels.clone(), {"kind": kind})
        )
        return entry.images


def _nanmean(t: torch.Tensor) -> float:
    return float(t.nanmean()) if t.isfinite().any() else float("nan")
