"""The embedded grid's time ledger, by phase and per seed, for pairs of runs (before and after).

    python bench/bench_ledger.py [--pair NAME BEFORE_FOLDER AFTER_FOLDER ...] [--out bench/results/grid_ledger.csv]

Each folder holds a run's ``grid/timing_process*.csv``, its ``timings.csv`` and its sections' ``records.csv``. The
machine's speed drifts between hours by up to 1.5x, so a pair compares only when both ran in the same window. By
default, kept copies (``bench/results/grid_ledger_*``) of: the run of commit 99c3d8c (issue 31's start) and of
commit e641400 within the same hours on the Intel machine; of 99c3d8c and e388264 back to back on the AMD machine; and
99c3d8c's Intel run beside the committed run, made hours later (not the same window: for its own figures).
Process-minutes per seed: the ledger less the runs of the seed plan's extra seeds (the embedded profile's
``extra_seeds``, each run's records' query, generation, training and evaluation seconds, a run counted once however
many sections report it), over the seeds every headline run has. The extra seeds' judging and reference-model seconds
stay in the five seeds' figure, so it is an upper bound.
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


PAIRS = (
    ("Intel, same hours", "bench/results/grid_ledger_99c3d8c", "bench/results/grid_ledger_e641400"),
    ("AMD, back to back", "bench/results/grid_ledger_99c3d8c_amd", "bench/results/grid_ledger_e388264_amd"),
    ("Intel, the committed run (other hours)", "bench/results/grid_ledger_99c3d8c", "results/embedded"),
)


def run_summary(pair: str, when: str, folder: Path) -> list[dict]:
    """One run's rows: process-minutes by phase, the total, the extra seeds' runs, per seed and the wall times."""
    phases = ledger(folder)
    runs, extra = extra_seed_minutes(folder)
    grid, wall = grid_wall_minutes(folder)
    total = float(phases.sum())
    row = dict(pair=pair, run=when, folder=str(folder))
    return [
        *(dict(row, item=f"phase: {k}", minutes=v) for k, v in phases.items()),
        dict(row, item="total", minutes=total),
        dict(row, item="extra seeds' runs", minutes=extra, runs=runs),
        dict(row, item="per seed (five seeds)", minutes=(total - extra) / len(PROFILE.seeds)),
        dict(row, item="grid wall", minutes=grid),
        dict(row, item="main job wall", minutes=wall),
    ]


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--pair",
        nargs=3,
        action="append",
        metavar=("NAME", "BEFORE", "AFTER"),
        help="a pair of run folders to set side by side (repeatable; default: the kept pairs above)",
    )
    p.add_argument("--out", type=Path, default=Path("bench/results/grid_ledger.csv"))
    args = p.parse_args()
    pairs = args.pair or PAIRS
    missing = [folder for _, *folders in pairs for folder in folders if not Path(folder).is_dir()]
    if missing:
        raise SystemExit(f"bench_ledger: no run folder at {missing}")
    rows = [
        row
        for name, before, after in pairs
        for when, folder in (("before", before), ("after", after))
        for row in run_summary(name, when, Path(folder))
    ]
    table = pd.DataFrame(rows)
    save_table(table, args.out, index=False)
    for name, _, _ in pairs:
        one = table[table.pair == name]
        wide = one.pivot_table(index="item", columns="run", values="minutes", sort=False)[["before", "after"]]
        wide["before / after"] = wide.before / wide.after
        extra = one.dropna(subset=["runs"]).set_index("run").runs.astype(int).to_dict()
        print(f"\n{name} (process-minutes; the extra seeds' runs: {extra})")
        print(wide.to_markdown(floatfmt=".2f"))


if __name__ == "__main__":
    main()
