"""The paper's sections: what each computes (the drivers the notebooks call, the runs each needs). Which sections
there are, their notebooks and their order are the records of ``registry`` (a meta-test checks that every file in
notebooks/ has one).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..core.hashing import stable_hash
from ..core.io import save_torch
from ..core.timing import timed
from ..generation.cache import GeneratedCache
from ..generation.galot import EpsSchedule, optimize_embeddings
from ..generation.images import class_seeds, generate_images, planned_images
from ..generation.prompts import fill
from ..learning.loop import initial_classifier
from .profiles import FIGURE3_RUNS, GALOT_ROWS, PAYOFF_ARMS, TABLE2_BASELINES, Profile
from .registry import REGISTRY, SECTIONS, section
from .runs import (
    ReplayGenerated,
    RunJob,
    al_config,
    fully_supervised,
    initial_classifiers_folder,
    judge_for,
    load_data,
    t2i_model,
)

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

# The notebooks that still load the text-to-image model after the grid (4.4 to judge the images the grid rendered,
# B to render Fig. 7), the longest: when notebooks run side by side after the grid, these start first.
AFTER_GRID_WORK = tuple(s.id for s in REGISTRY if s.loads_t2i_after_grid)
FIGURE4_SEED = 0  # the noise and random directions of Sec. 4.4's images


def run_jobs(profile: Profile, jobs: list[RunJob], desc: str, progress: bool = True) -> list[dict]:
    """Every job's records, in order (computed, resumed, or read back when another section or process did it)."""
    from ..core.progress import tqdm

    records = []
    for job in tqdm(jobs, desc=desc, disable=not progress):
        records += job.run(profile)
    return records


def galot_row(profile: Profile, name: str, dataset: str, seed: int) -> RunJob:
    """Table 1's three GALOT rows, each adding one step: GALOT (basic) is the bare "{label}" prompt, unoptimised;
    "GALOT template, eps 0" changes only the template; GALOT adds the optimisation."""
    changes = {
        "GALOT (basic)": (("optimize", False), ("template", profile.basic_template)),
        "GALOT template, eps 0": (("optimize", False),),
        "GALOT": (),
    }[name]
    return RunJob("galot", dataset, seed, name, galot_changes=changes)


def table1_jobs(profile: Profile, dataset: str) -> list[RunJob]:
    """Sec. 4.1: the three GALOT rows and the headline baselines for every seed, and for the extra seeds the seed
    plan gives some of them; the other pool baselines and GAAL for the profile's baseline seeds."""
    jobs = []
    for seed in profile.seeds:
        jobs += [galot_row(profile, name, dataset, seed) for name in GALOT_ROWS]
        jobs += [
            RunJob("baseline", dataset, seed, s, strategy=s)
            for s in profile.strategies
            if s in profile.headline_baselines or seed in profile.baseline_seeds
        ]
        if seed in profile.baseline_seeds:
            jobs.append(RunJob("gaal", dataset, seed, "GAAL"))
    for name, seeds in profile.extra_seeds:
        if name in GALOT_ROWS:
            jobs += [galot_row(profile, name, dataset, seed) for seed in seeds]
        elif name in profile.headline_baselines:
            jobs += [RunJob("baseline", dataset, seed, name, strategy=name) for seed in seeds]
    return jobs


def table1(profile: Profile, dataset: str, progress: bool = True) -> list[dict]:
    return run_jobs(profile, table1_jobs(profile, dataset), f"Table 1 ({dataset})", progress)


def figure3_jobs(profile: Profile) -> list[RunJob]:
    """Sec. 4.2: AL (MarginSampling), GAL (generated data only) and AL+GAL (GALOT), for every seed of the Table 1
    run each is (:data:`FIGURE3_RUNS`)."""
    dataset = profile.dataset
    build = {
        "AL": lambda seed: RunJob("baseline", dataset, seed, "AL", strategy="MarginSampling"),
        "GAL": lambda seed: RunJob("galot", dataset, seed, "GAL", use_pool=False),
        "AL+GAL": lambda seed: RunJob("galot", dataset, seed, "AL+GAL"),
    }
    return [build[name](seed) for name in FIGURE3_RUNS for seed in profile.seeds_of(name)]


