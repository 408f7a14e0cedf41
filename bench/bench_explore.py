"""How fast the live explorer (galot_lib.interactive.explore, the last section of notebook B) answers a control change,
and what each control does to the classifier's margin and the judge's labels.

    python bench/bench_explore.py                  # the embedded profile (bundled model), 2 threads
    options: [--profile embedded] [--threads 2] [--repeats 3] [--images 4] [--sweep-images 8] [--no-sweep]

Answer times: from the default controls (first class, GALOT's template, the last-cycle eps, the gradient, four
seeds) just answered, one control moved at a time to a setting not seen before (what it recomputes is listed:
PGD, rendering and scoring of a row of images); wall and process CPU seconds, the median over ``--repeats``, and
the wall time of a return to a setting already seen (everything cached).
Effects: every class, ``--sweep-images`` noise seeds each, mean margin (top-1 minus top-2 probability of the
classifier trained on the initial labels) and the share of images the judge sees as the prompt's class, from c_y
and from c*, per eps and direction, then per template at the default eps.
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import pandas as pd
import torch

from galot_lib.experiments.profiles import get_profile
from galot_lib.interactive.explore import DIRECTIONS, Explorer

GOAL_S = 2.0  # the goal for one control change on 2 cores


def timed_view(explorer: Explorer, **changes) -> tuple[float, float]:
    wall, cpu = time.perf_counter(), time.process_time()
    explorer.view(**changes)
    return time.perf_counter() - wall, time.process_time() - cpu


def answer_times(explorer: Explorer, images: int, repeats: int) -> pd.DataFrame:
    """Each control moved from the default controls (answered just before, caches otherwise empty)."""
    seeds = tuple(range(images))
    moves = [
        ("eps", "PGD, the c* row", dict(eps=explorer.profile.galot.eps.end * 2)),
        ("direction", "PGD, the c* row", dict(direction="random")),
        ("class", "encoding, PGD, both rows", dict(class_name=explorer.class_names[3])),
        ("template", "encoding, PGD, both rows", dict(template=explorer.templates[1])),
        ("seeds", "both rows", dict(seeds=tuple(range(images, 2 * images)))),
    ]
    rows = []
    for name, work, change in moves:
        change = {"seeds": seeds, **change}
        times = []
        for _ in range(repeats):
            explorer._moved.clear()
            explorer._rendered.clear()
            explorer.view(seeds=seeds)  # the state before the move: the default controls answered
            times.append(timed_view(explorer, **change))
        again = timed_view(explorer, **change)  # a return to a setting already seen: all cached
        rows.append(
            {
                "control": name,
                "recomputes": work,
                "wall s": float(np.median([t[0] for t in times])),
                "cpu s": float(np.median([t[1] for t in times])),
                "max wall s": max(t[0] for t in times),
                "again wall s": again[0],
            }
        )
    return pd.DataFrame(rows)


def effects(explorer: Explorer, images: int, eps_values, by_template_eps: float) -> tuple[pd.DataFrame, pd.DataFrame]:
    seeds = tuple(range(100, 100 + images))  # other noise than the timings'
    rows = []
    for direction in DIRECTIONS:
        for eps in eps_values:
            for name in explorer.class_names:
                rows.append(explorer.view(class_name=name, eps=eps, direction=direction, seeds=seeds).summary())
    for template in explorer.templates[1:]:
        for name in explorer.class_names:
            rows.append(explorer.view(class_name=name, template=template, eps=by_template_eps, seeds=seeds).summary())
    df = pd.DataFrame(rows)
    columns = ["margin_plain", "margin_moved", "judged_as_class_plain", "judged_as_class_moved"]
    default = df.template == explorer.templates[0]
    per_eps = df[default].groupby(["direction", "eps"])[columns].mean()
    per_template = df[df.eps == by_template_eps].query("direction == 'gradient'").groupby("template")[columns].mean()
    return per_eps, per_template


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--profile", default="embedded")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--repeats", type=int, default=3)
    p.add_argument("--images", type=int, default=4, help="images per row in the timed views (the explorer's default)")
    p.add_argument("--sweep-images", type=int, default=8)
    p.add_argument("--no-sweep", action="store_true")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    pd.set_option("display.width", 160)
    pd.set_option("display.precision", 3)

    start = time.perf_counter()
    explorer = Explorer(get_profile(args.profile))
    explorer.view()  # first call: allocations, lazy imports
    print(
        f"profile {args.profile}, {args.threads} threads: set-up (model, data, classifier, judge, first view) "
        f"{time.perf_counter() - start:.1f} s"
    )
    times = answer_times(explorer, args.images, args.repeats)
    print(f"\nanswer to one control change ({args.images} images per row, median of {args.repeats}; goal {GOAL_S} s):")
    print(times.to_string(index=False))
    worst = times["wall s"].max()
    print(f"slowest median answer: {worst:.2f} s ({'within' if worst <= GOAL_S else 'over'} the goal)")
    if args.no_sweep:
        return
    eps_values = sorted({0.0, *explorer.profile.table4_eps})
    per_eps, per_template = effects(explorer, args.sweep_images, eps_values, explorer.profile.galot.eps.end)
    print(
        f"\nwhat eps and the direction do (template '{explorer.templates[0]}', every class, "
        f"{args.sweep_images} seeds each; margin: top-1 minus top-2 probability, judged: share seen as the class):"
    )
    print(per_eps.to_string())
    print(f"\nwhat the template does (gradient, eps {explorer.profile.galot.eps.end:g}):")
    print(per_template.to_string())


if __name__ == "__main__":
    main()
