"""GALOT: PGD on the prompt embedding, its estimators and objectives, the memory plan, the eps schedule,
the generation hook with its held-out measurement, and the cache."""

import copy
import dataclasses

import pytest
import torch
from test_loop import tiny_sets

from galot_lib.generation import galot
from galot_lib.generation.cache import GeneratedCache
from galot_lib.generation.galot import (
    EpsSchedule,
    GalotConfig,
    GradientProblem,
    memory_plan_for,
    objective_scores,
    optimize_embeddings,
    project,
    prompt_margin,
)
from galot_lib.generation.generator import GalotGenerator
from galot_lib.generation.heldout import heldout_indices, paired_summary
from galot_lib.generation.images import generate_images, planned_images, split_evenly
from galot_lib.generation.keeping import KEEP_SHORT_RENDER_FACTOR
from galot_lib.generation.memory import PathCost
from galot_lib.generation.sampler import sample
from galot_lib.generation.t2i import from_sd_components, load_t2i
from galot_lib.learning.generated import Generated
from galot_lib.learning.loop import ALConfig, run_active_learning
from galot_lib.learning.models import build_model
from galot_lib.learning.train import TrainConfig, Trained

CFG = GalotConfig(
    template="a photo of a {label}",
    pgd_steps=3,
    grad_samples=2,
    sampling_steps=2,
    guidance=2.0,
    eps=EpsSchedule("linear", 0.1, 0.3, cycles=3),
    heldout_samples=2,
)
CLASSES = ("bag", "coat", "shirt")


@pytest.fixture
def tiny_t2i(make_bundled_folder):
    return load_t2i(str(make_bundled_folder(image_size=8)))


@pytest.fixture
def classifier():
    torch.manual_seed(0)
    return build_model("TinyCNN", 3, in_channels=1).eval()


def prompts(*names):
    return [f"a photo of a {n}" for n in names]


@pytest.mark.parametrize("norm", ["linf", "l2"])
def test_pgd_never_leaves_the_eps_ball(tiny_t2i, classifier, norm):
    c_y = tiny_t2i.encode(prompts(*CLASSES))
    eps = 0.2
    cfg = dataclasses.replace(CFG, norm=norm, eta=0.5)  # steps larger than the ball: projection must act
    result = optimize_embeddings(tiny_t2i, classifier, c_y, eps, cfg, [0, 1, 2], 28, 1)
    delta = result.embeddings - c_y
    size = delta.flatten(1).abs().max(1).values if norm == "linf" else delta.flatten(1).norm(dim=1)
    assert (size <= eps + 1e-5).all() and (size > 0.5 * eps).all()  # inside the ball, and it moved
    assert torch.equal(delta[:, 0], torch.zeros_like(delta[:, 0]))  # the first token stays fixed
    assert result.objective_before.isfinite().all()  # measured for every class
    assert len(result.zero_share) == cfg.pgd_steps and result.seconds > 0


def test_classes_are_optimised_independently_of_batching(tiny_t2i, classifier):
    c_y = tiny_t2i.encode(prompts(*CLASSES))
    together = optimize_embeddings(tiny_t2i, classifier, c_y, 0.2, CFG, [5, 6, 7], 28, 1).embeddings
    alone = optimize_embeddings(tiny_t2i, classifier, c_y[1:2], 0.2, CFG, [6], 28, 1).embeddings
    assert torch.allclose(together[1], alone[0], atol=1e-6)


def test_a_gradient_split_into_micro_batches_equals_the_one_batch_gradient(tiny_t2i, classifier):
    c = tiny_t2i.encode(prompts(*CLASSES))
    cfg = dataclasses.replace(CFG, grad_samples=4)
    owner = torch.arange(3).repeat_interleave(4)
    seeds = list(range(100, 112))
    whole, scores = GradientProblem(tiny_t2i, classifier, cfg, 28, 1, 12).gradient(c, owner, seeds)
    for micro in (1, 3, 5):
        split, split_scores = GradientProblem(tiny_t2i, classifier, cfg, 28, 1, micro).gradient(c, owner, seeds)
        torch.testing.assert_close(split, whole, atol=1e-7, rtol=1e-5)
        torch.testing.assert_close(split_scores, scores)
    assert whole.abs().sum() > 0


