"""What a profile's sections need before any work starts: its data files, its text-to-image weights, its CLIP
weights, each named with where to put it when missing.

    python -m galot_lib.experiments.preflight --profile paper [--only 4.1]   # run_all.sh runs it before the grid

A paper run without CIFAR-10 used to set up, start papermill and stop inside a notebook; this stops at once, before the
grid, naming every missing file or model together, for the run the settings make (``--set FIELD VALUE``, as the grid
and the notebooks read them: a CIFAR-10-only run needs CIFAR-10 only). It checks the files' presence (not their
contents: the loaders check those, naming a truncated or malformed file). A hub id not in the Hugging Face cache is
missing when ``HF_HUB_OFFLINE`` is on; online, the hub's file list must hold the model's index and its components'
weights (asked once; nothing is downloaded here). The folders a run writes must be writable.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import tempfile
from pathlib import Path

from ..core.paths import data_root
from ..learning.data import DEBIAN_FASHION_MNIST, FASHION_MNIST_FILES
from ..learning.formats import CIFAR_FILES, CIFAR_FOLDERS, TINY_FOLDER, cifar_how_to_get, tiny_how_to_get
from .profiles import PROFILES, Profile, get_profile
from .registry import REGISTRY, SECTIONS


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


# the files a diffusers Stable Diffusion folder must hold to load (weights in safetensors or torch's format, fp16 or not)
SD_COMPONENTS = ("unet", "vae", "text_encoder")
WEIGHT_NAMES = ("diffusion_pytorch_model", "model")
WEIGHT_SUFFIXES = (".safetensors", ".fp16.safetensors", ".bin", ".fp16.bin")


def hub_offline() -> bool:
    """``HF_HUB_OFFLINE`` as huggingface_hub reads it: "1", "ON", "YES" or "TRUE" (any case); "0" is online."""
    return os.environ.get("HF_HUB_OFFLINE", "").upper() in {"1", "ON", "YES", "TRUE"}


def fetch_command(name: str) -> str:
    """The command that fetches a hub id into the cache, with the huggingface_hub this project installs."""
    return f"`hf download {name}`"


def incomplete(files: set[str], what: str) -> list[str]:
    """What a text-to-image repo or folder lacks of its index and its components' weights (a CLIP repo: its config and
    weights)."""
    if what != "the text-to-image model":
        weights = any(
            f.startswith("model") and f.endswith(WEIGHT_SUFFIXES) or f.endswith("pytorch_model.bin") for f in files
        )
        return [f for f, ok in (("config.json", "config.json" in files), ("weights", weights)) if not ok]
    lacking = [] if "model_index.json" in files else ["model_index.json"]
    for component in SD_COMPONENTS:
        names = {f"{component}/{n}{s}" for n in WEIGHT_NAMES for s in WEIGHT_SUFFIXES}
        if not names & files:
            lacking.append(f"{component}/ weights")
    return lacking


def missing_model(name: str, what: str) -> str | None:
    """A model folder that does not exist, a hub id that is neither in the Hugging Face cache nor, online, complete
    on the hub (offline: ``HF_HUB_OFFLINE``; the hub is asked once, for its file list, nothing downloaded)."""
    if name == "bundled":
        from ..bundled_model import WEIGHTS_DIR

        return (
            None if (WEIGHTS_DIR / "galot_bundled.json").is_file() else f"the bundled model's weights in {WEIGHTS_DIR}"
        )
    path = Path(name).expanduser()
    if path.is_dir() or name.startswith((".", "/", "~")) or name.count("/") != 1:
        if not path.is_dir():
            return f"{what}: the folder {path} does not exist"
        lacking = incomplete({p.relative_to(path).as_posix() for p in path.rglob("*") if p.is_file()}, what)
        return f"{what}: the folder {path} lacks {', '.join(lacking)}" if lacking else None
    from huggingface_hub import try_to_load_from_cache

    index = "model_index.json" if what == "the text-to-image model" else "config.json"
    if isinstance(try_to_load_from_cache(name, index), str):
        return None  # in the cache (its weights are checked when they load)
    if hub_offline():
        return (
            f"{what}: {name} is not in the Hugging Face cache and HF_HUB_OFFLINE is set: fetch it once where there is "
            f"internet ({fetch_command(name)}) or give a local folder"
        )
    return missing_on_hub(name, what)


def missing_on_hub(name: str, what: str) -> str | None:
    """Online and not cached: the hub's file list for ``name`` (None: complete, downloaded at its first load)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError

    try:
        info = HfApi(endpoint=os.environ.get("HF_ENDPOINT")).model_info(name, timeout=20)
    except GatedRepoError:
        return f"{what}: {name} is gated on the hub: accept its terms there and log in (`hf auth login`), then retry"
    except RepositoryNotFoundError:
        return f"{what}: {name} does not exist on the hub (or is private): check the id, or give a local folder"
    except Exception as err:  # the HTTP client's own errors (refused, timed out, DNS)
        return (
            f"{what}: {name} is not in the Hugging Face cache and the hub cannot be reached ({type(err).__name__}): "
            f"fetch it where there is internet ({fetch_command(name)}) or give a local folder"
        )
    lacking = incomplete({s.rfilename for s in info.siblings or ()}, what)
    return (
        f"{what}: {name} on the hub lacks {', '.join(lacking)}: not a model this project can load" if lacking else None
    )


