"""Wall time of AL cycles on the embedded profile, and a small strategy comparison.

    python bench/bench_al.py [--strategies RandomSampling MarginSampling BADGE] [--seeds 0 1] [--threads 2]

Runs each strategy for the embedded profile's cycles and budget on Fashion-MNIST through
galot_lib.learning.loop (fresh run directories in a temporary folder, nothing cached), then prints the
mean per-cycle query and training times and the accuracy table (mean over seeds per label count).
"""

from __future__ import annotations

import argparse
import tempfile
import time

import pandas as pd
import torch

from galot_lib.experiments.profiles import get_profile
from galot_lib.experiments.runs import al_config, load_data
from galot_lib.learning.loop import run_active_learning


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--strategies", nargs="+", default=["RandomSampling", "MarginSampling", "BADGE"])
    p.add_argument("--seeds", nargs="+", type=int, default=[0, 1])
    p.add_argument("--profile", default="embedded")
    p.add_argument("--threads", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile(args.profile)
    pool, test = load_data(profile)
    records = []
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp:
        for strategy in args.strategies:
            for seed in args.seeds:
                records += run_active_learning(
                    al_config(profile, strategy), pool, test, seed, f"{tmp}/{strategy}/{seed}"
                )
    total = time.perf_counter() - t0
    df = pd.DataFrame(records)
    print(
        f"profile {profile.name}: pool {len(pool)}, test {len(test)}, model {profile.model}, "
        f"initial {profile.initial_labeled} + {profile.query_size}/cycle, {profile.cycles} cycles, "
        f"seeds {args.seeds}, {args.threads} threads; total {total:.1f} s"
    )
    timing = df.groupby("method")[["query_s", "train_s"]].mean()
    timing["cycle_s"] = timing.sum(axis=1)
    print("\nmean seconds per cycle (query + train):")
    print(timing.round(2).to_string())
    table = df.pivot_table(index="method", columns="n_labeled", values="accuracy", aggfunc="mean")
    table["Average"] = table.mean(axis=1)
    print(f"\ntest accuracy (mean over {len(args.seeds)} seeds):")
    print(table.round(4).to_string())


if __name__ == "__main__":
    main()
