"""Run storage: one active-learning run per folder, keyed by what decides its results.

Every run lives in ``runs/<profile>/<dataset>/<name>-<identity>/seed<k>/`` where the identity
hashes everything that decides its results. Two notebooks asking for the same run (Sec. 4.2's
AL+GAL is Sec. 4.1's GALOT; Sec. 4.5's default setting too) therefore share it, and an
interrupted notebook resumes its runs. Functions return tidy records (one per cycle and run,
each with its seed, configuration hash and the settings that distinguish it). The references
the runs are measured against (the fully supervised classifier, the judge) live here too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from dataclasses import dataclass
from pathlib import Path

import torch

from ..core.claims import claimed
from ..core.device import default_device
from ..core.hashing import stable_hash
from ..core.io import load_torch, save_torch, write_json
from ..core.paths import runs_root, shown_source
from ..core.provenance import provenance
from ..core.seeds import Purpose, seed_for
from ..core.timing import timed
from ..generation.cache import GeneratedCache
from ..generation.galot import GalotConfig
from ..generation.generator import GalotGenerator
from ..learning.data import ImageSet, fixed_subset, load_dataset
from ..learning.generated import Generated
from ..learning.loop import ALConfig, run_active_learning, run_identity
from ..learning.train import accuracy, fit
from .profiles import Profile

_T2I: dict[str, object] = {}
_DATA: dict[tuple, tuple[ImageSet, ImageSet]] = {}
_JUDGES: dict[tuple[str, str], torch.nn.Module] = {}
INITIAL_CLASSIFIERS = "initial-classifiers"  # the folder beside a data set's runs where they share these


def load_data(profile: Profile, dataset: str | None = None) -> tuple[ImageSet, ImageSet]:
    """(pool, test) of a profile's data set, subsampled as the profile says (read once per process)."""
    name = dataset or profile.dataset
    key = (name, profile.pool_size, profile.test_size, profile.data_dir)
    if key not in _DATA:
        _DATA[key] = (
            fixed_subset(load_dataset(name, "pool", profile.data_dir), profile.pool_size),
            fixed_subset(load_dataset(name, "test", profile.data_dir), profile.test_size),
        )
    return _DATA[key]


# ----------------------------------------------------------------------------- runs
def dataset_folder(profile: Profile, pool: ImageSet) -> Path:
    """``runs/<profile>/<dataset>/``: every run and reference of one data set."""
    return runs_root() / profile.name / pool.dataset


def slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text).strip("-")[:40] or "run"


def al_config(profile: Profile, strategy: str = "MarginSampling", cycles: int | None = None, **changes) -> ALConfig:
    """The profile's AL settings for one strategy (changes: any ALConfig field)."""
    base = ALConfig(
        strategy=strategy,
        model=profile.model,
        initial_labeled=profile.initial_labeled,
        query_size=profile.query_size,
        cycles=cycles or profile.cycles,
        candidates=profile.candidates,
        train=profile.train,
    )
    return dataclasses.replace(base, **changes) if changes else base


def run(
    profile: Profile,
    pool: ImageSet,
    test: ImageSet,
    seed: int,
    config: ALConfig,
    generation=None,
    synthesis=None,
    use_pool: bool = True,
    extra: dict | None = None,
    wait: bool = True,
) -> list[dict]:
    """Run or resume one of a profile's runs in its data set's folder (``run_in_folder``)."""
    return run_in_folder(
        dataset_folder(profile, pool), pool, test, seed, config, generation, synthesis, use_pool, extra, wait
    )


def run_in_folder(
    root: Path,
    pool: ImageSet,
    test: ImageSet,
    seed: int,
    config: ALConfig,
    generation=None,
    synthesis=None,
    use_pool: bool = True,
    extra: dict | None = None,
    wait: bool = True,
    progress: bool = True,
) -> list[dict]:
    """Run or resume one run in its identity-keyed folder under ``root`` (``<name>-<identity>/seed<k>``), holding
    its claim (another process computing it is waited for, or with ``wait=False`` left to it: ClaimedElsewhere); its
    configuration is saved beside it, and the runs under ``root`` share their initial-set classifiers."""
    identity = run_identity(config, pool, generation, synthesis, use_pool)
    # Same identity, same run, whatever it is called: reuse the folder a differently named run made.
    run_folder = next(root.glob(f"*-{identity}"), None) or root / f"{slug(config.label)}-{identity}"
    folder = run_folder / f"seed{seed}"
    folder.mkdir(parents=True, exist_ok=True)
    settings = {k: v for k, v in config.as_dict().items() if k != "cycles"}  # one folder for every length of the run
    described = dict(
        al=settings,
        generation=generation.describe() if generation else None,
        synthesis=synthesis.describe() if synthesis else None,
        use_pool=use_pool,
        pool=pool.name,
        pool_size=len(pool),
        seed=seed,
        identity=identity,
        **provenance(),
    )
    with claimed(folder, wait):
        write_json(folder / "config.json", described)
        return run_active_learning(
            config,
            pool,
            test,
            seed,
            folder,
            generation,
            synthesis,
            use_pool,
            extra,
            progress=progress,
            shared_dir=root / INITIAL_CLASSIFIERS,
        )


