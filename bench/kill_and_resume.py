"""An embedded GALOT run killed with SIGKILL mid-run and rerun gives the records of an uninterrupted run.

    python bench/kill_and_resume.py [--out bench/results/kill_and_resume.csv]

Table 1's GALOT row on seed 0 (embedded profile) runs once uninterrupted, then again in fresh run and cache folders,
killed (``kill -9``: no handler runs) once two cycles' records are on disk and rerun from what it left; the run state
is read back through the safe loader (``core.io.load_torch``). Prints the three wall times and whether the records,
less the fields that time them, are equal; writes one row to the CSV.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from galot_lib.core.io import save_table  # noqa: E402
from galot_lib.core.provenance import code_version, machine  # noqa: E402

RUN = """
import json, sys
from galot_lib.experiments.profiles import get_profile
from galot_lib.experiments.sections import galot_row
profile = get_profile("embedded")
json.dump(galot_row(profile, "GALOT", profile.dataset, 0).run(profile), open(sys.argv[1], "w"), default=str)
"""
# what times a record (or says which process made it), not what it found
TIMING_FIELDS = {"query_s", "generate_s", "train_s", "eval_s", "pgd_s", "generation_s", "heldout_s", "selection_s",
                 "filter_s", "computed_at", "computed_by", "cache_hit", "rendered_now"}  # fmt: skip


def start(root: Path, name: str) -> subprocess.Popen:
    env = dict(os.environ, GALOT_RUNS_DIR=str(root / name / "runs"), GALOT_CACHE_DIR=str(root / name / "cache"))
    return subprocess.Popen([sys.executable, "-c", RUN, str(root / f"{name}.json")], env=env, cwd=REPO)


def kill_after_cycles(proc: subprocess.Popen, runs: Path, cycles: int) -> int:
    """SIGKILL ``proc`` a second after ``cycles`` records are on disk; returns how many were."""
    while proc.poll() is None:
        found = list(runs.rglob("records.json"))
        if found and len(json.loads(found[0].read_text())) >= cycles:
            time.sleep(1.0)
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
            return len(json.loads(found[0].read_text()))
        time.sleep(0.2)
    raise RuntimeError("the run finished before it could be killed")


def results_of(path: Path) -> list[dict]:
    return [{k: v for k, v in r.items() if k not in TIMING_FIELDS} for r in json.loads(path.read_text())]


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(REPO / "bench" / "results" / "kill_and_resume.csv"))
    args = p.parse_args(argv)
    root = Path(tempfile.mkdtemp(prefix="galot-kill-"))
    t = time.time()
    if start(root, "whole").wait() != 0:
        raise SystemExit("the uninterrupted run failed")
    whole_s, t = time.time() - t, time.time()
    saved = kill_after_cycles(start(root, "cut"), root / "cut" / "runs", 2)
    killed_s, t = time.time() - t, time.time()
    if start(root, "cut").wait() != 0:
        raise SystemExit("the rerun failed")
    rerun_s = time.time() - t
    whole, resumed = results_of(root / "whole.json"), results_of(root / "cut.json")
    row = dict(
        run="Table 1 GALOT, seed 0, embedded", cycles=len(whole), uninterrupted_s=round(whole_s, 1),
        killed_after_s=round(killed_s, 1), cycles_saved_when_killed=saved, rerun_s=round(rerun_s, 1),
        records_equal=whole == resumed, final_accuracy=resumed[-1]["accuracy"], code_version=code_version(),
        machine=machine(), measured_at=time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    )  # fmt: skip
    print("\n".join(f"{k}: {v}" for k, v in row.items()))
    save_table(pd.DataFrame([row]), args.out, index=False)
    if not row["records_equal"]:
        raise SystemExit("the resumed run's records differ from the uninterrupted run's")


if __name__ == "__main__":
    main()
