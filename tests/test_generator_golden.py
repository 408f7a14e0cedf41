"""GALOT's generation hook pinned end to end: for each way it keeps images (random, oversampled, the most informative,
through a label filter with top-ups, per-image prompts, unoptimised, before any classifier) the labels it returns and
what it records, golden values in ``tests/golden/generator.json``. They were written by the generator before it was
split by job (optimising, rendering, keeping), and hold its parts to the same results: labels and counts exactly,
pixels and measurements within what float rounding moves on another CPU. A change that moves them on purpose
rewrites the file (``python tests/test_generator_golden.py``) in the same commit, with its reason."""

from __future__ import annotations

import dataclasses
import json
import math
import sys
from pathlib import Path

import pytest
import torch
from test_galot import CFG, CLASSES, passes_every_other, with_filter

from galot_lib.generation.cache import GeneratedCache
from galot_lib.generation.generator import GalotGenerator
from galot_lib.generation.t2i import load_t2i
from galot_lib.learning.models import build_model
from galot_lib.learning.train import Trained

GOLDEN = Path(__file__).parent / "golden" / "generator.json"
EXACT = ("rendered", "rendered_now", "topped_up", "generated_this_cycle", "filter_checked", "heldout_n", "cache_hit")
MACHINE_DEPENDENT = ("grad_micro_batch", "sample_micro_batch")  # the memory plan's, from this machine's memory
# name -> (config changes, call: "hook" (the loop's call, cycle 1, |L| 7) or "make" arguments, label filter stand-in)
CASES = {
    "optimised": (dict(), "hook", False),
    "unoptimised": (dict(optimize=False), "hook", False),
    "oversampled": (dict(oversample=2.0), "hook", False),
    "informative": (dict(optimize=False, oversample=3.0, keep_rule="informative"), "hook", False),
    "per_image": (dict(per_image=True), "hook", False),
    "filtered_topped_up": (dict(oversample=1.5), (1, 0.2, 18, 12), True),
    "before_any_classifier": (dict(), "cycle0", False),
}


def outputs(folder: Path, cache_dir: Path) -> dict:
    """Each case's labels, pixel sum and records (numbers only)."""
    torch.manual_seed(0)
    classifier = build_model("TinyCNN", 3, in_channels=1).eval()
    model = load_t2i(str(folder))
    out = {}
    for name, (changes, call, filtered) in CASES.items():
        config = dataclasses.replace(CFG, **changes)
        gen = GalotGenerator(model, CLASSES, config, 28, 1, cache=GeneratedCache(cache_dir / name), judge=classifier)
        if filtered:
            gen = with_filter(gen, passes_every_other)
        if call == "hook":
            made = gen(1, Trained(classifier), 7, seed=5)
        elif call == "cycle0":
            made = gen(0, None, 6, seed=3)
        else:
            cycle, eps, n_make, n_keep = call
            made = gen.make(cycle, classifier, eps, n_make, n_keep, seed=5)
        numbers = {
            k: (round(float(v), 6) if not isinstance(v, bool) else v)
            for k, v in made.info.items()
            if isinstance(v, (int, float)) and not k.endswith("_s") and k not in MACHINE_DEPENDENT
        }
        out[name] = dict(labels=made.labels.tolist(), pixel_sum=int(made.images.long().sum()), info=numbers)
    return out


@pytest.fixture(scope="module")
def produced(tmp_path_factory):
    from conftest import BUNDLED_TOKENS, BUNDLED_WIDTH

    from galot_lib.stand_ins.tiny_models import save_tiny_bundled

    root = tmp_path_factory.mktemp("golden")
    folder = save_tiny_bundled(root / "bundled", 8, 1, 2, None, BUNDLED_TOKENS, BUNDLED_WIDTH)
    return outputs(folder, root / "cache")


@pytest.mark.parametrize("case", sorted(CASES))
def test_the_generator_gives_its_golden_outputs(produced, case):
    golden, got = json.loads(GOLDEN.read_text())[case], produced[case]
    assert got["labels"] == golden["labels"]
    assert got["pixel_sum"] == pytest.approx(golden["pixel_sum"], rel=2e-3)
    assert set(got["info"]) == set(golden["info"])
    for key, value in golden["info"].items():
        if key in EXACT:
            assert got["info"][key] == value, key
        elif not (isinstance(value, float) and math.isnan(value)):
            assert got["info"][key] == pytest.approx(value, abs=2e-3, rel=2e-3), key


if __name__ == "__main__":  # rewrite the golden values (on purpose, in the commit that moves them)
    import tempfile

    sys.path.insert(0, str(Path(__file__).parent))
    from conftest import BUNDLED_TOKENS, BUNDLED_WIDTH

    from galot_lib.stand_ins.tiny_models import save_tiny_bundled

    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        folder = save_tiny_bundled(Path(tmp) / "bundled", 8, 1, 2, None, BUNDLED_TOKENS, BUNDLED_WIDTH)
        GOLDEN.write_text(json.dumps(outputs(folder, Path(tmp) / "cache"), indent=1, sort_keys=True) + "\n")