def initial_classifiers_folder(profile: Profile, pool: ImageSet) -> Path:
    """Where the runs of a data set share their initial-set classifiers (``learning.loop.initial_classifier``)."""
    return dataset_folder(profile, pool) / INITIAL_CLASSIFIERS


def render_judged_set(profile: Profile, pool: ImageSet, template: str, seed: int, wait: bool = True) -> list[dict]:
    """Sec. 4.4's randomly perturbed images of one template, every eps, into the generated-set cache (claimed, so
    grid processes share the templates out); notebook 4.4 then judges them without rendering. No records."""
    from .judge import perturbed_images

    channels, size, _ = pool.image_shape
    folder = dataset_folder(profile, pool) / "judged-sets" / stable_hash(dict(template=template, seed=seed), 16)
    with claimed(folder, wait), timed("judging"):  # rendered for judging: the time counts there
        for eps in profile.fig4_eps:
            perturbed_images(
                t2i_model(profile),
                pool.class_names,
                template,
                eps,
                profile.fig4_per_class,
                profile.galot,
                seed,
                size,
                channels,
                GeneratedCache(),
            )
    return []


def run_baseline(
    profile: Profile,
    pool: ImageSet,
    test: ImageSet,
    strategy: str,
    seed: int,
    cycles: int | None = None,
    method: str | None = None,
    wait: bool = True,
    **al_changes,
) -> list[dict]:
    """One pool-based AL run (no generation)."""
    config = al_config(profile, strategy, cycles, method=method, **al_changes)
    return run(profile, pool, test, seed, config, wait=wait)


def t2i_model(profile: Profile):
    """The profile's text-to-image model, loaded once per process."""
    from ..generation.t2i import load_t2i

    if profile.t2i_model not in _T2I:
        _T2I[profile.t2i_model] = load_t2i(profile.t2i_model)
    return _T2I[profile.t2i_model]


def galot_generator(profile: Profile, pool: ImageSet, test: ImageSet, config: GalotConfig) -> GalotGenerator:
    """GALOT's generation hook with the profile's model, memory settings and judge of label correctness."""
    channels, size, _ = pool.image_shape
    return GalotGenerator(
        t2i_model(profile),
        pool.class_names,
        config,
        size,
        channels,
        GeneratedCache(),
        judge=judge_for(profile, pool, test),
        memory_budget_gb=profile.memory_budget_gb,
        max_batch=profile.max_batch,
    )


def galot_fields(config: GalotConfig) -> dict:
    """The GALOT settings a result row carries (beside its configuration hash)."""
    return dict(
        template=config.template,
        a_gal=config.acquisition,
        eps_schedule=config.eps.kind,
        eps_start=config.eps.start,
        eps_end=config.eps.end,
        pgd_steps=config.pgd_steps,
        grad_samples=config.grad_samples,
        eta=config.eta,
        sampling_steps=config.sampling_steps,
        gen_factor=config.factor,
        oversample=config.oversample,
        optimized=config.optimize,
        estimator=config.estimator,
        estimator_step=config.estimator_step,
        objective=config.objective,
        label_filter=config.label_filter,
        keep_rule=config.keep_rule,
        per_image=config.per_image,
    )


def run_galot(
    profile: Profile,
    pool: ImageSet,
    test: ImageSet,
    seed: int,
    method: str = "GALOT",
    cycles: int | None = None,
    use_pool: bool = True,
    strategy: str | None = None,
    wait: bool = True,
    **galot_changes,
) -> list[dict]:
    """GALOT (GAL-AL joint sampling), GALOT (basic) with ``optimize=False``, or the GAL-only
    baseline with ``use_pool=False``; ``galot_changes`` override the profile's GalotConfig."""
    config = dataclasses.replace(profile.galot, **galot_changes)
    al = al_config(profile, strategy or profile.galot.acquisition, cycles, method=method)
    return run(
        profile,
        pool,
        test,
        seed,
        al,
        generation=galot_generator(profile, pool, test, config),
        use_pool=use_pool,
        extra=galot_fields(config),
        wait=wait,
    )