class MeanBrightness(torch.nn.Module):
    """An analytic two-class classifier: logit gap proportional to the mean pixel value, so every
    acquisition is a known smooth function of one image statistic."""

    def __init__(self):
        super().__init__()
        self.scale = torch.nn.Parameter(torch.tensor(8.0))

    def forward(self, x):
        gap = self.scale * (x.mean(dim=(1, 2, 3)) - 0.3)
        return torch.stack([gap, torch.zeros_like(gap)], 1)


def mean_objective(model, c, seeds, cfg):
    with torch.no_grad():
        images = sample(
            model,
            c.repeat_interleave(len(seeds), 0),
            seeds * len(c),
            steps=cfg.sampling_steps,
            guidance=cfg.guidance,
            out_size=8,
            out_channels=1,
        )
        owner = torch.arange(len(c)).repeat_interleave(len(seeds))
        return float(objective_scores(MeanBrightness(), images, owner, cfg, 8, 1).mean())


@pytest.mark.parametrize("acquisition", ["EntropySampling", "LeastConfidence"])
def test_pgd_climbs_the_objective(tiny_t2i, acquisition):
    """The optimised embedding raises the acquisition on fresh seeds; the opposite move lowers it. A sign flip
    in PGD fails the first check, a detached gradient (no move) fails both."""
    cfg = dataclasses.replace(CFG, acquisition=acquisition, pgd_steps=4, grad_samples=8, estimator="full")
    c_y = tiny_t2i.encode(prompts("bag"))
    result = optimize_embeddings(tiny_t2i, MeanBrightness(), c_y, 0.4, cfg, [3], 8, 1)
    fresh = list(range(500, 516))
    start = mean_objective(tiny_t2i, c_y, fresh, cfg)
    climbed = mean_objective(tiny_t2i, result.embeddings, fresh, cfg)
    opposite = mean_objective(tiny_t2i, 2 * c_y - result.embeddings, fresh, cfg)
    assert climbed > start + 0.01 and opposite < start - 0.01


def test_prompt_margin_rewards_the_boundary_only_from_the_prompts_side():
    probs = torch.tensor([[0.7, 0.2, 0.1], [0.45, 0.4, 0.15], [0.2, 0.7, 0.1]])
    label = torch.zeros(3, dtype=torch.long)
    scores = prompt_margin(probs, label)
    torch.testing.assert_close(scores, torch.tensor([-0.5, -0.05, -0.5]))  # crossing to class 1 scores low again


def test_half_precision_gradients_do_not_flush_to_zero(sd_components):
    """With Stable Diffusion's leading spacing the last step runs at t = 1, where the prompt barely moves the
    output: the fp32 gradient is ~1e-8, below fp16's smallest step, so an unscaled fp16 backward returns zeros.
    The scaled objective keeps it non-zero (but for rare exact cancellations) and pointing the same way."""
    torch.manual_seed(0)
    classifier = build_model("TinyCNN", 3, in_channels=3).eval()
    cfg = GalotConfig(template="a photo of a {label}", grad_samples=2, sampling_steps=4, guidance=2.0)
    grads = {}
    for name, dtype, scale in (
        ("fp32", torch.float32, 1.0),
        ("fp16 unscaled", torch.float16, 1.0),
        ("fp16", torch.float16, galot.HALF_PRECISION_SCALE),
    ):
        model = from_sd_components(**copy.deepcopy(sd_components), device="cpu", dtype=dtype)
        c = model.encode(["a photo of a bag", "a photo of a coat"]).float()
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(galot, "HALF_PRECISION_SCALE", scale)
            problem = GradientProblem(model, classifier, cfg, 16, 3, 4)
            grads[name], _ = problem.gradient(c, torch.tensor([0, 0, 1, 1]), [1, 2, 3, 4])
    zero_share = {name: float((g[:, 1:] == 0).float().mean()) for name, g in grads.items()}
    assert zero_share["fp32"] == 0 and zero_share["fp16 unscaled"] == 1.0  # the failure this guards against
    # A few entries may round to exactly zero where fp16 sums cancel (0.04% on a CPU with native fp16 arithmetic):
    # what is guarded against is the whole gradient flushed to zero.
    assert zero_share["fp16"] < 0.01
    assert torch.nn.functional.cosine_similarity(grads["fp16"].flatten(), grads["fp32"].flatten(), dim=0) > 0.95


