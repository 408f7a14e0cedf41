"""The rehearsal of the paper profile replaces only sizes, weights and paths, and its stand-ins load through the
paper profile's own loaders (the notebooks' rehearsal itself: tests/test_notebooks.py)."""

import dataclasses

import pytest
import torch

from galot_lib.experiments import rehearsal
from galot_lib.experiments.profiles import get_profile
from galot_lib.generation.label_filters import ClipZeroShot
from galot_lib.generation.prompts import PAPER_TEMPLATES, fill
from galot_lib.generation.sampler import sample
from galot_lib.generation.t2i import load_t2i
from galot_lib.stand_ins.tiny_models import prompt_words, save_tiny_clip, save_tiny_sd

# What the rehearsal may change (README, "Rehearsing the paper profile on a CPU"), and nothing else.
SIZES = {
    "seeds",
    "baseline_seeds",
    "study_seeds",
    "ablation_seeds",
    "choice_seeds",
    "zero_shot_test_images",
    "cycles",
    "transfer_cycles",
    "ablation_cycles",
    "pool_size",
    "test_size",
    "initial_labeled",
    "query_size",
    "train",
    "galot",
    "estimator_options",
    "fig4_per_class",
    "fully_supervised_epochs",
    "gaal_gan_steps",
    "gaal_search_steps",
    "model",  # the same architectures at a quarter width (asserted below)
    "transfer_models",
}
WEIGHTS_AND_PATHS = {"name", "data_dir", "t2i_model", "label_options"}


def test_rehearsal_replaces_only_sizes_weights_and_paths(tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_REHEARSAL_DIR", str(tmp_path))
    (tmp_path / rehearsal.READY).write_text("{}")
    paper = get_profile("paper")
    rehearsed = get_profile("paper-rehearsal")
    changed = {f.name for f in dataclasses.fields(paper) if getattr(paper, f.name) != getattr(rehearsed, f.name)}
    assert changed <= SIZES | WEIGHTS_AND_PATHS
    assert {
        f.name
        for f in dataclasses.fields(paper.train)
        if getattr(paper.train, f.name) != getattr(rehearsed.train, f.name)
    } == {"epochs"}
    galot_changes = {
        f.name
        for f in dataclasses.fields(paper.galot)
        if getattr(paper.galot, f.name) != getattr(rehearsed.galot, f.name)
    }
    assert galot_changes <= {"pgd_steps", "grad_samples", "sampling_steps", "heldout_samples", "eps", "keep_short"}
    assert (rehearsed.galot.eps.kind, rehearsed.galot.eps.start, rehearsed.galot.eps.end) == (
        paper.galot.eps.kind,
        paper.galot.eps.start,
        paper.galot.eps.end,
    )  # the schedule, over fewer cycles
    assert (rehearsed.model, rehearsed.transfer_models) == (
        f"{paper.model}-slim",
        tuple(f"{m}-slim" for m in paper.transfer_models),
    )  # the registry's slim entries: the same classes at a quarter of the channels (test_models.py)
    assert [n for n, _ in rehearsed.label_options] == [n for n, _ in paper.label_options]
    assert dict(rehearsed.label_options[-1][1])["clip_model"] == str(tmp_path / "clip")


def test_the_rehearsal_is_a_profile_of_its_own_that_needs_complete_stand_ins(tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_REHEARSAL_DIR", str(tmp_path))
    with pytest.raises(FileNotFoundError, match=r"READY.json is missing.*python -m galot_lib.experiments.rehearsal"):
        get_profile("paper-rehearsal")
    assert get_profile("paper").name == "paper"  # no environment variable turns the paper profile into another
    (tmp_path / rehearsal.READY).write_text("{}")
    profile = get_profile("paper-rehearsal", cycles=3)
    assert (profile.name, profile.t2i_model, profile.cycles) == ("paper-rehearsal", str(tmp_path / "sd"), 3)


def test_tiny_sd_and_clip_folders_load_like_the_real_ones(tmp_path):
    words = prompt_words([*PAPER_TEMPLATES, "whooping crane"])
    model = load_t2i(str(save_tiny_sd(tmp_path / "sd", words)), device="cpu")
    assert (model.kind, model.image_size, model.sample_shape) == ("stable_diffusion", 32, (4, 8, 8))
    longest = fill(PAPER_TEMPLATES[-1], "whooping crane")
    assert len(model.encode([longest])[0]) == 77  # the paper's longest template fits CLIP's 77 tokens
    images = sample(model, model.encode([longest, "crane"]), [0, 1], steps=2, guidance=7.5, out_size=64, out_channels=3)
    clip = ClipZeroShot(
        str(save_tiny_clip(tmp_path / "clip", words)), ["whooping crane", "crane"], PAPER_TEMPLATES[0], "cpu"
    )
    predicted = clip.predict(images.mul(255).to(torch.uint8))
    assert predicted.shape == (2,) and set(predicted.tolist()) <= {0, 1}
