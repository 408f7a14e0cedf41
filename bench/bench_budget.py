"""The main job's time for the current embedded profile, predicted from the committed run's own per-run seconds.

    python bench/bench_budget.py [--results results/embedded] [--set FIELD VALUE ...] [--out bench/results/budget_embedded.csv]

Why: a profile change (more seeds for the claims ledger, fewer arms in notebook W) must be priced before the run it
changes, on the machine that made the committed run, and the plan's counts (UNet evaluations, training images) do not
say how long a DenseNet replay trains against a SmallCNN run. The prediction: every distinct run of the profile's grid
(``plan.distinct``: a shorter run that is a prefix of a longer one counted once) at its name's mean seconds per cycle in
the committed run's records (query, generation, training and evaluation: ``RECORD_SECONDS``) times its cycles, the
unoptimised prompt's images priced once per template and seed, at the share its largest reader needs
(:func:`plain_streams`: runs read them from one shared rendering); those seconds scaled by the committed run's ratio of
its grid's phases to the same records, plus the committed grid's reference-model, judging and other seconds (the GAAL
GAN is trained once; Sec. 4.4, the zero-shot reference and the fully supervised classifier do not change with seeds);
the wall clock at the committed grid's processes-to-wall ratio, plus its notebooks. It is a prediction for that machine
at that hour: the embedded run of commit e641400 took 34.7 minutes in another hour of the same Intel machine, against
25.6 for the committed run of similar code (bench/results/grid_ledger.csv).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pandas as pd

from galot_lib.core.io import save_table
from galot_lib.experiments import sections
from galot_lib.experiments.plan import distinct
from galot_lib.experiments.profiles import get_profile

RECORD_SECONDS = ("query_s", "generate_s", "train_s", "eval_s")
GRID_PHASES = ("query", "generation", "training", "evaluation")  # the grid's phases the records' seconds cover
UNITS = {"rendering": "templates x seeds of the unoptimised prompt"}  # the rows that are not runs
NAMES = {"4.1": ("method",), "4.2": ("method",), "4.3": ("method",), "4.5": ("study", "setting"), "W": ("arm",)}


def committed_records(results: Path) -> pd.DataFrame:
    """Every section's records, each with its ``section``, its ``name`` there (a tuple) and its record ``seconds``;
    the unoptimised prompt's rendering apart (``plain_s``: :func:`plain_streams`)."""
    frames = []
    for section, keys in NAMES.items():
        df = pd.read_csv(results / section / "records.csv")
        df["name"] = list(zip(*(df[k].astype(str) for k in keys)))
        no_prompt = pd.Series(False, index=df.index)  # replays and pool baselines render nothing
        plain = (df.optimized == False) & df.generation_s.notna() if "optimized" in df else no_prompt  # noqa: E712
        df["plain_s"] = df.generation_s.where(plain, 0.0) if "generation_s" in df else 0.0
        df["seconds"] = df[list(RECORD_SECONDS)].sum(axis=1) - df.plain_s
        frames.append(df.assign(section=section, plain=plain))
    return pd.concat(frames, ignore_index=True)


def plain_streams(records: pd.DataFrame) -> dict[str, tuple[float, dict]]:
    """The unoptimised prompt's images are rendered once per template, seed and cycle, on the same noise, and each
    unoptimised run of that template reads the first of them it needs: whichever run came first paid for them (in the
    committed run notebook W's "selection m=4 + filter" rendered the 4 |L| images "eps 0" and "selection m=4" read). Per
    template: its rendering seconds per seed and cycle, and each (section, name) reader's images, so that a plan is
    charged once for the images of its largest reader."""
    out = {}
    for template, df in records[records.plain].groupby("template"):
        per_seed_cycle = float(df.groupby(["seed", "cycle"]).plain_s.sum().mean())
        out[template] = (
            per_seed_cycle,
            {k: float(v) for k, v in df.groupby(["section", "name"]).rendered.mean().items()},
        )
    return out


