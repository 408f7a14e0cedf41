"""The public active-learning API (``galot_lib.al``) and its command line on the smoke settings: an image folder as
pool and test set, a classifier of one's own, the bundled generator, bad input refused before any work."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch
from torch import nn

from galot_lib import al
from galot_lib.core.progress import HEADLESS_ENVIRONMENT
from galot_lib.learning.custom_models import ModuleClassifier, check_classifier, model_key
from galot_lib.learning.data import fixed_subset, load_dataset
from galot_lib.learning.models import MODELS

REPO = Path(__file__).resolve().parents[1]
EXAMPLE = REPO / "notebooks" / "examples" / "own_data_and_model.ipynb"


def small_net(num_classes: int, in_channels: int) -> nn.Module:
    return nn.Sequential(
        nn.Conv2d(in_channels, 8, 3, padding=1),
        nn.ReLU(),
        nn.AdaptiveAvgPool2d(2),
        nn.Flatten(),
        nn.Linear(32, num_classes),
    )


@pytest.fixture(scope="module")
def folders(tmp_path_factory) -> tuple[Path, Path]:
    """A small Fashion-MNIST image folder pair (pool 200, test 100)."""
    root = tmp_path_factory.mktemp("images")
    al.save_image_folder(fixed_subset(load_dataset("fashion_mnist", "pool"), 200), root / "train")
    al.save_image_folder(fixed_subset(load_dataset("fashion_mnist", "test"), 100), root / "test")
    return root / "train", root / "test"


def test_an_image_folder_holds_the_images_it_was_written_from(tmp_path):
    images = fixed_subset(load_dataset("fashion_mnist", "test"), 30)
    folder = al.save_image_folder(images, tmp_path / "set")
    read = al.image_folder(folder, classes=images.class_names)
    assert read.image_shape == (1, 28, 28)  # greyscale and 28 px, read from the files
    key = lambda s: sorted(zip(s.labels.tolist(), map(bytes, s.images.flatten(1).numpy())))  # noqa: E731
    assert key(read) == key(images)
    first = next((folder / images.class_names[int(images.labels[0])]).iterdir())
    from PIL import Image

    pixels = Image.open(first)
    pixels.putpixel((0, 0), 255 - pixels.getpixel((0, 0)))
    pixels.save(first)
    assert al.image_folder(folder, classes=images.class_names).name != read.name  # a changed folder: a new data set


def test_a_classifier_of_ones_own_runs_resumes_and_is_keyed_by_its_version(folders, tmp_path):
    pool = al.image_folder(folders[0])
    test = al.image_folder(folders[1], classes=pool.class_names, size=28, channels=1)
    al.register_model("TestNet", small_net, "1")
    first = al.run(pool, test, strategy="BALD", seed=0, out=tmp_path, profile="smoke", model="TestNet", progress=False)
    assert list(first.cycle) == [0, 1] and list(first.n_labeled) == [20, 40]
    assert set(first.model) == {"TestNet"} and set(first.model_version) == {"1"}
    assert first.code_version.notna().all() and first.seed.eq(0).all()
    again = al.run(pool, test, strategy="BALD", seed=0, out=tmp_path, profile="smoke", model="TestNet", progress=False)
    pd.testing.assert_series_equal(first.accuracy, again.accuracy)  # resumed from the folder, the same records
    assert len(list((tmp_path / pool.dataset).glob("*/seed0/state.pt"))) == 1
    al.register_model("TestNet", small_net, "2")
    assert model_key("TestNet") == "TestNet@2" and model_key("SmallCNN") == "SmallCNN"
    al.run(pool, test, strategy="BALD", seed=0, out=tmp_path, profile="smoke", model="TestNet", progress=False)
    assert len(list((tmp_path / pool.dataset).glob("*/seed0/state.pt"))) == 2  # another version: another run


def test_galot_on_an_image_folder_with_the_bundled_model(folders, tmp_path):
    pool = al.image_folder(folders[0])
    test = al.image_folder(folders[1], classes=pool.class_names, size=28, channels=1)
    records = al.run(pool, test, generator="bundled", seed=1, out=tmp_path, profile="smoke", progress=False)
    assert list(records.method) == ["GALOT", "GALOT"] and list(records.n_generated) == [20, 60]
    assert set(records.t2i) == {"bundled"} and set(records.a_gal) == {"MarginSampling"}


def test_bad_input_is_refused_before_any_work(folders, tmp_path):
    pool = al.image_folder(folders[0])
    test = al.image_folder(folders[1], classes=pool.class_names, size=28, channels=1)
    with pytest.raises(ValueError, match="valid names"):
        al.run(pool, test, strategy="Nope", out=tmp_path, profile="smoke")
    with pytest.raises(ValueError, match="labels"):
        al.run(pool, test, initial_labeled=190, out=tmp_path, profile="smoke")  # 190 + 20 > 200 images
    with pytest.raises(ValueError, match="test set's"):
        al.run(pool, al.image_folder(folders[1], size=32, channels=1), out=tmp_path, profile="smoke")
    al.register_model("NoStages", small_net, "1")
    with pytest.raises(ValueError, match="stage maps"):
        al.run(pool, test, strategy="LossPrediction", model="NoStages", out=tmp_path, profile="smoke")
    al.register_model("Scaled", lambda k, c: nn.Sequential(small_net(k, c), nn.Tanh()), "1")
    with pytest.raises(ValueError, match="last nn.Linear's output"):
        al.run(pool, test, model="Scaled", out=tmp_path, profile="smoke")
    with pytest.raises(ValueError, match="project's classifiers"):
        al.register_model("SmallCNN", small_net, "1")
    with pytest.raises(ValueError, match="version"):
        al.register_model("Unversioned", small_net, "")
    cats = al.image_tensors(pool.images, pool.labels, ("cat",) + pool.class_names[1:], "cats")
    started = time.perf_counter()
    with pytest.raises(ValueError, match="draws only the 10 classes"):
        al.run(
            cats, al.image_tensors(test.images, test.labels, cats.class_names, "t"), generator="bundled", out=tmp_path
        )
    assert time.perf_counter() - started < 5
    assert not any(tmp_path.iterdir())  # nothing was made


def test_a_module_is_read_through_its_last_linear():
    model = ModuleClassifier(small_net(10, 1), 10, 1, dropout=0.2).eval()
    logits, embedding, stages = model.features(torch.rand(3, 1, 28, 28))
    assert embedding.shape == (3, 32) and stages == [] and torch.allclose(model.head(embedding), logits)
    assert list(dict(model.state_dict())) == ["net.0.weight", "net.0.bias", "net.4.weight", "net.4.bias"]
    with pytest.raises(ValueError, match="not the 5 classes"):
        ModuleClassifier(small_net(10, 1), 5, 1, 0.2)
    check_classifier("SmallCNN", 10, (1, 28, 28))  # the project's own pass the same check
    assert "TestNet" not in MODELS or callable(MODELS["TestNet"])


def cli(*args, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "galot_lib.al", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **HEADLESS_ENVIRONMENT},
    )


def test_the_command_line_runs_and_refuses_bad_arguments(folders, tmp_path, capsys):
    train, test = (str(f) for f in folders)
    done = cli(
        "-a",
        "EntropySampling",
        "-d",
        train,
        "--test",
        test,
        "-s",
        "20",
        "-q",
        "40",
        "-b",
        "20",
        "--seed",
        "3",
        "-m",
        "TinyCNN",
        "--profile",
        "smoke",
        "--out",
        "runs",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    records = pd.read_csv(next((tmp_path / "runs").glob("records-*-EntropySampling-seed3.csv")))
    assert list(records.n_labeled) == [20, 40, 60] and set(records.strategy) == {"EntropySampling"}
    for args, message in [
        (("-d", train, "--test", test, "-q", "50", "-b", "20"), "multiple of -b"),
        (("-d", train), "--test"),
        (("-d", "nowhere"), "neither a data set"),
        (("-d", train, "--test", test, "-m", "Nope"), "unknown model"),
        (("-d", train, "--test", test, "-s", "0"), "-s"),
    ]:  # the same main() the command runs, in this process: each refused before anything loads
        assert al.main([*args, "--profile", "smoke", "--out", str(tmp_path / "refused")]) == 2
        assert message in capsys.readouterr().err, args
    assert not (tmp_path / "refused").exists()


def test_the_example_notebook_runs_on_the_smoke_settings(tmp_path):
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "papermill",
            str(EXAMPLE),
            str(tmp_path / "executed.ipynb"),
            "--cwd",
            str(EXAMPLE.parent),
            "--kernel",
            "python3",
            "--no-progress-bar",
            "-p",
            "POOL_IMAGES",
            "300",
            "-p",
            "TEST_IMAGES",
            "200",
        ],
        capture_output=True,
        text=True,
        env={**os.environ, **HEADLESS_ENVIRONMENT, "GALOT_RUNS_DIR": str(tmp_path / "runs")},
    )
    assert done.returncode == 0, done.stderr[-3000:]
    records = pd.read_csv(tmp_path / "runs" / "own-data" / "smoke" / "records.csv")
    assert sorted(set(records.method)) == ["GALOT", "MarginSampling"]
    assert set(records.model) == {"MySmallNet"} and records.accuracy.between(0, 1).all()
