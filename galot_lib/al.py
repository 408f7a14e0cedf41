"""GALOT's active learning on your own problem: one run, from Python or from the command line.

    from galot_lib import al
    pool = al.image_folder("my_data/train")                  # one subfolder per class; its name is the prompt word
    test = al.image_folder("my_data/test", classes=pool.class_names, size=28, channels=1)
    records = al.run(pool, test, strategy="MarginSampling", generator="bundled", seed=0, out="runs/al")

    python -m galot_lib.al -a MarginSampling -d my_data/train --test my_data/test -s 50 -q 200 -b 50 --seed 0 \\
        --t2i bundled --out runs/al

A run takes its settings from a profile (``profile="embedded"``: the embedded profile's classifier, training recipe,
label budget and GALOT settings; ``"smoke"``: the same at a test's size; ``"paper"``: the paper's), and every argument
given replaces the profile's. With a ``generator`` (the bundled model, a diffusers Stable Diffusion hub id or folder,
or a loaded ``T2IModel``) each cycle adds GALOT's generated, pseudo-labelled images; without one it is the strategy
alone. The classifier is one of ``learning.models.MODELS`` or one of your own (:func:`register_model`). A run lives in
``out/<data set>/<method>-<identity>/seed<k>``: it shows its progress, resumes where it stopped, and its records are
the grid's (one per cycle, with the seed, the settings and the code version).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import pandas as pd
import torch

from .core.io import save_table
from .core.paths import check_output_folder
from .experiments.profiles import PROFILES, get_profile
from .generation.galot import GAL_ACQUISITIONS, GalotConfig
from .learning.custom_models import USER_MODELS, check_classifier, check_strategy_fits, register_model
from .learning.data import DATASETS, ImageSet, load_dataset, load_image_folder, named_by_content, save_image_folder
from .learning.loop import ALConfig, check_budget
from .learning.models import MODELS
from .learning.strategies import STRATEGIES

__all__ = ["image_folder", "image_tensors", "register_model", "run", "save_image_folder", "main"]


def image_folder(root, classes=None, size: int | None = None, channels: int | None = None) -> ImageSet:
    """A labelled image folder (``root/<class>/*.png|jpg``) as a pool or test set; see ``data.load_image_folder``.
    Give the test set the pool's ``classes``, ``size`` and ``channels``, so that its labels and images match."""
    return load_image_folder(root, classes, size, channels, split="images")


def image_tensors(images: torch.Tensor, labels, class_names, name: str) -> ImageSet:
    """Images already in memory (uint8 ``[N, C, H, W]``) with their labels and class words, named ``name`` plus a
    digest of their pixels and labels (the name keys the runs made on them)."""
    return named_by_content(images, torch.as_tensor(labels, dtype=torch.long), class_names, name, "images")


def run(
    pool: ImageSet,
    test: ImageSet,
    strategy: str = "MarginSampling",
    generator=None,
    seed: int = 0,
    out: str | Path = "runs/al",
    profile: str = "embedded",
    model: str | None = None,
    initial_labeled: int | None = None,
    query_size: int | None = None,
    cycles: int | None = None,
    candidates: int | str | None = None,
    galot: GalotConfig | None = None,
    progress: bool = True,
) -> pd.DataFrame:
    """One active-learning run (or its resumption): ``strategy`` queries ``query_size`` labels per cycle after
    ``initial_labeled`` random ones, for ``cycles`` records (the first is the initial set), with ``generator``'s
    GALOT images added each cycle if one is given. GALOT's settings are the profile's (the embedded profile's for the
    bundled model, the paper's for Stable Diffusion, unless ``galot`` is given), its acquisition the strategy's where
    the strategy is differentiable (``generation.galot.GAL_ACQUISITIONS``). ``candidates``: unlabelled images scored
    per query ("all": the whole pool). Every setting is checked before any work; returns the records, one per
    cycle."""
    settings = get_profile(profile)
    config = ALConfig(
        strategy=strategy,
        model=model or settings.model,
        initial_labeled=settings.initial_labeled if initial_labeled is None else initial_labeled,
        query_size=settings.query_size if query_size is None else query_size,
        cycles=settings.cycles if cycles is None else cycles,
        candidates=settings.candidates if candidates is None else None if candidates == "all" else candidates,
        train=settings.train,
        method="GALOT" if generator is not None else None,
    )
    check_data(pool, test)
    check_budget(config, len(pool))
    check_strategy_fits(config.strategy, config.model)
    check_classifier(config.model, pool.num_classes, pool.image_shape)
    out = check_output_folder(Path(out))
    hook, extra = None, {}
    if generator is not None:
        hook, extra = galot_hook(generator, pool, config.strategy, galot, settings)
    from .experiments.runs import run_in_folder

    records = run_in_folder(
        out / pool.dataset, pool, test, seed, config, generation=hook, extra=extra, progress=progress
    )
    return pd.DataFrame(records).assign(model_version=USER_MODELS.get(config.model))


def check_data(pool: ImageSet, test: ImageSet) -> None:
    """The pool and the test set must share their classes (in order) and image shape."""
    if tuple(pool.class_names) != tuple(test.class_names):
        raise ValueError(
            f"the pool's classes {list(pool.class_names)} and the test set's {list(test.class_names)} differ: give "
            "the test set the pool's classes (image_folder(..., classes=pool.class_names))"
        )
    if pool.image_shape != test.image_shape:
        raise ValueError(
            f"the pool's images are {list(pool.image_shape)} and the test set's {list(test.image_shape)}: load the "
            "test set at the pool's size and channels"
        )


def galot_hook(generator, pool: ImageSet, strategy: str, galot: GalotConfig | None, settings):
    """GALOT's generation hook for ``generator`` (name, folder or model) and the settings its records carry; a
    bundled-format model is first checked to know the pool's classes (before any weight loads)."""
    from .experiments.runs import galot_fields
    from .generation.cache import GeneratedCache
    from .generation.generator import GalotGenerator
    from .generation.t2i import T2IModel, bundled_vocabulary, check_known_classes, load_t2i

    name = generator.name if isinstance(generator, T2IModel) else str(generator)
    check_known_classes(pool.class_names, name)
    if galot is None:
        galot = settings.galot if bundled_vocabulary(name) is not None else get_profile("paper").galot
        if strategy in GAL_ACQUISITIONS:
            galot = dataclasses.replace(galot, acquisition=strategy)
    t2i = generator if isinstance(generator, T2IModel) else load_t2i(name)
    channels, size, _ = pool.image_shape
    hook = GalotGenerator(
        t2i,
        pool.class_names,
        galot,
        size,
        channels,
        GeneratedCache(),
        memory_budget_gb=settings.memory_budget_gb,
        max_batch=settings.max_batch,
    )
    return hook, dict(galot_fields(galot), t2i=name)


def load_named_or_folder(data: str, test: str | None, size: int | None, channels: int | None):
    """(pool, test) for the command line: a data set's pool and test splits by name, or two image folders."""
    if data in DATASETS:
        if test is not None:
            raise ValueError(f"-d {data} is a data set with its own test split: leave --test out")
        return load_dataset(data, "pool"), load_dataset(data, "test")
    if not Path(data).is_dir():
        raise ValueError(f"-d {data!r} is neither a data set ({', '.join(DATASETS)}) nor a folder of class subfolders")
    if test is None:
        raise ValueError(f"-d {data} is an image folder: give its test folder with --test (the same class subfolders)")
    pool = image_folder(data, size=size, channels=channels)
    channels_, size_, _ = pool.image_shape
    return pool, image_folder(test, classes=pool.class_names, size=size_, channels=channels_)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m galot_lib.al",
        description="One active-learning run, with or without GALOT's generated images (records as the grid's).",
    )
    p.add_argument(
        "-a",
        "--strategy",
        default="MarginSampling",
        choices=list(STRATEGIES),
        metavar="STRATEGY",
        help=f"the query strategy ({', '.join(STRATEGIES)})",
    )
    p.add_argument(
        "-d",
        "--data",
        required=True,
        help=f"a data set ({', '.join(DATASETS)}: its pool and test splits) or a folder of class subfolders",
    )
    p.add_argument("--test", help="the test folder, when -d is a folder (the same class subfolders)")
    p.add_argument("-s", "--initial", type=int, help="labels drawn at random before the first query")
    p.add_argument("-q", "--quota", type=int, help="labels the strategy queries in all (a multiple of -b)")
    p.add_argument("-b", "--batch", type=int, help="labels queried per cycle")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument(
        "--candidates",
        type=lambda v: v if v == "all" else int(v),
        help="unlabelled images scored per query: a number, or all (the whole pool; default: the profile's)",
    )
    p.add_argument("-m", "--model", help="the classifier (default: the profile's; one of the project's, see MODELS)")
    p.add_argument(
        "--t2i",
        default="none",
        help="GALOT's text-to-image model: none (the strategy alone), bundled, a Stable Diffusion hub id or folder",
    )
    p.add_argument(
        "--profile", default="embedded", choices=sorted(PROFILES), help="where the settings not given come from"
    )
    p.add_argument("--size", type=int, help="image size of a folder's images (default: its first image's width)")
    p.add_argument("--channels", type=int, choices=(1, 3), help="1 or 3 (default: 1 if every image is greyscale)")
    p.add_argument("--out", default="runs/al", help="the runs' folder; the records go to <out>/records-*.csv")
    return p


def cycles_from(quota: int | None, batch: int | None, settings) -> tuple[int | None, int | None]:
    """(cycles, query size) from the peers' quota and batch: quota / batch queries after the initial set."""
    if quota is None and batch is None:
        return None, None
    batch = settings.query_size if batch is None else batch
    quota = batch * (settings.cycles - 1) if quota is None else quota
    if batch < 1 or quota < 1:
        raise ValueError(f"-b (batch, {batch}) and -q (quota, {quota}) must be >= 1")
    if quota % batch:
        raise ValueError(f"-q (quota, {quota}) must be a multiple of -b (batch, {batch}): cycles query whole batches")
    return quota // batch + 1, batch


def main(argv=None) -> int:
    args = parser().parse_args(argv)
    try:
        if args.model is not None and args.model not in MODELS:
            raise ValueError(f"unknown model {args.model!r}; valid names: {', '.join(MODELS)}")
        if args.initial is not None and args.initial < 1:
            raise ValueError(f"-s (initial labels) must be >= 1, got {args.initial}")
        cycles, batch = cycles_from(args.quota, args.batch, get_profile(args.profile))
        generator = None if args.t2i == "none" else args.t2i
        check_output_folder(Path(args.out))
        pool, test = load_named_or_folder(args.data, args.test, args.size, args.channels)
        records = run(
            pool,
            test,
            strategy=args.strategy,
            generator=generator,
            seed=args.seed,
            out=args.out,
            profile=args.profile,
            model=args.model,
            initial_labeled=args.initial,
            query_size=batch,
            cycles=cycles,
            candidates=args.candidates,
        )
    except (ValueError, FileNotFoundError) as err:
        print(f"python -m galot_lib.al: error: {err}", file=sys.stderr)
        return 2
    method = records["method"].iloc[0]
    path = Path(args.out) / f"records-{pool.dataset}-{method}-seed{args.seed}.csv"
    save_table(records, path, index=False)
    print(records[["method", "seed", "cycle", "n_labeled", "n_generated", "accuracy"]].to_string(index=False))
    print(f"records: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
