"""Bundled-model generation and PGD: images per second and PGD steps per second at the embedded settings, with the
judged label accuracy each gives, for the ways a CPU can compute them.

    python bench/bench_generation.py [--per-class 100] [--threads 2] [--compile] [--out bench/results/generation.csv]

Settings (DDIM, the embedded profile's T and guidance, the GALOT template, the same noise seeds; one process):

* ``fp32`` (the default before issue 31): fp32, UNet channels-last, PyTorch's GroupNorm on channels-last memory;
* ``fp32, contiguous GroupNorm``: GroupNorm on contiguous memory (``generation/layouts.py``);
* ``bf16 autocast``: the UNet under bf16 autocast (native on CPUs with AVX512-BF16/AMX; emulated elsewhere, where
  the library stays in fp32), GroupNorm as before;
* ``bf16 autocast, contiguous GroupNorm``;
* ``..., bf16 weights``: the convolution and linear weights rounded to bf16 once (``weights_rounded_for_autocast``)
  instead of by autocast on every call; the same images, bit for bit (``same_images_as_previous``);
* ``..., plain attention for gradients`` (the default where bf16 is native): PGD's passes use PyTorch's plain (math)
  attention instead of its fused kernel, whose CPU backward is slow at these sizes; renders are unchanged;
* ``..., plain attention everywhere`` (not kept): renders use the plain attention too;
* ``--compile``: bf16 autocast with contiguous GroupNorm under ``torch.compile`` (its compile time printed apart; one
  batch shape).

Batch size: the profile's; both guidance halves are one batch for renders, which use PyTorch's fused attention but
under ``plain attention everywhere``. Images per second over ``--per-class`` x 10 images; the judged label accuracy
is the reference classifier's, ± its standard error; a PGD step (K = 1, N = 2, the ``last`` estimator) per class
against a classifier trained on 50 real labels, and the share of the fp32 gradient's signs each setting's gradient
keeps.
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import dataclasses
import time

import pandas as pd
import torch
from torch.nn.attention import SDPBackend, sdpa_kernel

from galot_lib.bundled_model.reference import load_reference
from galot_lib.core.device import bf16_is_native
from galot_lib.core.io import save_table
from galot_lib.core.provenance import code_version, machine
from galot_lib.experiments import runs
from galot_lib.experiments.profiles import get_profile
from galot_lib.generation.galot import optimize_embeddings
from galot_lib.generation.images import class_seeds, generate_images, planned_images
from galot_lib.generation.layouts import contiguous_group_norms, weights_rounded_for_autocast
from galot_lib.generation.prompts import fill
from galot_lib.generation.t2i import load_t2i
from galot_lib.learning.train import predict_probs

FUSED, FOR_GRADIENTS, EVERYWHERE = "fused", "plain for gradients", "plain everywhere"  # the attention kernels


def set_layout(model, contiguous_norms: bool):
    """GroupNorm on contiguous memory, or PyTorch's own on whatever it gets."""
    if contiguous_norms:
        contiguous_group_norms(model.unet)
    else:
        for norm in model.unet.modules():
            if isinstance(norm, torch.nn.GroupNorm):
                norm.__class__ = torch.nn.GroupNorm


def attention_kernels(attention: str):
    """PyTorch's plain attention for every pass (``EVERYWHERE``); otherwise the model's own choice."""
    return sdpa_kernel(SDPBackend.MATH) if attention == EVERYWHERE else contextlib.nullcontext()


