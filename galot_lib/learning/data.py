"""Data sets as in-memory tensors, their class names as prompt words, and the fixed splits.

Every data set is held as one uint8 tensor ``[N, C, H, W]`` plus int64 labels: AL pools are at
most ~100k small images, so keeping them in memory lets the trainer augment whole batches at
once instead of running a per-sample PIL pipeline.

Fashion-MNIST (the embedded data set) has three disjoint splits:
``generator`` (trains the bundled text-to-image model and its reference classifier),
``pool`` (the active-learning pool) and ``test`` (the official test set). CIFAR-10/100 and
TinyImageNet have ``pool`` (official train) and ``test`` (official test / val).
"""

from __future__ import annotations

import gzip
import shutil
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from ..core.hashing import tensor_digest
from ..core.io import atomic_path
from ..core.paths import data_root

DATASETS = ("fashion_mnist", "cifar10", "cifar100", "tiny_imagenet")
CLASS_COUNTS = dict(fashion_mnist=10, cifar10=10, cifar100=100, tiny_imagenet=200)  # known without loading a file
IMAGE_SHAPES = dict(fashion_mnist=(1, 28, 28), cifar10=(3, 32, 32), cifar100=(3, 32, 32), tiny_imagenet=(3, 64, 64))
DEBIAN_FASHION_MNIST = Path("/usr/share/datasets/fashion-mnist")
FASHION_MNIST_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
# Prompt words for the ten Fashion-MNIST classes, in label order ("ankle boot", not "9").
FASHION_MNIST_CLASSES = (
    "t-shirt",
    "trouser",
    "pullover",
    "dress",
    "coat",
    "sandal",
    "shirt",
    "sneaker",
    "bag",
    "ankle boot",
)
# Half of Fashion-MNIST's training set, stratified, is reserved for the generator.
GENERATOR_FRACTION = 0.5
SPLIT_SEED = 20240501
SUBSET_SEED = 12345  # the profiles' fixed pool / test subsets


@dataclass(frozen=True)
class ImageSet:
    """Images (uint8, ``[N, C, H, W]``), labels (int64, ``[N]``) and the class words."""

    images: torch.Tensor
    labels: torch.Tensor
    class_names: tuple[str, ...]
    name: str

    def __post_init__(self):
        if self.images.dtype != torch.uint8 or self.images.ndim != 4:
            raise ValueError(f"images must be uint8 [N, C, H, W], got {self.images.dtype} {tuple(self.images.shape)}")
        if len(self.images) != len(self.labels):
            raise ValueError(f"{len(self.images)} images but {len(self.labels)} labels")

    def __len__(self) -> int:
        return len(self.labels)

    @property
    def dataset(self) -> str:
        """The data set's name without the split ("fashion_mnist" for "fashion_mnist/pool")."""
        return self.name.split("/")[0]

    @property
    def num_classes(self) -> int:
        return len(self.class_names)

    @property
    def image_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, indices) -> "ImageSet":
        idx = torch.as_tensor(np.asarray(indices), dtype=torch.long)
        return ImageSet(self.images[idx], self.labels[idx], self.class_names, self.name)

    def floats(self) -> torch.Tensor:
        """Images as float32 in [0, 1], the input range of every classifier here."""
        return self.images.float().div_(255.0)


def check_dataset_name(name: str) -> str:
    if name not in DATASETS:
        raise ValueError(f"unknown data set {name!r}; valid names: {', '.join(DATASETS)}")
    return name


def dataset_classes(name: str) -> int:
    """How many classes a data set has (a plan prices runs, and a chance level is read, before any file is opened)."""
    return CLASS_COUNTS[check_dataset_name(name)]


def splits_of(name: str) -> tuple[str, ...]:
    return ("generator", "pool", "test") if check_dataset_name(name) == "fashion_mnist" else ("pool", "test")


def load_dataset(name: str, split: str, root: str | Path | None = None, download: bool = False) -> ImageSet:
    """Load one split of a data set into memory.

    ``download=True`` lets torchvision fetch what is missing (needs internet); otherwise a
    missing file raises ``FileNotFoundError`` saying where it was looked for and how to get it.
    """
    valid = splits_of(name)
    if split not in valid:
        raise ValueError(f"unknown split {split!r} for {name}; valid splits: {', '.join(valid)}")
    root = Path(root) if root is not None else data_root()
    loader = {
        "fashion_mnist": _fashion_mnist,
        "cifar10": lambda s, r, d: _cifar(s, r, d, 10),
        "cifar100": lambda s, r, d: _cifar(s, r, d, 100),
        "tiny_imagenet": _tiny_imagenet,
    }[name]
    return loader(split, root, download)


