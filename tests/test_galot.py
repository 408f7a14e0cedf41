"""GALOT: PGD on the prompt embedding, the eps schedule, the generation hook and the cache."""

import dataclasses

import pytest
import torch

from galot_lib.generation.cache import GeneratedCache
from galot_lib.generation.galot import EpsSchedule, GalotConfig, optimize_embeddings, project
from galot_lib.generation.generator import GalotGenerator
from galot_lib.generation.images import generate_images, planned_images, split_evenly
from galot_lib.learning.loop import ALConfig, Generated, run_active_learning
from galot_lib.learning.models import build_model
from galot_lib.generation.t2i import load_t2i
from galot_lib.learning.train import TrainConfig, Trained

from test_loop import tiny_sets

CFG = GalotConfig(template="a photo of a {label}", pgd_steps=3, grad_samples=2, sampling_steps=2, guidance=2.0,
                  eps=EpsSchedule("linear", 0.1, 0.3))


@pytest.fixture
def tiny_t2i(make_bundled_folder):
    return load_t2i(str(make_bundled_folder(image_size=8)))


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    return build_model("TinyCNN", 3, in_channels=1).eval()


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_never_leaves_the_eps_ball(tiny_t2i, classifier, norm):
    c_y = tiny_t2i.encode(["a photo of a bag", "a photo of a coat", "a photo of a shirt"])
    eps = 0.2
    cfg = dataclasses.replace(CFG, norm=norm, eta=0.5)  # steps larger than the ball: projection must act
    c, before = optimize_embeddings(tiny_t2i, classifier, c_y, eps, cfg, [0, 1, 2], 28, 1, max_batch=4)
    delta = c - c_y
    size = delta.flatten(1).abs().max(1).values if norm == "linf" else delta.flatten(1).norm(dim=1)
    assert (size <= eps + 1e-5).all() and (size > 0.5 * eps).all()  # inside the ball, and it moved
    assert torch.equal(delta[:, 0], torch.zeros_like(delta[:, 0]))  # the first token stays fixed
    assert before.isfinite().all()  # acquisition measured for every class


def test_classes_are_optimised_independently_of_batching(tiny_t2i, classifier):
    c_y = tiny_t2i.encode(["a photo of a bag", "a photo of a coat", "a photo of a shirt"])
    together, _ = optimize_embeddings(tiny_t2i, classifier, c_y, 0.2, CFG, [5, 6, 7], 28, 1, max_batch=64)
    alone, _ = optimize_embeddings(tiny_t2i, classifier, c_y[1:2], 0.2, CFG, [6], 28, 1)
    assert torch.allclose(together[1], alone[0], atol=1e-6)


def test_eps_zero_leaves_the_embedding_unchanged(tiny_t2i, classifier):
    c_y = tiny_t2i.encode(["a photo of a coat"])
    c, _ = optimize_embeddings(tiny_t2i, classifier, c_y, 0.0, CFG, [0], 28, 1)
    assert torch.equal(c, c_y)


def test_random_directions_need_no_classifier(tiny_t2i):
    c_y = tiny_t2i.encode(["a photo of a coat"])
    cfg = dataclasses.replace(CFG, acquisition="RandomSampling")
    a, _ = optimize_embeddings(tiny_t2i, None, c_y, 0.3, cfg, [1], 28, 1)
    b, _ = optimize_embeddings(tiny_t2i, None, c_y, 0.3, cfg, [1], 28, 1)
    assert torch.equal(a, b) and (a - c_y).abs().max() <= 0.3 + 1e-6 and not torch.equal(a, c_y)


def test_generated_images_do_not_depend_on_their_batch(tiny_t2i):
    c = tiny_t2i.encode(["a photo of a bag", "a photo of a coat"])
    labels, seeds = planned_images([2, 3], seed=0, cycle=1)
    assert labels.tolist() == [0, 0, 1, 1, 1]
    batched = generate_images(tiny_t2i, c, labels, seeds, CFG, 28, 1, batch_size=5)
    single = generate_images(tiny_t2i, c, labels[3:4], seeds[3:4], CFG, 28, 1)
    assert batched.shape == (5, 1, 28, 28) and batched.dtype == torch.uint8
    assert (batched[3].int() - single[0].int()).abs().max() <= 1  # rounding to uint8 may differ by one step


def test_projection_is_exact():
    c_y = torch.zeros(3, 4)
    c = torch.tensor([[5.0] * 4, [0.1, -3.0, 0.0, 0.2], [1.0, 0.0, 0.0, 0.0]])
    linf = project(c, c_y, 0.5, "linf", fix_first_token=True)
    assert torch.equal(linf[0], torch.zeros(4)) and linf.abs().max() == 0.5
    l2 = project(c, c_y, 1.0, "l2", fix_first_token=False)
    assert torch.isclose(l2.norm(), torch.tensor(1.0))
    batch = project(torch.stack([c, c * 0.01]), torch.zeros(2, 3, 4), 1.0, "l2", fix_first_token=False)
    assert torch.allclose(batch[0], l2) and torch.allclose(batch[1], c * 0.01)  # per embedding, inside left alone