def test_fidelity_against_the_full_gradient_is_measured(tiny_t2i, classifier):
    c_y = tiny_t2i.encode(prompts(*CLASSES))
    cfg = dataclasses.replace(CFG, measure_fidelity=True)
    fidelity = optimize_embeddings(tiny_t2i, classifier, c_y, 0.2, cfg, [0, 1, 2], 28, 1).fidelity
    assert -1 <= fidelity["grad_cosine_full"] <= 1 and 0 <= fidelity["grad_sign_agreement_full"] <= 1
    exact = optimize_embeddings(
        tiny_t2i, classifier, c_y, 0.2, dataclasses.replace(cfg, estimator="full"), [0, 1, 2], 28, 1
    ).fidelity
    assert exact["grad_cosine_full"] == pytest.approx(1.0) and exact["grad_sign_agreement_full"] == 1.0


def test_eps_zero_leaves_the_embedding_unchanged(tiny_t2i, classifier):
    c_y = tiny_t2i.encode(prompts("coat"))
    assert torch.equal(optimize_embeddings(tiny_t2i, classifier, c_y, 0.0, CFG, [0], 28, 1).embeddings, c_y)


def test_random_directions_need_no_classifier(tiny_t2i):
    c_y = tiny_t2i.encode(prompts("coat"))
    cfg = dataclasses.replace(CFG, acquisition="RandomSampling")
    a = optimize_embeddings(tiny_t2i, None, c_y, 0.3, cfg, [1], 28, 1).embeddings
    b = optimize_embeddings(tiny_t2i, None, c_y, 0.3, cfg, [1], 28, 1).embeddings
    assert torch.equal(a, b) and (a - c_y).abs().max() <= 0.3 + 1e-6 and not torch.equal(a, c_y)


def test_generated_images_do_not_depend_on_their_batch(tiny_t2i):
    c = tiny_t2i.encode(prompts("bag", "coat"))
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
    lin = EpsSchedule("linear", 0.0, 1.0, cycles=5)
    assert [lin.at(k) for k in range(6)] == [0.0, 0.25, 0.5, 0.75, 1.0, 1.0]  # its own horizon, then flat
    assert EpsSchedule.constant(0.3).at(4) == 0.3
    with pytest.raises(ValueError, match="valid"):
        EpsSchedule("cosine")
    with pytest.raises(ValueError, match=">= 0"):
        EpsSchedule("constant", -1, -1)


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(template="a photo of a cat"), "{label}"),
        (dict(acquisition="BALD"), "valid"),
        (dict(pgd_steps=0), "pgd_steps"),
        (dict(grad_samples=0), "grad_samples"),
        (dict(heldout_samples=0), "heldout_samples must be an integer >= 1"),
        (dict(norm="l1"), "valid"),
        (dict(eta=-1.0), "eta"),
        (dict(estimator="tweedie"), "unknown gradient estimator 'tweedie'; valid: last, full, x0"),
        (dict(estimator="x0"), "the x0 estimator needs estimator_step from 0 to 1"),
        (dict(estimator="x0", estimator_step=2), r"estimator_step from 0 to 1 \(sampling runs 2 steps\)"),
        (dict(estimator_step=1), "estimator_step is only for the x0 estimator"),
        (dict(objective="accuracy"), "valid: acquisition, prompt_margin"),
        (dict(label_filter="judge"), "valid: none, diffusion, clip"),
        (dict(label_filter="clip"), "needs clip_model"),
        (dict(keep_rule="best"), "valid: any, informative"),
        (dict(keep_rule="informative"), "needs oversample > 1"),
        (dict(per_image=True, optimize=False), "needs optimize=True"),
    ],
)
def test_bad_galot_config_is_rejected(change, message):
    with pytest.raises(ValueError, match=message):
        dataclasses.replace(CFG, **change)


