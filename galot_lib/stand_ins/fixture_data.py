"""Stand-ins for CIFAR-10, CIFAR-100 and TinyImageNet in their exact on-disk formats, a few images per class:
the loaders read them as they would read the real downloads, so the paper profile's data path can be
rehearsed (and tested) offline. The images are class-coloured noise, so a classifier can learn something.

Formats: CIFAR's "python version" (pickled dicts, bytes keys as Python 2 wrote them, rows of 3072 uint8:
the R, G and B planes of a 32 x 32 image); TinyImageNet's ``wnids.txt``, ``words.txt`` (wnid, tab,
comma-separated synonyms), ``train/<wnid>/images/*.JPEG`` with ``<wnid>_boxes.txt``, ``val/images`` with
``val/val_annotations.txt`` and the unlabelled ``test/images``.
"""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np

from ..learning.formats import CIFAR_FILES, CIFAR_FOLDERS, TINY_FOLDER, TINY_SIZE

CIFAR10_NAMES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
_ADJECTIVES = ("red", "tall", "small", "sweet", "old", "wild", "green", "round", "dark", "sea")
_NOUNS = ("apple", "maple", "tree", "pepper", "truck", "fish", "house", "cloud", "road", "lamp")
# CIFAR-100-like fine names: underscores joining words, as in "maple_tree" and "aquarium_fish"
CIFAR100_NAMES = tuple(f"{a}_{n}" for a in _ADJECTIVES for n in _NOUNS)
# Two TinyImageNet-like classes whose first synonyms coincide (the loader must keep their prompts apart)
TINY_SHARED_WORD = "crane"


def class_images(labels: np.ndarray, size: int, num_classes: int, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N, 3, size, size]: a per-class colour plus noise."""
    palette = rng.integers(30, 226, size=(num_classes, 3, 1, 1))
    noise = rng.normal(0, 30, size=(len(labels), 3, size, size))
    return np.clip(palette[labels] + noise, 0, 255).astype(np.uint8)


def write_cifar(root: Path, num_classes: int, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` (10 classes: five data batches, a test batch, batches.meta) or
    ``root/cifar-100-python`` (100 classes: train, test, meta with fine and coarse names)."""
    rng = np.random.default_rng([seed, num_classes])
    folder = Path(root) / CIFAR_FOLDERS[num_classes]
    folder.mkdir(parents=True, exist_ok=True)
    files = CIFAR_FILES[num_classes]
    for split, per_class in (("pool", train_per_class), ("test", test_per_class)):
        labels = rng.permutation(np.repeat(np.arange(num_classes), per_class))
        images = class_images(labels, 32, num_classes, np.random.default_rng([seed, num_classes, 1]))
        parts = np.array_split(np.arange(len(labels)), len(files[split]))
        for name, idx in zip(files[split], parts):
            batch = {
                b"batch_label": f"{name} of the rehearsal".encode(),
                b"data": images[idx].reshape(len(idx), -1),
                b"filenames": [f"image_{i}.png".encode() for i in idx],
            }
            if num_classes == 10:
                batch[b"labels"] = labels[idx].tolist()
            else:
                batch[b"fine_labels"] = labels[idx].tolist()
                batch[b"coarse_labels"] = (labels[idx] // 5).tolist()
            _pickle(batch, folder / name)
    if num_classes == 10:
        meta = {
            b"label_names": [n.encode() for n in CIFAR10_NAMES],
            b"num_cases_per_batch": 10_000,
            b"num_vis": 32 * 32 * 3,
        }
    else:
        meta = {
            b"fine_label_names": [n.encode() for n in CIFAR100_NAMES],
            b"coarse_label_names": [f"superclass_{i}".encode() for i in range(20)],
        }
    _pickle(meta, folder / files["meta"])
    return folder


def tiny_imagenet_words(num_classes: int = 200) -> tuple[list[str], dict[str, str]]:
    """wnids and their ``words.txt`` synonyms; classes 0 and 1 share their first synonym."""
    wnids = [f"n{9_000_000 + 17 * i:08d}" for i in range(num_classes)]
    words = {w: f"thing {i}, object number {i}" for i, w in enumerate(wnids)}
    words[wnids[0]] = f"{TINY_SHARED_WORD}, whooping crane"
    words[wnids[1]] = f"{TINY_SHARED_WORD}, lifting crane, derrick"
    return wnids, words


def write_tiny_imagenet(
    root: Path,
    num_classes: int = 200,
    train_per_class: int = 2,
    val_per_class: int = 1,
    test_images: int = 4,
    seed: int = 0,
) -> Path:
    """``root/tiny-imagenet-200`` in the official layout (64 x 64 JPEGs)."""
    from PIL import Image

    rng = np.random.default_rng([seed, 200])
    base = Path(root) / TINY_FOLDER
    wnids, words = tiny_imagenet_words(num_classes)
    base.mkdir(parents=True, exist_ok=True)
    (base / "wnids.txt").write_text("".join(f"{w}\n" for w in wnids))
    # The real words.txt covers all of ImageNet's wnids, most of them not TinyImageNet's classes.
    extra = {"n00000001": "entity", "n00000002": "physical entity"}
    (base / "words.txt").write_text("".join(f"{w}\t{t}\n" for w, t in {**extra, **words}.items()))

    def save(pixels: np.ndarray, path: Path):
        path.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(pixels.transpose(1, 2, 0)).save(path, "JPEG", quality=90)

    train_labels = np.repeat(np.arange(num_classes), train_per_class)
    train = class_images(train_labels, TINY_SIZE, num_classes, rng)
    for c, wnid in enumerate(wnids):
        folder = base / "train" / wnid
        names = [f"{wnid}_{k}.JPEG" for k in range(train_per_class)]
        for k, name in enumerate(names):
            save(train[c * train_per_class + k], folder / "images" / name)
        (folder / f"{wnid}_boxes.txt").write_text(
            "".join(f"{n}\t0\t0\t{TINY_SIZE - 1}\t{TINY_SIZE - 1}\n" for n in names)
        )
    val_labels = rng.permutation(np.repeat(np.arange(num_classes), val_per_class))
    val = class_images(val_labels, TINY_SIZE, num_classes, np.random.default_rng([seed, 200]))
    lines = []
    for i, (label, pixels) in enumerate(zip(val_labels, val)):
        save(pixels, base / "val" / "images" / f"val_{i}.JPEG")
        lines.append(f"val_{i}.JPEG\t{wnids[label]}\t0\t0\t{TINY_SIZE - 1}\t{TINY_SIZE - 1}\n")
    (base / "val" / "val_annotations.txt").write_text("".join(lines))
    for i, pixels in enumerate(class_images(rng.integers(0, num_classes, test_images), TINY_SIZE, num_classes, rng)):
        save(pixels, base / "test" / "images" / f"test_{i}.JPEG")
    return base


def write_all(root: Path, train_per_class: int = 2, test_per_class: int = 1, seed: int = 0) -> Path:
    """The three data sets under ``root`` (a data root, as ``$GALOT_DATA_DIR``)."""
    for classes in (10, 100):
        write_cifar(root, classes, train_per_class, test_per_class, seed)
    write_tiny_imagenet(root, 200, train_per_class, test_per_class, seed=seed)
    return Path(root)


def _pickle(obj, path: Path) -> None:
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)  # the official files are Python 2 pickles
