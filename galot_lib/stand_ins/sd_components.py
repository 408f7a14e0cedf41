"""Stable Diffusion 2.1 base built from its published configuration with random weights: the paper's model
at its real size, for measuring memory and time (and for a GPU owner's first check) without downloading
5 GB of weights. Numbers that depend on the weights' values (image quality, gradient directions) are not
meaningful; sizes, memory and speed are.

The configuration is that of the diffusers folders of ``stabilityai/stable-diffusion-2-1-base``: a UNet
with block channels 320/640/1280/1280, two layers per block, cross-attention width 1024 with linear
projections and 5/10/20/20 head dimensions on 64 x 64 latents; a VAE with 128/256/512/512 channels and
4 latent channels (scaling factor 0.18215); the OpenCLIP ViT-H text tower with the 23 layers SD 2 uses
(width 1024, 16 heads, GELU); DDIM-compatible scaled-linear betas with leading spacing.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

import torch

SD21_BASE_UNET = dict(
    sample_size=64,
    in_channels=4,
    out_channels=4,
    layers_per_block=2,
    block_out_channels=(320, 640, 1280, 1280),
    down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
    up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
    cross_attention_dim=1024,
    attention_head_dim=(5, 10, 20, 20),
    use_linear_projection=True,
    norm_num_groups=32,
    norm_eps=1e-5,
    act_fn="silu",
    flip_sin_to_cos=True,
    freq_shift=0,
    upcast_attention=False,
)
SD21_BASE_VAE = dict(
    in_channels=3,
    out_channels=3,
    latent_channels=4,
    layers_per_block=2,
    block_out_channels=(128, 256, 512, 512),
    down_block_types=("DownEncoderBlock2D",) * 4,
    up_block_types=("UpDecoderBlock2D",) * 4,
    norm_num_groups=32,
    act_fn="silu",
    sample_size=512,
    scaling_factor=0.18215,
)
SD21_TEXT_ENCODER = dict(
    vocab_size=49408,
    hidden_size=1024,
    intermediate_size=4096,
    num_hidden_layers=23,
    num_attention_heads=16,
    max_position_embeddings=77,
    hidden_act="gelu",
    projection_dim=512,
)
SD21_SCHEDULER = dict(
    beta_start=0.00085,
    beta_end=0.012,
    beta_schedule="scaled_linear",
    clip_sample=False,
    set_alpha_to_one=False,
    steps_offset=1,
    prediction_type="epsilon",
    num_train_timesteps=1000,
)


def byte_tokenizer(max_length: int = 77):
    """A CLIP tokenizer whose vocabulary is the 512 byte-level characters (no merges): it tokenizes any
    prompt without a downloaded vocabulary, into ids every CLIP text model accepts."""
    from transformers import CLIPTokenizer
    from transformers.convert_slow_tokenizer import bytes_to_unicode

    chars = list(bytes_to_unicode().values())
    vocab = {tok: i for i, tok in enumerate(chars + [c + "</w>" for c in chars] + ["<|startoftext|>", "<|endoftext|>"])}
    with tempfile.TemporaryDirectory(prefix="galot-tokenizer-") as name:  # read into memory, then removed
        folder = Path(name)
        (folder / "vocab.json").write_text(json.dumps(vocab))
        (folder / "merges.txt").write_text("#version: 0.2\n")
        return CLIPTokenizer.from_pretrained(folder, model_max_length=max_length)


def sd21_base_components(seed: int = 0, dtype=torch.float32) -> dict:
    """Random-weight UNet, VAE, text encoder, tokenizer and DDIM scheduler at Stable Diffusion 2.1 base's size,
    for ``t2i.from_sd_components``."""
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    torch.manual_seed(seed)
    tokenizer = byte_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            **SD21_TEXT_ENCODER,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return dict(
        unet=UNet2DConditionModel(**SD21_BASE_UNET).to(dtype),
        vae=AutoencoderKL(**SD21_BASE_VAE).to(dtype),
        text_encoder=text_encoder.to(dtype),
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(**SD21_SCHEDULER),
    )
