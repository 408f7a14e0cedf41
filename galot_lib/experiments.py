"""The paper's experiments as functions of a profile: what the notebooks call.

Every run lives in ``runs/<profile>/<dataset>/<name>-<identity>/seed<k>/`` where the identity
hashes everything that decides its results. Two notebooks asking for the same run (Sec. 4.2's
AL+GAL is Sec. 4.1's GALOT; Sec. 4.5's default setting too) therefore share it, and an
interrupted notebook resumes its runs. Functions return tidy records (one per cycle and run,
each with its seed, configuration hash and the settings that distinguish it).
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
from pathlib import Path

import numpy as np
import torch

from .cache import GeneratedCache
from .data import ImageSet, load_dataset
from .galot import GalotConfig, GalotGenerator
from .loop import ALConfig, Generated, config_hash, run_active_learning, run_identity, write_json_atomic
from .profiles import Profile
from .train import accuracy, default_device, fit, seed_for

SUBSET_SEED = 12345
_T2I: dict[str, object] = {}


def runs_root() -> Path:
    """Where run states live: ``$GALOT_RUNS_DIR`` or ``<repo>/runs``."""
    return Path(os.environ.get("GALOT_RUNS_DIR", Path(__file__).resolve().parent.parent / "runs"))


# ----------------------------------------------------------------------------- data
def fixed_subset(data: ImageSet, size: int | None) -> ImageSet:
    """A class-stratified random subset, the same for every run of a profile."""
    if size is None or size >= len(data):
        return data
    rng = np.random.default_rng(SUBSET_SEED)
    labels = data.labels.numpy()
    per_class = np.bincount(labels, minlength=data.num_classes) * size / len(data)
    take = np.floor(per_class).astype(int)
    take[np.argsort(per_class - take)[::-1][: size - take.sum()]] += 1
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), t, replace=False) for c, t in enumerate(take)])
    return data.subset(np.sort(idx))


def load_data(profile: Profile, dataset: str | None = None) -> tuple[ImageSet, ImageSet]:
    """(pool, test) of a profile's data set, subsampled as the profile says."""
    name = dataset or profile.dataset
    pool = fixed_subset(load_dataset(name, "pool"), profile.pool_size)
    test = fixed_subset(load_dataset(name, "test"), profile.test_size)
    return pool, test


# ----------------------------------------------------------------------------- runs
def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "run"


def al_config(profile: Profile, strategy: str = "MarginSampling", cycles: int | None = None, **changes) -> ALConfig:
    """The profile's AL settings for one strategy (changes: any ALConfig field)."""
    base = ALConfig(strategy=strategy, model=profile.model, initial_labeled=profile.initial_labeled,
                    query_size=profile.query_size, cycles=cycles or profile.cycles, candidates=profile.candidates,
                    train=profile.train)
    return dataclasses.replace(base, **changes) if changes else base


def run(profile: Profile, pool: ImageSet, test: ImageSet, seed: int, config: ALConfig, generation=None,
        synthesis=None, use_pool: bool = True, extra: dict | None = None) -> list[dict]:
    """Run or resume one run in its identity-keyed folder; its configuration is saved beside it."""
    identity = run_identity(config, pool, generation, synthesis, use_pool)
    dataset_root = runs_root() / profile.name / pool.name.split("/")[0]
    # Same identity, same run, whatever it is called: reuse the folder a differently named run made.
    run_folder = next(dataset_root.glob(f"*-{identity}"), None) or dataset_root / f"{slug(config.label)}-{identity}"
    folder = run_folder / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    described = dict(al=config.as_dict(), generation=generation.describe() if generation else None,
                     synthesis=synthesis.describe() if synthesis else None, use_pool=use_pool, pool=pool.name,
                     pool_size=len(pool), seed=seed, identity=identity)
    (folder / "config.json").write_text(json.dumps(described, indent=1, default=str))
    return run_active_learning(config, pool, test, seed, folder, generation, synthesis, use_pool, extra)


def run_baseline(profile: Profile, pool: ImageSet, test: ImageSet, strategy: str, seed: int,
                 cycles: int | None = None, method: str | None = None, **al_changes) -> list[dict]:
    """One pool-based AL run (no generation)."""
    config = al_config(profile, strategy, cycles, method=method, **al_changes)
    return run(profile, pool, test, seed, config)


