"""The paper's sections: what each computes (the drivers the notebooks call) and the notebook that
reproduces it, in run order.

``run_all.sh`` and the tests read :data:`SECTIONS`, so a notebook cannot be left out of either
(a meta-test checks that every file in notebooks/ is listed here).
"""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path

import numpy as np
import torch

from ..core.io import save_torch
from ..generation.galot import EpsSchedule, optimize_embeddings
from ..generation.images import class_seeds, generate_images, planned_images
from ..generation.prompts import fill
from ..learning.loop import initial_indices, training_seed
from ..learning.train import fit
from .profiles import Profile
from .runs import (ReplayGenerated, fully_supervised, judge_for, load_data, run_baseline, run_galot, run_gaal,
                   run_replay, t2i_model)

NOTEBOOK_DIR = Path(__file__).resolve().parents[2] / "notebooks"

# section id -> notebook file name
SECTIONS: dict[str, str] = {
    "4.1": "4_1_al_comparison.ipynb",
    "4.2": "4_2_gal_al_joint.ipynb",
    "4.3": "4_3_transferability.ipynb",
    "4.4": "4_4_pseudo_labels.ipynb",
    "4.5": "4_5_ablations.ipynb",
    "B": "B_generation_examples.ipynb",
}


def table1(profile: Profile, dataset: str, progress: bool = True) -> list[dict]:
    """Sec. 4.1: the pool baselines, GAAL, GALOT (basic) and GALOT, for every seed."""
    from tqdm.auto import tqdm

    pool, test = load_data(profile, dataset)
    jobs = [(s, m) for s in profile.seeds for m in (*profile.strategies, "GAAL", "GALOT (basic)", "GALOT")]
    records = []
    for seed, method in tqdm(jobs, desc=f"Table 1 ({dataset})", disable=not progress):
        if method == "GAAL":
            records += run_gaal(profile, pool, test, seed)
        elif method == "GALOT (basic)":
            records += run_galot(profile, pool, test, seed, method=method, optimize=False,
                                 template=profile.basic_template)
        elif method == "GALOT":
            records += run_galot(profile, pool, test, seed)
        else:
            records += run_baseline(profile, pool, test, method, seed)
    return records


def figure3(profile: Profile, progress: bool = True) -> list[dict]:
    """Sec. 4.2: AL (MarginSampling) vs GAL (generated data only) vs AL+GAL (GALOT) vs fully supervised."""
    from tqdm.auto import tqdm

    pool, test = load_data(profile)
    records = []
    for seed in tqdm(profile.seeds, desc="Fig. 3", disable=not progress):
        records += run_baseline(profile, pool, test, "MarginSampling", seed, method="AL")
        records += run_galot(profile, pool, test, seed, method="GAL", use_pool=False)
        records += run_galot(profile, pool, test, seed, method="AL+GAL")
        records.append(fully_supervised(profile, pool, test, seed))
    return records


def table2(profile: Profile, galot_records: list[dict], progress: bool = True) -> list[dict]:
    """Sec. 4.3: GALOT's generated sets (from Sec. 4.1) train other networks, with MarginSampling
    queries; Margin/LeastConfidence with the profile's classifier and GALOT itself are the reference rows."""
    from tqdm.auto import tqdm

    pool, test = load_data(profile)
    records = []
    seeds = profile.seeds[:1]  # the paper reports no spread for Table 2
    jobs = [(s, m) for s in seeds for m in profile.transfer_models]
    for seed, model in tqdm(jobs, desc="Table 2", disable=not progress):
        records += run_replay(profile, pool, test, galot_records, seed, model)
    for seed in seeds:
        records += run_baseline(profile, pool, test, "MarginSampling", seed)
        records += run_baseline(profile, pool, test, "LeastConfidence", seed)
        records += run_galot(profile, pool, test, seed, method=f"Baseline ({profile.model})")
    return records


