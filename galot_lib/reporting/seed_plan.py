"""The seed plan: what each comparison of the headline family resolves at the profile's seeds, from whole runs on
pilot seeds that no headline reports.

    python -m galot_lib.reporting.seed_plan --profile embedded --pilot-seeds 20 21 22 23 24 25 26 27 [--processes 2]

    python -m galot_lib.reporting.seed_plan --profile embedded --ledger --pilot-seeds 20 21 22 23 24 25

With ``--ledger``, the same rule for the claims ledger (``paper_claims``): every section the ledger's seed-based parts
read (4.1, 4.2, 4.3, 4.5) runs on the pilot seeds, and each part's pilot spread gives the seeds a +-1-point
interval needs, with the seconds one more seed of its runs costs (from the pilot's records), in
``bench/results/seed_plan_ledger_<profile>.csv``.

A paired comparison's resolution at n seeds is the half-width of its 95% interval, t(n - 1) sd / sqrt(n), where sd
is the spread of its per-seed differences. The plan takes sd from whole active-learning runs (the queries follow
each seed's own classifier, so the AL path's noise is in it, not only the trainer's) of every run the family
compares, on ``--pilot-seeds``, in folders of their own (``runs/seed-plan/<profile>``). It writes, per member of the
family, the pilot's spread, the resolution predicted at the seeds the profile gives its section, and the seeds a
+-1-point interval would need, to ``bench/results/seed_plan_<profile>.csv``; a finished run's results page prints the
resolution it achieved beside the prediction. The pilot's time goes to a ledger of its own, never to the run's.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import torch

from ..core.io import save_table
from ..core.paths import REPO, runs_root
from ..core.provenance import code_version
from ..experiments.profiles import PROFILES, get_profile
from ..experiments.sections import headline_records
from .analysis import half_width, sd_of_interval, seeds_for, seeds_for_equivalence
from .family import computed_comparisons, members, planned_members, planned_seeds, section_plans


def plan_path(profile_name: str) -> Path:
    return REPO / "bench" / "results" / f"seed_plan_{profile_name}.csv"


def pilot_profile(profile, pilot_seeds: tuple[int, ...]):
    """The profile with the pilot seeds in every field the headline's runs read, and no choice run."""
    return profile.replace(
        seeds=pilot_seeds, ablation_seeds=pilot_seeds, baseline_seeds=pilot_seeds[:1], choice_seeds=(), extra_seeds=()
    )


def plan(profile, pilot: pd.DataFrame) -> pd.DataFrame:
    """Per member of the family (``pilot``: its comparisons on the pilot seeds): the pilot's difference and spread,
    the resolution predicted at the profile's seeds, and the seeds the difference test (+-1 point) and the equivalence
    test (within 1 point, at Holm's strictest step over the primary family) would need."""
    family = members(pilot)
    out = family[["section", "comparison", "aliases", "summary", "family", "runs_key", "seeds", "difference", "sd"]]
    out = out.rename(columns={"seeds": "pilot_seeds", "sd": "pilot_sd", "difference": "pilot_difference"})
    fields = profile.as_dict()
    out["seeds"] = [planned_seeds(fields, r.section, r.ours, r.other) for r in family.itertuples()]
    out["predicted_half_width"] = [half_width(sd, n) for sd, n in zip(out.pilot_sd, out.seeds)]
    out["seeds_for_1_point"] = [seeds_for(sd) for sd in out.pilot_sd]
    primary = int((out.family == "primary").sum())
    out["seeds_for_equivalence"] = [
        seeds_for_equivalence(d, sd, primary) for d, sd in zip(out.pilot_difference, out.pilot_sd)
    ]
    return out.assign(profile=profile.name, code_version=code_version())


# The sections of the ledger's seed-based parts: 4.4's parts are judged images, whose precision comes from their count
# (Table 2 replays every seed of GALOT's runs, sections.table2_jobs, so its parts have a pilot spread too).
LEDGER_SECTIONS = ("4.1", "4.2", "4.3", "4.5")
MIN_SEEDS = 5  # no claim is tested on fewer paired seeds


def ledger_pilot_profile(profile, pilot_seeds: tuple[int, ...]):
    """The profile with the pilot seeds for every run the ledger's parts read (the other baselines and the studies
    too), and no choice run."""
    return profile.replace(
        seeds=pilot_seeds,
        ablation_seeds=pilot_seeds,
        study_seeds=pilot_seeds,
        baseline_seeds=pilot_seeds,
        choice_seeds=(),
        extra_seeds=(),
    )