def test_non_finite_embedding_stops_with_where(tiny_t2i, classifier):
    c_y = tiny_t2i.encode(prompts("coat")).clone()
    c_y[0, 3, 5] = float("nan")
    with pytest.raises(FloatingPointError, match="class embeddings"):
        optimize_embeddings(tiny_t2i, classifier, c_y, 0.1, CFG, [0], 28, 1)


def test_split_evenly():
    counts = split_evenly(23, 10, seed=0)
    assert counts.sum() == 23 and set(counts.tolist()) == {2, 3}


def test_memory_plan_fits_the_budget_or_says_what_one_image_needs(tiny_t2i, classifier):
    plan = memory_plan_for(tiny_t2i, classifier, CFG, 28, 1, budget_gb=1.0, max_batch=64)
    assert 1 <= plan.grad_micro_batch <= 64 and 1 <= plan.sample_micro_batch <= 64
    assert plan.gradient.per_image > 0 and "images at once" in plan.summary()
    cost = PathCost(fixed=100, per_image=50)
    assert cost.fitting(260, "PGD") == 3
    with pytest.raises(MemoryError, match="too small for PGD: one image needs"):
        cost.fitting(120, "PGD")


def test_the_gradient_micro_batch_stays_below_32_bit_indexing(tiny_t2i, classifier, monkeypatch):
    """Some CUDA kernels refuse tensors of 2^31 elements (SD's VAE decoder at 36 images on an H200): the plan caps the
    gradient's micro-batch by its largest activation, whatever the memory allows."""
    from galot_lib.generation.memory import largest_output

    c = tiny_t2i.encode(prompts("bag")).float()
    largest = largest_output(
        lambda: GradientProblem(tiny_t2i, classifier, CFG, 28, 1, 1).gradient(c, torch.zeros(1, dtype=torch.long), [0]),
        (tiny_t2i.unet, classifier),
    )
    monkeypatch.setattr(galot, "INT32_ELEMENTS", 3 * largest + 1)
    plan = memory_plan_for(tiny_t2i, classifier, CFG, 28, 1, budget_gb=1.25, max_batch=64)  # a budget of its own
    assert plan.grad_micro_batch == plan.grad_index_limit == 3 and "32-bit indexing" in plan.summary()


def test_heldout_summary_is_paired():
    labels = torch.tensor([0, 0, 1, 1])
    scores = dict(
        plain=torch.tensor([0.0, 1.0, 2.0, 3.0]),
        optimized=torch.tensor([1.0, 2.0, 2.0, 5.0]),
        random=torch.tensor([0.0, 1.0, 2.0, 3.0]),
    )
    correct = {d: torch.tensor([True, True, False, True]) for d in scores}
    summary, per_class = paired_summary(labels, scores, correct)
    assert summary["heldout_gain"] == pytest.approx(1.0) and summary["heldout_random_gain"] == 0.0
    assert summary["heldout_gain_se"] == pytest.approx(torch.tensor([1.0, 1, 0, 2]).std().item() / 2)
    assert [c["heldout_gain"] for c in per_class] == [1.0, 1.0] and per_class[1]["label_correct_plain"] == 0.5
    assert heldout_indices(torch.tensor([1, 0, 1, 1, 0]), 2).tolist() == [0, 1, 2, 4]


