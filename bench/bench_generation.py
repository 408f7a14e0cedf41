"""Bundled-model generation: images per second at the embedded sampling settings against the previous ones,
at the pseudo-label accuracy each gives, and the time of one PGD step per class.

    python bench/bench_generation.py [--per-class 100] [--threads 2]

Settings compared (DDIM, guidance 3, the GALOT template, the same noise seeds): the embedded profile's before
this change (4 steps, UNet in contiguous memory, batches of 128), the same with a channels-last UNet, and the
current choice (3 steps, channels-last, the profile's batch size). Pseudo-label accuracy is judged by the
reference classifier on ``--per-class`` images per class (± standard error). Then one PGD step (K = 1) of the
embedded configuration, per class, with each gradient estimator.
"""

from __future__ import annotations

import argparse
import dataclasses
import time

import torch

from galot_lib.bundled_model.reference import load_reference
from galot_lib.generation.galot import optimize_embeddings
from galot_lib.generation.images import class_seeds, generate_images, planned_images
from galot_lib.generation.prompts import fill
from galot_lib.generation.t2i import load_t2i
from galot_lib.learning.train import predict_probs
from galot_lib.paper import runs
from galot_lib.paper.profiles import get_profile


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile("embedded")
    pool, _ = runs.load_data(profile)
    judge = load_reference()
    model = load_t2i("bundled")
    c = model.encode([fill(profile.galot.template, n) for n in pool.class_names])
    labels, seeds = planned_images([args.per_class] * 10, 31, 7)
    settings = [
        ("before: T 4, contiguous, batch 128", 4, torch.contiguous_format, 128),
        ("T 4, channels-last, batch 128", 4, torch.channels_last, 128),
        (
            f"now: T {profile.galot.sampling_steps}, channels-last, batch {profile.max_batch}",
            profile.galot.sampling_steps,
            torch.channels_last,
            profile.max_batch,
        ),
    ]
    print(f"bundled model, guidance {profile.galot.guidance}, {len(labels)} images, {args.threads} threads")
    for name, steps, layout, batch in settings:
        model.unet.to(memory_format=layout)
        cfg = dataclasses.replace(profile.galot, sampling_steps=steps)
        generate_images(model, c, labels[:batch], seeds[:batch], cfg, 28, 1, batch)  # warm-up
        t0 = time.perf_counter()
        images = generate_images(model, c, labels, seeds, cfg, 28, 1, batch)
        seconds = time.perf_counter() - t0
        correct = (predict_probs(judge, images).argmax(1) == labels).float()
        print(
            f"  {name:38s} {len(labels) / seconds:6.1f} images/s   pseudo-label accuracy {correct.mean():.4f} "
            f"+- {correct.std() / len(correct) ** 0.5:.4f}",
            flush=True,
        )
    model.unet.to(memory_format=torch.channels_last)
    from bench_pgd import guiding_classifier

    classifier = guiding_classifier(profile, pool, 0, 0)
    print(f"one PGD step (N = {profile.galot.grad_samples}) per class, eps 0.25:")
    for name, changes in profile.estimator_options:
        cfg = dataclasses.replace(profile.galot, pgd_steps=1, **dict(changes))
        optimize_embeddings(model, classifier, c[:1], 0.25, cfg, [0], 28, 1)  # warm-up
        t0 = time.perf_counter()
        optimize_embeddings(model, classifier, c, 0.25, cfg, class_seeds(0, 0, 10), 28, 1)
        print(f"  {name:14s} {(time.perf_counter() - t0) / 10:.3f} s per class", flush=True)


if __name__ == "__main__":
    main()