def predict(profile, records: pd.DataFrame) -> pd.DataFrame:
    """Per distinct run of the profile: its section, name, seed, cycles and predicted record seconds (from the committed
    run's ``records``); and per template and seed of the unoptimised prompt, its rendering (section "rendering") at its
    largest reader's share."""
    rate = {key: float(v) for key, v in records.groupby(["section", "name"]).seconds.mean().items()}
    streams = plain_streams(records)
    jobs = sections.named_jobs(profile)
    name_of = {}
    for section, name, job in jobs:
        name_of.setdefault(job, (section, name))
    missing = sorted({name_of[j] for j in name_of if name_of[j] not in rate}, key=str)
    if missing:
        raise ValueError(f"runs the committed run has no records of, so no seconds to predict from: {missing}")
    rows, readers = [], {}
    for job in distinct([j for _, _, j in jobs], profile):
        section, name = name_of[job]
        cycles = job.cycles or profile.cycles
        rows.append(
            dict(
                section=section,
                name=" / ".join(name),
                seed=job.seed,
                cycles=cycles,
                seconds=rate[(section, name)] * cycles,
            )
        )
        for template, (_, images) in streams.items():
            if (section, name) in images:
                readers.setdefault((template, job.seed), []).append((images[(section, name)], cycles))
    for (template, seed), read in readers.items():
        per_seed_cycle, images = streams[template]
        cycles = max(c for _, c in read)  # each cycle renders the images of the largest reader still running
        shares = [max(n for n, c in read if c > k) / max(images.values()) for k in range(cycles)]
        rows.append(
            dict(section="rendering", name=template, seed=seed, cycles=cycles, seconds=per_seed_cycle * sum(shares))
        )
    return pd.DataFrame(rows)


def recorded_seconds(records: pd.DataFrame) -> float:
    """The committed run's record seconds, each run's cycle once however many sections report it."""
    df = records.drop_duplicates(["config_hash", "seed", "cycle"])
    return float(df[list(RECORD_SECONDS)].sum().sum())


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--results", type=Path, default=Path("results/embedded"))
    p.add_argument("--set", nargs=2, action="append", default=[], metavar=("FIELD", "VALUE"))
    p.add_argument("--out", type=Path, default=Path("bench/results/budget_embedded.csv"))
    args = p.parse_args(argv)
    profile = get_profile("embedded", **dict(args.set))
    records = committed_records(args.results)
    runs = predict(profile, records)
    phases = pd.concat(pd.read_csv(f) for f in sorted(args.results.glob("grid/timing_process*.csv")))
    by_phase = phases.groupby("phase").seconds.sum()
    processes = phases.process.nunique()
    overhead = by_phase[list(GRID_PHASES)].sum() / recorded_seconds(records)
    fixed = by_phase.drop(list(GRID_PHASES)).sum()
    timings = pd.read_csv(args.results / "timings.csv")
    grid_wall = float(timings.loc[timings.step.str.startswith("grid"), "seconds"].iloc[0])
    main_wall = (pd.to_datetime(timings.finished_at).max() - pd.to_datetime(timings.started_at).min()).total_seconds()
    per_process_wall = grid_wall / (by_phase.sum() / processes)  # how evenly the processes shared the grid
    by_section = runs.groupby("section").agg(runs=("seconds", "size"), seconds=("seconds", "sum"))
    by_section["process_minutes"] = by_section.seconds * overhead / 60
    process_s = runs.seconds.sum() * overhead + fixed
    predicted_wall = process_s / processes * per_process_wall + (main_wall - grid_wall)
    code = json.loads((args.results / "4.1" / "config.json").read_text()).get("code_version", "?")
    summary = pd.DataFrame(
        [
            dict(item="committed run: grid process-minutes (measured)", minutes=by_phase.sum() / 60),
            dict(item="committed run: main job wall (measured)", minutes=main_wall / 60),
            dict(item="records-to-grid overhead factor", minutes=overhead),
            dict(item="fixed: reference models, judging, other (process-minutes)", minutes=fixed / 60),
            *(
                dict(
                    item=f"predicted {s}: {int(r.runs)} {UNITS.get(s, 'runs')} (process-minutes)",
                    minutes=r.process_minutes,
                )
                for s, r in by_section.iterrows()
            ),
            dict(item="predicted grid process-minutes", minutes=process_s / 60),
            dict(item="predicted main job wall", minutes=predicted_wall / 60),
        ]
    ).assign(settings=repr(dict(args.set)), committed_code=code)
    save_table(summary, args.out, index=False)
    print(summary[["item", "minutes"]].to_markdown(index=False, floatfmt=".2f"))
    print(f"from the committed run in {args.results} (code {code}); written to {args.out}")


if __name__ == "__main__":
    main()