def test_generator_is_deterministic_cached_and_measured_on_held_out_seeds(tiny_t2i, classifier, tmp_path):
    trained = Trained(classifier)
    gen = GalotGenerator(tiny_t2i, CLASSES, CFG, 28, 1, cache=GeneratedCache(tmp_path), judge=classifier)
    first = gen(1, trained, 7, seed=5)
    assert first.images.shape == (7, 1, 28, 28) and first.images.dtype == torch.uint8
    assert sorted(torch.bincount(first.labels, minlength=3).tolist()) == [2, 2, 3]  # split evenly over classes
    assert first.info["cache_hit"] is False and first.info["eps"] == pytest.approx(0.2)
    assert first.info["heldout_n"] == 6 and len(first.info["heldout_per_class"]) == 3
    assert 0 <= first.info["label_correct_random"] <= 1 and first.info["heldout_gain_se"] >= 0
    again = gen(1, trained, 7, seed=5)
    assert again.info["cache_hit"] is True and torch.equal(again.images, first.images)
    uncached = GalotGenerator(tiny_t2i, CLASSES, CFG, 28, 1, cache=None)(1, trained, 7, seed=5)
    assert torch.equal(uncached.images, first.images)  # same seed, same images, with or without the cache
    # Table 6: generate twice as many, keep a random |L|
    over = dataclasses.replace(CFG, oversample=2.0)
    kept = GalotGenerator(tiny_t2i, CLASSES, over, 28, 1)(1, trained, 7, seed=5)
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
    config = ALConfig(
        strategy="MarginSampling",
        model="TinyCNN",
        initial_labeled=9,
        query_size=6,
        cycles=2,
        train=TrainConfig(epochs=1, batch_size=16, min_steps=3),
    )
    gen = GalotGenerator(tiny_t2i, pool.class_names, CFG, 28, 1, cache=GeneratedCache(tmp_path / "cache"))
    records = run_active_learning(
        config, pool, test, seed=0, run_dir=tmp_path / "galal", generation=gen, progress=False
    )
    assert [r["n_labeled"] for r in records] == [9, 15]
    assert [r["n_generated"] for r in records] == [9, 24]
    assert all(r["cache_key"] and r["eps"] > 0 and r["heldout_n"] > 0 for r in records)
    gal_only = run_active_learning(
        config, pool, test, seed=0, run_dir=tmp_path / "gal", generation=gen, use_pool=False, progress=False
    )
    assert [r["n_labeled"] for r in gal_only] == [0, 0]
    assert [r["n_generated"] for r in gal_only] == [9, 24]
    assert gal_only[0]["eps"] == 0.0 and "heldout_n" not in gal_only[0]  # nothing to optimise against yet
    assert gal_only[1]["eps"] > 0
    shorter = run_active_learning(
        dataclasses.replace(config, cycles=1),
        pool,
        test,
        seed=0,
        run_dir=tmp_path / "galal",
        generation=gen,
        progress=False,
    )
    assert shorter == records[:1]  # a shorter run is the longer one's prefix, read back, not recomputed


def test_the_diffusion_filter_classifies_with_the_bundled_model(tiny_t2i):
    """The embedded profile's label filter (Sec. 4.5) on a bundled-format model: the paired denoising errors of every
    class prompt, the winner among all classes, and the pairwise check against a rival class."""
    from galot_lib.generation.label_filters import DiffusionZeroShot, label_filter_for

    cfg = dataclasses.replace(CFG, label_filter="diffusion")
    check = label_filter_for(cfg, tiny_t2i, CLASSES)
    assert isinstance(check, DiffusionZeroShot)
    images = torch.randint(0, 256, (4, 1, 8, 8), dtype=torch.uint8)
    every = torch.arange(len(CLASSES)).expand(4, -1)
    errors = check.errors(images, every)
    assert errors.shape == (4, len(CLASSES)) and torch.isfinite(errors).all() and (errors >= 0).all()
    torch.testing.assert_close(check.predict(images), errors.argmin(1))
    labels, rivals = torch.tensor([0, 1, 2, 0]), torch.tensor([1, 0, 0, 2])
    kept = check.keeps(images, labels, rivals)
    assert (
        kept.dtype == torch.bool
        and kept.tolist() == (errors[torch.arange(4), labels] <= errors[torch.arange(4), rivals]).tolist()
    )