def pgd_step(model, classifier, c, profile) -> tuple[float, torch.Tensor]:
    cfg = dataclasses.replace(profile.galot, pgd_steps=1)
    optimize_embeddings(model, classifier, c[:1], 0.25, cfg, [0], 28, 1)  # warm-up
    t0 = time.perf_counter()
    moved = optimize_embeddings(model, classifier, c, 0.25, cfg, class_seeds(0, 0, len(c)), 28, 1).embeddings
    return (time.perf_counter() - t0) / len(c), (moved - c).sign()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--per-class", type=int, default=100)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="also time torch.compile (about a minute to compile)")
    p.add_argument("--out", default="bench/results/generation.csv")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    profile = get_profile("embedded")
    pool, _ = runs.load_data(profile)
    judge = load_reference()
    model = load_t2i("bundled", mixed_precision=False)
    fp32_weights = model.unet
    c = model.encode([fill(profile.galot.template, n) for n in pool.class_names])
    labels, seeds = planned_images([args.per_class] * 10, 31, 7)
    batch, cfg = profile.max_batch, profile.galot
    from bench_pgd import guiding_classifier

    classifier = guiding_classifier(profile, pool, 0, 0)
    # (name, bf16 autocast, contiguous GroupNorm, bf16 weights, attention: FUSED, FOR_GRADIENTS or EVERYWHERE)
    settings = [("fp32", False, False, False, FUSED), ("fp32, contiguous GroupNorm", False, True, False, FUSED)]
    if bf16_is_native():
        settings += [
            ("bf16 autocast", True, False, False, FUSED),
            ("bf16 autocast, contiguous GroupNorm", True, True, False, FUSED),
            ("bf16 autocast, contiguous GroupNorm, bf16 weights", True, True, True, FUSED),
            ("..., bf16 weights, plain attention for gradients", True, True, True, FOR_GRADIENTS),
            ("..., bf16 weights, plain attention everywhere", True, True, True, EVERYWHERE),
        ]
    if args.compile:
        settings.append(("bf16 autocast, contiguous GroupNorm, torch.compile", bf16_is_native(), True, False, FUSED))
    print(
        f"bundled model, T {cfg.sampling_steps}, guidance {cfg.guidance}, batch {batch}, {len(labels)} images, "
        f"{args.threads} threads, native bf16: {bf16_is_native()}"
    )
    rows, reference_signs, previous_images = [], None, None
    for name, bf16, contiguous, rounded_once, attention in settings:
        model.autocast, model.plain_attention_for_gradients = bf16, attention != FUSED
        model.unet = weights_rounded_for_autocast(copy.deepcopy(fp32_weights)) if rounded_once else fp32_weights
        set_layout(model, contiguous)
        compile_s = 0.0
        if "compile" in name:
            model.unet = torch.compile(model.unet, dynamic=False)
            t0 = time.perf_counter()
            generate_images(model, c, labels[:batch], seeds[:batch], cfg, 28, 1, batch)
            compile_s = time.perf_counter() - t0
        whole = len(labels) // batch * batch  # whole batches only: a compiled UNet recompiles for a new shape
        with attention_kernels(attention):
            generate_images(model, c, labels[:batch], seeds[:batch], cfg, 28, 1, batch)  # warm-up
            t0 = time.perf_counter()
            images = generate_images(model, c, labels[:whole], seeds[:whole], cfg, 28, 1, batch)
            seconds = time.perf_counter() - t0
        correct = (predict_probs(judge, images).argmax(1) == labels[:whole]).float()
        row = dict(
            setting=name,
            images_per_s=whole / seconds,
            label_accuracy=float(correct.mean()),
            label_accuracy_se=float(correct.std() / len(correct) ** 0.5),
            compile_s=compile_s,
            same_images_as_previous=previous_images is not None and torch.equal(images, previous_images),
        )
        previous_images = images
        if "compile" not in name:  # a backward through a compiled UNet would compile again
            with attention_kernels(attention):
                row["pgd_step_s_per_class"], signs = pgd_step(model, classifier, c, profile)
            reference_signs = signs if reference_signs is None else reference_signs
            row["pgd_sign_agreement_with_fp32"] = float((signs == reference_signs).float().mean())
        rows.append(row)
        print(
            f"  {name:56s} {row['images_per_s']:6.1f} images/s, labels {row['label_accuracy']:.4f} "
            f"+- {row['label_accuracy_se']:.4f}"
            + (f", PGD step {row['pgd_step_s_per_class']:.3f} s per class" if "pgd_step_s_per_class" in row else "")
            + (f", compiled in {compile_s:.0f} s" if compile_s else ""),
            flush=True,
        )
    df = pd.DataFrame(rows).assign(
        threads=args.threads,
        images=len(labels),
        batch=batch,
        native_bf16=bf16_is_native(),
        code_version=code_version(),
        machine=machine(),
    )
    first = df.iloc[0]
    df["speedup_images"] = df.images_per_s / first.images_per_s
    if "pgd_step_s_per_class" in df:
        df["speedup_pgd"] = first.pgd_step_s_per_class / df.pgd_step_s_per_class
    save_table(df, args.out, index=False)
    print(df.drop(columns=["code_version", "machine"]).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