def problems(profile: Profile, sections) -> list[str]:
    """Every missing input of ``sections`` on ``profile``, one line each (empty: ready)."""
    root = Path(profile.data_dir) if profile.data_dir else data_root()
    found = [missing_data(name, root) for name in datasets_needed(profile, sections)]
    if any(s.needs_t2i for s in REGISTRY if s.id in sections):
        found.append(missing_model(profile.t2i_model, "the text-to-image model"))
    if "4.5" in sections:
        clips = {dict(changes).get("clip_model") for _, changes in profile.label_options} - {None}
        found += [missing_model(clip, "the CLIP filter's weights") for clip in sorted(clips)]
    found += [unwritable(variable, folder) for variable, folder in written_folders()]
    found += [no_gpu(profile), short_of_disk(profile, sections)]
    return [p for p in found if p]


def no_gpu(profile: Profile) -> str | None:
    """The paper profile is sized for GPUs (its plan counts GPU-hours): on a CPU it is rehearsed, not run."""
    import torch

    if profile.name != "paper" or torch.cuda.is_available():
        return None
    return (
        "no GPU: the paper profile is planned in GPU-hours (`./run_all.sh --profile paper --plan`); run it on a GPU "
        "machine (docs/gpus.md), or rehearse its code here with `./run_all.sh --profile paper --rehearse`"
    )


def short_of_disk(profile: Profile, sections) -> str | None:
    """Room for the run's generated sets in the cache (uint8 images at the data set's size, twice over for the run
    states that keep them too)."""
    import shutil

    from ..core.paths import cache_root
    from ..learning.data import IMAGE_SHAPES
    from .plan import plan

    images = int(plan(profile, sections).set_index("section").loc["total", "generated"])
    needed = 2 * images * math.prod(IMAGE_SHAPES[profile.dataset])
    folder = cache_root()
    while not folder.exists():
        folder = folder.parent
    free = shutil.disk_usage(folder).free
    if needed <= free:
        return None
    return (
        f"the run's {images:,} generated images need about {needed / 2**30:.1f} GiB in {cache_root()}, which has "
        f"{free / 2**30:.1f} GiB free: free some space, or set GALOT_CACHE_DIR and GALOT_RUNS_DIR to a larger disk"
    )


def written_folders() -> list[tuple[str, Path]]:
    """The folders a run writes, with the environment variable that moves each."""
    from ..core.paths import cache_root, results_root, runs_root

    return [("GALOT_RUNS_DIR", runs_root()), ("GALOT_CACHE_DIR", cache_root()), ("GALOT_RESULTS_DIR", results_root())]


def unwritable(variable: str, folder: Path) -> str | None:
    """A folder the run cannot create or write in, named with the variable that chooses it."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder):
            pass
    except OSError as err:
        return f"{folder} is not writable ({err.strerror}): set {variable} to a folder you can write, or fix its rights"
    return None


def main(argv=None):
    p = argparse.ArgumentParser(description="check that a profile's data and weights are in place, before any work")
    p.add_argument("--profile", default="default", choices=["default", *PROFILES])
    p.add_argument("--only", choices=list(SECTIONS))
    p.add_argument("--set", nargs=2, action="append", default=[], metavar=("FIELD", "VALUE"), help="a profile field")
    p.add_argument("--datasets", action="store_true", help="print the data sets the run reads, one per line, and stop")
    args = p.parse_args(argv)
    profile = get_profile(args.profile, **dict(args.set))
    sections = [args.only] if args.only else list(SECTIONS)
    if args.datasets:
        print(*datasets_needed(profile, sections), sep="\n")
        return
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