def t2i_model(profile: Profile):
    """The profile's text-to-image model, loaded once per process."""
    from .t2i import load_t2i

    if profile.t2i_model not in _T2I:
        _T2I[profile.t2i_model] = load_t2i(profile.t2i_model)
    return _T2I[profile.t2i_model]


def galot_generator(profile: Profile, pool: ImageSet, config: GalotConfig, cycles: int) -> GalotGenerator:
    channels, size, _ = pool.image_shape
    return GalotGenerator(t2i_model(profile), pool.class_names, config, cycles, size, channels, GeneratedCache())


def galot_fields(config: GalotConfig) -> dict:
    """The GALOT settings a result row carries (beside its configuration hash)."""
    return dict(template=config.template, a_gal=config.acquisition, eps_schedule=config.eps.kind,
                eps_start=config.eps.start, eps_end=config.eps.end, pgd_steps=config.pgd_steps,
                grad_samples=config.grad_samples, gen_factor=config.factor, oversample=config.oversample,
                optimized=config.optimize)


def run_galot(profile: Profile, pool: ImageSet, test: ImageSet, seed: int, method: str = "GALOT",
              cycles: int | None = None, use_pool: bool = True, strategy: str | None = None,
              **galot_changes) -> list[dict]:
    """GALOT (GAL-AL joint sampling), GALOT (basic) with ``optimize=False``, or the GAL-only
    baseline with ``use_pool=False``; ``galot_changes`` override the profile's GalotConfig."""
    config = dataclasses.replace(profile.galot, **galot_changes)
    cycles = cycles or profile.cycles
    al = al_config(profile, strategy or profile.galot.acquisition, cycles, method=method)
    return run(profile, pool, test, seed, al, generation=galot_generator(profile, pool, config, cycles),
               use_pool=use_pool, extra=galot_fields(config))


class ReplayGenerated:
    """A generation hook that hands back, cycle by cycle, the sets another run generated
    (Sec. 4.3: ResNet18's GALOT data reused to train other networks, nothing regenerated)."""

    def __init__(self, source_records: list[dict], seed: int):
        rows = sorted((r for r in source_records if r["seed"] == seed), key=lambda r: r["cycle"])
        if not rows:
            raise ValueError(f"the source run has no records for seed {seed}")
        self.identity, self.seed = rows[0]["config_hash"], seed
        self.keys = [r.get("cache_key") for r in rows]
        self.state_path = next(runs_root().rglob(f"*-{self.identity}/seed{seed}/state.pt"), None)
        if self.state_path is None:
            raise FileNotFoundError(f"the state of run {self.identity} (seed {seed}) was not found under {runs_root()}")
        self._state = None

    def describe(self) -> dict:
        return dict(replay_of=self.identity, seed=self.seed)

    def __call__(self, cycle: int, trained, n_labeled: int, seed: int) -> Generated:
        if self._state is None:
            self._state = torch.load(self.state_path, weights_only=False)
        if cycle >= len(self._state["gen_images"]):
            raise ValueError(f"run {self.identity} generated for {len(self._state['gen_images'])} cycles, not {cycle + 1}")
        return Generated(self._state["gen_images"][cycle], self._state["gen_labels"][cycle],
                         {"replayed_from": self.identity, "cache_key": self.keys[cycle]})


def run_replay(profile: Profile, pool: ImageSet, test: ImageSet, source_records: list[dict], seed: int, model: str,
               strategy: str = "MarginSampling", method: str | None = None) -> list[dict]:
    """Another classifier trained with the generated sets of a finished GALOT run."""
    cycles = max(r["cycle"] for r in source_records) + 1
    config = al_config(profile, strategy, cycles, model=model, method=method or model)
    return run(profile, pool, test, seed, config, generation=ReplayGenerated(source_records, seed))


# ----------------------------------------------------------------------------- references
def fully_supervised_folder(profile: Profile, pool: ImageSet, model: str, seed: int) -> Path:
    return runs_root() / profile.name / pool.name.split("/")[0] / f"fully-supervised-{slug(model)}" / f"seed{seed}"


