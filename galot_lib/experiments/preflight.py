"""What a profile's sections need before any work starts: its data files, its text-to-image weights, its CLIP
weights, each named with where to put it when missing.

    python -m galot_lib.experiments.preflight --profile paper [--only 4.1]   # run_all.sh runs it before the grid

A paper run without CIFAR-10 used to set up, start papermill and stop inside a notebook; this stops at once, before the
grid, naming every missing file or model together. It checks the files' presence (not their contents: the loaders
check those, naming a truncated or malformed file). A hub id whose weights are not in the Hugging Face cache is
downloaded at its first load, unless ``HF_HUB_OFFLINE`` is set, which makes it missing.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from ..core.paths import data_root
from ..learning.data import DEBIAN_FASHION_MNIST, FASHION_MNIST_FILES
from ..learning.formats import CIFAR_FILES, CIFAR_FOLDERS, TINY_FOLDER, cifar_how_to_get, tiny_how_to_get
from .profiles import PROFILES, Profile, get_profile
from .sections import SECTIONS

SECTIONS_WITHOUT_T2I = ("4.3",)  # Sec. 4.3 replays generated sets: it needs the data, not the generator


def datasets_needed(profile: Profile, sections) -> list[str]:
    names = list(profile.table1_datasets) if "4.1" in sections else []
    if set(sections) - {"4.1"}:
        names.append(profile.dataset)
    return list(dict.fromkeys(names))


def missing_data(name: str, root: Path) -> str | None:
    """What of data set ``name`` is missing under ``root``, and how to get it (None: complete)."""
    if name == "fashion_mnist":
        raw = root / "FashionMNIST" / "raw"
        absent = [
            f for f in FASHION_MNIST_FILES if not (raw / f).exists() and not (DEBIAN_FASHION_MNIST / f"{f}.gz").exists()
        ]
        return (
            f"Fashion-MNIST files {absent} are neither in {raw} nor in {DEBIAN_FASHION_MNIST}: `apt-get install "
            "dataset-fashion-mnist`, or `python -m galot_lib.learning.data --download` (needs internet)"
            if absent
            else None
        )
    if name in ("cifar10", "cifar100"):
        classes = 10 if name == "cifar10" else 100
        folder = root / CIFAR_FOLDERS[classes]
        files = CIFAR_FILES[classes]
        absent = [f for f in [*files["pool"], *files["test"], files["meta"]] if not (folder / f).is_file()]
        return f"{name}: {absent} missing in {folder}; {cifar_how_to_get(classes, root)}" if absent else None
    base = root / TINY_FOLDER
    absent = [p for p in ("wnids.txt", "words.txt", "train", "val/val_annotations.txt") if not (base / p).exists()]
    return f"tiny_imagenet: {absent} missing in {base}; {tiny_how_to_get(root)}" if absent else None


def missing_model(name: str, what: str) -> str | None:
    """A model folder that does not exist, or a hub id neither cached nor downloadable (offline)."""
    if name == "bundled":
        from ..bundled_model import WEIGHTS_DIR

        return (
            None if (WEIGHTS_DIR / "galot_bundled.json").is_file() else f"the bundled model's weights in {WEIGHTS_DIR}"
        )
    path = Path(name).expanduser()
    if path.is_dir() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        return None if path.is_dir() else f"{what}: the folder {path} does not exist"
    from huggingface_hub import try_to_load_from_cache

    index = "model_index.json" if what == "the text-to-image model" else "config.json"
    if isinstance(try_to_load_from_cache(name, index), str) or not os.environ.get("HF_HUB_OFFLINE"):
        return None  # cached, or downloaded at its first load
    return (
        f"{what}: {name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: download it once "
        f"(`huggingface-cli download {name}`) or give a local folder"
    )


def problems(profile: Profile, sections) -> list[str]:
    """Every missing input of ``sections`` on ``profile``, one line each (empty: ready)."""
    root = Path(profile.data_dir) if profile.data_dir else data_root()
    found = [missing_data(name, root) for name in datasets_needed(profile, sections)]
    if set(sections) - set(SECTIONS_WITHOUT_T2I):
        found.append(missing_model(profile.t2i_model, "the text-to-image model"))
    if "4.5" in sections:
        clips = {dict(changes).get("clip_model") for _, changes in profile.label_options} - {None}
        found += [missing_model(clip, "the CLIP filter's weights") for clip in sorted(clips)]
    return [p for p in found if p]


def main(argv=None):
    p = argparse.ArgumentParser(description="check that a profile's data and weights are in place, before any work")
    p.add_argument("--profile", default="default", choices=["default", *PROFILES])
    p.add_argument("--only", choices=list(SECTIONS))
    args = p.parse_args(argv)
    profile = get_profile(args.profile)
    sections = [args.only] if args.only else list(SECTIONS)
    found = problems(profile, sections)
    if found:
        print(
            f"run_all.sh: the {profile.name} profile cannot start; missing:",
            *(f"  - {x}" for x in found),
            sep="\n",
            file=sys.stderr,
        )
        raise SystemExit(2)


if __name__ == "__main__":
    main()
