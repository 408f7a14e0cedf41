"""The paper profile rehearsed on a CPU: its stand-ins, written once, outside the real data folders.

The profile ``paper-rehearsal`` (``profiles._paper_rehearsal``) keeps every setting of the paper profile (ResNet18
and Sec. 4.3's four nets with every layer and stride, CIFAR-10 / CIFAR-100 / TinyImageNet at 32 and 64 px through their
loaders, a latent Stable-Diffusion-family model with a CLIP text encoder, PGD with the paper's estimator and eps
schedule, the label filters, the six templates, every study) and replaces what only sets the cost: the data
(fixtures in the official formats, a few images per class), the text-to-image and CLIP weights (tiny random models
saved as folders, ``stand_ins``), step counts, set sizes and the nets' widths (a quarter).
``python -m galot_lib.experiments.rehearsal [FOLDER]`` writes the stand-ins (``./run_all.sh --profile paper
--rehearse`` does, then runs that profile); its runs and results go under its own name, never mixed with a real paper
run's.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from ..core.io import write_json
from ..core.paths import rehearsal_root
from ..generation.prompts import PAPER_TEMPLATE_VARIANTS, PAPER_TEMPLATES

NAME = "paper-rehearsal"
READY = "READY.json"  # written last: a folder without it is incomplete
TRAIN_PER_CLASS, TEST_PER_CLASS = 2, 1  # fixture images per class (the pool and test splits)


def ready_folder() -> Path:
    """The stand-ins' folder (``$GALOT_REHEARSAL_DIR``, else ``~/.cache/galot/rehearsal``), checked to be complete."""
    folder = rehearsal_root()
    if not (folder / READY).is_file():
        raise FileNotFoundError(
            f"the paper profile's rehearsal needs its stand-ins in {folder} ({READY} is missing): write them with "
            f"`python -m galot_lib.experiments.rehearsal {folder}` (./run_all.sh --profile paper --rehearse does)"
        )
    return folder


def write_stand_ins(folder: str | Path) -> Path:
    """The rehearsal's data sets, tiny Stable Diffusion and tiny CLIP under ``folder`` (kept if already complete)."""
    from ..learning.data import load_dataset
    from ..stand_ins.fixture_data import write_all
    from ..stand_ins.tiny_models import prompt_words, save_tiny_clip, save_tiny_sd

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
    p.add_argument("folder", nargs="?", help="default: $GALOT_REHEARSAL_DIR, else ~/.cache/galot/rehearsal")
    args = p.parse_args(argv)
    folder = args.folder or rehearsal_root()
    print("rehearsal stand-ins ready in", write_stand_ins(folder))


if __name__ == "__main__":
    main()
