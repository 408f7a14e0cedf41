"""Text to model: a classifier from class names alone, from Python and from the command line."""

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image
from test_loop import tiny_sets

from galot_lib.generation.galot import EpsSchedule, GalotConfig
from galot_lib.generation.t2i import load_t2i
from galot_lib.learning.data import load_dataset
from galot_lib.learning.train import TrainConfig
from galot_lib.text_to_model import main, train_from_text

REPO = Path(__file__).resolve().parent.parent
CLASSES = ["trouser", "bag", "sneaker"]


def test_rounds_grow_the_generated_set_train_and_resume(make_bundled_folder, tmp_path):
    t2i = load_t2i(str(make_bundled_folder(image_size=8)))
    _, test = tiny_sets()
    cfg = GalotConfig(
        pgd_steps=1,
        grad_samples=2,
        sampling_steps=2,
        guidance=2.0,
        heldout_samples=1,
        eps=EpsSchedule("linear", 0.1, 0.2, cycles=2),
    )
    args = dict(
        t2i=t2i,
        images_per_round=6,
        model="TinyCNN",
        size=28,
        channels=1,
        galot=cfg,
        train=TrainConfig(epochs=1, batch_size=8, min_steps=2),
        test=test,
        out=tmp_path,
        progress=False,
    )
    first = train_from_text(["bag", "coat", "shirt"], rounds=1, **args)
    result = train_from_text(["bag", "coat", "shirt"], rounds=2, **{**args, "out": tmp_path / "two"})
    extended = train_from_text(["bag", "coat", "shirt"], rounds=2, **args)  # the 1-round folder gains a round
    assert torch.equal(extended.images, result.images) and torch.equal(extended.labels, result.labels)
    assert [r["accuracy"] for r in extended.records] == pytest.approx([r["accuracy"] for r in result.records])
    with pytest.raises(ValueError, match="holds 2 rounds, more than the 1 asked for"):
        train_from_text(["bag", "coat", "shirt"], rounds=1, **args)
    with pytest.raises(ValueError, match="other settings"):
        train_from_text(["bag", "coat", "shirt"], rounds=2, **{**args, "images_per_round": 9})
    from galot_lib.text_to_model import continued_schedule

    # the command line spans --eps over --rounds: more rounds keep the folder's schedule, so its rounds stay a prefix
    assert continued_schedule(tmp_path, EpsSchedule("linear", 0.1, 0.2, cycles=5)).cycles == 2
    assert continued_schedule(tmp_path, EpsSchedule("linear", 0.1, 0.3, cycles=5)).cycles == 5  # another schedule
    assert result.images.shape == (12, 1, 28, 28) and sorted(result.labels.bincount().tolist()) == [4, 4, 4]
    assert [r["n_generated"] for r in result.records] == [6, 12]
    assert result.records[0]["eps"] == 0.0 and result.records[1]["eps"] == pytest.approx(0.2)
    assert result.records[1]["heldout_n"] > 0 and all(0 <= r["accuracy"] <= 1 for r in result.records)
    assert torch.equal(first.images, result.images[:6])  # round 0 does not depend on how many rounds follow
    resumed = train_from_text(["bag", "coat", "shirt"], rounds=2, **{**args, "out": tmp_path / "two"})
    pd.testing.assert_frame_equal(pd.DataFrame(resumed.records), pd.DataFrame(result.records))  # read back
    for name in ("classifier.safetensors", "classifier.json", "generated.safetensors", "README.md"):
        assert (tmp_path / "two" / name).exists()
        assert (tmp_path / "two" / name).stat().st_mode & 0o044 == 0o044  # readable by others, as any new file here
    # the classifier with its preprocessing: files of another size and mode, or tensors at its own
    from PIL import Image

    from galot_lib.text_to_model import predict

    photos = tmp_path / "photos"
    photos.mkdir()
    for i in range(3):
        Image.fromarray(np.full((20, 20, 3), 60 * i, dtype=np.uint8)).save(photos / f"{i}.png")
    table = predict(tmp_path / "two", photos)
    assert list(table.image) == ["0.png", "1.png", "2.png"] and set(table.predicted) <= {"bag", "coat", "shirt"}
    assert np.allclose(table[["bag", "coat", "shirt"]].sum(axis=1), 1, atol=1e-3) and (table.probability <= 1).all()
    assert len(predict(tmp_path / "two", result.images[:4])) == 4
    with pytest.raises(ValueError, match=r"must be uint8 \[N, 1, \d+, \d+\] for this classifier"):
        predict(tmp_path / "two", result.images[:4].float())
    card = (tmp_path / "two" / "README.md").read_text()
    assert "generated.png" not in card and not (tmp_path / "two" / "generated.png").exists()  # 2 per class: no grid
    assert "text-to-image model: `" in card and "(weights `sha256:" in card  # its name, then its weights' digest


