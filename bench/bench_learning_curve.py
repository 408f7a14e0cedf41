"""The trainer's learning curve: does test accuracy rise with the training-set size, and only with it?

    python bench/bench_learning_curve.py [--profile embedded] [--seeds 100 101 102 103 104] [--out FILE.csv]

A classifier retrained from scratch on n images must not depend on n mod batch size: if 450 images train worse
than 448, every comparison whose arms differ by a few images, or whose curve crosses such a size, measures the
trainer and not the data. This trains the profile's classifier with the profile's recipe (``profile.train``) on

* real images alone: nested random subsets of the pool (the first n of one permutation per seed) at the sizes a
  pool baseline's cycles have (50, 100, 150, 200 on the embedded profile) and just around two multiples of the
  batch size (n mod batch = 0, 1, 2, 4, 8, 16);
* real + generated images: the labelled sizes of a GALOT run's cycles with the generated images it has by then
  (|L| per cycle, cumulative: 50 + 50, 100 + 150, 150 + 300, 200 + 500), and 150 labels plus the generated images
  that bring the set to the same sizes around a multiple of the batch size (450 is GALOT's third cycle);

on bench seeds that no headline reports (each seed: its own permutation, generated order and training seed; the
same for every size, so the sizes are paired). The generated images are the plain prompt's (the GALOT template,
eps 0) at the profile's sampling settings, rendered once into the bench's own cache. It prints the mean accuracy
per size with its spread over seeds, the largest drop of the mean as n grows (any size against any larger one of
the same kind), the spread of the means around each multiple of the batch size, and writes every fit to CSV.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch

BENCH_SEEDS = (100, 101, 102, 103, 104)  # the headline's seeds are 0-4 (and 5 chooses W's default)
OFFSETS = (0, 1, 2, 4, 8, 16)  # n mod batch size around a multiple of it
GENERATED_POOL = 1000  # plain-prompt images rendered once; every seed draws its own order of them


def sizes(profile) -> list[tuple[str, int, int]]:
    """(kind, real images, generated images) of every fit, for one seed."""
    batch, cycles = profile.train.batch_size, profile.cycles
    labels = [profile.initial_labeled + c * profile.query_size for c in range(cycles)]
    generated = np.cumsum(labels).tolist()  # GALOT adds |L| generated images per cycle
    rows = [("real", n, 0) for n in labels]
    for multiple in (3 * batch, 7 * batch):
        rows += [("real", multiple + k, 0) for k in OFFSETS if multiple + k not in labels]
    rows += [("real + generated", n, g) for n, g in zip(labels, generated)]
    real = labels[min(2, cycles - 1)]  # GALOT's third cycle: 150 labels + 300 generated = 450 on the embedded profile
    multiple = batch * round((real + generated[min(2, cycles - 1)]) / batch)
    rows += [
        ("real + generated", real, multiple + k - real)
        for k in OFFSETS
        if (real, multiple + k - real) not in {(r, g) for _, r, g in rows}
    ]
    return sorted(set(rows), key=lambda r: (r[0], r[1] + r[2]))


def generated_images(profile, count: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``count`` plain-prompt images, classes balanced, at the profile's sampling settings (cached in the bench's
    generated-set cache: the render is not part of what is timed)."""
    from galot_lib.experiments.runs import load_data, t2i_model
    from galot_lib.generation.cache import GeneratedCache, cached, make_key
    from galot_lib.generation.images import generate_images, planned_images, split_evenly
    from galot_lib.generation.prompts import fill
    from galot_lib.learning.generated import Generated

    pool, _ = load_data(profile)
    model, cfg = t2i_model(profile), profile.galot
    channels, size, _ = pool.image_shape
    labels, seeds = planned_images(split_evenly(count, pool.num_classes, 0), seed=0, cycle=0)
    key = make_key(
        kind="bench-learning-curve",
        t2i=model.fingerprint,
        template=cfg.template,
        n=count,
        steps=cfg.sampling_steps,
        guidance=cfg.guidance,
        size=size,
        channels=channels,
    )

    def render() -> Generated:
        c_y = model.encode([fill(cfg.template, name) for name in pool.class_names])
        return Generated(generate_images(model, c_y, labels, seeds, cfg, size, channels), labels.clone(), {})

    entry, _ = cached(GeneratedCache(), key, render)
    return entry.images, entry.labels