def figure3(profile: Profile, progress: bool = True) -> list[dict]:
    """Fig. 3's runs, and the fully supervised reference (one seed: a reference line, not a comparison)."""
    pool, test = load_data(profile)
    return run_jobs(profile, figure3_jobs(profile), "Fig. 3", progress) + [fully_supervised(profile, pool, test)]


def table2_jobs(profile: Profile) -> list[RunJob]:
    """Sec. 4.3: GALOT's generated sets (of Sec. 4.1's run) train other networks, with MarginSampling queries;
    MarginSampling / LeastConfidence with the profile's classifier and GALOT itself are the reference rows
    (their runs are Sec. 4.1's). On every seed of GALOT's runs (``seeds``), each seed's replay reusing that seed's
    sets, so that the paper's claims on Table 2 are paired tests (the paper reports one run), over the profile's
    ``transfer_cycles`` (the first cycles of Sec. 4.1's runs)."""
    # At most the cycles Table 1's run has (a run shortened by a notebook parameter is replayed whole).
    dataset, cycles = profile.dataset, min(profile.transfer_cycles, profile.cycles)
    jobs = []
    for seed in profile.seeds:
        source = galot_row(profile, "GALOT", dataset, seed)
        jobs += [
            RunJob("replay", dataset, seed, model, cycles=cycles, al_changes=(("model", model),), source=source)
            for model in profile.transfer_models
        ]
        jobs += [RunJob("baseline", dataset, seed, s, strategy=s, cycles=cycles) for s in TABLE2_BASELINES]
        jobs.append(RunJob("galot", dataset, seed, f"Baseline ({profile.model})", cycles=cycles))
    return jobs


def table2(profile: Profile, progress: bool = True) -> list[dict]:
    return run_jobs(profile, table2_jobs(profile), "Table 2", progress)


def figure4_jobs(profile: Profile, seed: int = FIGURE4_SEED) -> list[RunJob]:
    """Sec. 4.4's images, a job per template (the grid renders them; :func:`figure4` judges them)."""
    return [
        RunJob("judged", profile.dataset, seed, "pseudo-label images", galot_changes=(("template", t),))
        for t in profile.templates
    ]


def figure4(
    profile: Profile, out_dir: Path | None = None, seed: int = FIGURE4_SEED, progress: bool = True
) -> list[dict]:
    """Sec. 4.4: pseudo-label accuracy per template, eps and class, judged automatically
    (RandomSampling directions, no real data), on the images the grid rendered (or rendered here). The judged
    images go to ``out_dir/judged_images.pt`` for the annotation panel."""
    from .judge import judge_templates

    pool, test = load_data(profile)
    channels, size, _ = pool.image_shape
    kept: list[dict] = []
    judge = judge_for(profile, pool, test)
    with timed("judging"):  # the judged images are made for judging: their generation counts here
        records = judge_templates(
            t2i_model(profile),
            judge,
            pool.class_names,
            profile.templates,
            profile.fig4_eps,
            profile.fig4_per_class,
            profile.galot,
            seed,
            size,
            channels,
            progress,
            keep=kept,
            cache=GeneratedCache(),
        )
    if out_dir is not None:
        blob = dict(images=torch.stack([k.pop("image") for k in kept]), meta=kept, class_names=list(pool.class_names))
        save_torch(blob, Path(out_dir) / "judged_images.pt")
    return records