# ----------------------------------------------------------------------------- Fashion-MNIST
def prepare_fashion_mnist(root: str | Path | None = None, download: bool = False) -> Path:
    """Make ``<root>/FashionMNIST/raw/`` hold the four decompressed files torchvision reads.

    Debian's ``.gz`` files differ byte-wise from torchvision's (other md5 sums), so torchvision
    would ignore them and try to download; decompressed, they are used as they are.
    """
    root = Path(root) if root is not None else data_root()
    raw = root / "FashionMNIST" / "raw"
    missing = [f for f in FASHION_MNIST_FILES if not (raw / f).exists()]
    if not missing:
        return raw
    if all((DEBIAN_FASHION_MNIST / f"{f}.gz").exists() for f in missing):
        raw.mkdir(parents=True, exist_ok=True)
        for f in missing:
            with (
                atomic_path(raw / f) as tmp,
                gzip.open(DEBIAN_FASHION_MNIST / f"{f}.gz", "rb") as src,
                open(tmp, "wb") as dst,
            ):
                shutil.copyfileobj(src, dst)
        return raw
    if download:
        from torchvision.datasets import FashionMNIST

        FashionMNIST(str(root), train=True, download=True)
        FashionMNIST(str(root), train=False, download=True)
        return raw
    raise FileNotFoundError(
        f"Fashion-MNIST files {missing} were found neither in {raw} nor as .gz in {DEBIAN_FASHION_MNIST}. "
        "Get them with `apt-get install dataset-fashion-mnist` (Debian/Ubuntu), or load with download=True "
        "to let torchvision fetch them, or set GALOT_DATA_DIR to a folder holding FashionMNIST/raw/."
    )


def _fashion_mnist(split: str, root: Path, download: bool) -> ImageSet:
    from .formats import read_idx

    raw = prepare_fashion_mnist(root, download)
    prefix = "t10k" if split == "test" else "train"
    images = torch.from_numpy(read_idx(raw / f"{prefix}-images-idx3-ubyte")).unsqueeze(1).contiguous()  # [N, 1, 28, 28]
    labels = torch.from_numpy(read_idx(raw / f"{prefix}-labels-idx1-ubyte").astype(np.int64))
    if split != "test":
        gen_idx, pool_idx = generator_pool_indices(labels)
        idx = gen_idx if split == "generator" else pool_idx
        images, labels = images[idx], labels[idx]
    return ImageSet(images, labels, FASHION_MNIST_CLASSES, f"fashion_mnist/{split}")


def fixed_subset(data: ImageSet, size: int | None, seed: int = SUBSET_SEED) -> ImageSet:
    """A class-stratified random subset of ``size`` images, the same in every run (None: all)."""
    if size is None or size >= len(data):
        return data
    rng = np.random.default_rng(seed)
    labels = data.labels.numpy()
    per_class = np.bincount(labels, minlength=data.num_classes) * size / len(data)
    take = np.floor(per_class).astype(int)
    take[np.argsort(per_class - take)[::-1][: size - take.sum()]] += 1
    idx = np.concatenate([rng.choice(np.flatnonzero(labels == c), t, replace=False) for c, t in enumerate(take)])
    return data.subset(np.sort(idx))


IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp")


def read_images(files, size: int, channels: int) -> torch.Tensor:
    """Image files as a classifier reads them: uint8 [N, channels, size, size], converted and resized bilinearly (the
    same for evaluation folders and for classifying new images)."""
    from PIL import Image

    mode = "L" if channels == 1 else "RGB"
    images = [
        np.asarray(Image.open(f).convert(mode).resize((size, size), Image.BILINEAR), dtype=np.uint8).reshape(
            size, size, channels
        )
        for f in files
    ]
    return torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).contiguous()


def image_files(folder: str | Path) -> list[Path]:
    """The images of a folder, sorted (the suffixes of ``IMAGE_SUFFIXES``)."""
    return sorted(p for p in Path(folder).iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)