def fully_supervised(profile: Profile, pool: ImageSet, test: ImageSet, seed: int = 0, model: str | None = None) -> dict:
    """The classifier trained on the whole pool (Fig. 3's upper line); weights and result cached."""
    model = model or profile.model
    config = dataclasses.replace(profile.train, epochs=profile.fully_supervised_epochs, min_steps=0)
    folder = fully_supervised_folder(profile, pool, model, seed)
    result_path = folder / "result.json"
    if result_path.exists():
        return json.loads(result_path.read_text())
    folder.mkdir(parents=True, exist_ok=True)
    trained = fit(model, pool.images, pool.labels, pool.num_classes, config, seed=seed_for(seed, 99))
    torch.save(trained.model.state_dict(), folder / "model.pt")
    record = dict(method="Fully supervised", seed=seed, model=model, dataset=pool.name.split("/")[0],
                  n_labeled=len(pool), n_generated=0, epochs=config.epochs,
                  config_hash=config_hash(dataclasses.asdict(config), model, pool.name, len(pool)),
                  accuracy=accuracy(trained.model, test.images, test.labels))
    write_json_atomic(result_path, record)
    return record


def judge_for(profile: Profile, pool: ImageSet, test: ImageSet):
    """The automatic judge / simulated annotator: the bundled reference classifier on
    Fashion-MNIST (trained on the generator split), else the fully supervised classifier."""
    from .models import build_model

    if pool.name.startswith("fashion_mnist"):
        from .bundled.reference import load_reference

        return load_reference()
    fully_supervised(profile, pool, test, seed=0)
    folder = fully_supervised_folder(profile, pool, profile.model, seed=0)
    model = build_model(profile.model, pool.num_classes, in_channels=pool.image_shape[0])
    model.load_state_dict(torch.load(folder / "model.pt", weights_only=True, map_location="cpu"))
    return model.to(default_device()).eval()


def run_gaal(profile: Profile, pool: ImageSet, test: ImageSet, seed: int, cycles: int | None = None) -> list[dict]:
    """GAAL's row of Table 1 (GAN queries labelled by the simulated annotator)."""
    from .gaal import GaalConfig, GaalSynthesis, cached_gan

    channels, size, _ = pool.image_shape
    gaal = GaalConfig(gan_steps=profile.gaal_gan_steps)
    gan = cached_gan(pool.images, gaal, runs_root() / profile.name / pool.name.split("/")[0] / "gaal-gan")
    synthesis = GaalSynthesis(gan, judge_for(profile, pool, test), gaal, size, channels)
    return run(profile, pool, test, seed, al_config(profile, "RandomSampling", cycles, method="GAAL"), synthesis=synthesis)


# ----------------------------------------------------------------------------- the paper's sections
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
        torch.save(blob, Path(out_dir) / "judged_images.pt.part")
        os.replace(Path(out_dir) / "judged_images.pt.part", Path(out_dir) / "judged_images.pt")
    return records


def ablations(profile: Profile, progress: bool = True) -> dict[str, list[dict]]:
    """Sec. 4.5: Tables 3-7 and Figs. 5-6, each a list of records (``study`` and ``setting`` set)."""
    from tqdm.auto import tqdm

    from .galot import EpsSchedule

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
    from .galot import EpsSchedule, class_seeds, generate_images, optimize_embeddings, planned_images
    from .loop import initial_indices
    from .prompts import fill

    pool, _ = load_data(profile)
    channels, size, _ = pool.image_shape
    eps_values = list(eps_values or profile.fig4_eps)
    idx = torch.as_tensor(initial_indices(len(pool), profile.initial_labeled, seed))
    classifier = fit(profile.model, pool.images[idx], pool.labels[idx], pool.num_classes, profile.train,
                     seed=seed_for(seed, 0, 1, 1)).model
    model = t2i_model(profile)
    c_y = model.encode([fill(profile.basic_template, n) for n in pool.class_names])
    labels, seeds = planned_images([1] * pool.num_classes, seed, 0)  # one noise seed per class, reused along its row
    columns = []
    for eps in eps_values:
        cfg = dataclasses.replace(profile.galot, template=profile.basic_template, eps=EpsSchedule.constant(eps))
        c, _ = optimize_embeddings(model, classifier, c_y, eps, cfg, class_seeds(seed, 0, pool.num_classes), size, channels)
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