def test_unoptimised_arms_share_the_plain_prompts_images_as_prefixes(tiny_t2i, classifier, tmp_path):
    """The eps-0 set, an oversampled pool and the selection pool render each plain image once: the smaller
    sets are the first images of every class's seed stream of the larger ones."""
    trained, cache = Trained(classifier), GeneratedCache(tmp_path)
    plain_cfg = dataclasses.replace(CFG, optimize=False)
    pool_cfg = dataclasses.replace(plain_cfg, oversample=4.0, keep_rule="informative")
    plain = GalotGenerator(tiny_t2i, CLASSES, plain_cfg, 28, 1, cache=cache)(1, trained, 6, seed=5)
    selected = GalotGenerator(tiny_t2i, CLASSES, pool_cfg, 28, 1, cache=cache)(1, trained, 6, seed=5)
    alone = GalotGenerator(tiny_t2i, CLASSES, pool_cfg, 28, 1, cache=None)(1, trained, 6, seed=5)
    assert torch.equal(selected.images, alone.images)  # the store changes nothing but the work
    torch.manual_seed(1)
    other = Trained(build_model("TinyCNN", 3, in_channels=1).eval())
    again = GalotGenerator(tiny_t2i, CLASSES, pool_cfg, 28, 1, cache=cache)(1, other, 6, seed=5)
    assert again.info["cache_hit"] is False  # a selection made under one classifier is never another's
    labels, seeds = planned_images(split_evenly(24, 3, 5), 5, 1)
    pool = generate_images(tiny_t2i, tiny_t2i.encode(prompts(*CLASSES)).float(), labels, seeds, CFG, 28, 1)
    first = torch.cat([torch.nonzero(labels == c).flatten()[:2] for c in range(3)]).sort().values
    assert (pool[first].int() - plain.images.int()).abs().max() <= 1  # eps 0 = the first images of each stream
    # selection keeps, per class, the pool's two images of highest margin under the classifier
    from galot_lib.learning.strategies import acquisition_scores
    from galot_lib.learning.train import predict_probs

    scores = acquisition_scores("MarginSampling", predict_probs(classifier, pool))
    for c in range(3):
        best = scores[labels == c].topk(2).values.sort().values
        kept = acquisition_scores("MarginSampling", predict_probs(classifier, selected.images[selected.labels == c]))
        assert torch.allclose(kept.sort().values, best, atol=1e-5)
    assert (
        selected.info["kept_gain"] >= 0 and selected.info["candidate_acquisition"] <= selected.info["kept_acquisition"]
    )
    assert plain.info["kept_gain"] == pytest.approx(0.0, abs=1e-6)


def test_per_image_prompts_move_every_image_against_its_own_noise(tiny_t2i, classifier):
    cfg = dataclasses.replace(CFG, per_image=True)
    made = GalotGenerator(tiny_t2i, CLASSES, cfg, 28, 1, judge=classifier).make(1, classifier, 0.2, 6, 6, seed=5)
    assert made.embeddings.shape[0] == 6 and made.info["heldout_on_own_noise"] is True
    c_y = tiny_t2i.encode(prompts(*CLASSES)).float()
    shift = (made.embeddings - c_y[made.labels]).abs().flatten(1).max(1).values
    assert (shift <= 0.2 + 1e-6).all() and (shift > 0).all()  # each image moved, inside its own eps-ball
    first, second = made.embeddings[made.labels == 0]
    assert not torch.equal(first, second)  # two images of one class, two prompts
    with pytest.raises(ValueError, match="both noise_seeds and classes_of_rows"):
        optimize_embeddings(tiny_t2i, classifier, c_y, 0.1, CFG, [0, 1, 2], 28, 1, noise_seeds=[1, 2, 3])


