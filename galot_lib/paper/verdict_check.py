"""The perturbed rerun: do a finished run's verdicts survive another float rounding?

    python -m galot_lib.paper.verdict_check --profile embedded [--threads 2]
    ./run_all.sh --check-verdicts

Floats summed in another order (another thread count, another CPU) move every training a little; a verdict
that a reader on another machine would not reach is not one to state. This reruns every run the headline's
comparisons rest on (Table 1's GALOT rows and the baselines the profile names, Fig. 3, Sec. 4.5's label-aware
study, notebook W's arms on the headline's seeds) with another CPU thread count, in folders of its own (runs and generated sets: nothing is read back from
the run it checks), recomputes the comparisons with the functions the notebooks use, prints them beside the
run's line by line with whether each verdict held, and writes ``results/<profile>/verdict_check.csv``, which
the README's headline reads (``analysis.headline``: a verdict that flipped is not stated).
"""

from __future__ import annotations

import argparse
import json
import os
import time

import pandas as pd
import torch

from ..core.io import json_default, save_table
from ..core.paths import results_root, runs_root
from . import analysis as an
from .profiles import PROFILES, get_profile
from .sections import GALOT_ROWS, ablation_jobs, figure3_jobs, payoff_jobs, run_jobs, table1_jobs


def headline_jobs(profile):
    """The runs the headline's comparisons rest on: Table 1's GALOT rows and named baselines (on its first data
    set), Fig. 3's, Sec. 4.5's label-aware study as (setting, run), and notebook W's arms on the headline's seeds
    as (arm, run)."""
    table1 = [
        job
        for job in table1_jobs(profile, profile.table1_datasets[0])
        if job.method in (*GALOT_ROWS, *profile.headline_baselines)
    ]
    labels = [(setting, job) for study, setting, job in ablation_jobs(profile) if study == "label_objectives"]
    arms = [(arm, job) for arm, job in payoff_jobs(profile) if job.seed in profile.seeds]
    return table1, figure3_jobs(profile), labels, arms


def rerun_comparisons(profile, progress: bool = True) -> pd.DataFrame:
    """The headline's comparisons, computed from this process's runs (in the current runs and cache folders)."""
    table1, figure3, labels, arms = headline_jobs(profile)
    table1_df = pd.DataFrame(run_jobs(profile, table1, "Table 1, headline runs", progress))
    figure3_df = pd.DataFrame(run_jobs(profile, figure3, "Fig. 3", progress))
    label_df = pd.DataFrame([dict(r, setting=setting) for setting, job in labels for r in job.run(profile)])
    arm_df = pd.DataFrame([dict(r, arm=arm) for arm, job in arms for r in job.run(profile)])
    return pd.concat(
        [
            an.compare(table1_df, an.table1_comparisons(profile)).assign(section="4.1"),
            an.compare(figure3_df, an.FIGURE3_COMPARISONS).assign(section="4.2"),
            an.compare(label_df, an.label_comparisons(profile), index="setting").assign(section="4.5"),
            an.compare(arm_df, an.payoff_comparisons(profile), index="arm").assign(section="W"),
        ],
        ignore_index=True,
    )


def describe(check: pd.DataFrame) -> list[str]:
    """One line per comparison: both runs' differences and verdicts, and whether the verdict held."""
    lines = []
    for r in check.itertuples():
        held = "held" if r.held else "FLIPPED"
        lines.append(
            f"{r.comparison}, {r.summary}: run {r.difference * 100:+.1f} [{r.ci_low * 100:+.1f}, "
            f"{r.ci_high * 100:+.1f}] {r.verdict} | rerun {r.rerun_difference * 100:+.1f} "
            f"[{r.rerun_ci_low * 100:+.1f}, {r.rerun_ci_high * 100:+.1f}] {r.rerun_verdict} | {held}"
        )
    return lines


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="default", choices=["default", *PROFILES])
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads of the rerun (default: 2 if the run used 1, else 1); must differ from the run's",
    )
    p.add_argument("--no-progress", action="store_true")
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    results = results_root() / profile.name
    try:
        original = an.headline_comparisons(results)
        records = pd.read_csv(results / "4.1" / "records.csv")
    except FileNotFoundError as err:
        raise SystemExit(
            f"verdict_check: no finished run in {results} ({err}); run ./run_all.sh --profile {profile.name} first"
        )
    saved = json.loads((results / "4.1" / "config.json").read_text())
    current = json.loads(json.dumps(profile.as_dict(), default=json_default))
    changed = sorted(k for k in current if saved.get(k) != current[k])
    if changed:  # a rerun of other settings would be another experiment, not a perturbation of this one
        raise SystemExit(
            f"verdict_check: the {profile.name} profile has changed since the run in {results} "
            f"(fields {changed}); rerun ./run_all.sh --profile {profile.name} first"
        )
    ran_with = set(records.threads) if "threads" in records else set()
    if not ran_with and args.threads is None:
        raise SystemExit("verdict_check: the run's records do not say their thread count; pass --threads")
    threads = args.threads or (2 if ran_with == {1} else 1)
    if threads < 1 or threads in ran_with:
        raise SystemExit(
            f"verdict_check: --threads must be >= 1 and differ from the run's {sorted(ran_with)}, got {threads}"
        )
    torch.set_num_threads(threads)
    folder = runs_root() / f"verdict-check-threads{threads}"  # its own runs and generated sets: nothing read back
    os.environ["GALOT_RUNS_DIR"], os.environ["GALOT_CACHE_DIR"] = str(folder / "runs"), str(folder / "generated")
    print(
        f"verdict check of {results}: rerunning its headline comparisons with {threads} threads (the run: "
        f"{sorted(ran_with)}) in {folder}",
        flush=True,
    )
    start = time.perf_counter()
    rerun = rerun_comparisons(profile, not args.no_progress)
    check = an.verdict_held(original, rerun).assign(
        run_threads=",".join(map(str, sorted(ran_with))), rerun_threads=threads
    )
    save_table(check, results / an.VERDICT_CHECK, index=False)
    print("\n".join(describe(check)))
    flipped = int((~check.held).sum())
    print(
        f"{len(check)} comparisons, {flipped} verdict(s) flipped; rerun took {(time.perf_counter() - start) / 60:.1f} "
        f"minutes; written to {results / an.VERDICT_CHECK}",
        flush=True,
    )


if __name__ == "__main__":
    main()