def load_image_folder(
    root: str | Path, class_names=None, size: int | None = None, channels: int | None = None, split: str = "test"
) -> ImageSet:
    """Labelled images in the usual folder layout (``root/<class name>/*.png|jpg``): ``class_names`` in label order
    (default: the subfolders, sorted), resized to ``size`` (default: the first image's width) and converted to
    ``channels`` (default: 1 if every image is greyscale, else 3). The set's name, which keys the runs made on it,
    carries a digest of its pixels and labels: a changed folder is a new data set, never a resumed one."""
    from PIL import Image

    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root} is not a folder of labelled images (one subfolder per class)")
    found_classes = sorted(p.name for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    class_names = tuple(class_names) if class_names is not None else tuple(found_classes)
    missing = [n for n in class_names if not (root / n).is_dir()]
    if missing or len(class_names) < 2:
        raise FileNotFoundError(
            f"{root} needs a subfolder for each of at least two classes; missing: {missing or class_names} (found "
            f"{found_classes})"
        )
    files, labels = [], []
    for label, name in enumerate(class_names):
        in_class = image_files(root / name)
        if not in_class:
            raise FileNotFoundError(f"{root / name} holds no images ({', '.join(IMAGE_SUFFIXES)})")
        files += in_class
        labels += [label] * len(in_class)
    if size is None:
        with Image.open(files[0]) as first:
            size = first.width
    if channels is None:
        channels = 1 if all(_greyscale(f) for f in files) else 3
    return named_by_content(read_images(files, size, channels), torch.tensor(labels), class_names, root.name, split)


def named_by_content(images: torch.Tensor, labels: torch.Tensor, class_names, stem: str, split: str) -> ImageSet:
    """An image set named ``<stem>@<digest of its pixels and labels>/<split>``: the name keys the runs made on it, so
    changed images are a new data set, never a resumed one."""
    return ImageSet(images, labels, tuple(class_names), f"{stem}@{tensor_digest(images, labels)[:8]}/{split}")


def save_image_folder(images: ImageSet, root: str | Path) -> Path:
    """``images`` as PNG files in the folder layout :func:`load_image_folder` reads (``root/<class name>/<i>.png``),
    e.g. to try the active-learning API on an image folder made from a data set here."""
    from PIL import Image

    root = Path(root)
    for name in images.class_names:
        (root / name).mkdir(parents=True, exist_ok=True)
    for i, (image, label) in enumerate(zip(images.images, images.labels.tolist())):
        pixels = image.permute(1, 2, 0).numpy()
        Image.fromarray(pixels[..., 0] if pixels.shape[-1] == 1 else pixels).save(
            root / images.class_names[label] / f"{i:06d}.png"
        )
    return root


def _greyscale(file: Path) -> bool:
    from PIL import Image

    with Image.open(file) as image:
        return image.mode in ("L", "1", "I", "I;16")


def generator_pool_indices(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """A fixed, stratified split of the training labels into disjoint generator / pool halves."""
    rng = np.random.default_rng(SPLIT_SEED)
    labels_np = labels.numpy()
    gen, pool = [], []
    for c in np.unique(labels_np):
        idx = rng.permutation(np.flatnonzero(labels_np == c))
        k = int(round(len(idx) * GENERATOR_FRACTION))
        gen.append(idx[:k])
        pool.append(idx[k:])
    return torch.from_numpy(np.sort(np.concatenate(gen))), torch.from_numpy(np.sort(np.concatenate(pool)))


# ----------------------------------------------------------------------------- CIFAR
def _cifar(split: str, root: Path, download: bool, num_classes: int) -> ImageSet:
    """CIFAR-10/100 read from the documented pickle format (``formats.read_cifar``); ``download=True`` fetches the
    official archive with torchvision first when the folder is missing."""
    from .formats import CIFAR_FOLDERS, read_cifar

    if download and not (root / CIFAR_FOLDERS[num_classes]).is_dir():
        from torchvision.datasets import CIFAR10, CIFAR100

        (CIFAR10 if num_classes == 10 else CIFAR100)(str(root), download=True)
    images, labels, names = read_cifar(root, num_classes, split)
    names = tuple(n.replace("_", " ") for n in names)  # CIFAR-100's "maple_tree" is prompted as "maple tree"
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), names, f"cifar{num_classes}/{split}")


# ----------------------------------------------------------------------------- TinyImageNet
def _tiny_imagenet(split: str, root: Path, download: bool) -> ImageSet:
    """TinyImageNet from its standard layout (``formats.read_tiny_imagenet``): ``test`` is the labelled val split."""
    from .formats import read_tiny_imagenet, tiny_how_to_get

    if download and not (root / "tiny-imagenet-200").is_dir():
        raise FileNotFoundError("download=True is not supported for TinyImageNet: " + tiny_how_to_get(root))
    images, labels, names = read_tiny_imagenet(root, split)
    return ImageSet(torch.from_numpy(images), torch.from_numpy(labels), names, f"tiny_imagenet/{split}")


if __name__ == "__main__":  # python -m galot_lib.data [--download]: set up the embedded data set
    import sys

    print("Fashion-MNIST ready in", prepare_fashion_mnist(download="--download" in sys.argv))
