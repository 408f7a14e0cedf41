"""The plan before the work: what the selected sections would compute, counted from their run lists, and
the GPU time that takes at a measured throughput. Nothing is run or downloaded.

    python -m galot_lib.experiments.plan --profile paper [--only 4.1]      # or: ./run_all.sh --profile paper --plan

Per section: distinct runs (a shorter run that is the prefix of a longer one is counted once, at its
longest), AL cycles, images generated (training sets, held-out renderings, PGD's gradient images),
UNet evaluations (guidance doubles them; a backward counts as two), VAE decodes, classifier trainings and
the images they pass over, each run priced at its own data set's class count. The time estimate uses
``bench/gpu_check.py``'s throughput when it has written ``gpu_throughput.json`` to the cache folder (a measurement on
this machine's GPU), and otherwise the committed measurement on an NVIDIA H200 (``bench/results/gpu_check.csv``: SD 2.1
base at 512 px in fp16, ResNet18 on 32 px images), stated as such in the output; a GPU other than that one, or 64 px
images (TinyImageNet), are assumptions the output names. ``--set FIELD VALUE`` plans the run those settings make, as
the grid and the notebooks compute it (``./run_all.sh -p NAME VALUE --plan`` passes them).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math

import pandas as pd

from ..core.paths import cache_root
from ..generation.label_filters import DIFFUSION_TIMESTEPS
from ..learning.data import dataset_classes
from .profiles import PROFILES, Profile, get_profile, run_settings
from .registry import SECTIONS
from .runs import RunJob, al_config
from .sections import section_jobs

THROUGHPUT_FILE = "gpu_throughput.json"
POOL_SIZES = {"fashion_mnist": 30_000, "cifar10": 50_000, "cifar100": 50_000, "tiny_imagenet": 100_000}
COUNTS = (
    "runs",
    "cycles",
    "generated",
    "heldout",
    "gradient_images",
    "unet_evals",
    "decodes",
    "trainings",
    "train_images",
)
# bench/results/gpu_check.csv, the 10-class row (tests/test_plan.py holds these to the file)
MEASURED_H200 = dict(
    unet_evals_per_s=298.8,
    train_images_per_s=8899.0,
    source="measured on an NVIDIA H200 in fp16 by bench/gpu_check.py (bench/results/gpu_check.csv); another GPU "
    "and 64 px images (TinyImageNet) are assumed to run at the same rates",
)


def throughput() -> dict:
    """``bench/gpu_check.py``'s measurement on this machine if there is one, else the committed H200 measurement."""
    path = cache_root() / THROUGHPUT_FILE
    return json.loads(path.read_text()) if path.exists() else dict(MEASURED_H200)


def run_key(job: RunJob, profile: Profile) -> RunJob:
    """Jobs equal but for their name and length are one run (names differ across sections; a shorter run is a
    prefix of a longer one), and so are jobs that spell out a default (Table 3's GALOT template, Table 7's margin
    pair, Fig. 6's factor 1) or differ only in what does not decide their images (an unoptimised run's PGD settings:
    ``GalotConfig.image_settings``): the run folders resolve them to one identity, so the plan counts them once."""
    settings = dataclasses.replace(profile.galot, **dict(job.galot_changes)).image_settings()
    default = profile.galot.image_settings()
    changes = tuple((k, repr(v)) for k, v in settings.items() if k not in default or default[k] != v)
    strategy = None if job.kind == "galot" and job.strategy == profile.galot.acquisition else job.strategy
    source = run_key(job.source, profile) if job.source is not None else None
    return dataclasses.replace(job, method="", cycles=None, galot_changes=changes, strategy=strategy, source=source)


def distinct(jobs: list[RunJob], profile: Profile) -> list[RunJob]:
    """Each run once, at its longest."""
    longest: dict[RunJob, RunJob] = {}
    for job in jobs:
        key = run_key(job, profile)
        if key not in longest or (job.cycles or profile.cycles) > (longest[key].cycles or profile.cycles):
            longest[key] = job
    return list(longest.values())


