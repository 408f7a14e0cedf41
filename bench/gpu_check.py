"""The first thing to run on a GPU: does the paper profile fit, and how fast is it? No download needed.

    python bench/gpu_check.py [--dtype float16] [--classes 1]

With Stable Diffusion 2.1 base's architecture at full size and random weights (sd_components), in half
precision on CUDA, at the paper profile's settings (N = 10 images per gradient, T = 25 DDIM steps,
guidance 7.5, 32 px ResNet18 classifier): the memory plan (measured per-image cost, micro-batches for this
card), one PGD step for one class, and one generation batch. Printed: peak memory against the plan's
prediction, seconds per image, the gradient's share of exactly-zero entries (fp16 underflow) and whether it
is finite. Writes the measured throughput to ``$GALOT_CACHE_DIR/gpu_throughput.json``, which
``./run_all.sh --profile paper --plan`` then uses. Exits non-zero when there is no CUDA device, when the
peak exceeds the plan's prediction by more than 10%, or when the gradient is not finite or all zero.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import pandas as pd
import torch

GIB = 1024**3


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--dtype", default="float16", choices=["float16", "bfloat16", "float32"])
    p.add_argument("--classes", type=int, default=1, help="classes in the PGD step")
    p.add_argument("--out", default="bench/results/gpu_check.csv", help="the measurements, one CSV row (appended)")
    args = p.parse_args()
    if not torch.cuda.is_available():
        print(
            "gpu_check: no CUDA device is visible (torch.cuda.is_available() is False); run it on the GPU machine",
            file=sys.stderr,
        )
        sys.exit(2)
    from galot_lib.core.paths import cache_root
    from galot_lib.core.provenance import code_version
    from galot_lib.experiments.plan import THROUGHPUT_FILE
    from galot_lib.experiments.profiles import get_profile
    from galot_lib.generation.galot import GradientProblem, memory_plan_for
    from galot_lib.generation.images import generate_images, planned_images
    from galot_lib.generation.t2i import from_sd_components
    from galot_lib.learning.models import build_model
    from galot_lib.stand_ins.sd_components import sd21_base_components

    device = torch.device("cuda")
    dtype = getattr(torch, args.dtype)
    profile = get_profile("paper")
    cfg = profile.galot
    t0 = time.perf_counter()
    model = from_sd_components(**sd21_base_components(), device=device, dtype=dtype, name="sd21-base-random")
    classifier = build_model(profile.model, 10, in_channels=3).to(device).eval()
    print(
        f"{torch.cuda.get_device_name(device)}: SD 2.1 base (random weights, {args.dtype}) built in "
        f"{time.perf_counter() - t0:.0f} s; N = {cfg.grad_samples}, T = {cfg.sampling_steps}, guidance {cfg.guidance}"
    )

    plan = memory_plan_for(model, classifier, cfg, 32, 3, None, profile.max_batch)
    print(plan.summary())

    c = model.encode([f"a realistic photo of a class {i}" for i in range(args.classes)]).float()
    owner = torch.arange(args.classes).repeat_interleave(cfg.grad_samples)
    torch.cuda.synchronize()
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    problem = GradientProblem(model, classifier, cfg, 32, 3, plan.grad_micro_batch, cfg.estimator)
    grad, _ = problem.gradient(c, owner, list(range(len(owner))))
    torch.cuda.synchronize()
    grad_s = time.perf_counter() - t0
    grad_peak = torch.cuda.max_memory_allocated() - base
    zero = float((grad[:, 1:] == 0).float().mean())
    predicted_grad = plan.gradient.peak(min(plan.grad_micro_batch, len(owner)))

    labels, seeds = planned_images([plan.sample_micro_batch], 0, 0)
    torch.cuda.reset_peak_memory_stats()
    base = torch.cuda.memory_allocated()
    t0 = time.perf_counter()
    generate_images(model, c[:1], labels * 0, seeds, cfg, 32, 3, plan.sample_micro_batch)
    torch.cuda.synchronize()
    gen_s = time.perf_counter() - t0
    gen_peak = torch.cuda.max_memory_allocated() - base
    predicted_gen = plan.generation.peak(plan.sample_micro_batch)

    evals = cfg.sampling_steps * 2
    print(
        f"PGD step, {len(owner)} images: {grad_s:.1f} s ({grad_s / len(owner):.2f} s/image), peak "
        f"{grad_peak / GIB:.2f} GiB (plan {predicted_grad / GIB:.2f}), zero gradient share {zero:.4f}, "
        f"finite {bool(torch.isfinite(grad).all())}"
    )
    print(
        f"generation, {len(seeds)} images: {gen_s:.1f} s ({len(seeds) / gen_s:.2f} images/s), peak "
        f"{gen_peak / GIB:.2f} GiB (plan {predicted_gen / GIB:.2f})"
    )
    throughput = dict(
        unet_evals_per_s=len(seeds) * evals / gen_s,  # decodes included, as the plan counts them
        train_images_per_s=_train_throughput(profile, device),
        source=f"measured by bench/gpu_check.py on {torch.cuda.get_device_name(device)} ({args.dtype})",
    )
    path = cache_root() / THROUGHPUT_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(throughput, indent=1))
    print(f"throughput written to {path}: {throughput}")
    row = dict(
        device=torch.cuda.get_device_name(device),
        torch=torch.__version__,
        dtype=args.dtype,
        classes=args.classes,
        grad_samples=cfg.grad_samples,
        sampling_steps=cfg.sampling_steps,
        guidance=cfg.guidance,
        grad_micro_batch=plan.grad_micro_batch,
        sample_micro_batch=plan.sample_micro_batch,
        pgd_step_s=grad_s,
        pgd_s_per_image=grad_s / len(owner),
        pgd_peak_gib=grad_peak / GIB,
        pgd_plan_gib=predicted_grad / GIB,
        zero_gradient_share=zero,
        gradient_finite=bool(torch.isfinite(grad).all()),
        generation_images=len(seeds),
        generation_images_per_s=len(seeds) / gen_s,
        generation_peak_gib=gen_peak / GIB,
        generation_plan_gib=predicted_gen / GIB,
        unet_evals_per_s=throughput["unet_evals_per_s"],
        train_images_per_s=throughput["train_images_per_s"],
        code_version=code_version(),
    )
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame([row]).to_csv(out, mode="a", header=not out.exists(), index=False)
    print(f"measurements appended to {out}")
    failures = []
    if grad_peak > 1.1 * predicted_grad or gen_peak > 1.1 * predicted_gen:
        failures.append("a peak exceeded the memory plan's prediction by more than 10%")
    if not torch.isfinite(grad).all() or zero == 1.0:
        failures.append("the gradient is not finite, or all zero")
    if failures:
        print("gpu_check FAILED: " + "; ".join(failures), file=sys.stderr)
        sys.exit(1)
    print("gpu_check passed")


def _train_throughput(profile, device) -> float:
    """Classifier training images per second (ResNet18, 32 px, the profile's batch size)."""
    from galot_lib.learning.train import fit

    images = torch.randint(0, 255, (4096, 3, 32, 32), dtype=torch.uint8)
    labels = torch.randint(0, 10, (4096,))
    config = profile.train.__class__(**{**profile.train.__dict__, "epochs": 2})
    fit(profile.model, images[:512], labels[:512], 10, config, seed=0, device=device)  # warm-up
    torch.cuda.synchronize()
    t0 = time.perf_counter()
    fit(profile.model, images, labels, 10, config, seed=0, device=device)
    torch.cuda.synchronize()
    return 2 * len(images) / (time.perf_counter() - t0)


if __name__ == "__main__":
    main()
