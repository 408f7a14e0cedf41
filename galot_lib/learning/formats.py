"""Readers of the paper's data sets in their documented on-disk formats, with no download machinery.

Fashion-MNIST ships as IDX files (a big-endian header, then the raw uint8 array): read here directly, without
importing torchvision, whose import costs a whole AL run on the embedded profile about a second.
CIFAR-10/100 ship as pickled dicts (the "python version"); TinyImageNet as a folder of JPEGs with text
indexes. torchvision's CIFAR classes accept only files whose md5 sums are the official ones, so a copy
that was re-pickled, subsampled or built for a test is "not found or corrupted" there: these readers
check the documented structure instead, name the file that breaks it and say how to get a good one, and
warn (not fail) when a full-size file's checksum is not the official one.
"""

from __future__ import annotations

import hashlib
import pickle
import warnings
from pathlib import Path

import numpy as np

CIFAR_URLS = {
    10: "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz",
    100: "https://www.cs.toronto.edu/~kriz/cifar-100-python.tar.gz",
}
TINY_IMAGENET_URL = "http://cs231n.stanford.edu/tiny-imagenet-200.zip"
CIFAR_FOLDERS = {10: "cifar-10-batches-py", 100: "cifar-100-python"}
CIFAR_FILES = {
    10: {"pool": [f"data_batch_{i}" for i in range(1, 6)], "test": ["test_batch"], "meta": "batches.meta"},
    100: {"pool": ["train"], "test": ["test"], "meta": "meta"},
}
CIFAR_OFFICIAL_ROWS = {"data_batch": 10_000, "test_batch": 10_000, "train": 50_000, "test": 10_000}
CIFAR_PIXELS = 3 * 32 * 32


class DataFileError(ValueError):
    """A data file exists but does not hold what its format documents (truncated, wrong fields)."""


class _CifarUnpickler(pickle.Unpickler):
    """CIFAR's batches are pickles by definition, and a pickle can name any function to call while it loads. This
    one admits only what the format holds (dicts, lists, text, bytes, numbers and numpy arrays of numbers) and
    refuses any other name before it is looked up, so a doctored download cannot run code."""

    def __init__(self, file, path: Path):
        super().__init__(file, encoding="bytes")
        self.path = path
        multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
        self.allowed = {
            # numpy 1.x names (the official files) and numpy 2's; both rebuild an array from its bytes and dtype
            ("numpy.core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy._core.multiarray", "_reconstruct"): multiarray._reconstruct,
            ("numpy", "ndarray"): np.ndarray,
            ("numpy", "dtype"): _number_dtype,
            ("_codecs", "encode"): _latin1_bytes,  # how Python 3 writes bytes at protocol 2
        }

    def find_class(self, module: str, name: str):
        if (module, name) not in self.allowed:
            raise DataFileError(
                f"{self.path} asks to load {module}.{name}, which CIFAR's documented batches never hold: refused "
                "unread (loading it could run code). Replace the file with the official one"
            )
        return self.allowed[module, name]


def _number_dtype(spec, *args):
    """``numpy.dtype`` for numbers only: an object dtype would let an array carry arbitrary objects."""
    dtype = np.dtype(spec, *args)
    if dtype.hasobject:
        raise pickle.UnpicklingError(f"a {dtype} array: CIFAR's batches hold numbers only")
    return dtype


def _latin1_bytes(text: str, encoding: str = "latin1") -> bytes:
    if encoding != "latin1":
        raise pickle.UnpicklingError(f"bytes encoded as {encoding!r}")
    return text.encode("latin1")


def cifar_how_to_get(num_classes: int, root: Path) -> str:
    return (
        f"get it from {CIFAR_URLS[num_classes]} and extract it into {root} (it creates "
        f"{CIFAR_FOLDERS[num_classes]}/), or load with download=True (needs internet), or set GALOT_DATA_DIR"
    )


