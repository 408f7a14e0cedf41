"""Pool-based active learning cycles, with a hook where generated data join the training set.

One record (a dict) per cycle: method, seed, cycle, n_labeled, n_generated, accuracy, timings,
and a hash of the configuration. After every cycle the run's state (records, labelled indices,
generated data, classifier weights) is written atomically, so an interrupted run resumes where
it stopped and gives the same records as an uninterrupted one (timings aside).

Cycle k (k = 0..cycles-1), as in the paper's tables (the first column is the initial set):
  k > 0: the strategy queries ``query_size`` pool images with the previous cycle's classifier,
         and their true labels are revealed (simulated annotation); or, with a ``synthesis``
         hook (membership-query synthesis, e.g. GAAL), ``query_size`` synthesised images are
         labelled by an oracle and count as labels;
  then:  the generation hook, if any, adds pseudo-labelled images (GALOT fills it);
  then:  a classifier is trained from scratch on labelled + generated data and evaluated.
"""

from __future__ import annotations

import dataclasses
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Protocol

import numpy as np
import torch

from ..core import timing
from ..core.claims import claimed, holder
from ..core.device import default_device
from ..core.hashing import stable_hash
from ..core.io import load_torch, save_torch, write_json
from ..core.progress import tqdm
from ..core.provenance import provenance
from ..core.seeds import Purpose, seed_for
from .custom_models import model_key
from .data import ImageSet
from .generated import Generated
from .models import MODELS
from .strategies import STRATEGIES, PoolView, get_strategy
from .train import TrainConfig, Trained, accuracy, fit, infer, mc_dropout_probs