def ledger_plan(profile, pilot, records: dict[str, pd.DataFrame]) -> pd.DataFrame:
    """Per seed-based part of the ledger's tested claims (``pilot``: the pilot profile, ``records`` its sections'
    records): the pilot's difference and spread, the seeds a +-1-point interval needs (at least ``MIN_SEEDS``), the
    seeds the profile plans for it, and the seconds one seed of the part's two runs took in the pilot; the claim's seeds
    are its parts' most."""
    from .paper_claims import claims

    rows = []
    for claim in claims(pilot):
        if claim.equivalence_planned:
            rows.append(equivalence_row(claim, profile, pilot, records))
        rows += [part_plan_row(claim.id, part, profile, pilot, records) for part in claim.parts]
    out = pd.DataFrame([r for r in rows if r is not None])
    if out.empty:
        raise ValueError("the pilot's records give no claim of the ledger a spread: were its sections run?")
    needs = out.seeds_for_1_point
    if "seeds_for_equivalence" in out:  # the central claim: whichever of its two tests needs more
        needs = out[["seeds_for_1_point", "seeds_for_equivalence"]].max(axis=1)
    out["claim_seeds"] = needs.groupby(out.claim).transform("max").astype(int)
    return out.assign(profile=profile.name, code_version=code_version())


def part_plan_row(claim_id: str, part, profile, pilot, records: dict[str, pd.DataFrame]) -> dict | None:
    """One seed-based part's pilot difference and spread, the seeds a +-1-point interval needs, the seeds the profile
    plans for it and what one seed of its runs cost; None for a part the pilot cannot spread (judged images, a missing
    run, one seed)."""
    from .paper_claims import part_row

    row = part_row(part, records, pilot)
    if row.get("unit") != "seeds" or row.get("missing") or row.get("n", 0) < 2:
        return None
    n = int(row["n"])
    sd = sd_of_interval(row["ci_low"], row["ci_high"], n)
    return dict(
        claim=claim_id,
        part=row["comparison"],
        section=part.section,
        pilot_seeds=n,
        pilot_difference=row["difference"],
        pilot_sd=sd,
        seeds_for_1_point=max(MIN_SEEDS, seeds_for(sd)),
        planned_seeds=len(part_seeds(profile, part)),
        seconds_per_seed=run_seconds(records[part.section], part),
    )


def equivalence_row(claim, profile, pilot, records: dict[str, pd.DataFrame]) -> dict | None:
    """A headline member planned for equivalence (the paper's central claim), as its part's row (:func:`part_plan_row`)
    with the seeds two one-sided tests within 1 point need at Holm's strictest step over the primary family the
    profile will have (``family.planned_members``); None where the pilot lacks its runs."""
    from .paper_claims import Part

    comparison, summary = claim.member
    ours, other = comparison.split(" - ", 1)
    for section, (index, _) in section_plans(pilot).items():
        df = records.get(section)
        if df is not None and index in df and {ours, other} <= set(df[index].astype(str)):
            row = part_plan_row(claim.id, Part(section, ours, other, index, summary), profile, pilot, records)
            if row is None:
                return None
            primary = planned_members(profile)
            need = seeds_for_equivalence(row["pilot_difference"], row["pilot_sd"], primary)
            return dict(row, seeds_for_equivalence=max(MIN_SEEDS, need), primary_members=primary)
    return None


def part_seeds(profile, part) -> tuple[int, ...]:
    """The seeds the profile runs both of a ledger part's runs on (its paired test pairs on them), from the sections'
    own run lists (``sections.named_jobs``)."""
    from ..experiments.sections import named_jobs

    study = dict(part.where).get("study")
    seeds = {}
    for section, name, job in named_jobs(profile):
        if section == part.section and (study is None or name[0] == study):
            seeds.setdefault(name[-1], set()).add(job.seed)
    ours = seeds.get(part.ours, set())
    return tuple(sorted(ours & (ours if part.other == "chance" else seeds.get(part.other, set()))))


def run_seconds(df: pd.DataFrame, part) -> float:
    """The mean seconds per seed of the two runs a part compares (every cycle's query, generation, training and
    evaluation), from the pilot's records."""
    from .paper_claims import part_rows

    df = part_rows(part, df)
    df = df[df[part.index].astype(str).isin([part.ours, part.other])]
    phases = [c for c in ("query_s", "generate_s", "train_s", "eval_s") if c in df]
    return float(df[phases].sum(axis=1).groupby(df.seed).sum().mean())


