"""Size and CPU training speed of every classifier in galot_lib.learning.models.

For each model at 28x28x1 (Fashion-MNIST) and 32x32x3 (CIFAR), 10 classes: parameter count and
the median time of one forward+backward pass (train mode, cross-entropy) on a batch, with
``torch.set_num_threads(2)`` to match the embedded profile. The embedded budget is about 1 s per
1000 images, i.e. >= 1000 images/s at 28x28x1. ``--bf16`` and ``--channels-last`` time the
trainer's setting (galot_lib.learning.train: bfloat16 autocast where the CPU has it natively, channels-last
model and batches); ``--width`` scales every model (how the ``*-slim`` widths were chosen).

    python bench/bench_models.py                       # all models
    python bench/bench_models.py --models SmallCNN TinyCNN --iters 10
    python bench/bench_models.py --models VGG16-slim DLA-slim --shapes 28x28x1 --threads 1 --bf16 --channels-last
    python bench/bench_models.py --inference --models SmallCNN DenseNet121-slim --shapes 28x28x1 --threads 1

``--inference`` times instead an eval-mode pass over 2,048 images (channels-last, inference mode, bf16 autocast where
the CPU has it natively, as ``train.batched_features`` runs it) at each batch size, the choice behind
``train.inference_batch_size``, with the model as trained and with its BatchNorms folded into its convolutions
and folded with PyTorch's max-pool or with ``models.PairMaxPool`` (``models.fused_for_inference``: both folded and
pair max-pools, what the library scores with), checks that the two max-pools give the same features, and writes the
figures to ``--out`` (default ``bench/results/inference.csv``).
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from galot_lib.core.device import autocast, bf16_is_native
from galot_lib.learning.models import MODELS, build_model

SHAPES = {"28x28x1": (1, 28), "32x32x3": (3, 32)}


def time_step(
    model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, warmup: int, iters: int, bf16: bool
) -> tuple[float, float]:
    """Median wall and process-CPU seconds of one forward+backward pass; warm-up passes absorb
    oneDNN's first-call setup. On one thread the CPU time is what the wall time would be on an
    idle machine, so it stays meaningful while other jobs share the cores."""
    walls, cpus = [], []
    for i in range(warmup + iters):
        start, start_cpu = time.perf_counter(), time.process_time()
        model.zero_grad(set_to_none=True)
        with autocast(bf16):
            loss = F.cross_entropy(model(x), y)
        loss.backward()
        if i >= warmup:
            walls.append(time.perf_counter() - start)
            cpus.append(time.process_time() - start_cpu)
    return statistics.median(walls), statistics.median(cpus)


INFERENCE_BATCHES = (64, 128, 256, 1024)


@torch.inference_mode()
def time_inference(model: torch.nn.Module, x: torch.Tensor, batch: int, bf16: bool) -> float:
    """Best wall seconds of 3 eval-mode passes over ``x`` in batches of ``batch`` (after one warm-up pass)."""
    best = float("inf")
    for repeat in range(4):
        start = time.perf_counter()
        for i in range(0, len(x), batch):
            with autocast(bf16, x.device):
                model.features(x[i : i + batch])
        if repeat:
            best = min(best, time.perf_counter() - start)
    return best


def inference(args) -> None:
    import pandas as pd

    from galot_lib.core.io import save_table
    from galot_lib.core.provenance import code_version, machine
    from galot_lib.learning.models import PairMaxPool, fused_for_inference

    images, bf16 = 2048, bf16_is_native()
    print(
        f"torch {torch.__version__}, {args.threads} threads, eval mode, channels-last, "
        f"{'bf16 autocast' if bf16 else 'fp32'}: images per second at each batch size"
    )
    print(
        f"{'model':<17} {'input':<8} {'BatchNorm':<10} {'max-pool':<9} "
        + " ".join(f"{f'batch {b}':>10}" for b in INFERENCE_BATCHES)
    )
    rows = []
    for name in args.models:
        for shape in args.shapes:
            channels, size = SHAPES[shape]
            model = build_model(name, 10, in_channels=channels, width=args.width).eval()
            model = model.to(memory_format=torch.channels_last)
            x = torch.rand(images, channels, size, size).contiguous(memory_format=torch.channels_last)
            library = fused_for_inference(model)
            folded = copy.deepcopy(library)
            for pool in folded.modules():
                if isinstance(pool, PairMaxPool):
                    pool.__class__ = torch.nn.MaxPool2d
            with torch.inference_mode(), autocast(bf16, x.device):
                ours, theirs = library.features(x[:256]), folded.features(x[:256])
                same = all(torch.equal(a, b) for a, b in zip([*ours[:2], *ours[2]], [*theirs[:2], *theirs[2]]))
            for norms, pools, net in (
                ("separate", "PyTorch", model),
                ("folded", "PyTorch", folded),
                ("folded", "pair", library),
            ):
                rates = [images / time_inference(net, x, b, bf16) for b in INFERENCE_BATCHES]
                rows += [
                    dict(
                        model=name,
                        input=shape,
                        batch_norm=norms,
                        max_pool=pools,
                        batch=b,
                        images_per_s=r,
                        pair_pool_same_features=same,
                    )
                    for b, r in zip(INFERENCE_BATCHES, rates)
                ]
                print(
                    f"{name:<17} {shape:<8} {norms:<10} {pools:<9} " + " ".join(f"{r:>10.0f}" for r in rates),
                    flush=True,
                )
    table = pd.DataFrame(rows).assign(threads=args.threads, bf16=bf16, code_version=code_version(), machine=machine())
    save_table(table, Path(args.out), index=False)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    parser.add_argument("--shapes", nargs="+", default=list(SHAPES), choices=list(SHAPES))
    parser.add_argument("--width", type=float, default=1.0, help="channel multiplier passed to build_model")
    parser.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fp32 where the CPU lacks native bf16)")
    parser.add_argument("--channels-last", action="store_true", help="channels-last model and batches")
    parser.add_argument("--inference", action="store_true", help="time eval-mode passes at several batch sizes")
    parser.add_argument("--out", default="bench/results/inference.csv", help="--inference: the figures as CSV")
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    if args.inference:
        return inference(args)
    layout = torch.channels_last if args.channels_last else torch.contiguous_format
    precision = "bf16 autocast" if args.bf16 and bf16_is_native() else "fp32"
    print(
        f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
        f"median of {args.iters} after {args.warmup} warm-up, forward+backward, 10 classes, "
        f"{precision}, {'channels-last' if args.channels_last else 'NCHW'}, width {args.width}"
    )
    print(f"{'model':<17} {'input':<8} {'params':>11} {'s/batch':>9} {'img/s':>9} {'cpu s/batch':>12}")
    for name in args.models:
        for shape in args.shapes:
            channels, size = SHAPES[shape]
            model = build_model(name, 10, in_channels=channels, width=args.width).train().to(memory_format=layout)
            params = sum(p.numel() for p in model.parameters())
            x = torch.rand(args.batch, channels, size, size).contiguous(memory_format=layout)
            y = torch.randint(0, 10, (args.batch,))
            seconds, cpu = time_step(model, x, y, args.warmup, args.iters, args.bf16)
            print(
                f"{name:<17} {shape:<8} {params:>11,} {seconds:>9.3f} {args.batch / seconds:>9.0f} {cpu:>12.3f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