def figure4(profile: Profile, out_dir: Path | None = None, seed: int = 0, progress: bool = True) -> list[dict]:
    """Sec. 4.4: pseudo-label accuracy per template, eps and class, judged automatically
    (RandomSampling directions, no real data). The judged images go to ``out_dir/judged_images.pt``
    for the annotation panel."""
    from .judge import judge_templates

    pool, test = load_data(profile)
    channels, size, _ = pool.image_shape
    kept: list[dict] = []
    records = judge_templates(t2i_model(profile), judge_for(profile, pool, test), pool.class_names,
                              profile.templates, profile.fig4_eps, profile.fig4_per_class, profile.galot,
                              seed, size, channels, progress, keep=kept)
    if out_dir is not None:
        blob = dict(images=torch.stack([k.pop("image") for k in kept]), meta=kept, class_names=list(pool.class_names))
        save_torch(blob, Path(out_dir) / "judged_images.pt")
    return records


def ablations(profile: Profile, progress: bool = True) -> dict[str, list[dict]]:
    """Sec. 4.5: Tables 3-7 and Figs. 5-6, each a list of records (``study`` and ``setting`` set)."""
    from tqdm.auto import tqdm

    pool, test = load_data(profile)
    cycles = profile.ablation_cycles
    basic = profile.basic_template
    studies: dict[str, list[tuple[str, dict, str | None]]] = {
        # study -> (setting label, galot changes, A_AL)
        "table3_templates": [(t, dict(template=t), None) for t in profile.templates],
        "table4_epsilon": [(f"{e:g}", dict(eps=EpsSchedule.constant(e)), None) for e in profile.table4_eps],
        "figure5_acquisition": [(a, dict(template=basic, acquisition=a), None)
                                for a in ("RandomSampling", "EntropySampling", "MarginSampling", "LeastConfidence")],
        "figure6_generation_factor": [(f"{f:g}|L|", dict(template=basic, factor=f), None) for f in (0.5, 1.0, 2.0)],
        "table6_extra_generation": [("|L| of |L|", {}, None), ("|L| of 2|L|", dict(oversample=2.0), None)],
        "table7_acquisition_pairs": [(a, dict(acquisition=a), a)
                                     for a in ("MarginSampling", "RandomSampling", "EntropySampling")],
    }
    seeds_of = {"table3_templates": profile.seeds, "figure5_acquisition": profile.seeds,
                "figure6_generation_factor": profile.seeds}
    jobs = [(study, label, changes, a_al, seed) for study, settings in studies.items() for label, changes, a_al in settings
            for seed in seeds_of.get(study, profile.seeds[:1])]
    out: dict[str, list[dict]] = {study: [] for study in studies}
    for study, label, changes, a_al, seed in tqdm(jobs, desc="Sec. 4.5", disable=not progress):
        recs = run_galot(profile, pool, test, seed, method="GALOT", cycles=cycles, strategy=a_al, **changes)
        out[study] += [dict(r, study=study, setting=label) for r in recs]
    # Table 5: training scale - MarginSampling with twice the epochs against GALOT
    out["table5_training_scale"] = []
    for seed in profile.seeds[:1]:
        for label, train in (("MarginSampling", profile.train),
                             ("MarginSampling (2x epochs)", dataclasses.replace(profile.train, epochs=2 * profile.train.epochs,
                                                                             min_steps=2 * profile.train.min_steps))):
            recs = run_baseline(profile, pool, test, "MarginSampling", seed, cycles=cycles, method=label, train=train)
            out["table5_training_scale"] += [dict(r, study="table5_training_scale", setting=label, epochs=train.epochs) for r in recs]
        recs = run_galot(profile, pool, test, seed, cycles=cycles)
        out["table5_training_scale"] += [dict(r, study="table5_training_scale", setting="GALOT", epochs=profile.train.epochs)
                                         for r in recs]
    return out


