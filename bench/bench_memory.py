"""Memory and time of the paper profile's Stable Diffusion paths, measured on this CPU with the full-size
SD 2.1 base architecture and random weights (galot_lib.stand_ins.sd_components; no download).

    python bench/bench_memory.py [--threads 2] [--quick]   # --quick: the plain paths and VAE checkpointing only

Each measurement runs in a fresh process (its peak resident memory is its own), in fp32, at batch 1 and 2
(the per-image cost is the difference; the rest is fixed):

* ``unet step``: one no-grad guided UNet call (two latents per image, 64 x 64, classifier-free guidance);
* ``decode``: one no-grad VAE decode to 512 x 512, plain and with the VAE's tiling (slicing decodes a batch one
  image at a time, which is what a micro-batch of 1 does anyway);
* ``last gradient``: PGD's gradient with Proposition 1's estimator (one guided step, the decode, the resize to
  32 px and ResNet18, backward to the prompt embedding; T cut to 2 steps, since the differentiated step's memory
  does not depend on T), plain and with gradient checkpointing of the VAE decoder's blocks (the default since
  this benchmark measured it), and of the UNet's blocks too.

Then the memory plan these costs give for an 80 GB GPU in fp16 (the fp32 per-image costs halved: an estimate,
which ``bench/gpu_check.py`` replaces with a measurement on a real GPU).
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

GIB = 1024**3


def build(threads: int):
    from galot_lib.generation.t2i import from_sd_components
    from galot_lib.stand_ins.sd_components import sd21_base_components

    torch.set_num_threads(threads)
    return from_sd_components(**sd21_base_components(), device="cpu", dtype=torch.float32, name="sd21-base-random")


def measure(path: str, variant: str, batch: int, threads: int) -> dict:
    from galot_lib.generation.galot import GalotConfig, GradientProblem
    from galot_lib.learning.models import build_model

    model = build(threads)
    cond = model.encode(["a realistic photo of a cat"])[0]
    unet, vae = model.unet, model.vae
    if variant in ("vae checkpointing", "vae+unet checkpointing"):
        vae.enable_gradient_checkpointing()  # the default (t2i.from_sd_components)
    else:
        vae.disable_gradient_checkpointing()
    if variant == "vae+unet checkpointing":
        unet.enable_gradient_checkpointing()
    if variant == "tiling":
        vae.enable_tiling()
    base = _rss()
    t0 = time.perf_counter()
    if path == "unet step":
        with torch.no_grad():
            x = torch.randn(2 * batch, *model.sample_shape)
            emb = torch.stack([model.empty_embedding()] * batch + [cond] * batch)
            unet(x.to(memory_format=torch.channels_last), torch.tensor(501), encoder_hidden_states=emb)
    elif path == "decode":
        with torch.no_grad():
            model.decode(torch.randn(batch, *model.sample_shape))
    else:
        classifier = build_model("ResNet18", 10, in_channels=3).eval()
        cfg = GalotConfig(sampling_steps=2, guidance=7.5, grad_samples=batch)
        problem = GradientProblem(model, classifier, cfg, 32, 3, batch, "last")
        grad, _ = problem.gradient(cond[None].float(), torch.zeros(batch, dtype=torch.long), list(range(batch)))
        zero = float((grad[:, 1:] == 0).float().mean())
        assert torch.isfinite(grad).all(), "non-finite gradient"
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    out = dict(
        path=path, variant=variant, batch=batch, seconds=seconds, peak_gib=peak / GIB, extra_gib=(peak - base) / GIB
    )
    if path == "last gradient":
        out.update(zero_share=zero, grad_norm=float(grad.norm()))
    return out


def _rss() -> int:
    import os

    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--quick", action="store_true", help="without tiling and UNet checkpointing (8 processes, not 12)")
    p.add_argument("--one", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.one:
        path, variant, batch = json.loads(args.one)
        print(json.dumps(measure(path, variant, batch, args.threads)))
        return
    plan = [
        ("unet step", "plain"),
        ("decode", "plain"),
        ("decode", "tiling"),
        ("last gradient", "plain"),
        ("last gradient", "vae checkpointing"),
        ("last gradient", "vae+unet checkpointing"),
    ]
    if args.quick:
        plan = [
            ("unet step", "plain"),
            ("decode", "plain"),
            ("last gradient", "plain"),
            ("last gradient", "vae checkpointing"),
        ]
    rows = []
    for path, variant in plan:
        for batch in (1, 2):
            out = subprocess.run(
                [sys.executable, __file__, "--threads", str(args.threads), "--one", json.dumps([path, variant, batch])],
                capture_output=True,
                text=True,
            )
            if out.returncode:
                print(f"{path} / {variant} / batch {batch} failed:\n{out.stderr[-2000:]}", flush=True)
                continue
            rows.append(json.loads(out.stdout.strip().splitlines()[-1]))
            r = rows[-1]
            print(
                f"{path:14s} {variant:24s} batch {batch}: {r['seconds']:7.1f} s, peak {r['peak_gib']:6.2f} GiB, "
                f"added {r['extra_gib']:6.2f} GiB"
                + (f", zero share {r['zero_share']:.3f}, |grad| {r['grad_norm']:.2e}" if "zero_share" in r else ""),
                flush=True,
            )
    print_plan(rows)


def print_plan(rows: list[dict]):
    from galot_lib.generation.memory import CUDA_HEADROOM, PathCost

    by = {(r["path"], r["variant"], r["batch"]): r["extra_gib"] * GIB for r in rows}
    print(
        f"\nper-image cost (batch 2 - batch 1) and the plan for an 80 GB GPU in fp16 (fp32 costs halved, "
        f"{CUDA_HEADROOM:.0%} of 80 GB usable):"
    )
    for path, variant in dict.fromkeys((r["path"], r["variant"]) for r in rows):
        one, two = by.get((path, variant, 1)), by.get((path, variant, 2))
        if one is None or two is None:
            continue
        cost = PathCost(fixed=int(max(one - (two - one), 0) / 2), per_image=int(max(two - one, 1) / 2))
        images = cost.fitting(int(80 * 1e9 * CUDA_HEADROOM), path)
        print(
            f"  {path:14s} {variant:24s} fp32 {(two - one) / GIB:6.2f} GiB/image; fp16 plan: {images} images per "
            f"micro-batch, predicted peak {cost.peak(images) / GIB:.1f} GiB"
        )


if __name__ == "__main__":
    main()