class ReplayGenerated:
    """A generation hook that hands back, cycle by cycle, the sets another run generated
    (Sec. 4.3: ResNet18's GALOT data reused to train other networks, nothing regenerated)."""

    uses_classifier = False  # the sets are already made: no classifier is trained for them at cycle 0

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
            self._state = load_torch(self.state_path)
        if cycle >= len(self._state["gen_images"]):
            raise ValueError(
                f"run {self.identity} generated for {len(self._state['gen_images'])} cycles, not {cycle + 1}"
            )
        return Generated(
            self._state["gen_images"][cycle],
            self._state["gen_labels"][cycle],
            {"replayed_from": self.identity, "cache_key": self.keys[cycle]},
        )


def run_replay(
    profile: Profile,
    pool: ImageSet,
    test: ImageSet,
    source_records: list[dict],
    seed: int,
    model: str,
    strategy: str = "MarginSampling",
    method: str | None = None,
    wait: bool = True,
    cycles: int | None = None,
) -> list[dict]:
    """Another classifier trained with the generated sets of a finished GALOT run (its first ``cycles``)."""
    cycles = cycles or max(r["cycle"] for r in source_records) + 1
    config = al_config(profile, strategy, cycles, model=model, method=method or model)
    return run(profile, pool, test, seed, config, generation=ReplayGenerated(source_records, seed), wait=wait)


# ----------------------------------------------------------------------------- references
def fully_supervised_folder(profile: Profile, pool: ImageSet, model: str, seed: int) -> Path:
    return dataset_folder(profile, pool) / f"fully-supervised-{slug(model)}" / f"seed{seed}"


def fully_supervised(profile: Profile, pool: ImageSet, test: ImageSet, seed: int = 0, model: str | None = None) -> dict:
    """The classifier trained on the whole pool (Fig. 3's upper line); weights and result cached."""
    model = model or profile.model
    config = dataclasses.replace(
        profile.train,
        epochs=profile.fully_supervised_epochs,
        min_steps=0,
        batch_size=profile.fully_supervised_batch_size,
    )
    folder = fully_supervised_folder(profile, pool, model, seed)
    result_path = folder / "result.json"
    with claimed(folder):
        if result_path.exists():
            return json.loads(result_path.read_text())
        with timed("reference models"):
            trained = fit(
                model, pool.images, pool.labels, pool.num_classes, config, seed=seed_for(seed, Purpose.FULLY_SUPERVISED)
            )
        save_torch(trained.model.state_dict(), folder / "model.pt")
        record = dict(
            method="Fully supervised",
            seed=seed,
            model=model,
            dataset=pool.dataset,
            n_labeled=len(pool),
            n_generated=0,
            epochs=config.epochs,
            config_hash=stable_hash([dataclasses.asdict(config), model, pool.name, len(pool)]),
            accuracy=accuracy(trained.model, test.images, test.labels),
            **provenance(),
        )
        write_json(result_path, record)
        return record


def judge_for(profile: Profile, pool: ImageSet, test: ImageSet):
    """The automatic judge / simulated annotator, loaded once per process: the bundled reference
    classifier on Fashion-MNIST (trained on the generator split), else the fully supervised classifier."""
    from ..learning.models import build_model

    key = (profile.name, pool.dataset)
    if key not in _JUDGES:
        if pool.dataset == "fashion_mnist":
            from ..bundled_model.reference import load_reference

            model = load_reference()
        else:
            fully_supervised(profile, pool, test, seed=0)
            folder = fully_supervised_folder(profile, pool, profile.model, seed=0)
            model = build_model(profile.model, pool.num_classes, in_channels=pool.image_shape[0])
            model.load_state_dict(load_torch(folder / "model.pt"))
        _JUDGES[key] = model.to(default_device()).eval()
    return _JUDGES[key]