def test_eps_schedule():
    lin = EpsSchedule("linear", 0.0, 1.0)
    assert [lin.at(k, 5) for k in range(5)] == [0.0, 0.25, 0.5, 0.75, 1.0]
    assert EpsSchedule.constant(0.3).at(4, 5) == 0.3
    with pytest.raises(ValueError, match="valid"):
        EpsSchedule("cosine")
    with pytest.raises(ValueError, match=">= 0"):
        EpsSchedule("constant", -1, -1)


@pytest.mark.parametrize("change, message", [
    (dict(template="a photo of a cat"), "{label}"),
    (dict(acquisition="BALD"), "valid"),
    (dict(pgd_steps=0), "pgd_steps"),
    (dict(grad_samples=0), "grad_samples"),
    (dict(norm="l1"), "valid"),
    (dict(eta=-1.0), "eta"),
])
def test_bad_galot_config_is_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(CFG, **change)


def test_non_finite_embedding_stops_with_where(tiny_t2i, classifier):
    c_y = tiny_t2i.encode(["a photo of a coat"]).clone()
    c_y[0, 3, 5] = float("nan")
    with pytest.raises(FloatingPointError, match="class embeddings"):
        optimize_embeddings(tiny_t2i, classifier, c_y, 0.1, CFG, [0], 28, 1)


def test_split_evenly():
    counts = split_evenly(23, 10, seed=0)
    assert counts.sum() == 23 and set(counts.tolist()) == {2, 3}


def test_generator_is_deterministic_and_cached(tiny_t2i, classifier, tmp_path):
    trained = Trained(classifier)
    gen = GalotGenerator(tiny_t2i, ("bag", "coat", "shirt"), CFG, cycles=3, image_size=28, image_channels=1,
                         cache=GeneratedCache(tmp_path))
    first = gen(1, trained, 7, seed=5)
    assert first.images.shape == (7, 1, 28, 28) and first.images.dtype == torch.uint8
    assert sorted(torch.bincount(first.labels, minlength=3).tolist()) == [2, 2, 3]  # split evenly over classes
    assert first.info["cache_hit"] is False and first.info["eps"] == pytest.approx(0.2)
    again = gen(1, trained, 7, seed=5)
    assert again.info["cache_hit"] is True and torch.equal(again.images, first.images)
    uncached = GalotGenerator(tiny_t2i, ("bag", "coat", "shirt"), CFG, 3, 28, 1, cache=None)(1, trained, 7, seed=5)
    assert torch.equal(uncached.images, first.images)  # same seed, same images, with or without the cache
    # Table 6: generate twice as many, keep a random |L|
    over = dataclasses.replace(CFG, oversample=2.0)
    kept = GalotGenerator(tiny_t2i, ("bag", "coat", "shirt"), over, 3, 28, 1)(1, trained, 7, seed=5)
    assert len(kept.labels) == 7 and kept.info["generated_this_cycle"] == 7


def test_cache_rejects_a_damaged_entry(tmp_path):
    cache = GeneratedCache(tmp_path)
    entry = Generated(torch.zeros(2, 1, 4, 4, dtype=torch.uint8), torch.tensor([0, 1]), {"eps": 0.1})
    path = cache.put("abcdef", entry)
    assert torch.equal(cache.get("abcdef").images, entry.images)
    blob = torch.load(path, weights_only=True)
    blob["images"][0, 0, 0, 0] = 9
    torch.save(blob, path)
    with pytest.warns(UserWarning, match="checksum"):
        assert cache.get("abcdef") is None
    path.write_bytes(b"not a torch file")
    with pytest.warns(UserWarning, match="unreadable"):
        assert cache.get("abcdef") is None
    assert cache.get("missing") is None


def test_gal_al_and_gal_only_cycles_end_to_end(tiny_t2i, tmp_path):
    pool, test = tiny_sets()
    config = ALConfig(strategy="MarginSampling", model="TinyCNN", initial_labeled=9, query_size=6, cycles=2,
                      train=TrainConfig(epochs=1, batch_size=16, min_steps=3))
    gen = GalotGenerator(tiny_t2i, pool.class_names, CFG, cycles=2, image_size=28, image_channels=1,
                         cache=GeneratedCache(tmp_path / "cache"))
    records = run_active_learning(config, pool, test, seed=0, run_dir=tmp_path / "galal", generation=gen, progress=False)
    assert [r["n_labeled"] for r in records] == [9, 15]
    assert [r["n_generated"] for r in records] == [9, 24]
    assert all(r["cache_key"] and r["eps"] > 0 for r in records)
    gal_only = run_active_learning(config, pool, test, seed=0, run_dir=tmp_path / "gal", generation=gen,
                                   use_pool=False, progress=False)
    assert [r["n_labeled"] for r in gal_only] == [0, 0]
    assert [r["n_generated"] for r in gal_only] == [9, 24]
    assert gal_only[0]["eps"] == 0.0  # nothing to optimise against before the first training
    assert gal_only[1]["eps"] > 0