def eps_grid(profile: Profile, eps_values=None, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], list[float]]:
    """Appendix B, Fig. 7: one image per class and eps, the "{label}" embedding optimised by
    MarginSampling PGD against a classifier trained on the initial labelled set; the same noise
    seed along a row, so only eps changes. Returns (generated [C, E, ...], real [C, ...], names, eps)."""
    pool, _ = load_data(profile)
    channels, size, _ = pool.image_shape
    eps_values = list(eps_values or profile.fig4_eps)
    idx = torch.as_tensor(initial_indices(len(pool), profile.initial_labeled, seed))
    # The classifier the first cycle of a GALOT run optimises against (trained before generation).
    classifier = fit(profile.model, pool.images[idx], pool.labels[idx], pool.num_classes, profile.train,
                     seed=training_seed(seed, 0, tag=1)).model
    model = t2i_model(profile)
    c_y = model.encode([fill(profile.basic_template, n) for n in pool.class_names])
    labels, seeds = planned_images([1] * pool.num_classes, seed, 0)  # one noise seed per class, reused along its row
    columns = []
    for eps in eps_values:
        cfg = dataclasses.replace(profile.galot, template=profile.basic_template, eps=EpsSchedule.constant(eps))
        c = optimize_embeddings(model, classifier, c_y, eps, cfg, class_seeds(seed, 0, pool.num_classes), size,
                                channels).embeddings
        columns.append(generate_images(model, c, labels, seeds, cfg, size, channels))
    real = torch.stack([pool.images[int(np.flatnonzero(pool.labels.numpy() == c)[0])] for c in range(pool.num_classes)])
    return torch.stack(columns, dim=1), real, pool.class_names, eps_values


def last_cycle_examples(galot_records: list[dict], class_names, per_class: int = 3, max_classes: int = 10,
                        seed: int = 0) -> tuple[torch.Tensor, list[str]]:
    """Appendix B, Figs. 8-10: ``per_class`` generated images from up to ``max_classes`` random
    classes, taken from the last cycle of a GALOT run (read from its state, nothing regenerated)."""
    replay = ReplayGenerated(galot_records, seed)
    last = max(r["cycle"] for r in galot_records if r["seed"] == seed)
    batch = replay(last, None, 0, seed)
    rng = np.random.default_rng(seed)
    counts = np.bincount(batch.labels.numpy(), minlength=len(class_names))
    present = np.flatnonzero(counts >= per_class)  # a grid needs per_class images in every row
    if len(present) == 0:
        raise ValueError(f"no class has {per_class} generated images in the last cycle (counts: {counts.tolist()})")
    classes = sorted(rng.choice(present, size=min(max_classes, len(present)), replace=False).tolist())
    rows = [batch.images[rng.choice(np.flatnonzero(batch.labels.numpy() == c), size=per_class, replace=False)]
            for c in classes]
    return torch.stack(rows), [class_names[c] for c in classes]


def notebooks(only: str | None = None) -> list[Path]:
    """Notebook paths in run order; ``only`` picks one section (valid ids listed on error)."""
    if only is not None and only not in SECTIONS:
        raise ValueError(f"unknown section {only!r}; valid: {', '.join(SECTIONS) or '(none yet)'}")
    chosen = [only] if only else list(SECTIONS)
    return [NOTEBOOK_DIR / SECTIONS[s] for s in chosen if (NOTEBOOK_DIR / SECTIONS[s]).exists()]


def main(argv=None):
    p = argparse.ArgumentParser(description="list the notebooks run_all.sh runs")
    p.add_argument("what", choices=["notebooks"])
    p.add_argument("--only")
    args = p.parse_args(argv)
    try:
        paths = notebooks(args.only)
    except ValueError as err:
        raise SystemExit(f"run_all.sh: {err}")
    for path in paths:
        print(path.relative_to(NOTEBOOK_DIR.parent))


if __name__ == "__main__":
    main()