def launch_pilot(
    profile_name: str, pilot_seeds: tuple[int, ...], processes: int, ledger: Path, sections: tuple[str, ...] = ()
):
    """The pilot's runs with ``processes`` CPU processes (the grid: the headline's runs, or ``sections``' all)."""
    settings = [
        ("seeds", pilot_seeds),
        ("ablation_seeds", pilot_seeds),
        ("baseline_seeds", pilot_seeds if sections else pilot_seeds[:1]),
        ("choice_seeds", ()),
        ("extra_seeds", ()),
    ] + ([("study_seeds", pilot_seeds)] if sections else [])
    command = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--standalone",
        "--nproc_per_node",
        str(processes),
        "-m",
        "galot_lib.experiments.grid",
        "--profile",
        profile_name,
        *(["--only", *sections] if sections else ["--headline-only"]),
        "--no-progress",
        "--ledger",
        str(ledger),
    ]
    for field, value in settings:
        command += ["--set", field, repr(tuple(value))]
    subprocess.run(command, check=True)


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="embedded", choices=PROFILES)
    p.add_argument("--pilot-seeds", type=int, nargs="+", default=list(range(20, 28)))
    p.add_argument("--processes", type=int, default=min(os.cpu_count() or 1, 4))
    p.add_argument("--ledger", action="store_true", help="plan the claims ledger's seeds instead of the headline's")
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    pilot_seeds = tuple(args.pilot_seeds)
    reported = set(profile.seeds) | set(profile.ablation_seeds) | set(profile.choice_seeds)
    if len(pilot_seeds) < 3 or set(pilot_seeds) & reported:
        raise SystemExit(
            f"seed_plan: give at least 3 pilot seeds that no headline reports (the profile's: {sorted(reported)}), "
            f"got {list(pilot_seeds)}"
        )
    folder = runs_root() / "seed-plan" / profile.name
    os.environ["GALOT_RUNS_DIR"], os.environ["GALOT_CACHE_DIR"] = str(folder / "runs"), str(folder / "generated")
    start = time.perf_counter()
    if args.processes > 1:
        sections = LEDGER_SECTIONS if args.ledger else ()
        launch_pilot(profile.name, pilot_seeds, args.processes, folder / "ledger", sections)
    torch.set_num_threads(max(1, (os.cpu_count() or 1) // max(args.processes, 1)))  # the grid's threads: read back
    if args.ledger:
        return write_ledger_plan(profile, pilot_seeds, start)
    pilot = pilot_profile(profile, pilot_seeds)
    table = plan(profile, computed_comparisons(pilot, headline_records(pilot, progress=False)))
    save_table(table, plan_path(profile.name), index=False)
    shown = table.assign(pilot_sd=table.pilot_sd * 100, predicted_half_width=table.predicted_half_width * 100)
    print(
        shown[
            ["comparison", "summary", "pilot_seeds", "pilot_sd", "seeds", "predicted_half_width", "seeds_for_1_point"]
        ].to_markdown(index=False, floatfmt=".2f")
    )
    print(
        f"pilot of {len(pilot_seeds)} seeds in {(time.perf_counter() - start) / 60:.1f} minutes; written to "
        f"{plan_path(profile.name)} (spreads and half-widths in points)"
    )


def write_ledger_plan(profile, pilot_seeds: tuple[int, ...], start: float) -> None:
    from ..experiments import sections

    pilot = ledger_pilot_profile(profile, pilot_seeds)
    dataset = pilot.table1_datasets[0]
    computed = {
        "4.1": sections.table1(pilot, dataset, False),
        "4.2": sections.figure3(pilot, False),
        "4.3": sections.table2(pilot, False),
        "4.5": sections.ablations(pilot, False),
    }
    table = ledger_plan(profile, pilot, {k: pd.DataFrame(v) for k, v in computed.items()})
    path = REPO / "bench" / "results" / f"seed_plan_ledger_{profile.name}.csv"
    save_table(table, path, index=False)
    shown = table.assign(pilot_sd=table.pilot_sd * 100, pilot_difference=table.pilot_difference * 100)
    print(
        shown[
            [
                "claim",
                "part",
                "pilot_seeds",
                "pilot_difference",
                "pilot_sd",
                "seeds_for_1_point",
                "planned_seeds",
                *(["seeds_for_equivalence"] if "seeds_for_equivalence" in table else []),
                "claim_seeds",
                "seconds_per_seed",
            ]
        ].to_markdown(index=False, floatfmt=".2f")
    )
    print(
        f"ledger pilot of {len(pilot_seeds)} seeds in {(time.perf_counter() - start) / 60:.1f} minutes; written to {path}"
    )


if __name__ == "__main__":
    main()