def ablation_jobs(profile: Profile) -> list[tuple[str, str, RunJob]]:
    """Sec. 4.5 as (study, setting, run): Tables 3-7 and Figs. 5-6 of the paper, and this project's studies
    of GALOT's gradient estimators and of label-aware objectives. Settings equal to the default share its
    run (the ablations' shorter runs are prefixes of the main ones)."""
    cycles, basic, dataset = profile.ablation_cycles, profile.basic_template, profile.dataset

    def galot(seed, setting, strategy=None, **changes):
        return RunJob(
            "galot",
            dataset,
            seed,
            "GALOT",
            strategy=strategy,
            cycles=cycles,
            galot_changes=tuple(sorted(changes.items())),
        )

    studies = {  # study -> (seeds, [(setting, A_AL, GalotConfig changes)])
        "table3_templates": (profile.study_seeds, [(t, None, dict(template=t)) for t in profile.templates]),
        "table4_epsilon": (
            profile.study_seeds,
            [
                (f"{e:g}", None, dict(eps=EpsSchedule.constant(e)) if e else dict(optimize=False))
                for e in profile.table4_eps
            ],
        ),
        "figure5_acquisition": (
            profile.study_seeds,
            [
                (a, None, dict(template=basic, acquisition=a))
                for a in ("RandomSampling", "EntropySampling", "MarginSampling", "LeastConfidence")
            ],
        ),
        "figure6_generation_factor": (
            profile.study_seeds,
            [(f"{f:g}|L|", None, dict(template=basic, factor=f)) for f in (0.5, 1.0, 2.0)],
        ),
        "table6_extra_generation": (
            profile.study_seeds,
            [("|L| of |L|", None, {}), ("|L| of 2|L|", None, dict(oversample=2.0))],
        ),
        "table7_acquisition_pairs": (
            profile.study_seeds,
            [(a, a, dict(acquisition=a)) for a in ("MarginSampling", "RandomSampling", "EntropySampling")],
        ),
        "estimators": (  # this project's study, not a paper claim: one seed, a preview
            profile.study_seeds[:1],
            [(name, None, dict(changes, measure_fidelity=True)) for name, changes in profile.estimator_options],
        ),
        "label_objectives": (
            profile.ablation_seeds,
            [(name, None, dict(changes)) for name, changes in profile.label_options],
        ),
    }
    jobs = [
        (study, setting, galot(seed, setting, a_al, **changes))
        for study, (seeds, settings) in studies.items()
        for setting, a_al, changes in settings
        for seed in seeds
    ]
    doubled = dataclasses.replace(profile.train, epochs=2 * profile.train.epochs, min_steps=2 * profile.train.min_steps)
    for seed in profile.study_seeds:  # Table 5: MarginSampling trained twice as long, against GALOT
        jobs += [
            (
                "table5_training_scale",
                "MarginSampling",
                RunJob("baseline", dataset, seed, "MarginSampling", strategy="MarginSampling", cycles=cycles),
            ),
            (
                "table5_training_scale",
                "MarginSampling (2x epochs)",
                RunJob(
                    "baseline",
                    dataset,
                    seed,
                    "MarginSampling (2x epochs)",
                    strategy="MarginSampling",
                    cycles=cycles,
                    al_changes=(("train", doubled),),
                ),
            ),
            ("table5_training_scale", "GALOT", galot(seed, "GALOT")),
        ]
    return jobs


def ablations(profile: Profile, progress: bool = True) -> list[dict]:
    """Sec. 4.5's records, each with its ``study`` and ``setting``."""
    from ..core.progress import tqdm

    records = []
    for study, setting, job in tqdm(ablation_jobs(profile), desc="Sec. 4.5", disable=not progress):
        records += [dict(r, study=study, setting=setting) for r in job.run(profile)]
    return records


def payoff_jobs(profile: Profile) -> list[tuple[str, RunJob]]:
    """Notebook W's runs as (arm, run): every arm of ``PAYOFF_ARMS`` the profile names on Table 1's settings (the
    profile's data set, cycles and A_AL) for the headline's seeds, and over the ablation cycles for the choice seeds."""
    if set(profile.choice_seeds) & set(profile.seeds):
        raise ValueError(
            f"notebook W chooses its default on seeds the headline does not report: choice_seeds "
            f"{profile.choice_seeds} must not overlap seeds {profile.seeds}"
        )
    return [
        (
            arm,
            RunJob(
                "galot",
                profile.dataset,
                seed,
                arm,
                galot_changes=tuple(sorted(changes)),
                cycles=profile.ablation_cycles if seed in profile.choice_seeds else None,
            ),
        )
        for seed in (*profile.seeds, *profile.choice_seeds)
        for arm, changes in PAYOFF_ARMS
        if arm in profile.payoff_arms
    ]


def payoff(profile: Profile, progress: bool = True) -> list[dict]:
    """Notebook W's records, each with its ``arm``."""
    from ..core.progress import tqdm

    records = []
    for arm, job in tqdm(payoff_jobs(profile), desc="when optimising pays", disable=not progress):
        records += [dict(r, arm=arm) for r in job.run(profile)]
    return records


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


