"""Does PGD on the prompt embedding make the generated images more informative, and at what cost
to their pseudo-labels? The measurement behind GALOT's defaults for eta, the norm and K.

    python bench/bench_pgd.py [--per-class 20] [--threads 2]

A classifier is trained on the embedded profile's initial labelled set (seed 0). For each
setting, every class embedding of "a realistic photo of a {label}" is optimised by PGD
(MarginSampling, N = the profile's images per gradient), then ``--per-class`` fresh images per
class (noise seeds never used by the PGD) are generated from it. Printed per setting: the mean
margin acquisition of those images (higher = nearer the classifier's decision boundary), its
gain over eps = 0, the pseudo-label accuracy judged by the reference classifier, and the time.
L2 radii are the L-infinity radius times sqrt(number of coordinates), so both balls allow the
same Euclidean displacement of a sign step.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import time

import torch

from galot_lib.paper import runs
from galot_lib.bundled.reference import load_reference
from galot_lib.generation.galot import EpsSchedule, classifier_scores, optimize_embeddings
from galot_lib.generation.images import class_seeds, generate_images, planned_images
from galot_lib.learning.loop import initial_indices
from galot_lib.paper.profiles import get_profile
from galot_lib.generation.prompts import fill
from galot_lib.learning.train import fit, predict_probs


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=20)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--eps", type=float, nargs="+", default=[0.2, 0.4])
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile("embedded")
    pool, _ = runs.load_data(profile)
    idx = torch.as_tensor(initial_indices(len(pool), profile.initial_labeled, 0))
    classifier = fit(profile.model, pool.images[idx], pool.labels[idx], 10, profile.train, seed=0).model.eval()
    judge = load_reference()
    model = runs.t2i_model(profile)
    c_y = model.encode([fill(profile.galot.template, n) for n in pool.class_names])
    coords = (c_y.shape[1] - 1) * c_y.shape[2]  # token 0 stays fixed
    labels, seeds = planned_images([args.per_class] * 10, seed=99, cycle=0)

    settings = [("none", 0, 0.0, 0.0)]
    for k in (2, 6):
        for factor in (1.0, 2.5):
            for eps in args.eps:
                settings.append(("linf", k, factor, eps))
    for eps in args.eps:
        settings.append(("l2", 2, 2.5, eps))
    print(f"classifier {profile.model} on {len(idx)} labels; N = {profile.galot.grad_samples}, "
          f"{profile.galot.sampling_steps} DDIM steps, guidance {profile.galot.guidance}; {args.per_class} images per class")
    print(f"{'norm':<5}{'K':>3}{'eta x eps/K':>12}{'eps':>6}{'margin score':>14}{'gain':>8}{'pseudo-label acc':>18}{'seconds':>9}")
    base = None
    for norm, k, factor, eps in settings:
        radius = eps * math.sqrt(coords) if norm == "l2" else eps
        cfg = dataclasses.replace(profile.galot, norm="linf" if norm == "none" else norm, pgd_steps=max(k, 1),
                                  eta=factor * radius / max(k, 1), eps=EpsSchedule.constant(radius))
        t0 = time.perf_counter()
        c = optimize_embeddings(model, classifier, c_y, radius, cfg, class_seeds(0, 0, 10), 28, 1).embeddings
        images = generate_images(model, c, labels, seeds, cfg, 28, 1)
        seconds = time.perf_counter() - t0
        with torch.no_grad():
            score = float(classifier_scores(classifier, images.float() / 255, "MarginSampling", 28, 1).mean())
        acc = float((predict_probs(judge, images).argmax(1) == labels).float().mean())
        base = score if base is None else base
        print(f"{norm:<5}{k:>3}{factor:>12.1f}{eps:>6.2f}{score:>14.3f}{score - base:>+8.3f}{acc:>18.3f}{seconds:>9.1f}",
              flush=True)


if __name__ == "__main__":
    main()
