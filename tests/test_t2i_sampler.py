"""t2i.py and sampler.py on tiny random components: agreement with diffusers, gradients, seeds, errors."""

from __future__ import annotations

import huggingface_hub.constants
import pytest
import torch
import torch.nn.functional as F
from conftest import BUNDLED_TOKENS, BUNDLED_WIDTH, TEXT_WIDTH, sd_scheduler_config
from diffusers import DDIMScheduler, PNDMScheduler, StableDiffusionPipeline
from diffusers.utils.torch_utils import randn_tensor

from galot_lib.generation.pixels import to_classifier_input
from galot_lib.generation.sampler import initial_noise, sample
from galot_lib.generation.t2i import PAPER_MODEL_ID, from_sd_components, load_t2i
from galot_lib.generation.text_attention import distinct_rows

SEEDS = [3, 7]


def embeddings(shape, seed):
    return torch.randn(shape, generator=torch.Generator().manual_seed(seed))


def sd_model(components, **scheduler_overrides):
    scheduler = DDIMScheduler(**sd_scheduler_config(**scheduler_overrides))
    return from_sd_components(**{**components, "scheduler": scheduler}, device="cpu")


def reference_loop(model, cond, uncond, seeds, steps, guidance, first_tracked, stop_at=None):
    """A plain loop with diffusers' DDIMScheduler.step; autograd records steps from index ``first_tracked``;
    with ``stop_at``, the clean-sample estimate (pred_original_sample) of that step is returned."""
    ddim = DDIMScheduler.from_config(model.scheduler.config)
    ddim.set_timesteps(steps)
    x = randn_tensor((len(seeds), *model.sample_shape), generator=[torch.Generator().manual_seed(s) for s in seeds])
    emb = torch.cat([uncond.expand_as(cond), cond])
    for i, t in enumerate(ddim.timesteps):
        with torch.set_grad_enabled(i >= first_tracked):
            out_uncond, out_cond = model.unet(torch.cat([x, x]), t, encoder_hidden_states=emb).sample.chunk(2)
            step = ddim.step(out_uncond + guidance * (out_cond - out_uncond), t, x, eta=0.0)
            if i == stop_at:
                return step.pred_original_sample
            x = step.prev_sample
    return x


# --- agreement with diffusers ------------------------------------------------------------------------------