def headline_records(profile, progress: bool = True) -> dict[str, list[dict]]:
    """The records of the runs the headline compares, per section (computed, or read back from the current runs
    and cache folders)."""
    table1, figure3, labels, arms = headline_jobs(profile)
    return {
        "4.1": run_jobs(profile, table1, "Table 1, headline runs", progress),
        "4.2": run_jobs(profile, figure3, "Fig. 3", progress),
        "4.5": [dict(r, setting=setting) for setting, job in labels for r in job.run(profile)],
        "W": [dict(r, arm=arm) for arm, job in arms for r in job.run(profile)],
    }


def claims_records(profile, progress: bool = True) -> dict[str, list[dict]]:
    """The records of every section the claims ledger reads, as the notebooks compute them (computed, or read back
    from the current runs and cache folders): Sec. 4.1 on its first data set, 4.2, 4.3, 4.4's judged images, 4.5, W."""
    return {
        "4.1": table1(profile, profile.table1_datasets[0], progress),
        "4.2": figure3(profile, progress),
        "4.3": table2(profile, progress),
        "4.4": figure4(profile, progress=progress),
        "4.5": ablations(profile, progress),
        "W": payoff(profile, progress),
    }


def named_jobs(profile: Profile) -> list[tuple[str, tuple[str, ...], RunJob]]:
    """Every AL run Secs. 4.1-4.3, 4.5 and notebook W compute, as (section, its name in that section's records, job):
    Sec. 4.5's name is (study, setting), the others' one column (method, or W's arm); Sec. 4.1 on its first data set."""
    dataset = profile.table1_datasets[0]
    return (
        [("4.1", (j.method,), j) for j in table1_jobs(profile, dataset)]
        + [("4.2", (j.method,), j) for j in figure3_jobs(profile)]
        + [("4.3", (j.method,), j) for j in table2_jobs(profile)]
        + [("4.5", (study, setting), j) for study, setting, j in ablation_jobs(profile)]
        + [("W", (arm,), j) for arm, j in payoff_jobs(profile)]
    )


def run_keys(profile: Profile, section: str, dataset: str | None = None) -> dict[str, tuple[str, int]]:
    """Each run a section compares, by the name its tables give it: (what decides its results but its name, seed
    and length, as a hash; its cycles). Two sections' comparisons with the same keys compare the same runs.
    ``dataset``: Sec. 4.1's (default: its first)."""
    seed, dataset = profile.seeds[0], dataset or profile.table1_datasets[0]
    named = {
        "4.1": lambda: [(j.method, j) for j in table1_jobs(profile, dataset)],
        "4.2": lambda: [(j.method, j) for j in figure3_jobs(profile)],
        "4.5": lambda: [(setting, j) for study, setting, j in ablation_jobs(profile) if study == "label_objectives"],
        "W": lambda: payoff_jobs(profile),
    }[section]()
    return {
        name: (stable_hash(dataclasses.replace(job, method="", seed=0, cycles=None)), job.cycles or profile.cycles)
        for name, job in named
        if job.seed in (seed, profile.ablation_seeds[0])
    }


def section_jobs(profile: Profile, section_id: str) -> list[RunJob]:
    """The AL runs (and reference classifiers, and Sec. 4.4's images) a section computes (its registry record's)."""
    return section(section_id).run_jobs(profile)


def table1_section_jobs(profile: Profile) -> list[RunJob]:
    """Sec. 4.1 on each of its data sets, with each data set's fully supervised reference."""
    return [j for dataset in profile.table1_datasets for j in table1_jobs(profile, dataset)] + [
        RunJob("reference", dataset, profile.seeds[0], "Fully supervised") for dataset in profile.table1_datasets
    ]


def ablation_section_jobs(profile: Profile) -> list[RunJob]:
    return [job for _, _, job in ablation_jobs(profile)]


def payoff_section_jobs(profile: Profile) -> list[RunJob]:
    """Notebook W's arms and its zero-shot reference."""
    return [
        RunJob("zero-shot", profile.dataset, 0, "T2I model as zero-shot classifier"),
        *(job for _, job in payoff_jobs(profile)),
    ]


