"""The embedded grid's time ledger before and after, by phase and per seed, from two runs' folders.

    python bench/bench_ledger.py [--before bench/results/grid_ledger_99c3d8c] [--after results/embedded]
                                 [--out bench/results/grid_ledger.csv]

Each folder holds a run's ``grid/timing_process*.csv`` and its ``timings.csv`` (the run of commit 99c3d8c, issue
31's start, on this machine: a kept copy). Process-minutes per seed: the ledger less the runs of the seed plan's extra
seeds (the embedded profile's ``extra_seeds``, each run's records' query, generation, training and evaluation
seconds, a run counted once however many sections report it), over the seeds every headline run has. The extra seeds' judging and reference-model seconds stay in the five seeds' figure, so it is an upper bound.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from galot_lib.core.io import save_table
from galot_lib.experiments.profiles import get_profile

PROFILE = get_profile("embedded")
EXTRA_SEEDS = {seed for _, seeds in PROFILE.extra_seeds for seed in seeds}
RECORD_SECONDS = ("query_s", "generate_s", "train_s", "eval_s")


def ledger(folder: Path) -> pd.Series:
    """Process-minutes by phase, both processes together."""
    files = sorted(folder.glob("grid/timing_process*.csv"))
    if not files:
        raise FileNotFoundError(f"no timing_process*.csv in {folder / 'grid'}")
    return pd.concat(pd.read_csv(f) for f in files).groupby("phase").seconds.sum() / 60


def extra_seed_minutes(folder: Path) -> tuple[int, float]:
    """(runs, process-minutes) of the extra seeds' runs, by their records; (0, 0) where there are none."""
    files = sorted(folder.glob("*/records.csv"))
    if not files:
        return 0, 0.0
    records = pd.concat(pd.read_csv(f, low_memory=False) for f in files)
    records = records.drop_duplicates(["config_hash", "seed", "cycle"])
    extra = records[records.seed.isin(EXTRA_SEEDS)]
    return extra.groupby(["config_hash", "seed"]).ngroups, float(extra[list(RECORD_SECONDS)].to_numpy().sum() / 60)


def grid_wall_minutes(folder: Path) -> tuple[float, float]:
    """(the grid's, the whole main job's) wall minutes from ``timings.csv``: the first run id's rows."""
    timings = pd.read_csv(folder / "timings.csv")
    run = timings[timings.run_id == timings.run_id.iloc[0]]
    start, end = pd.to_datetime(run.started_at).min(), pd.to_datetime(run.finished_at).max()
    grid = run[run.step.str.startswith("grid")].seconds.sum() / 60
    return grid, (end - start).total_seconds() / 60


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--before", type=Path, default=Path("bench/results/grid_ledger_99c3d8c"))
    p.add_argument("--after", type=Path, default=Path("results/embedded"))
    p.add_argument("--out", type=Path, default=Path("bench/results/grid_ledger.csv"))
    args = p.parse_args()
    rows = []
    for when, folder in (("before", args.before), ("after", args.after)):
        phases = ledger(folder)
        runs, extra = extra_seed_minutes(folder)
        grid, wall = grid_wall_minutes(folder)
        total = float(phases.sum())
        rows += [dict(run=when, folder=str(folder), item=f"phase: {k}", minutes=v) for k, v in phases.items()]
        rows += [
            dict(run=when, folder=str(folder), item="total", minutes=total),
            dict(run=when, folder=str(folder), item="extra seeds' runs", minutes=extra, runs=runs),
            dict(
                run=when, folder=str(folder), item="per seed (five seeds)", minutes=(total - extra) / len(PROFILE.seeds)
            ),
            dict(run=when, folder=str(folder), item="grid wall", minutes=grid),
            dict(run=when, folder=str(folder), item="main job wall", minutes=wall),
        ]
    table = pd.DataFrame(rows)
    save_table(table, args.out, index=False)
    wide = table.pivot_table(index="item", columns="run", values="minutes", sort=False)[["before", "after"]]
    wide["before / after"] = wide.before / wide.after
    print(wide.to_markdown(floatfmt=".2f"))
    counts = table.dropna(subset=["runs"]).set_index("run").runs.astype(int).to_dict()
    print(f"process-minutes; the extra seeds' runs: {counts}")


if __name__ == "__main__":
    main()
