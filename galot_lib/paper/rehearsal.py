"""The paper profile rehearsed on a CPU: the same fields and code, with only sizes, weights and paths replaced.

``rehearse(paper, folder)`` keeps every setting of the paper profile (ResNet18 and Sec. 4.3's four nets at full
architecture, CIFAR-10 / CIFAR-100 / TinyImageNet at 32 and 64 px through their loaders, a latent
Stable-Diffusion-family model with a CLIP text encoder, PGD with the paper's estimator and eps schedule, the
label filters, the six templates, every study) and replaces what only sets the cost: the data (fixtures in the
official formats, a few images per class), the text-to-image and CLIP weights (tiny random models saved as
folders), step counts and set sizes. ``$GALOT_REHEARSAL_DIR`` switches it on (``./run_all.sh --profile paper
--rehearse``); ``python -m galot_lib.paper.rehearsal`` writes the stand-ins. The runs and results go under the
profile name ``paper-rehearsal``, never mixed with a real paper run's.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
from pathlib import Path

from ..core.io import write_json
from ..core.paths import rehearsal_root
from ..generation.prompts import PAPER_TEMPLATE_VARIANTS, PAPER_TEMPLATES
from .profiles import Profile, estimator_options

NAME = "paper-rehearsal"
READY = "READY.json"  # written last: a folder without it is incomplete
TRAIN_PER_CLASS, TEST_PER_CLASS = 2, 1  # fixture images per class (the pool and test splits)


def rehearse(profile: Profile, folder: str | Path) -> Profile:
    """``profile`` with the stand-ins of ``folder`` and step counts / set sizes cut to a few (README lists them)."""
    folder = Path(folder)
    steps = 2  # sampling steps (the paper: 25)
    cycles = 2
    clip = str(folder / "clip")
    label_options = tuple(
        (name, tuple((k, clip if k == "clip_model" else v) for k, v in changes))
        for name, changes in profile.label_options
    )
    return dataclasses.replace(
        profile,
        name=NAME,
        data_dir=str(folder / "data"),
        t2i_model=str(folder / "sd"),
        label_options=label_options,
        seeds=profile.seeds[:1],
        baseline_seeds=profile.baseline_seeds[:1],
        study_seeds=profile.study_seeds[:1],
        ablation_seeds=profile.ablation_seeds[:1],
        choice_seeds=profile.choice_seeds[:1],
        zero_shot_test_images=10,
        cycles=cycles,
        transfer_cycles=cycles,
        ablation_cycles=cycles,
        pool_size=20,
        test_size=10,
        initial_labeled=10,
        query_size=10,
        train=dataclasses.replace(profile.train, epochs=1),
        galot=dataclasses.replace(
            profile.galot,
            pgd_steps=1,
            grad_samples=1,
            sampling_steps=steps,
            heldout_samples=1,
            eps=dataclasses.replace(profile.galot.eps, cycles=cycles),
        ),
        estimator_options=estimator_options(steps),
        fig4_per_class=1,
        fully_supervised_epochs=1,
        gaal_gan_steps=2,
        gaal_search_steps=2,
    )


def active_rehearsal() -> Path | None:
    """The stand-ins' folder when ``$GALOT_REHEARSAL_DIR`` is set (checked to be complete), else None."""
    folder = rehearsal_root()
    if folder is None:
        return None
    if not (folder / READY).is_file():
        raise FileNotFoundError(
            f"$GALOT_REHEARSAL_DIR={os.environ.get('GALOT_REHEARSAL_DIR')!r} holds no complete "
            f"rehearsal ({folder / READY} is missing): write it with "
            f"`python -m galot_lib.paper.rehearsal {folder}`, or unset GALOT_REHEARSAL_DIR"
        )
    return folder


def write_stand_ins(folder: str | Path) -> Path:
    """The rehearsal's data sets, tiny Stable Diffusion and tiny CLIP under ``folder`` (kept if already complete)."""
    from ..generation.tiny_models import prompt_words, save_tiny_clip, save_tiny_sd
    from ..learning.data import load_dataset
    from ..learning.fixture_data import write_all

    folder = Path(folder)
    if (folder / READY).is_file():
        return folder
    write_all(folder / "data", TRAIN_PER_CLASS, TEST_PER_CLASS)
    names = [
        n
        for d in ("cifar10", "cifar100", "tiny_imagenet")
        for n in load_dataset(d, "test", folder / "data").class_names
    ]
    words = prompt_words([*PAPER_TEMPLATES, *PAPER_TEMPLATE_VARIANTS, *names])
    save_tiny_sd(folder / "sd", words)
    save_tiny_clip(folder / "clip", words)
    write_json(
        folder / READY,
        dict(
            data=["cifar10", "cifar100", "tiny_imagenet"],
            train_per_class=TRAIN_PER_CLASS,
            test_per_class=TEST_PER_CLASS,
            t2i="sd",
            clip="clip",
        ),
    )
    return folder


def main(argv=None):
    p = argparse.ArgumentParser(description="write the paper profile's rehearsal stand-ins (data, tiny SD, tiny CLIP)")
    p.add_argument("folder", nargs="?", help="default: $GALOT_REHEARSAL_DIR")
    args = p.parse_args(argv)
    folder = args.folder or rehearsal_root()
    if folder is None:
        raise SystemExit("give a folder, or set GALOT_REHEARSAL_DIR")
    print("rehearsal stand-ins ready in", write_stand_ins(folder))


if __name__ == "__main__":
    main()
