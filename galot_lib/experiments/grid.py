"""The run grid across processes: compute every AL run the selected sections need, one process per GPU
(or several CPU processes), before the notebooks assemble tables and figures from the finished runs.

    accelerate launch --multi_gpu --num_processes 8 -m galot_lib.experiments.grid --profile paper   # 8 GPUs
    torchrun --standalone --nproc_per_node 2 -m galot_lib.experiments.grid --profile smoke --only 4.1  # 2 CPU processes
    ./run_all.sh --processes 8 ...                                                               # the same, then the notebooks

HF Accelerate's process state says which process this is and which device it owns (torchrun's
environment on CPUs, which Accelerate reads). Every process walks the whole job list, longest runs first,
and computes the runs whose claim it gets (a lock file in the run's identity folder, see ``core.claims``);
runs claimed by others are left to them and waited for at the end. A run's results
depend only on its configuration and seed, so they are the same as a single process's; a process that
dies leaves its runs resumable from their last finished cycle, and a new launch completes them.
"""

from __future__ import annotations

import argparse
import os
from pathlib import Path

import pandas as pd
import torch

from ..core import timing
from ..core.claims import ClaimedElsewhere
from ..core.io import save_table
from ..core.paths import results_dir
from .plan import run_cost
from .profiles import PROFILES, get_profile
from .registry import SECTIONS
from .runs import RunJob
from .sections import headline_jobs, section_jobs

# GALOT runs first, then the fully supervised reference and GAAL, then the replays (their source GALOT run is
# done by then), Sec. 4.4's images, and the short baselines last, where they even out the processes' finishing times.
KIND_ORDER = {"galot": 0, "reference": 1, "zero-shot": 1, "gaal": 2, "replay": 3, "judged": 4, "baseline": 5}


def grid_jobs(profile, sections, headline_only: bool = False) -> list[RunJob]:
    """The runs the selected sections need (or, ``headline_only``, those the headline family compares), each once,
    in :data:`KIND_ORDER`, the costliest of a kind first (UNet evaluations, then training images, as the plan counts
    them), and a replay's source before any other."""
    if headline_only:
        table1, figure3, labels, arms = headline_jobs(profile)
        jobs = list(dict.fromkeys([*table1, *figure3, *(job for _, job in labels + arms)]))
    else:
        jobs = list(dict.fromkeys(job for section in sections for job in section_jobs(profile, section)))
    sources = {job.source for job in jobs if job.source is not None}

    def order(job):
        cost = run_cost(job, profile)
        return KIND_ORDER[job.kind], job not in sources, -cost["unet_evals"], -cost["train_images"]

    return sorted(jobs, key=order)


def compute(profile, sections, progress: bool = True, process_index: int = 0, headline_only: bool = False) -> int:
    """Compute (or find finished) every run of ``sections``; returns how many runs this process computed or
    checked itself. Every process walks the same list: the next run nobody has claimed is the one it takes."""
    from ..core.progress import tqdm

    jobs, waiting = grid_jobs(profile, sections, headline_only), []
    for job in tqdm(jobs, desc=f"grid, process {process_index}", disable=not progress, position=process_index):
        try:
            job.run(profile, wait=False)
        except ClaimedElsewhere:
            waiting.append(job)
    for job in waiting:  # computed by another process meanwhile, or resumed here if that process died
        job.run(profile, wait=True)
    return len(jobs) - len(waiting)


def main(argv=None):
    from accelerate import PartialState

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="default", choices=["default", *PROFILES])
    p.add_argument("--only", nargs="+", choices=list(SECTIONS), help="sections (default: all)")
    p.add_argument(
        "--set",
        nargs=2,
        action="append",
        default=[],
        metavar=("FIELD", "VALUE"),
        help="change a profile field, as a notebook parameter would (e.g. --set seeds '(0, 1)')",
    )
    p.add_argument(
        "--threads",
        type=int,
        help="CPU threads per process (default: this machine's cores shared "
        "between its processes); equal thread counts give equal records",
    )
    p.add_argument("--no-progress", action="store_true")
    p.add_argument("--headline-only", action="store_true", help="only the runs the headline family compares")
    p.add_argument(
        "--ledger",
        type=Path,
        help="where each process writes its time ledger (default: "
        "results/<profile>/grid; a study of other settings keeps the run's own)",
    )
    args = p.parse_args(argv)
    state = PartialState(cpu=not torch.cuda.is_available())
    os.environ["GALOT_DEVICE"] = str(state.device)  # the one device choice of this process (core.device)
    if state.device.type == "cpu":  # share the cores between the processes of this machine
        local = int(os.environ.get("LOCAL_WORLD_SIZE", state.num_processes))
        torch.set_num_threads(args.threads or max(1, (os.cpu_count() or 1) // max(local, 1)))
    profile = get_profile(args.profile, **dict(args.set))
    sections = args.only or list(SECTIONS)
    done = compute(profile, sections, not args.no_progress, state.process_index, args.headline_only)
    breakdown = pd.DataFrame(timing.breakdown()).assign(process=state.process_index)
    ledger = args.ledger or results_dir(profile.name, "grid")
    save_table(breakdown, ledger / f"timing_process{state.process_index}.csv", index=False)
    state.wait_for_everyone()
    print(
        f"process {state.process_index}/{state.num_processes}: {done} runs computed or checked here; every run "
        f"of {', '.join(sections)} ({profile.name}) is done",
        flush=True,
    )


if __name__ == "__main__":
    main()