@pytest.mark.parametrize("scheduler", ["ddim-epsilon", "ddim-v_prediction", "pndm"])
def test_latent_path_matches_stable_diffusion_pipeline(sd_components, scheduler):
    if scheduler == "pndm":  # SD 2.1's stateful scheduler (config as in its scheduler_config.json): never stepped
        pndm = PNDMScheduler.from_config(sd_scheduler_config(skip_prk_steps=True))
        model = from_sd_components(**{**sd_components, "scheduler": pndm}, device="cpu")
    else:
        model = sd_model(sd_components, prediction_type=scheduler.split("-")[1])
    cond, uncond = embeddings((2, 77, TEXT_WIDTH), 0), embeddings((77, TEXT_WIDTH), 1)
    ours = sample(model, cond, SEEDS, steps=3, guidance=4.0, uncond=uncond)

    pipe = StableDiffusionPipeline(
        **{**sd_components, "scheduler": DDIMScheduler.from_config(model.scheduler.config)},
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.set_progress_bar_config(disable=True)
    expected = pipe(
        prompt_embeds=cond,
        negative_prompt_embeds=uncond.expand(2, -1, -1),
        num_inference_steps=3,
        guidance_scale=4.0,
        eta=0.0,
        height=16,
        width=16,
        output_type="pt",
        generator=[torch.Generator().manual_seed(s) for s in SEEDS],
    ).images
    assert ours.shape == (2, 3, 16, 16)
    torch.testing.assert_close(ours, expected, atol=1e-4, rtol=0)
    if scheduler == "pndm":
        assert model.scheduler.timesteps is None and model.scheduler.counter == 0


def test_pixel_path_matches_ddim_loop(make_bundled_folder):
    model = load_t2i(str(make_bundled_folder()), device="cpu", mixed_precision=False)
    cond, uncond = embeddings((2, BUNDLED_TOKENS, BUNDLED_WIDTH), 0), embeddings((BUNDLED_TOKENS, BUNDLED_WIDTH), 1)
    ours = sample(model, cond, SEEDS, steps=3, guidance=3.0, uncond=uncond)
    with torch.no_grad():
        x = reference_loop(model, cond, uncond, SEEDS, steps=3, guidance=3.0, first_tracked=3)
    expected = ((F.pixel_shuffle(x, 2) + 1) / 2).clamp(0, 1)
    assert ours.shape == (2, 1, 8, 8)
    torch.testing.assert_close(ours, expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("size, channels, space_to_depth", [(8, 1, 2), (16, 1, 4), (8, 3, 2)])
def test_bundled_loader_honours_its_json(make_bundled_folder, size, channels, space_to_depth):
    folder = make_bundled_folder(size, channels, space_to_depth, sampling=dict(steps=12, guidance=2.5))
    model = load_t2i(str(folder), device="cpu")
    side = size // space_to_depth
    assert (model.kind, model.image_size, model.image_channels) == ("bundled", size, channels)
    assert model.sample_shape == (channels * space_to_depth**2, side, side)
    assert model.embedding_shape == (BUNDLED_TOKENS, BUNDLED_WIDTH)
    assert (model.default_steps, model.default_guidance) == (12, 2.5)
    norm, conv = (
        next(m for m in model.unet.modules() if isinstance(m, kind)) for kind in (torch.nn.GroupNorm, torch.nn.Conv2d)
    )
    assert model.dtype == norm.weight.dtype == torch.float32  # stored in fp16
    assert conv.weight.dtype == (torch.bfloat16 if model.autocast else torch.float32)  # rounded once for autocast
    assert model.fingerprint.startswith("sha256:")
    assert load_t2i(str(folder), device="cpu").fingerprint == model.fingerprint
    # decode is pixel_shuffle then [-1, 1] -> [0, 1]
    x = torch.linspace(-1.2, 1.2, channels * space_to_depth**2 * side * side).view(1, -1, side, side)
    torch.testing.assert_close(model.decode(x), ((F.pixel_shuffle(x, space_to_depth) + 1) / 2).clamp(0, 1))
    images = sample(model, torch.zeros(BUNDLED_TOKENS, BUNDLED_WIDTH), [0], steps=1, guidance=1.0)
    assert images.shape == (1, channels, size, size)


def test_bundled_model_encodes_with_minilm(make_bundled_folder):
    model = load_t2i(str(make_bundled_folder()), device="cpu", mixed_precision=False)
    emb = model.encode(["a photo of a coat", ""])
    assert emb.shape == (2, BUNDLED_TOKENS, BUNDLED_WIDTH) and emb.dtype == torch.float32
    torch.testing.assert_close(model.empty_embedding(), emb[1])
    with_default = sample(model, emb[0], SEEDS, steps=2, guidance=2.0)
    torch.testing.assert_close(with_default, sample(model, emb[0], SEEDS, steps=2, guidance=2.0, uncond=emb[1]))


def test_sd_folder_round_trip(sd_components, tmp_path):
    pipe = StableDiffusionPipeline(
        **sd_components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.save_pretrained(tmp_path / "sd")
    model = load_t2i(str(tmp_path / "sd"), device="cpu")
    assert (model.kind, model.image_size, model.sample_shape, model.embedding_shape) == (
        "stable_diffusion",
        16,
        (4, 8, 8),
        (77, TEXT_WIDTH),
    )
    assert model.fingerprint.startswith("sha256:")
    emb = model.encode(["a photo of a cat", ""])
    assert emb.shape == (2, 77, TEXT_WIDTH) and emb.dtype == torch.float32
    torch.testing.assert_close(model.empty_embedding(), emb[1])
    images = sample(model, emb[0], [0, 1], steps=2, guidance=2.0, out_size=8, out_channels=1)
    assert images.shape == (2, 1, 8, 8) and 0 <= images.min() and images.max() <= 1
    with pytest.raises(ValueError, match="longer than 77 tokens"):
        model.encode(["cat " * 80])
    with pytest.raises(ValueError, match="positive multiple of 2"):
        load_t2i(str(tmp_path / "sd"), device="cpu", image_size=15)


# --- gradients ---------------------------------------------------------------------------------------------


def loss_of(images):
    return (images * embeddings(images.shape, 5)).sum()


def grad_of(images, cond):
    return torch.autograd.grad(loss_of(images), cond)[0]


@pytest.mark.parametrize(
    "grad, first_tracked, grad_step", [("last", 2, None), ("full", 0, None), ("x0", 1, 1), ("x0", 0, 0)]
)
def test_gradient_matches_independent_autograd(sd_components, grad, first_tracked, grad_step):
    """``last`` = autograd through the final step, decode and resize only; ``full`` = through every step;
    ``x0`` = through the clean-image estimate of step ``grad_step`` (the scheduler's pred_original_sample)."""
    model = sd_model(sd_components)
    cond, uncond = embeddings((2, 77, TEXT_WIDTH), 0).requires_grad_(), embeddings((77, TEXT_WIDTH), 1)
    ours = grad_of(
        sample(model, cond, SEEDS, steps=3, guidance=2.0, uncond=uncond, grad=grad, grad_step=grad_step, out_size=8),
        cond,
    )

    latents = reference_loop(
        model, cond, uncond, SEEDS, steps=3, guidance=2.0, first_tracked=first_tracked, stop_at=grad_step
    )
    images = sd_components["vae"].decode(latents / sd_components["vae"].config.scaling_factor).sample / 2 + 0.5
    images = F.interpolate(images.clamp(0, 1), size=(8, 8), mode="bilinear", antialias=True)
    torch.testing.assert_close(ours, grad_of(images, cond), atol=1e-6, rtol=1e-4)
    assert torch.isfinite(ours).all() and ours.abs().sum() > 0


def test_text_keys_and_values_once_per_distinct_prompt(sd_components):
    """The UNet given the distinct embeddings and each image's row (text_attention.py) computes what it computes
    given every image's embedding: the same output, the same gradient to the prompts."""
    model = sd_model(sd_components)
    prompts = embeddings((2, 77, TEXT_WIDTH), 0).requires_grad_()
    every = prompts[torch.tensor([1, 0, 1, 1])]
    text, rows = distinct_rows(every)
    assert len(text) == 2 and torch.equal(text[rows], every)
    x, t = embeddings((4, *model.sample_shape), 2), torch.tensor(10)
    shared = model.unet(x, t, encoder_hidden_states=text, cross_attention_kwargs={"text_rows": rows}).sample
    plain = model.unet(x, t, encoder_hidden_states=every).sample
    torch.testing.assert_close(shared, plain)
    grads = [torch.autograd.grad(out.square().sum(), prompts, retain_graph=True)[0] for out in (shared, plain)]
    torch.testing.assert_close(*grads)
    assert grads[0].abs().sum() > 0


@pytest.mark.parametrize("grad", ["last", "x0"])
def test_every_estimator_runs_on_the_bundled_kind_too(make_bundled_folder, grad):
    model = load_t2i(str(make_bundled_folder()), device="cpu", mixed_precision=False)
    cond = embeddings((2, BUNDLED_TOKENS, BUNDLED_WIDTH), 0).requires_grad_()
    g = grad_of(
        sample(model, cond, SEEDS, steps=3, guidance=3.0, grad=grad, grad_step=1 if grad == "x0" else None), cond
    )
    assert torch.isfinite(g).all() and g.abs().sum() > 0


def test_last_differs_from_full_but_not_with_one_step(make_bundled_folder):
    model = load_t2i(str(make_bundled_folder()), device="cpu", mixed_precision=False)
    uncond = embeddings((BUNDLED_TOKENS, BUNDLED_WIDTH), 1)
    for steps in (1, 3):
        grads = {}
        for grad in ("last", "full"):
            cond = embeddings((2, BUNDLED_TOKENS, BUNDLED_WIDTH), 0).requires_grad_()
            grads[grad] = grad_of(sample(model, cond, SEEDS, steps=steps, guidance=3.0, uncond=uncond, grad=grad), cond)
            assert torch.isfinite(grads[grad]).all() and grads[grad].abs().sum() > 0
        assert torch.allclose(grads["last"], grads["full"], atol=1e-7, rtol=1e-5) == (steps == 1)


def test_none_builds_no_graph(sd_components):
    cond = embeddings((77, TEXT_WIDTH), 0).requires_grad_()
    images = sample(sd_model(sd_components), cond, SEEDS, steps=2, guidance=2.0, uncond=torch.zeros(77, TEXT_WIDTH))
    assert not images.requires_grad and images.grad_fn is None


# --- seeds -------------------------------------------------------------------------------------------------


def test_seeds_reproduce_and_regenerate_alone(sd_components):
    model = sd_model(sd_components)
    cond, uncond = embeddings((2, 77, TEXT_WIDTH), 0), embeddings((77, TEXT_WIDTH), 1)
    batch = sample(model, cond, SEEDS, steps=2, guidance=2.0, uncond=uncond)
    torch.testing.assert_close(sample(model, cond, SEEDS, steps=2, guidance=2.0, uncond=uncond), batch, atol=0, rtol=0)
    alone = sample(model, cond[1:], SEEDS[1:], steps=2, guidance=2.0, uncond=uncond)
    torch.testing.assert_close(alone[0], batch[1], atol=1e-6, rtol=0)
    assert torch.equal(initial_noise(model, [SEEDS[1]])[0], initial_noise(model, SEEDS)[1])


# --- errors ------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "change, message",
    [
        (dict(grad="some"), r"grad must be one of \('none', 'last', 'full', 'x0'\)"),
        (dict(grad="x0"), "the x0 estimator needs a step index from 0 to 1"),
        (dict(grad="x0", grad_step=2), "the x0 estimator needs a step index from 0 to 1"),
        (dict(grad="last", grad_step=0), "grad_step is only for grad='x0'"),
        (dict(steps=0), "steps must be an integer from 1 to 1000"),
        (dict(steps=2.0), "steps must be an integer"),
        (dict(guidance=-1.0), "guidance must be a finite number >= 0"),
        (dict(guidance=float("nan")), "guidance must be a finite number >= 0"),
        (dict(seeds=[1, 2, 3]), "2 embeddings for 3 seeds"),
        (dict(seeds=[]), "seeds is empty"),
        (dict(cond=torch.zeros(2, 77, TEXT_WIDTH + 1)), rf"cond must be \[B, 77, {TEXT_WIDTH}\]"),
        (dict(cond=torch.zeros(2, 76, TEXT_WIDTH)), rf"cond must be \[B, 77, {TEXT_WIDTH}\]"),
        (dict(uncond=torch.zeros(3, 77, TEXT_WIDTH)), "uncond has 3 embeddings for 2 seeds"),
        (dict(out_size=0), "out_size must be a positive integer"),
        (dict(out_channels=2), "out_channels must be 1, 3 or None"),
    ],
)
def test_bad_input_is_rejected(sd_components, change, message):
    args = dict(
        cond=torch.zeros(2, 77, TEXT_WIDTH), seeds=SEEDS, steps=2, guidance=2.0, uncond=torch.zeros(77, TEXT_WIDTH)
    )
    args.update(change)
    model = sd_model(sd_components)
    model.unet.forward = None  # any UNet call would fail: rejection happens before work
    with pytest.raises(ValueError, match=message):
        sample(model, args.pop("cond"), args.pop("seeds"), **args)


def test_non_finite_values_name_the_step(sd_components):
    model = sd_model(sd_components)
    cond = torch.zeros(2, 77, TEXT_WIDTH)
    cond[1, 5, 3] = float("nan")
    with pytest.raises(FloatingPointError, match=r"cond, which would enter step 0 of 3 \(timestep 667\)"):
        sample(model, cond, SEEDS, steps=3, guidance=2.0, uncond=torch.zeros(77, TEXT_WIDTH))

    calls = []

    def poison_second_call(module, args, output):
        calls.append(1)
        return (output[0] * float("inf"),) if len(calls) == 2 else output

    model.unet.register_forward_hook(poison_second_call)
    with pytest.raises(FloatingPointError, match=r"after step 1 of 3 \(timestep 334\)"):
        sample(model, torch.zeros(77, TEXT_WIDTH), SEEDS, steps=3, guidance=2.0, uncond=torch.zeros(77, TEXT_WIDTH))


def test_folders_that_are_not_t2i_models(tmp_path, make_bundled_folder):
    (tmp_path / "notes").mkdir()
    (tmp_path / "notes" / "readme.txt").write_text("hello")
    with pytest.raises(ValueError, match="not a text-to-image diffusion model: it lacks unet/, vae/"):
        load_t2i(str(tmp_path / "notes"))
    for sub in ("unet", "text_encoder", "tokenizer", "scheduler"):
        (tmp_path / "half" / sub).mkdir(parents=True)
    (tmp_path / "half" / "model_index.json").write_text("{}")
    with pytest.raises(ValueError, match=r"it lacks vae/ \("):
        load_t2i(str(tmp_path / "half"))
    with pytest.raises(ValueError, match="makes 8x8 images only: accepted image_size: 8"):
        load_t2i(str(make_bundled_folder()), image_size=28)
    with pytest.raises(ValueError, match="neither a model folder nor a hub id"):
        load_t2i(str(tmp_path / "no" / "such" / "folder"))
    for sub in ("unet", "vae", "text_encoder", "text_encoder_2"):
        (tmp_path / "sdxl" / sub).mkdir(parents=True)
    (tmp_path / "sdxl" / "model_index.json").write_text('{"_class_name": "StableDiffusionXLPipeline"}')
    with pytest.raises(
        ValueError, match="is a StableDiffusionXLPipeline .* supported pipelines: StableDiffusionPipeline"
    ):
        load_t2i(str(tmp_path / "sdxl"))  # refused by its class name, before any weight loads


def test_a_pipeline_of_the_same_interface_is_a_loader_and_a_record(sd_components, tmp_path, monkeypatch):
    """A diffusers folder of another pipeline class is refused by name until a loader is registered for it; then it
    loads through the registry and samples like Stable Diffusion."""
    import json

    from galot_lib.generation import t2i
    from galot_lib.generation.t2i import SD_COMPONENTS, from_sd_components

    StableDiffusionPipeline(
        **sd_components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    ).save_pretrained(tmp_path / "mine")
    index = tmp_path / "mine" / "model_index.json"
    index.write_text(json.dumps({**json.loads(index.read_text()), "_class_name": "MyLatentPipeline"}))
    with pytest.raises(ValueError, match="is a MyLatentPipeline .* supported pipelines: StableDiffusionPipeline"):
        load_t2i(str(tmp_path / "mine"))

    def load_mine(folder, name, fingerprint, device, dtype, image_size):
        pipe = StableDiffusionPipeline.from_pretrained(
            folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False
        )
        parts = {c: getattr(pipe, c) for c in SD_COMPONENTS}
        return from_sd_components(
            **parts, name=name, fingerprint="mine", device=device, dtype=dtype, image_size=image_size
        )

    monkeypatch.setitem(t2i.PIPELINES, "MyLatentPipeline", load_mine)
    model = load_t2i(str(tmp_path / "mine"), device="cpu")
    assert model.fingerprint == "mine" and model.sample_shape == (4, 8, 8)
    images = sample(model, model.encode(["a photo of a cat"])[0], [0, 1], steps=2, guidance=2.0)
    assert images.shape == (2, 3, 16, 16) and 0 <= images.min() and images.max() <= 1


@pytest.mark.parametrize(
    "model_id, extra",
    [
        ("galot-test/no-such-model", ""),
        (
            "stabilityai/stable-diffusion-2-1-base",
            f"was removed from the hub by its owner in November 2025; its weights live on as '{PAPER_MODEL_ID}'",
        ),
    ],
)
def test_unavailable_hub_id_names_alternatives(monkeypatch, tmp_path, model_id, extra):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path))
    with pytest.raises(OSError) as info:
        load_t2i(model_id)
    message = str(info.value)
    assert f"cannot load the text-to-image model '{model_id}'" in message and extra in message
    for alternative in (PAPER_MODEL_ID, "stable-diffusion-v1-5/stable-diffusion-v1-5", "model_index.json", "'bundled'"):
        assert alternative in message


def test_to_classifier_input():
    grey = torch.rand(2, 1, 16, 16, requires_grad=True)
    rgb = to_classifier_input(grey, 8, 3)
    assert rgb.shape == (2, 3, 8, 8) and torch.equal(rgb[:, 0], rgb[:, 2])
    torch.testing.assert_close(rgb[:, :1], F.interpolate(grey, size=(8, 8), mode="bilinear", antialias=True))
    rgb.sum().backward()
    assert grey.grad is not None and grey.grad.abs().sum() > 0
    colour = torch.rand(1, 3, 4, 4)
    torch.testing.assert_close(
        to_classifier_input(colour, 4, 1)[:, 0], 0.299 * colour[:, 0] + 0.587 * colour[:, 1] + 0.114 * colour[:, 2]
    )
    with pytest.raises(ValueError, match="channels 1 or 3"):
        to_classifier_input(colour, 4, 2)
