"""Cost of the prompt-embedding gradient, and how well the last-step estimate tracks the full one.

    python bench/bench_sampler.py [--steps 25] [--n 10] [--prompts 10] [--threads 2]

On the bundled model (its reference classifier supplies the acquisition, MarginSampling):
(a) plain sampling of N images, (b) sampling with the `last` gradient (Proposition 1) plus its
backward, (c) the `full` gradient (every step, checkpointed) plus its backward. Each mode runs
in a fresh subprocess, so its peak resident memory is its own; the printed memory is the peak
minus the memory after loading. Then the cosine similarity and the sign agreement (the fraction
of coordinates whose signs match: what PGD's sign step uses) between the `last` and `full`
gradients, over ``--prompts`` class prompts with the same noise seeds.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time

import torch

TEMPLATE = "a photo of a {label}"


def setup(threads: int):
    from galot_lib.bundled_model.reference import load_reference
    from galot_lib.generation.t2i import load_t2i

    torch.set_num_threads(threads)
    return load_t2i("bundled"), load_reference()


def objective(model, judge, cond, seeds, steps, grad):
    from galot_lib.generation.galot import classifier_scores
    from galot_lib.generation.sampler import sample

    images = sample(model, cond, seeds, steps=steps, guidance=model.default_guidance, grad=grad)
    return classifier_scores(judge, images, "MarginSampling", model.image_size, model.image_channels).mean()


def one_mode(mode: str, steps: int, n: int, threads: int) -> dict:
    model, judge = setup(threads)
    cond = model.encode([TEMPLATE.format(label="coat")])[0]
    seeds = list(range(n))
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    objective(model, judge, cond, seeds[:2], 2, "none")  # warm-up
    t0 = time.perf_counter()
    if mode == "plain":
        with torch.no_grad():
            objective(model, judge, cond, seeds, steps, "none")
    else:
        c = cond.clone().requires_grad_(True)
        torch.autograd.grad(objective(model, judge, c, seeds, steps, mode), c)
    seconds = time.perf_counter() - t0
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return dict(mode=mode, seconds=seconds, peak_mb=peak / 1024, extra_mb=(peak - rss0) / 1024)


def agreement(steps: int, n: int, prompts: int, threads: int) -> list[dict]:
    model, judge = setup(threads)
    from galot_lib.learning.data import FASHION_MNIST_CLASSES

    rows = []
    for i, label in enumerate((FASHION_MNIST_CLASSES * 2)[:prompts]):
        cond = model.encode([TEMPLATE.format(label=label)])[0]
        seeds = [1000 * i + k for k in range(n)]
        grads = {}
        for mode in ("last", "full"):
            c = cond.clone().requires_grad_(True)
            (grads[mode],) = torch.autograd.grad(objective(model, judge, c, seeds, steps, mode), c)
        g_last, g_full = grads["last"][1:].flatten(), grads["full"][1:].flatten()  # token 0 is kept fixed by PGD
        cos = torch.nn.functional.cosine_similarity(g_last, g_full, dim=0).item()
        signs = (g_last.sign() == g_full.sign()).float().mean().item()
        rows.append(dict(prompt=TEMPLATE.format(label=label), cosine=cos, sign_agreement=signs))
    return rows


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--steps", type=int, default=25)
    p.add_argument("--n", type=int, default=10)
    p.add_argument("--prompts", type=int, default=10)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--mode", help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.mode:
        print(json.dumps(one_mode(args.mode, args.steps, args.n, args.threads)))
        return
    res = {}
    for mode in ("plain", "last", "full"):
        out = subprocess.run(
            [
                sys.executable,
                __file__,
                "--mode",
                mode,
                "--steps",
                str(args.steps),
                "--n",
                str(args.n),
                "--threads",
                str(args.threads),
            ],
            capture_output=True,
            text=True,
            check=True,
        )
        res[mode] = json.loads(out.stdout.strip().splitlines()[-1])
    print(f"bundled model, T = {args.steps} DDIM steps, N = {args.n} images, {args.threads} threads")
    print(f"{'mode':<8}{'seconds':>10}{'peak MB':>10}{'extra MB':>10}")
    for mode, r in res.items():
        print(f"{mode:<8}{r['seconds']:>10.2f}{r['peak_mb']:>10.0f}{r['extra_mb']:>10.0f}")
    a, b, c = (res[m]["seconds"] for m in ("plain", "last", "full"))
    print(f"b/a (last / plain) = {b / a:.3f}   c/b (full / last) = {c / b:.2f}")
    rows = agreement(args.steps, args.n, args.prompts, args.threads)
    for r in rows:
        print(f"  {r['prompt']:<28} cosine {r['cosine']:+.3f}   sign agreement {r['sign_agreement']:.3f}")
    cos = torch.tensor([r["cosine"] for r in rows])
    sig = torch.tensor([r["sign_agreement"] for r in rows])
    print(
        f"cosine(last, full) over {len(rows)} prompts: mean {cos.mean():+.3f}, min {cos.min():+.3f}, "
        f"max {cos.max():+.3f}; sign agreement mean {sig.mean():.3f}"
    )


if __name__ == "__main__":
    main()