@dataclass(frozen=True)
class ALConfig:
    """One active-learning run: what is queried, how, and how the classifier is trained (defaults:
    the embedded profile's)."""

    strategy: str = "MarginSampling"  # A_AL, a name from strategies.STRATEGIES
    model: str = "SmallCNN"
    initial_labeled: int = 50
    query_size: int = 50  # n_AL per cycle
    cycles: int = 5  # records; the first is the initial set
    mc_passes: int = 10  # for BALD, MeanSTD, VarRatio
    candidates: int | None = 10_000  # score a random subset of the unlabelled pool each cycle (None: all)
    train: TrainConfig = field(default_factory=TrainConfig)
    method: str | None = None  # the name in result tables; defaults to the strategy

    def __post_init__(self):
        if self.strategy not in STRATEGIES:
            raise ValueError(f"unknown strategy {self.strategy!r}; valid names: {', '.join(STRATEGIES)}")
        if self.model not in MODELS:
            raise ValueError(f"unknown model {self.model!r}; valid names: {', '.join(MODELS)}")
        for name in ("initial_labeled", "cycles", "mc_passes"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.query_size < 0:
            raise ValueError(f"query_size must be >= 0, got {self.query_size}")
        if self.candidates is not None and self.candidates < self.query_size:
            raise ValueError(f"candidates ({self.candidates}) must be >= query_size ({self.query_size}) or None")

    @property
    def label(self) -> str:
        return self.method or self.strategy

    def labels_at(self, cycle):
        """|L| at ``cycle`` as planned: the initial set plus a query per cycle (also the x of a GAL-only run, which
        labels nothing, and the size of GALOT's generated set). Works on arrays of cycles too."""
        return self.initial_labeled + cycle * self.query_size

    @property
    def total_labels(self) -> int:
        return self.labels_at(self.cycles - 1)

    def as_dict(self) -> dict:
        return dataclasses.asdict(self)


class QuerySynthesis(Protocol):
    """Membership-query synthesis: makes ``n`` query images and has an oracle label them."""

    def __call__(self, cycle: int, classifier: Trained, n: int, seed: int) -> Generated: ...

    def describe(self) -> dict: ...


class GenerationHook(Protocol):
    """Called once per cycle; returns the images to add (GALOT, GAL-only, GALOT basic...). A hook whose
    ``uses_classifier`` is False (replaying another run's sets) is handed None at cycle 0 instead of a
    classifier trained for it; without the attribute it gets one."""

    def __call__(self, cycle: int, classifier: Trained, n_labeled: int, seed: int) -> Generated:
        """n_labeled: |L| at this cycle as planned (GAL-only runs, which label nothing, use it too).
        ``classifier`` is None when nothing has been trained yet (cycle 0 of a GAL-only run)."""

    def describe(self) -> dict: ...


def run_identity(config: ALConfig, pool: ImageSet, generation=None, synthesis=None, use_pool: bool = True) -> str:
    """Hash of everything that decides a run's results (not its display name, nor its length: a run of
    fewer cycles is the prefix of a longer one): runs with the same identity are the same run, so
    different notebooks share its cycles instead of recomputing them."""
    settings = {k: v for k, v in config.as_dict().items() if k not in ("method", "cycles")}
    settings["model"] = model_key(config.model)  # a classifier of your own with its version
    return stable_hash(
        [
            settings,
            generation.describe() if generation else None,
            synthesis.describe() if synthesis else None,
            use_pool,
            pool.name,
            len(pool),
        ]
    )


def check_budget(config: ALConfig, pool_size: int):
    if config.total_labels > pool_size:
        raise ValueError(
            f"the run needs {config.total_labels} labels (initial {config.initial_labeled} + "
            f"{config.cycles - 1} cycles x {config.query_size}) but the pool holds only {pool_size} images"
        )


def initial_indices(pool_size: int, n: int, seed: int) -> np.ndarray:
    """The random initial labelled set: shared by every method run with the same seed."""
    rng = np.random.default_rng(seed_for(seed, Purpose.INITIAL_LABELS))
    return np.sort(rng.choice(pool_size, size=n, replace=False))


def pool_view(
    trained: Trained,
    images: torch.Tensor,
    labeled_images: torch.Tensor,
    needs: frozenset[str],
    mc_passes: int,
    seed: int,
    mixed_precision: bool = True,
) -> PoolView:
    """Compute exactly what the strategy needs from the classifier (one pass, plus MC if asked)."""
    view = PoolView(num_candidates=len(images))
    if needs & {"probs", "embeddings", "predicted_loss"}:
        out = infer(trained, images, mixed_precision=mixed_precision)
        view.probs, view.embeddings = out["probs"], out["embeddings"]
        view.predicted_loss = out.get("predicted_loss")
    if "labeled_embeddings" in needs:
        view.labeled_embeddings = infer(trained, labeled_images, mixed_precision=mixed_precision)["embeddings"]
    if "mc_probs" in needs:
        view.mc_probs = mc_dropout_probs(trained.model, images, mc_passes, seed, mixed_precision=mixed_precision)
    return view


class RunState:
    """What a run has done so far, saved atomically after every cycle."""

    def __init__(self, path: Path | None):
        self.path = path
        self.records: list[dict] = []
        self.labeled: np.ndarray | None = None
        self.gen_images: list[torch.Tensor] = []
        self.gen_labels: list[torch.Tensor] = []
        self.synth_images: list[torch.Tensor] = []  # synthesised queries, labelled by an oracle
        self.synth_labels: list[torch.Tensor] = []
        self.model_state: dict | None = None
        self.loss_head_state: dict | None = None

    def load(self, expected_hash: str) -> bool:
        if self.path is None or not self.path.exists():
            return False
        state = load_torch(self.path)
        if state["config_hash"] != expected_hash:
            raise ValueError(
                f"{self.path} belongs to another configuration ({state['config_hash']} != {expected_hash}); "
                "delete it or choose another run directory"
            )
        self.records, self.labeled = state["records"], state["labeled"]
        self.gen_images, self.gen_labels = state["gen_images"], state["gen_labels"]
        self.synth_images, self.synth_labels = state["synth_images"], state["synth_labels"]
        self.model_state, self.loss_head_state = state["model_state"], state["loss_head_state"]
        return True

    @property
    def n_labeled(self) -> int:
        return len(self.labeled) + sum(len(l) for l in self.synth_labels)

    def save(self, config_hash_: str):
        if self.path is None:
            return
        save_torch(
            dict(
                config_hash=config_hash_,
                records=self.records,
                labeled=self.labeled,
                gen_images=self.gen_images,
                gen_labels=self.gen_labels,
                synth_images=self.synth_images,
                synth_labels=self.synth_labels,
                model_state=self.model_state,
                loss_head_state=self.loss_head_state,
            ),
            self.path,
        )
        write_json(self.path.with_name("records.json"), self.records)


def restore(trained_like: Trained, model_state: dict, loss_head_state: dict | None) -> Trained:
    device = default_device()
    trained_like.model.load_state_dict(model_state)
    trained_like.model.to(device, memory_format=torch.channels_last).eval()
    if trained_like.loss_head is not None:
        trained_like.loss_head.load_state_dict(loss_head_state)
        trained_like.loss_head.to(device).eval()
    return trained_like


def run_active_learning(
    config: ALConfig,
    pool: ImageSet,
    test: ImageSet,
    seed: int,
    run_dir: str | Path | None = None,
    generation: GenerationHook | None = None,
    synthesis: QuerySynthesis | None = None,
    use_pool: bool = True,
    extra_record: dict | None = None,
    progress: bool = True,
    shared_dir: str | Path | None = None,
) -> list[dict]:
    """Run (or resume) one active-learning run and return its records, one per cycle.

    ``use_pool=False`` trains on generated data only (the paper's GAL baseline, Fig. 3): no
    real label is ever used, the records' n_labeled is 0. ``shared_dir``: where runs share the
    classifier of the initial labelled set (see :func:`initial_classifier`).
    """
    strategy = get_strategy(config.strategy)
    check_budget(config, len(pool))
    if pool.image_shape != test.image_shape or pool.num_classes != test.num_classes:
        raise ValueError(
            f"pool {pool.image_shape}/{pool.num_classes} classes and test {test.image_shape}/"
            f"{test.num_classes} classes differ"
        )
    if not use_pool and generation is None:
        raise ValueError("use_pool=False needs a generation hook: there would be nothing to train on")
    chash = run_identity(config, pool, generation, synthesis, use_pool)
    state = RunState(Path(run_dir) / "state.pt" if run_dir is not None else None)
    resumed = state.load(chash)
    if not resumed:
        state.labeled = initial_indices(len(pool), config.initial_labeled, seed) if use_pool else np.zeros(0, np.int64)
    needs_loss_head = "predicted_loss" in strategy.needs
    trained: Trained | None = None
    if resumed and state.records:
        trained = restore(_untrained(config, pool, needs_loss_head), state.model_state, state.loss_head_state)
    base = dict(
        method=config.label,
        seed=seed,
        dataset=pool.dataset,
        model=config.model,
        strategy=config.strategy if use_pool and synthesis is None else None,
        config_hash=chash,
        **provenance(),
        **(extra_record or {}),
    )
    bar = tqdm(
        range(config.cycles),
        desc=f"{config.label} seed {seed}",
        disable=not progress,
        leave=False,
        initial=min(len(state.records), config.cycles),
    )
    for cycle in range(len(state.records), config.cycles):  # Alg. 1, one cycle
        computed_at = datetime.now(timezone.utc).isoformat(timespec="seconds")  # with computed_by: who, and when
        clock = CycleClock()
        with clock.step("query", "query"):
            if cycle > 0 and use_pool and config.query_size > 0:
                annotate(config, strategy, synthesis, trained, pool, state, seed, cycle)
        info = {}
        if generation is not None:
            if trained is None and len(state.labeled) and getattr(generation, "uses_classifier", True):
                with clock.step("train", "training"):  # cycle 0: the classifier GALOT's PGD optimises against
                    trained = train_on(config, pool, state, seed, cycle, needs_loss_head, shared_dir)
            with clock.step("generate", "generation"):
                batch = generation(cycle, trained, config.labels_at(cycle), seed_for(seed, cycle, Purpose.GENERATION))
            state.gen_images.append(batch.images)
            state.gen_labels.append(batch.labels)
            info = batch.info
            if not info.get("cache_hit"):  # the held-out measurement inside generation is judging, not generating
                clock.reattribute(float(info.get("heldout_s", 0.0)), "generation", "judging")
        with clock.step("train", "training"):
            trained = train_on(config, pool, state, seed, cycle, needs_loss_head, shared_dir)
        with clock.step("eval", "evaluation"):
            acc = accuracy(trained.model, test.images, test.labels, mixed_precision=config.train.mixed_precision)
        n_gen = sum(len(l) for l in state.gen_labels)
        state.records.append(
            dict(
                base,
                cycle=cycle,
                n_labeled=state.n_labeled,
                n_generated=n_gen,
                accuracy=acc,
                **clock.record_fields(),
                computed_at=computed_at,
                computed_by=holder(),
                threads=torch.get_num_threads(),
                **info,
            )
        )
        state.model_state = trained.model.state_dict()
        state.loss_head_state = trained.loss_head.state_dict() if trained.loss_head is not None else None
        state.save(chash)
        bar.update(1)
        bar.set_postfix(acc=f"{acc:.3f}", labels=state.n_labeled, generated=n_gen)
    bar.close()
    return [dict(r, method=config.label, **(extra_record or {})) for r in state.records[: config.cycles]]


class CycleClock:
    """The one way a cycle is timed: every step's seconds go both to the record (``query_s``, ``generate_s``,
    ``train_s``, ``eval_s``) and to the process's ledger (its phase, ``core.timing``)."""

    FIELDS = ("query", "generate", "train", "eval")

    def __init__(self):
        self.seconds = dict.fromkeys(self.FIELDS, 0.0)

    @contextmanager
    def step(self, field: str, phase: str):
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.seconds[field] += elapsed
            timing.add(phase, elapsed)

    def reattribute(self, seconds: float, from_phase: str, to_phase: str):
        """Seconds a step spent on another phase's work (the record keeps them in the step)."""
        timing.add(from_phase, -seconds)
        timing.add(to_phase, seconds)

    def record_fields(self) -> dict:
        return {f"{field}_s": round(seconds, 3) for field, seconds in self.seconds.items()}


def annotate(
    config: ALConfig, strategy, synthesis, trained: Trained, pool: ImageSet, state: RunState, seed: int, cycle: int
):
    """Alg. 1's query and annotation: the strategy's picks from the pool get their true labels, or, with a
    synthesis hook (GAAL), ``query_size`` synthesised images are labelled by its oracle."""
    if synthesis is not None:
        batch = synthesis(cycle, trained, config.query_size, seed_for(seed, cycle, Purpose.QUERY, 2))
        state.synth_images.append(batch.images)
        state.synth_labels.append(batch.labels)
    else:
        picked = query(strategy, config, trained, pool, state.labeled, seed, cycle)
        state.labeled = np.sort(np.concatenate([state.labeled, picked]))


def _untrained(config: ALConfig, pool: ImageSet, loss_head: bool) -> Trained:
    from .models import LossPredictionHead, build_model

    model = build_model(config.model, pool.num_classes, in_channels=pool.image_shape[0], dropout=config.train.dropout)
    return Trained(model, LossPredictionHead(model.stage_channels) if loss_head else None)


def train_on(
    config: ALConfig,
    pool: ImageSet,
    state: RunState,
    seed: int,
    cycle: int,
    loss_head: bool,
    shared_dir: str | Path | None = None,
) -> Trained:
    """Train from scratch on the labelled pool images plus everything generated or synthesised so far (the
    initial labelled set alone: the shared :func:`initial_classifier`)."""
    if cycle == 0 and not state.gen_images and not state.synth_images and len(state.labeled):
        return initial_classifier(config, pool, seed, loss_head, shared_dir)
    images = [pool.images[torch.as_tensor(state.labeled, dtype=torch.long)]] + state.synth_images + state.gen_images
    labels = [pool.labels[torch.as_tensor(state.labeled, dtype=torch.long)]] + state.synth_labels + state.gen_labels
    return fit(
        config.model,
        torch.cat(images),
        torch.cat(labels),
        pool.num_classes,
        config.train,
        seed=training_seed(seed, cycle),
        loss_prediction=loss_head,
    )


def initial_classifier(
    config: ALConfig, pool: ImageSet, seed: int, loss_head: bool = False, shared_dir: str | Path | None = None
) -> Trained:
    """The classifier trained on a seed's initial labelled set alone. Every run of the seed that trains the same
    model the same way starts from this one (every pool strategy's first cycle, the classifier GALOT's cycle-0
    PGD optimises against, GAAL's first cycle), so with ``shared_dir`` it is trained once, by whichever run
    needs it first, and read back by the others. The key holds everything that decides its weights, the
    thread count included (float sums depend on it)."""
    labeled = initial_indices(len(pool), config.initial_labeled, seed)
    idx = torch.as_tensor(labeled, dtype=torch.long)

    def train() -> Trained:
        return fit(
            config.model,
            pool.images[idx],
            pool.labels[idx],
            pool.num_classes,
            config.train,
            seed=training_seed(seed, 0),
            loss_prediction=loss_head,
        )

    if shared_dir is None:
        return train()
    key = stable_hash(
        [
            model_key(config.model),
            dataclasses.asdict(config.train),
            pool.name,
            len(pool),
            labeled.tolist(),
            seed,
            loss_head,
            torch.get_num_threads(),
            str(default_device()),
        ]
    )
    folder = Path(shared_dir) / key
    path = folder / "classifier.pt"
    with claimed(folder):
        if path.exists():
            saved = load_torch(path)
            return restore(_untrained(config, pool, loss_head), saved["model"], saved["loss_head"])
        trained = train()
        save_torch(
            dict(
                model=trained.model.state_dict(),
                loss_head=trained.loss_head.state_dict() if trained.loss_head is not None else None,
            ),
            path,
        )
        return trained


def training_seed(seed: int, cycle: int) -> int:
    """The seed of a cycle's classifier (cycle 0's before generation is the same: the initial classifier). The
    trailing 0 keeps the seeds the runs had when a second classifier per cycle had its own."""
    return seed_for(seed, cycle, Purpose.TRAINING, 0)


def query(
    strategy, config: ALConfig, trained: Trained, pool: ImageSet, labeled: np.ndarray, seed: int, cycle: int
) -> np.ndarray:
    """Indices (into the pool) of the images the strategy asks to be annotated."""
    unlabeled = np.setdiff1d(np.arange(len(pool)), labeled)
    rng = np.random.default_rng(seed_for(seed, cycle, Purpose.QUERY))
    if config.candidates is not None and config.candidates < len(unlabeled):
        unlabeled = np.sort(rng.choice(unlabeled, size=config.candidates, replace=False))
    n = min(config.query_size, len(unlabeled))
    cand_images = pool.images[torch.as_tensor(unlabeled, dtype=torch.long)]
    lab_images = pool.images[torch.as_tensor(labeled, dtype=torch.long)]
    view = pool_view(
        trained,
        cand_images,
        lab_images,
        strategy.needs,
        config.mc_passes,
        seed_for(seed, cycle, Purpose.MC_DROPOUT),
        config.train.mixed_precision,
    )
    picks = strategy.select(view, n, torch.Generator().manual_seed(seed_for(seed, cycle, Purpose.QUERY, 1)))
    return unlabeled[np.asarray(picks)]
