"""GAAL: the GAN trains, its queries sit nearer the decision boundary, the oracle labels them."""

import torch
from test_loop import tiny_sets

from galot_lib.learning.gaal import GaalConfig, GaalSynthesis, cached_gan
from galot_lib.learning.loop import ALConfig, run_active_learning
from galot_lib.learning.models import build_model
from galot_lib.learning.strategies import acquisition_scores
from galot_lib.learning.train import TrainConfig, Trained

CFG = GaalConfig(gan_steps=15, batch_size=16, candidates_per_query=3, search_steps=5, search_lr=0.1)


def test_gan_is_cached_and_deterministic(tmp_path):
    pool, _ = tiny_sets()
    a = cached_gan(pool.images, CFG, tmp_path, progress=False)
    assert len(list(tmp_path.glob("gan_*.pt"))) == 1
    b = cached_gan(pool.images, CFG, tmp_path, progress=False)  # read back, not retrained
    z = torch.randn(4, CFG.latent_dim)
    out = a(z)
    assert out.shape == (4, 1, 28, 28) and out.min() >= 0 and out.max() <= 1
    assert torch.equal(out, b(z))


def test_queries_are_near_the_boundary_and_oracle_labelled(tmp_path):
    pool, _ = tiny_sets()
    torch.manual_seed(0)
    classifier = build_model("TinyCNN", 3, in_channels=1).eval()
    oracle = build_model("TinyCNN", 3, in_channels=1).eval()
    synth = GaalSynthesis(cached_gan(pool.images, CFG, tmp_path, progress=False), oracle, CFG, 28, 1)
    batch = synth(1, Trained(classifier), 6, seed=0)
    assert batch.images.shape == (6, 1, 28, 28) and batch.images.dtype == torch.uint8
    with torch.no_grad():
        random_images = synth.g(torch.randn(6, CFG.latent_dim))
        random_score = acquisition_scores("MarginSampling", classifier(random_images).softmax(-1)).mean()
        assert batch.info["gaal_margin_score"] >= float(random_score)
        expected = oracle(batch.images.float() / 255).argmax(1)
    assert torch.equal(batch.labels, expected)


def test_gaal_runs_in_the_loop(tmp_path):
    pool, test = tiny_sets()
    oracle = build_model("TinyCNN", 3, in_channels=1).eval()
    synth = GaalSynthesis(cached_gan(pool.images, CFG, tmp_path, progress=False), oracle, CFG, 28, 1)
    config = ALConfig(
        model="TinyCNN",
        initial_labeled=9,
        query_size=6,
        cycles=2,
        method="GAAL",
        train=TrainConfig(epochs=1, batch_size=16, min_steps=2),
    )
    records = run_active_learning(config, pool, test, seed=0, synthesis=synth, progress=False)
    assert [r["n_labeled"] for r in records] == [9, 15] and records[0]["method"] == "GAAL"
