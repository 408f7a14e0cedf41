"""The paper's data sets read from their documented on-disk formats (written by galot_lib.stand_ins.fixture_data),
their prompt words, and the errors a missing or damaged file gives."""

import pickle

import pytest
import torch

from galot_lib.learning.data import load_dataset
from galot_lib.learning.formats import DataFileError, tiny_imagenet_names
from galot_lib.stand_ins.fixture_data import (
    CIFAR10_NAMES,
    TINY_SHARED_WORD,
    tiny_imagenet_words,
    write_cifar,
    write_tiny_imagenet,
)


@pytest.fixture(scope="module")
def data_root(tmp_path_factory):
    root = tmp_path_factory.mktemp("data")
    write_cifar(root, 10, train_per_class=3, test_per_class=2)
    write_cifar(root, 100, train_per_class=1, test_per_class=1)
    write_tiny_imagenet(root, train_per_class=2, val_per_class=1)
    return root


def test_cifar10_reads_the_documented_pickles(data_root):
    pool, test = load_dataset("cifar10", "pool", data_root), load_dataset("cifar10", "test", data_root)
    assert (len(pool), len(test)) == (30, 20) and pool.image_shape == (3, 32, 32)
    assert pool.class_names == CIFAR10_NAMES and pool.name == "cifar10/pool"
    assert torch.bincount(pool.labels).tolist() == [3] * 10  # every batch file read (five of them)
    raw = pickle.load(open(data_root / "cifar-10-batches-py" / "data_batch_1", "rb"), encoding="bytes")
    first = torch.as_tensor(raw[b"data"][0]).view(3, 32, 32)  # R, G, B planes, row-major
    assert torch.equal(pool.images[0], first) and pool.labels[0] == raw[b"labels"][0]


def test_cifar100_prompt_words_have_spaces(data_root):
    pool = load_dataset("cifar100", "pool", data_root)
    assert pool.num_classes == 100 and len(pool) == 100 and pool.image_shape == (3, 32, 32)
    assert "red apple" in pool.class_names and not any("_" in n for n in pool.class_names)
    assert len(set(pool.class_names)) == 100


def test_tiny_imagenet_reads_its_layout_with_distinct_prompt_words(data_root):
    pool, test = load_dataset("tiny_imagenet", "pool", data_root), load_dataset("tiny_imagenet", "test", data_root)
    assert (len(pool), len(test)) == (400, 200) and pool.image_shape == (3, 64, 64)
    assert pool.class_names[2] == "thing 2"  # the first synonym of words.txt
    # classes 0 and 1 share "crane" as first synonym: each takes its next synonym instead
    assert pool.class_names[:2] == ("whooping crane", "lifting crane") and len(set(pool.class_names)) == 200
    wnids, _ = tiny_imagenet_words()
    annotations = (data_root / "tiny-imagenet-200" / "val" / "val_annotations.txt").read_text().splitlines()
    assert test.labels[0] == wnids.index(annotations[0].split("\t")[1])


def test_shared_first_synonyms_without_alternatives_name_the_wnid():
    names = tiny_imagenet_names(["n1", "n2", "n3"], {"n1": TINY_SHARED_WORD, "n2": TINY_SHARED_WORD, "n3": "dog"})
    assert names == (f"{TINY_SHARED_WORD} (n1)", f"{TINY_SHARED_WORD} (n2)", "dog")


def copy_of(data_root, tmp_path, folder):
    import shutil

    shutil.copytree(data_root / folder, tmp_path / folder)
    return tmp_path / folder


def test_missing_and_truncated_cifar_files_are_named_with_how_to_get_them(data_root, tmp_path):
    folder = copy_of(data_root, tmp_path, "cifar-10-batches-py")
    (folder / "data_batch_3").unlink()
    with pytest.raises(FileNotFoundError, match=r"data_batch_3 is missing.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", "pool", tmp_path)
    blob = (folder / "test_batch").read_bytes()
    (folder / "test_batch").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataFileError, match=r"test_batch cannot be read.*truncated.*cifar-10-python.tar.gz"):
        load_dataset("cifar10", "test", tmp_path)
    with open(folder / "batches.meta", "wb") as f:
        pickle.dump({b"names": []}, f)
    with pytest.raises(DataFileError, match=r"batches.meta lacks the field\(s\) \['label_names'\]"):
        load_dataset("cifar10", "test", tmp_path)


def test_missing_tiny_imagenet_files_are_named(data_root, tmp_path):
    base = copy_of(data_root, tmp_path, "tiny-imagenet-200")
    (base / "val" / "images" / "val_3.JPEG").write_bytes(b"\xff\xd8\xff not a whole jpeg")
    with pytest.raises(DataFileError, match=r"val_3.JPEG cannot be read.*tiny-imagenet-200.zip"):
        load_dataset("tiny_imagenet", "test", tmp_path)
    (base / "words.txt").unlink()
    with pytest.raises(FileNotFoundError, match=r"words.txt is missing.*tiny-imagenet-200.zip"):
        load_dataset("tiny_imagenet", "pool", tmp_path)
    with pytest.raises(FileNotFoundError, match=r"cifar-100-python/meta is missing"):
        load_dataset("cifar100", "pool", tmp_path / "empty")


def test_a_full_size_file_with_another_checksum_warns_of_a_damaged_download(tmp_path):
    import numpy as np

    folder = write_cifar(tmp_path, 10, train_per_class=1, test_per_class=1)
    rows = 10_000  # the official test batch's size: meant to be the official file, whose md5 it lacks
    with open(folder / "test_batch", "wb") as f:
        pickle.dump({b"data": np.zeros((rows, 3072), np.uint8), b"labels": [0] * rows}, f, protocol=2)
    with pytest.warns(UserWarning, match=r"test_batch has the official size but md5 .* may be damaged"):
        assert len(load_dataset("cifar10", "test", tmp_path)) == rows


def test_idx_files_are_read_as_documented_and_a_damaged_one_is_named(tmp_path):
    import numpy as np

    from galot_lib.learning.formats import read_idx

    images = np.arange(2 * 3 * 4, dtype=np.uint8).reshape(2, 3, 4)
    path = tmp_path / "images-idx3-ubyte"
    path.write_bytes(bytes([0, 0, 8, 3]) + np.array([2, 3, 4], dtype=">i4").tobytes() + images.tobytes())
    assert np.array_equal(read_idx(path), images)
    truncated = tmp_path / "truncated-idx3-ubyte"
    truncated.write_bytes(path.read_bytes()[:-1])
    with pytest.raises(DataFileError, match=r"truncated-idx3-ubyte declares shape \(2, 3, 4\) \(24 bytes\)"):
        read_idx(truncated)
    zipped = tmp_path / "zipped-idx3-ubyte"
    zipped.write_bytes(b"PK\x03\x04")
    with pytest.raises(DataFileError, match=r"zipped-idx3-ubyte is not an IDX file of unsigned bytes"):
        read_idx(zipped)
