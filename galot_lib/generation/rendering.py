"""Rendering GALOT's images: the sampler in the memory plan's batches (split over a launch's processes), the plain
prompt's per-class image streams that every unoptimised arm and measurement reads as prefixes, and renders looked up
by what they are. The generation hook (``generator``) decides what to render; this module only renders it."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from ..core.hashing import tensor_digest
from ..learning.generated import Generated
from .cache import GeneratedCache, cached, make_key
from .galot import GalotConfig
from .images import generate_images, image_seeds
from .memory import MemoryPlan
from .t2i import T2IModel


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


class Renderer:
    """Renders for one model, configuration and image geometry; ``plan`` (the memory plan, set by the hook once
    measured) sets the batch size, ``cache`` keeps the plain prompt's streams and the looked-up renders."""

    def __init__(
        self,
        model: T2IModel,
        config: GalotConfig,
        size: int,
        channels: int,
        cache: GeneratedCache | None,
        max_batch: int,
        shards=None,
    ):
        self.model, self.config, self.size, self.channels = model, config, size, channels
        self.cache, self.max_batch, self.shards = cache, max_batch, shards
        self.plan: MemoryPlan | None = None

    def render(self, embeddings: torch.Tensor, labels: torch.Tensor, seeds: list[int]) -> torch.Tensor:
        """Images of ``embeddings[labels]`` at ``seeds``, in the memory plan's micro-batches."""
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