def fits(profile, seeds, plan, gen_images, gen_labels) -> pd.DataFrame:
    from galot_lib.core.provenance import code_version
    from galot_lib.experiments.runs import load_data
    from galot_lib.learning.train import accuracy, fit

    pool, test = load_data(profile)
    version = code_version()
    rows = []
    for seed in seeds:
        real_order = torch.from_numpy(np.random.default_rng([seed, 1]).permutation(len(pool)))
        gen_order = torch.from_numpy(np.random.default_rng([seed, 2]).permutation(len(gen_labels)))
        for kind, n_real, n_gen in plan:
            real, gen = real_order[:n_real], gen_order[:n_gen]
            images = torch.cat([pool.images[real], gen_images[gen]])
            labels = torch.cat([pool.labels[real], gen_labels[gen]])
            t0 = time.perf_counter()
            model = fit(profile.model, images, labels, pool.num_classes, profile.train, seed=seed).model
            seconds = time.perf_counter() - t0
            n = n_real + n_gen
            rows.append(
                dict(
                    kind=kind,
                    n=n,
                    n_real=n_real,
                    n_generated=n_gen,
                    n_mod_batch=n % profile.train.batch_size,
                    seed=seed,
                    accuracy=accuracy(model, test.images, test.labels),
                    fit_s=round(seconds, 3),
                    profile=profile.name,
                    model=profile.model,
                    batch_size=profile.train.batch_size,
                    threads=torch.get_num_threads(),
                    code_version=version,
                )
            )
            print(
                f"{kind:17s} n {n:4d} (mod {n % profile.train.batch_size:2d}) seed {seed}: "
                f"{rows[-1]['accuracy']:.4f} in {seconds:.1f} s",
                flush=True,
            )
    return pd.DataFrame(rows)


def summary(df: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Per (kind, n): mean, sd over seeds and fit seconds; per kind: the largest drop of the mean as n grows and,
    around each multiple of the batch size, the range of the means."""
    per_n = (
        df.groupby(["kind", "n"])
        .agg(
            n_mod_batch=("n_mod_batch", "first"),
            mean=("accuracy", "mean"),
            sd=("accuracy", "std"),
            seeds=("seed", "nunique"),
            fit_s=("fit_s", "mean"),
        )
        .reset_index()
    )
    rows = []
    for kind, part in per_n.groupby("kind"):
        means = part.sort_values("n")[["n", "mean"]].to_numpy()
        drop, where = 0.0, ""
        for i, (n_small, a_small) in enumerate(means):
            for n_large, a_large in means[i + 1 :]:
                if a_small - a_large > drop:
                    drop, where = a_small - a_large, f"{int(n_small)} -> {int(n_large)}"
        batch = int(df.batch_size.iloc[0])
        for multiple, group in part.groupby(part.n - part.n_mod_batch):
            if len(group) > 2:
                rows.append(
                    dict(
                        kind=kind,
                        around=int(multiple),
                        sizes=" ".join(map(str, group.n)),
                        range_pt=100 * (group["mean"].max() - group["mean"].min()),
                        largest_drop_pt=100 * drop,
                        largest_drop_at=where,
                        batch_size=batch,
                    )
                )
    return per_n, pd.DataFrame(rows)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="embedded")
    p.add_argument("--seeds", type=int, nargs="+", default=list(BENCH_SEEDS))
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workdir", default="runs/bench-learning-curve", help="the bench's own generated-set cache")
    p.add_argument("--out", default="bench/results/learning_curve.csv", help="every fit, as CSV")
    args = p.parse_args()
    os.environ.setdefault("GALOT_CACHE_DIR", str(Path(args.workdir) / "generated"))
    from galot_lib.core.io import save_table
    from galot_lib.experiments.profiles import get_profile

    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    plan = sizes(profile)
    gen_images, gen_labels = generated_images(profile, GENERATED_POOL)
    df = fits(profile, args.seeds, plan, gen_images, gen_labels)
    save_table(df, Path(args.out), index=False)
    per_n, drops = summary(df)
    print(
        f"\n{profile.name} profile, {profile.model}, batch {profile.train.batch_size}, seeds {args.seeds}, "
        f"code {df.code_version.iloc[0]}: mean test accuracy per training-set size"
    )
    print(per_n.to_markdown(index=False, floatfmt=".4f"))
    print("\naround each multiple of the batch size: range of the means (points); largest drop of the mean as n grows")
    print(drops.to_markdown(index=False, floatfmt=".2f"))


if __name__ == "__main__":
    main()
