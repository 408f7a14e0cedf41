"""Size and CPU training speed of every classifier in galot_lib.models.

For each model at 28x28x1 (Fashion-MNIST) and 32x32x3 (CIFAR), 10 classes: parameter count and
the median time of one forward+backward pass (train mode, cross-entropy) on a batch, with
``torch.set_num_threads(2)`` to match the embedded profile. The embedded budget is about 1 s per
1000 images, i.e. >= 1000 images/s at 28x28x1.

    python bench/bench_models.py                       # all models
    python bench/bench_models.py --models SmallCNN TinyCNN --iters 10
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from galot_lib.models import MODELS, build_model

SHAPES = ((1, 28), (3, 32))


def time_step(model: torch.nn.Module, x: torch.Tensor, y: torch.Tensor, warmup: int, iters: int) -> float:
    """Median seconds of one forward+backward pass; warm-up passes absorb oneDNN's first-call setup."""
    times = []
    for i in range(warmup + iters):
        start = time.perf_counter()
        model.zero_grad(set_to_none=True)
        F.cross_entropy(model(x), y).backward()
        if i >= warmup:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS), choices=list(MODELS))
    parser.add_argument("--batch", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--warmup", type=int, default=1)
    parser.add_argument("--iters", type=int, default=3)
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    print(f"torch {torch.__version__}, {args.threads} threads, batch {args.batch}, "
          f"median of {args.iters} after {args.warmup} warm-up, forward+backward, 10 classes")
    print(f"{'model':<12} {'input':<8} {'params':>11} {'s/batch':>9} {'img/s':>9}")
    for name in args.models:
        for channels, size in SHAPES:
            model = build_model(name, 10, in_channels=channels).train()
            params = sum(p.numel() for p in model.parameters())
            x = torch.rand(args.batch, channels, size, size)
            y = torch.randint(0, 10, (args.batch,))
            seconds = time_step(model, x, y, args.warmup, args.iters)
            print(f"{name:<12} {size}x{size}x{channels:<3} {params:>11,} {seconds:>9.3f} {args.batch / seconds:>9.0f}",
                  flush=True)


if __name__ == "__main__":
    main()