@pytest.mark.parametrize(
    "names, message",
    [
        (["bag"], "at least two class names"),
        (["bag", " "], "must not be empty"),
        (["bag", "coat", "bag"], "repeated: \\['bag'\\]"),
    ],
)
def test_bad_class_names_are_rejected(names, message):
    with pytest.raises(ValueError, match=message):
        train_from_text(names, t2i="unused")


def test_the_bundled_model_refuses_classes_it_never_learned_before_any_work(tmp_path):
    """The README's old example trained "cat" on pullovers: now refused before a model loads or a folder is made,
    with the names and phrasings the model knows; its own synonyms ("sweater") are known."""
    out = tmp_path / "never-made"
    with pytest.raises(SystemExit, match=r"draws only the 10 classes it was trained on, not \['cat', 'dog', 'horse'\]"):
        main(["--classes", "cat", "dog", "horse", "--out", str(out)])
    assert not out.exists()
    with pytest.raises(ValueError, match=r"pullover \(sweater, jumper, knitted sweater\)"):
        train_from_text(["sweater", "cat"], t2i="bundled")
    from galot_lib.text_to_model import check_known_classes

    check_known_classes(["sweater", "Ankle Boot", "sneaker"], "bundled")  # synonyms and case: known


def export_folder(root: Path, per_class: int = 15) -> Path:
    """Real Fashion-MNIST test images of CLASSES, as a labelled image folder."""
    test = load_dataset("fashion_mnist", "test")
    for name in CLASSES:
        label = test.class_names.index(name)
        folder = root / name
        folder.mkdir(parents=True)
        for i, index in enumerate(np.flatnonzero(test.labels.numpy() == label)[:per_class]):
            Image.fromarray(test.images[index, 0].numpy()).save(folder / f"{i}.png")
    return root


def test_the_command_line_trains_from_three_class_names_on_the_bundled_model(tmp_path):
    out = tmp_path / "out"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "galot_lib.text_to_model",
            "--classes",
            *CLASSES,
            "--rounds",
            "2",
            "--images-per-round",
            "24",
            "--epochs",
            "1",
            "--steps",
            "2",
            "--guidance",
            "1",  # no unconditional half: the plumbing at a third of the model's default work
            "--model",
            "TinyCNN",
            "--eps",
            "linear:0.05:0.25",
            "--eval",
            str(export_folder(tmp_path / "eval")),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=600,
        env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert result.returncode == 0, result.stderr[-3000:]
    config = json.loads((out / "classifier.json").read_text())
    assert config["class_names"] == CLASSES and config["model"] == "TinyCNN"
    card = (out / "README.md").read_text()
    assert "trouser, bag, sneaker" in card and "heldout_gain" in card
    assert (out / "generated.png").stat().st_size > 2000
    assert "accuracy" in result.stdout and "outputs in" in result.stdout


@pytest.mark.parametrize(
    "args, message",
    [
        (["--classes", "bag", "bag"], "repeated"),
        (["--classes", "bag"], "at least two class names"),
        (["--classes", "bag", "coat", "--t2i", "no/such/model/here"], "neither a model folder nor a hub id"),
        (["--classes", "bag", "coat", "--eps", "cosine:1"], "linear:START:END or constant:EPS"),
        (["--classes", "bag", "coat", "--out", "/proc/galot-cannot-write"], "cannot be written"),
        (["--classes", "bag", "coat", "--rounds", "0"], "--rounds must be an integer >= 1, got 0"),  # the flag named
        (["--classes", "bag", "coat", "--images-per-round", "1"], "--images-per-round \\(1\\) must be an integer >="),
        (["--classes", "bag", "coat", "--eval", "no/such/folder"], "no/such/folder"),
    ],
)
def test_bad_command_lines_stop_before_any_work(args, message, tmp_path):
    argv = args if "--out" in args else [*args, "--out", str(tmp_path / "out")]
    with pytest.raises(SystemExit, match=message):
        main(argv)
    assert not (tmp_path / "out").exists()  # a refused run leaves no empty folder