def eps_grid(profile: Profile, eps_values=None, seed: int = 0) -> tuple[torch.Tensor, tuple[str, ...], list[float]]:
    """Appendix B, Fig. 7: one image per class and eps, the "{label}" embedding optimised by
    MarginSampling PGD against a classifier trained on the initial labelled set; the same noise
    seed along a row, so only eps changes. Returns (images [C, 1 + E, ...] with a real image of the
    class first, class names, eps values)."""
    pool, _ = load_data(profile)
    channels, size, _ = pool.image_shape
    eps_values = list(eps_values or profile.fig4_eps)
    # The classifier the first cycle of a GALOT run optimises against (shared with the runs: no training here).
    with timed("training"):
        classifier = initial_classifier(
            al_config(profile), pool, seed, shared_dir=initial_classifiers_folder(profile, pool)
        ).model
    model = t2i_model(profile)
    c_y = model.encode([fill(profile.basic_template, n) for n in pool.class_names])
    labels, seeds = planned_images([1] * pool.num_classes, seed, 0)  # one noise seed per class, reused along its row
    columns = []
    for eps in eps_values:
        cfg = dataclasses.replace(profile.galot, template=profile.basic_template, eps=EpsSchedule.constant(eps))
        with timed("generation"):
            c = optimize_embeddings(
                model, classifier, c_y, eps, cfg, class_seeds(seed, 0, pool.num_classes), size, channels
            ).embeddings
            columns.append(generate_images(model, c, labels, seeds, cfg, size, channels))
    real = torch.stack([pool.images[int(np.flatnonzero(pool.labels.numpy() == c)[0])] for c in range(pool.num_classes)])
    return torch.stack([real, *columns], dim=1), pool.class_names, eps_values


def last_cycle_examples(
    galot_records: list[dict], class_names, per_class: int = 3, max_classes: int = 10, seed: int = 0
) -> tuple[torch.Tensor, list[str]]:
    """Appendix B, Figs. 8-10: ``per_class`` generated images (fewer where no class has that many) from up to
    ``max_classes`` random classes, taken from the last cycle of a GALOT run (read from its state, nothing regenerated)."""
    replay = ReplayGenerated(galot_records, seed)
    last = max(r["cycle"] for r in galot_records if r["seed"] == seed)
    batch = replay(last, None, 0, seed)
    rng = np.random.default_rng(seed)
    counts = np.bincount(batch.labels.numpy(), minlength=len(class_names))
    if counts.max() == 0:
        raise ValueError(f"the last cycle of run {replay.identity} (seed {seed}) generated no images")
    # A grid needs as many images in every row: fewer per row where no class has per_class (few images per class:
    # many classes, or a small labelled set)
    per_class = min(per_class, int(counts.max()))
    present = np.flatnonzero(counts >= per_class)
    classes = sorted(rng.choice(present, size=min(max_classes, len(present)), replace=False).tolist())
    rows = [
        batch.images[rng.choice(np.flatnonzero(batch.labels.numpy() == c), size=per_class, replace=False)]
        for c in classes
    ]
    return torch.stack(rows), [class_names[c] for c in classes]


def notebooks(only: str | None = None, after_grid_work_first: bool = False) -> list[Path]:
    """Notebook paths in run order (or with :data:`AFTER_GRID_WORK` first); ``only`` picks one section (valid
    ids listed on error)."""
    if only is not None and only not in SECTIONS:
        raise ValueError(f"unknown section {only!r}; valid: {', '.join(SECTIONS) or '(none yet)'}")
    chosen = [only] if only else list(SECTIONS)
    if after_grid_work_first:
        chosen.sort(key=lambda s: s not in AFTER_GRID_WORK)  # stable: section order within each group
    return [NOTEBOOK_DIR / SECTIONS[s] for s in chosen if (NOTEBOOK_DIR / SECTIONS[s]).exists()]


def main(argv=None):
    p = argparse.ArgumentParser(description="list the notebooks run_all.sh runs")
    p.add_argument("what", choices=["notebooks"])
    p.add_argument("--only")
    p.add_argument("--after-grid-work-first", action="store_true", help=f"sections {', '.join(AFTER_GRID_WORK)} first")
    args = p.parse_args(argv)
    try:
        paths = notebooks(args.only, args.after_grid_work_first)
    except ValueError as err:
        raise SystemExit(f"run_all.sh: {err}")
    for path in paths:
        print(path.relative_to(NOTEBOOK_DIR.parent))


if __name__ == "__main__":
    main()
