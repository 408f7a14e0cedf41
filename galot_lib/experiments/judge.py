"""Pseudo-label accuracy: does a generated image show the class its prompt named? (Sec. 4.4)

The paper asks people; here an automatic judge (a classifier trained on real images the AL
pool never sees) answers for every image, and the annotation panel of notebook 4.4 lets a
person answer for the same images. Embeddings are perturbed as in Sec. 4.4: PGD with
RandomSampling as the acquisition, i.e. K random sign steps projected onto the eps-ball.
"""

from __future__ import annotations

import dataclasses

from ..core.progress import tqdm
from ..core.provenance import provenance
from ..generation.cache import GeneratedCache, cached, make_key
from ..generation.galot import GalotConfig, optimize_embeddings
from ..generation.images import class_seeds, generate_images, planned_images
from ..generation.prompts import fill
from ..learning.generated import Generated
from ..learning.train import predict_probs

JUDGE_CYCLE = 4  # the cycle number Sec. 4.4's random directions are drawn for (they belong to no AL cycle)


def perturbed_images(
    model,
    class_names,
    template: str,
    eps: float,
    per_class: int,
    config: GalotConfig,
    seed: int,
    size: int,
    channels: int,
    cache: GeneratedCache | None = None,
):
    """uint8 images [C * per_class, ...] and labels from randomly perturbed class embeddings; with ``cache``,
    looked up by everything that decides them (the run grid renders them, the notebook reads them back)."""
    random_cfg = dataclasses.replace(config, template=template, acquisition="RandomSampling", optimize=True)
    key = make_key(
        kind="judged",
        t2i=model.fingerprint,
        classes=list(class_names),
        galot=random_cfg.image_settings(),
        eps=eps,
        per_class=per_class,
        seed=seed,
        size=size,
        channels=channels,
    )

    def render() -> Generated:
        c_y = model.encode([fill(template, name) for name in class_names]).float()
        c = optimize_embeddings(
            model, None, c_y, eps, random_cfg, class_seeds(seed, JUDGE_CYCLE, len(class_names)), size, channels
        ).embeddings
        labels, seeds = planned_images([per_class] * len(class_names), seed, 0)
        return Generated(
            generate_images(model, c, labels, seeds, random_cfg, size, channels),
            labels,
            dict(kind="judged", template=template, eps=eps),
        )

    entry, _ = cached(cache, key, render)
    return entry.images, entry.labels


def judge_templates(
    model,
    judge,
    class_names,
    templates,
    eps_values,
    per_class: int,
    config: GalotConfig,
    seed: int,
    size: int,
    channels: int,
    progress: bool = True,
    keep: list | None = None,
    cache: GeneratedCache | None = None,
) -> list[dict]:
    """One record per (template, eps, class): how many of its images the judge assigns to it.
    With ``keep`` (a list), every judged image is appended to it as a dict (for people to judge too)."""
    records = []
    settings = [(t, e) for t in templates for e in eps_values]
    for template, eps in tqdm(settings, desc="pseudo-labels", disable=not progress, leave=False):
        images, labels = perturbed_images(
            model, class_names, template, eps, per_class, config, seed, size, channels, cache
        )
        predicted = predict_probs(judge, images).argmax(1)
        if keep is not None:
            keep += [
                dict(template=template, eps=eps, label=int(y), judge=int(p), image=im)
                for im, y, p in zip(images, labels, predicted)
            ]
        for label, name in enumerate(class_names):
            mask = labels == label
            records.append(
                dict(
                    template=template,
                    eps=eps,
                    class_name=name,
                    label=label,
                    correct=int((predicted[mask] == label).sum()),
                    total=int(mask.sum()),
                    seed=seed,
                    sampling_steps=config.sampling_steps,
                    guidance=config.guidance,
                    pgd_steps=config.pgd_steps,
                    norm=config.norm,
                    **provenance(),
                )
            )
    return records