def zero_shot_reference(profile: Profile, wait: bool = True) -> dict:
    """What the generator already knows: the text-to-image model as a zero-shot classifier of the first
    ``zero_shot_test_images`` test images (the diffusion classifier behind the label filter, over all classes with
    the GALOT template's prompts): how many it gets right (its interval: ``reporting.analysis.with_wilson_interval``).
    Computed once, beside the runs."""
    from ..generation.label_filters import DIFFUSION_TIMESTEPS, DiffusionZeroShot
    from ..generation.prompts import fill

    pool, test = load_data(profile)
    n = min(profile.zero_shot_test_images, len(test))
    model = t2i_model(profile)
    key = stable_hash(
        dict(
            t2i=model.fingerprint,
            template=profile.galot.template,
            test=test.name,
            test_size=len(test),
            n=n,
            timesteps=DIFFUSION_TIMESTEPS,
        ),
        16,
    )
    folder = dataset_folder(profile, pool) / "zero-shot" / key
    with claimed(folder, wait):
        if (folder / "result.json").exists():
            return json.loads((folder / "result.json").read_text())
        with timed("reference models"):
            classifier = DiffusionZeroShot(
                model, model.encode([fill(profile.galot.template, c) for c in pool.class_names])
            )
            correct = int((classifier.predict(test.images[:n]) == test.labels[:n]).sum())
        record = dict(
            method="T2I model as zero-shot classifier",
            dataset=pool.dataset,
            test_images=n,
            correct=correct,
            accuracy=correct / n,
            t2i=shown_source(profile.t2i_model),
            template=profile.galot.template,
            timesteps=list(classifier.timesteps),
            **provenance(),
        )
        write_json(folder / "result.json", record)
        return record


def run_gaal(
    profile: Profile, pool: ImageSet, test: ImageSet, seed: int, cycles: int | None = None, wait: bool = True
) -> list[dict]:
    """GAAL's row of Table 1 (GAN queries labelled by the simulated annotator)."""
    from ..learning.gaal import GaalConfig, GaalSynthesis, cached_gan

    channels, size, _ = pool.image_shape
    gaal = GaalConfig(gan_steps=profile.gaal_gan_steps, search_steps=profile.gaal_search_steps)
    folder = dataset_folder(profile, pool) / "gaal-gan"
    with claimed(folder, wait), timed("reference models"):  # a grid process moves on while another trains the GAN
        gan = cached_gan(pool.images, gaal, folder)
    synthesis = GaalSynthesis(gan, judge_for(profile, pool, test), gaal, size, channels)
    return run(
        profile,
        pool,
        test,
        seed,
        al_config(profile, "RandomSampling", cycles, method="GAAL"),
        synthesis=synthesis,
        wait=wait,
    )


@dataclass(frozen=True)
class RunJob:
    """One AL run a section needs, described by data, so that it can run here, in another process (the
    grid) or be counted (the plan). Runs with equal jobs are equal; runs with different jobs may still be
    one run (the same identity under another name), which the run folders' claims resolve."""

    kind: str  # "baseline" | "galot" | "gaal" | "replay" | "reference" (the fully supervised classifier) | "judged"
    # (Sec. 4.4's images of the template in galot_changes, rendered for the judge: no AL run, no records) |
    # "zero-shot" (the text-to-image model classifying the test set: notebook W's reference)
    dataset: str
    seed: int
    method: str  # the name in result tables
    strategy: str | None = None  # A_AL (None: the kind's default)
    cycles: int | None = None  # None: the profile's
    use_pool: bool = True  # False: GAL only, no real labels
    galot_changes: tuple[tuple[str, object], ...] = ()  # GalotConfig fields changed from the profile's
    al_changes: tuple[tuple[str, object], ...] = ()  # ALConfig fields changed (model, train)
    source: RunJob | None = None  # replay: the GALOT run whose generated sets another network trains on

    def run(self, profile: Profile, wait: bool = True) -> list[dict]:
        """The run's records (computed, resumed or read back); ClaimedElsewhere when not waiting."""
        pool, test = load_data(profile, self.dataset)
        al, galot = dict(self.al_changes), dict(self.galot_changes)
        if self.kind == "baseline":
            return run_baseline(profile, pool, test, self.strategy, self.seed, self.cycles, self.method, wait, **al)
        if self.kind == "galot":
            return run_galot(
                profile, pool, test, self.seed, self.method, self.cycles, self.use_pool, self.strategy, wait, **galot
            )
        if self.kind == "gaal":
            return run_gaal(profile, pool, test, self.seed, self.cycles, wait)
        if self.kind == "replay":
            source = self.source.run(profile, wait)
            return run_replay(
                profile, pool, test, source, self.seed, al["model"], method=self.method, wait=wait, cycles=self.cycles
            )
        if self.kind == "reference":
            return [fully_supervised(profile, pool, test, self.seed)]
        if self.kind == "judged":
            return render_judged_set(profile, pool, galot["template"], self.seed, wait)
        if self.kind == "zero-shot":
            return [zero_shot_reference(profile, wait)]
        raise ValueError(
            f"unknown run kind {self.kind!r}; valid: baseline, galot, gaal, replay, reference, judged, zero-shot"
        )