def test_the_filter_is_asked_in_keeping_order_and_keeps_what_a_full_check_keeps(tiny_t2i, classifier):
    """Selection with a filter checks images from the most informative down until each class's share has passed;
    the kept set equals filtering every image first and then keeping the most informative that passed."""

    cfg = dataclasses.replace(CFG, optimize=False, oversample=4.0, keep_rule="informative")
    gen = with_filter(GalotGenerator(tiny_t2i, CLASSES, cfg, 28, 1), passes_every_other)
    made = gen.make(1, classifier, 0.0, 24, 6, seed=5)
    labels, seeds = planned_images(split_evenly(24, 3, 5), 5, 1)
    pool = gen.renderer.plain_stream(tiny_t2i.encode(prompts(*CLASSES)).float(), labels, seeds, 5, 1)[0]
    from galot_lib.learning.strategies import acquisition_scores
    from galot_lib.learning.train import predict_probs

    scores = acquisition_scores("MarginSampling", predict_probs(classifier, pool))
    passes = passes_every_other(pool, labels, classifier)
    expected = []
    for c in range(3):
        idx = torch.nonzero(passes & (labels == c)).flatten()
        expected += idx[scores[idx].argsort(descending=True, stable=True)[:2]].tolist()
    assert made.info["filter_checked"] < 24  # not every image was asked
    assert torch.equal(made.images, pool[sorted(expected)])


def passes_every_other(images, labels, classifier):
    """A deterministic stand-in for a zero-shot filter's verdicts: each image judged on its own, about half pass."""
    pixels = images.flatten(1).long()
    return (pixels * torch.arange(1, pixels.shape[1] + 1)).sum(1) % 2 == 0


def with_filter(gen, verdicts):
    gen.keeper.label_filter = verdicts  # any filter: the keeping policy asks passes_filter
    gen.keeper.passes_filter = verdicts
    return gen


@pytest.mark.parametrize("optimize", [False, True])
def test_a_filter_that_leaves_a_class_short_renders_more_until_every_share_is_full(tiny_t2i, classifier, optimize):
    """Arms differ in which images they keep, not in how many: the filter's shortfall is rendered anew from the
    next seeds of each short class's stream, and the records say how many images that took."""
    cfg = dataclasses.replace(CFG, optimize=optimize, oversample=1.5)
    gen = with_filter(GalotGenerator(tiny_t2i, CLASSES, cfg, 28, 1), passes_every_other)
    made = gen.make(1, classifier, 0.2 if optimize else 0.0, 18, 12, seed=5)
    assert torch.equal(torch.bincount(made.labels, minlength=3), torch.as_tensor(split_evenly(12, 3, 5)))
    assert made.info["topped_up"] > 0 and made.info["rendered"] == 18 + made.info["topped_up"]
    assert passes_every_other(made.images, made.labels, classifier).all()  # every kept image passed the filter


def test_a_filter_that_passes_too_few_stops_with_what_to_change(tiny_t2i, classifier):
    cfg = dataclasses.replace(CFG, optimize=False, oversample=1.5)
    gen = with_filter(GalotGenerator(tiny_t2i, CLASSES, cfg, 28, 1), lambda images, labels, _: labels < 0)
    with pytest.raises(
        ValueError, match="label filter .* passed 0 of .* raise oversample, lower eps or drop the filter"
    ):
        gen.make(1, classifier, 0.0, 9, 6, seed=5)
    short = dataclasses.replace(cfg, keep_short=True)  # stand-ins only: fewer kept, and the records say how many
    gen = with_filter(GalotGenerator(tiny_t2i, CLASSES, short, 28, 1), lambda images, labels, _: labels < 0)
    made = gen.make(1, classifier, 0.0, 9, 6, seed=5)
    assert len(made.labels) == 0 and made.info["kept_short"] == 6
    assert made.info["rendered"] <= KEEP_SHORT_RENDER_FACTOR * 6  # given up at 5 x each class's share
