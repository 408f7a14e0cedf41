"""The perturbed rerun: do a finished run's verdicts survive another float rounding?

    python -m galot_lib.reporting.verdict_check --profile embedded [--threads 2]
    ./run_all.sh --check-verdicts

Floats summed in another order (another thread count, another CPU) move every training a little; a verdict that a
reader on another machine would not reach is not one to state. This reruns every run the headline family compares
(``sections.headline_jobs``) with another CPU thread count, in folders of its own (runs and generated sets: nothing is
read back from the run it checks), recomputes the comparisons with the functions the notebooks use, writes them to
``results/<profile>/verdict_check.csv`` and prints the family's corrected verdicts of both runs line by line, with
whether each held; the family states only those (``family.family_table``). It refuses a run made by other code
than the checkout's, or with another profile.
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
from ..core.provenance import check_same_code
from ..experiments.profiles import PROFILES, get_profile
from ..experiments.sections import headline_records
from .family import VERDICT_CHECK, computed_comparisons, family_table, interval
from .results import code_versions


def describe(table: pd.DataFrame) -> list[str]:
    """One line per member of the family: both runs' differences and corrected verdicts, and whether it held."""
    lines = []
    for r in table.itertuples():
        lines.append(
            f"{r.comparison}, {r.summary}: run {interval(r.difference, r.ci_low, r.ci_high)} {r.verdict} | rerun "
            f"{interval(r.rerun_difference, r.rerun_ci_low, r.rerun_ci_high)} {r.rerun_verdict} | "
            + ("held" if r.held else "NOT HELD")
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
    p.add_argument(
        "--headline-only",
        action="store_true",
        help="rerun the headline's runs only, not the claims ledger's (every section's runs)",
    )
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    results = results_root() / profile.name
    try:
        records = pd.read_csv(results / "4.1" / "records.csv")
        check_same_code(code_versions(results), f"the run in {results}")
    except FileNotFoundError as err:
        raise SystemExit(
            f"verdict_check: no finished run in {results} ({err}); run ./run_all.sh --profile {profile.name} first"
        )
    except ValueError as err:  # another experiment than this code's: a rerun would not perturb it
        raise SystemExit(f"verdict_check: {err}")
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
    rerun = computed_comparisons(profile, headline_records(profile, not args.no_progress))
    rerun = rerun.assign(run_threads=",".join(map(str, sorted(ran_with))), rerun_threads=threads)
    save_table(rerun, results / VERDICT_CHECK, index=False)
    table = family_table(results)
    if not args.headline_only:  # the claims ledger's tests, on every section's runs rerun the same way
        from ..experiments.sections import claims_records
        from . import paper_claims
        from .results_page import run_settings

        records = {k: pd.DataFrame(v) for k, v in claims_records(profile, not args.no_progress).items()}
        claims, _ = paper_claims.ledger(run_settings(results), records, table)
        save_table(claims[["id", "verdict"]], results / paper_claims.CLAIMS_CHECK, index=False)
        print(f"claims ledger rerun: written to {results / paper_claims.CLAIMS_CHECK}", flush=True)
    print("\n".join(describe(table)))
    print(
        f"{len(table)} comparisons in the family, {int((~table.held).sum())} verdict(s) not reached again; rerun "
        f"took {(time.perf_counter() - start) / 60:.1f} minutes; written to {results / VERDICT_CHECK}",
        flush=True,
    )


if __name__ == "__main__":
    main()