def read_cifar(root: Path, num_classes: int, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images uint8 [N, 3, 32, 32], labels int64 [N], label names) of CIFAR-``num_classes``'s split
    ("pool": the official train batches, "test": the test batch) under ``root``."""
    folder = Path(root) / CIFAR_FOLDERS[num_classes]
    files = CIFAR_FILES[num_classes]
    label_key = "labels" if num_classes == 10 else "fine_labels"
    names_key = "label_names" if num_classes == 10 else "fine_label_names"
    meta = _cifar_pickle(folder / files["meta"], num_classes, root, (names_key,))
    names = tuple(_text(n) for n in meta[names_key])
    if len(names) != num_classes:
        raise DataFileError(
            f"{folder / files['meta']} lists {len(names)} {names_key}, CIFAR-{num_classes} has "
            f"{num_classes}; {cifar_how_to_get(num_classes, root)}"
        )
    images, labels = [], []
    for name in files[split]:
        path = folder / name
        batch = _cifar_pickle(path, num_classes, root, ("data", label_key))
        data, targets = np.asarray(batch["data"], dtype=np.uint8), np.asarray(batch[label_key], dtype=np.int64)
        if data.ndim != 2 or data.shape[1] != CIFAR_PIXELS or len(data) != len(targets):
            raise DataFileError(
                f"{path} holds data of shape {data.shape} and {len(targets)} labels; the format is "
                f"[N, {CIFAR_PIXELS}] uint8 rows (R, G, B planes of 32 x 32) with N labels; "
                + cifar_how_to_get(num_classes, root)
            )
        if len(targets) and (targets.min() < 0 or targets.max() >= num_classes):
            raise DataFileError(
                f"{path} has labels outside 0..{num_classes - 1}; {cifar_how_to_get(num_classes, root)}"
            )
        _warn_if_damaged(path, len(data), num_classes)
        images.append(data.reshape(-1, 3, 32, 32))
        labels.append(targets)
    return np.concatenate(images), np.concatenate(labels), names


def _cifar_pickle(path: Path, num_classes: int, root: Path, keys: tuple[str, ...]) -> dict:
    """One pickled CIFAR dict with str keys (the official files were pickled by Python 2: bytes keys)."""
    if not path.is_file():
        raise FileNotFoundError(f"CIFAR-{num_classes} file {path} is missing; " + cifar_how_to_get(num_classes, root))
    try:
        with open(path, "rb") as f:
            raw = _CifarUnpickler(f, path).load()
    except DataFileError:
        raise
    except (EOFError, pickle.UnpicklingError, ValueError, TypeError, AttributeError, IndexError) as err:
        raise DataFileError(
            f"CIFAR-{num_classes} file {path} cannot be read ({type(err).__name__}: {err}): "
            f"truncated or not a pickled batch; " + cifar_how_to_get(num_classes, root)
        ) from err
    if not isinstance(raw, dict):
        raise DataFileError(
            f"{path} holds a {type(raw).__name__}, not the documented dict; " + cifar_how_to_get(num_classes, root)
        )
    batch = {_text(k): v for k, v in raw.items()}
    missing = [k for k in keys if k not in batch]
    if missing:
        raise DataFileError(
            f"{path} lacks the field(s) {missing} (found {sorted(batch)}); " + cifar_how_to_get(num_classes, root)
        )
    return batch


def _warn_if_damaged(path: Path, rows: int, num_classes: int) -> None:
    """A file with the official number of rows should be the official file: warn when its md5 differs."""
    official = _official_md5(num_classes).get(path.name)
    expected_rows = CIFAR_OFFICIAL_ROWS["data_batch" if path.name.startswith("data_batch") else path.name]
    if official is None or rows != expected_rows:
        return  # a subset or a fixture: the structure was checked, there is no sum to compare with
    digest = hashlib.md5(path.read_bytes()).hexdigest()
    if digest != official:
        warnings.warn(
            f"{path} has the official size but md5 {digest}, not the official {official}: the download "
            f"may be damaged ({CIFAR_URLS[num_classes]})",
            stacklevel=3,
        )


def _official_md5(num_classes: int) -> dict[str, str]:
    """The official sums, as torchvision records them (read from it, not restated here)."""
    from torchvision.datasets import CIFAR10, CIFAR100

    cls = CIFAR10 if num_classes == 10 else CIFAR100
    return {name: md5 for name, md5 in cls.train_list + cls.test_list}


def _text(value) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


# ----------------------------------------------------------------------------- IDX (Fashion-MNIST)
IDX_UBYTE = 0x08  # the IDX type code of unsigned bytes, the only one Fashion-MNIST uses


def read_idx(path: Path) -> np.ndarray:
    """The uint8 array of an IDX file (magic: two zero bytes, the type code, the number of dimensions; then each
    dimension as a big-endian int32; then the data)."""
    raw = np.fromfile(path, dtype=np.uint8)
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] != IDX_UBYTE or raw[3] == 0:
        raise DataFileError(f"{path} is not an IDX file of unsigned bytes (its first bytes: {raw[:4].tolist()})")
    dims = raw[3]
    shape = tuple(int(d) for d in raw[4 : 4 + 4 * dims].view(">i4"))
    data = raw[4 + 4 * dims :]
    if len(data) != int(np.prod(shape)):
        raise DataFileError(f"{path} declares shape {shape} ({int(np.prod(shape))} bytes) but holds {len(data)} bytes")
    return data.reshape(shape)


# ----------------------------------------------------------------------------- TinyImageNet
TINY_FOLDER = "tiny-imagenet-200"
TINY_SIZE = 64


def tiny_how_to_get(root: Path) -> str:
    return (
        f"download {TINY_IMAGENET_URL} and extract it into {root} (it creates {TINY_FOLDER}/), "
        "or set GALOT_DATA_DIR to a folder holding it (download=True is not supported for TinyImageNet)"
    )


def tiny_imagenet_names(wnids: list[str], words: dict[str, str]) -> tuple[str, ...]:
    """Prompt words: each class's first synonym in ``words.txt``. Classes whose first synonyms coincide would
    share one prompt, so each of them takes its first synonym that no other class uses (else "word (wnid)")."""
    synonyms = {w: [s.strip() for s in words.get(w, w).split(",") if s.strip()] or [w] for w in wnids}
    first = [synonyms[w][0] for w in wnids]
    counts = {name: first.count(name) for name in first}
    taken = {name for name in first if counts[name] == 1}
    names = []
    for wnid, name in zip(wnids, first):
        if counts[name] > 1:
            name = next((s for s in synonyms[wnid][1:] if s not in taken and first.count(s) == 0), f"{name} ({wnid})")
            taken.add(name)
        names.append(name)
    return tuple(names)


def read_tiny_imagenet(root: Path, split: str) -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """(images uint8 [N, 3, 64, 64], labels, prompt words) of TinyImageNet under ``root``; "pool" is the train
    split, "test" the labelled val split (the official test images carry no labels)."""
    base = Path(root) / TINY_FOLDER
    wnids = [w for w in _read_text(base / "wnids.txt", root).split() if w]
    words = {}
    for line in _read_text(base / "words.txt", root).splitlines():
        wnid, _, text = line.partition("\t")
        words[wnid.strip()] = text.strip()
    index = {w: i for i, w in enumerate(wnids)}
    if split == "pool":
        files = []
        for w in wnids:
            folder = base / "train" / w / "images"
            found = sorted(folder.glob("*.JPEG")) if folder.is_dir() else []
            if not found:
                raise FileNotFoundError(f"TinyImageNet class {w} has no images in {folder}; " + tiny_how_to_get(root))
            files += [(p, index[w]) for p in found]
    else:
        annotations = base / "val" / "val_annotations.txt"
        files = []
        for number, line in enumerate(_read_text(annotations, root).splitlines(), 1):
            parts = line.split("\t")
            if len(parts) < 2 or parts[1] not in index:
                raise DataFileError(
                    f"{annotations} line {number} ({line[:60]!r}) does not name an image and a wnid "
                    f"of wnids.txt; " + tiny_how_to_get(root)
                )
            files.append((base / "val" / "images" / parts[0], index[parts[1]]))
    images = np.stack([_read_jpeg(path, root) for path, _ in files])
    labels = np.asarray([c for _, c in files], dtype=np.int64)
    return images.transpose(0, 3, 1, 2).copy(), labels, tiny_imagenet_names(wnids, words)


def _read_text(path: Path, root: Path) -> str:
    if not path.is_file():
        raise FileNotFoundError(f"TinyImageNet file {path} is missing; " + tiny_how_to_get(root))
    return path.read_text(encoding="utf-8")


def _read_jpeg(path: Path, root: Path) -> np.ndarray:
    from PIL import Image

    if not path.is_file():
        raise FileNotFoundError(f"TinyImageNet image {path} is missing; " + tiny_how_to_get(root))
    try:
        with Image.open(path) as image:
            pixels = np.asarray(image.convert("RGB"), dtype=np.uint8)  # some TinyImageNet JPEGs are greyscale
    except OSError as err:
        raise DataFileError(
            f"TinyImageNet image {path} cannot be read ({err}): truncated or not a JPEG; " + tiny_how_to_get(root)
        ) from err
    if pixels.shape[:2] != (TINY_SIZE, TINY_SIZE):
        raise DataFileError(
            f"TinyImageNet image {path} is {pixels.shape[1]}x{pixels.shape[0]}, the data set's images "
            f"are {TINY_SIZE}x{TINY_SIZE}; " + tiny_how_to_get(root)
        )
    return pixels