def run_cost(job: RunJob, profile: Profile) -> dict:
    """What one run computes (generation counted where the run generates; a replay only trains)."""
    cycles = job.cycles or profile.cycles
    galot = dataclasses.replace(profile.galot, **dict(job.galot_changes))
    train = dict(job.al_changes).get("train", profile.train)
    classes = dataset_classes(job.dataset)
    evals_per_image = galot.sampling_steps * (2 if galot.guidance != 1 else 1)
    cost = dict.fromkeys(COUNTS, 0) | dict(runs=1, cycles=cycles, trainings=cycles)
    if job.kind == "zero-shot":  # notebook W's reference: every class's prompt at each of the filter's timesteps
        images = min(profile.zero_shot_test_images, profile.test_size or 10_000)
        return cost | dict(cycles=0, trainings=0, unet_evals=images * classes * len(DIFFUSION_TIMESTEPS))
    if job.kind == "judged":  # Sec. 4.4: per_class images of every class at every eps, no AL cycle
        images = len(profile.fig4_eps) * classes * profile.fig4_per_class
        return cost | dict(cycles=0, trainings=0, generated=images, unet_evals=images * evals_per_image, decodes=images)
    generated_so_far, al = 0, al_config(profile)
    for k in range(cycles):
        planned = al.labels_at(k)
        labels = planned if job.use_pool else 0
        if job.kind in ("galot", "replay"):
            n = math.ceil(galot.factor * planned)
            generated_so_far += n
        if job.kind == "galot":
            made = math.ceil(n * galot.oversample)
            optimised = galot.optimize and galot.eps.at(k) > 0 and (k > 0 or job.use_pool)
            heldout = 2 * min(galot.heldout_samples, n // classes + 1) * classes if optimised else 0
            per_class_images = made if galot.per_image else classes * galot.grad_samples  # per image: its own noise
            grads = galot.pgd_steps * per_class_images if optimised and galot.acquisition != "RandomSampling" else 0
            # the diffusion filter: own class against the rival at each timestep (an upper bound: it stops early)
            filtered = made * 2 * len(DIFFUSION_TIMESTEPS) if galot.label_filter == "diffusion" else 0
            per_grad = {"last": evals_per_image + 4, "x0": evals_per_image + 4, "full": 4 * evals_per_image}[
                galot.estimator
            ]  # a backward ~ two forwards
            cost["generated"] += made
            cost["heldout"] += heldout
            cost["gradient_images"] += grads
            cost["unet_evals"] += (made + heldout) * evals_per_image + grads * per_grad + filtered
            cost["decodes"] += made + heldout + 3 * grads
            cost["trainings"] += int(k == 0 and job.use_pool)
        epochs = max(
            train.epochs, math.ceil(train.min_steps / max(1, math.ceil((labels + generated_so_far) / train.batch_size)))
        )
        cost["train_images"] += (labels + generated_so_far) * epochs
    if job.kind == "reference":
        cost.update(
            cycles=0,
            trainings=1,
            train_images=(profile.pool_size or POOL_SIZES[job.dataset]) * profile.fully_supervised_epochs,
        )
    return cost


def cost_beyond(job: RunJob, done_cycles: int, profile: Profile) -> dict:
    """What ``job`` computes beyond its first ``done_cycles`` cycles (which another section's run already made)."""
    cost = run_cost(job, profile)
    if not done_cycles:
        return cost
    done = run_cost(dataclasses.replace(job, cycles=done_cycles), profile)
    return {k: cost[k] - done[k] for k in COUNTS} | dict(runs=0)


def plan(profile: Profile, sections) -> pd.DataFrame:
    """One row per section (and a total): the counts, and the estimated GPU hours."""
    rate = throughput()
    rows, seen = [], {}
    for section in sections:
        jobs = []  # runs of this section that no earlier section computes (or only a shorter prefix of)
        for job in distinct(section_jobs(profile, section), profile):
            key, cycles = run_key(job, profile), job.cycles or profile.cycles
            before = seen.get(key, 0)
            if cycles > before:
                jobs.append((job, before))
                seen[key] = cycles

        # a run an earlier section made shorter is counted for its further cycles only
        counts = pd.DataFrame([cost_beyond(j, before, profile) for j, before in jobs], columns=list(COUNTS)).sum()

        row = dict(section=section, **{k: int(v) for k, v in counts.items()})
        if section == "B":
            row.update(
                generated=10 * len(profile.fig4_eps),
                unet_evals=10
                * len(profile.fig4_eps)
                * 2
                * profile.galot.sampling_steps
                * (1 + profile.galot.pgd_steps * profile.galot.grad_samples),
            )
        rows.append(row)
    table = pd.DataFrame(rows).fillna(0)
    numeric = table.columns.drop("section")
    table[numeric] = table[numeric].astype(int)
    # the UNet rate is measured on whole generation batches, so it includes their decodes
    table["gpu_hours"] = (
        table.unet_evals / rate["unet_evals_per_s"] + table.train_images / rate["train_images_per_s"]
    ) / 3600
    total = table[numeric].sum().to_dict()
    table.loc[len(table)] = dict(section="total", **total, gpu_hours=table.gpu_hours.sum())
    table.attrs["throughput"] = rate
    return table


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--profile", default="default", choices=["default", *PROFILES])
    p.add_argument("--only", choices=list(SECTIONS))
    p.add_argument("--set", nargs=2, action="append", default=[], metavar=("FIELD", "VALUE"), help="a profile field")
    args = p.parse_args(argv)
    profile = get_profile(args.profile, **dict(args.set))
    changed = {**run_settings(profile.name), **dict(args.set)}  # the run's settings file's, then --set's
    table = plan(profile, [args.only] if args.only else list(SECTIONS))
    rate = table.attrs["throughput"]
    most = max(len(profile.seeds_of(run)) for run in ("GALOT", *dict(profile.extra_seeds)))  # the seed plan's
    print(
        f"plan for the {profile.name} profile ({profile.t2i_model}, T = {profile.galot.sampling_steps}, "
        f"{', '.join(profile.table1_datasets)} in Table 1, {profile.dataset} elsewhere, {len(profile.seeds)} seeds, up "
        f"to {most} for some headline runs, {profile.cycles} cycles"
        + (f"; set: {', '.join(f'{k} = {v}' for k, v in changed.items())}" if changed else "")
        + "); nothing has been run"
    )
    print(table.to_string(index=False, float_format=lambda v: f"{v:,.1f}"))
    print(
        f"throughput: {rate['unet_evals_per_s']:.0f} UNet evaluations/s (decodes included), "
        f"{rate['train_images_per_s']:.0f} training images/s ({rate['source']})"
    )


if __name__ == "__main__":
    main()
