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

``--inference`` times instead an eval-mode pass over 2,048 images (channels-last, inference mode) at each
batch size, the choice behind ``train.inference_batch_size``.
"""

from __future__ import annotations

import argparse
import statistics
import time

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
def time_inference(model: torch.nn.Module, x: torch.Tensor, batch: int) -> float:
    """Wall seconds of one eval-mode pass over ``x`` in batches of ``batch`` (after one warm-up batch)."""
    model(x[:batch])
    start = time.perf_counter()
    for i in range(0, len(x), batch):
        model(x[i : i + batch])
    return time.perf_counter() - start


def inference(args) -> None:
    images = 2048
    print(
        f"torch {torch.__version__}, {args.threads} threads, eval mode, channels-last, fp32: seconds per "
        f"{images:,} images at each batch size"
    )
    print(f"{'model':<17} {'input':<8} " + " ".join(f"{f'batch {b}':>10}" for b in INFERENCE_BATCHES))
    for name in args.models:
        for shape in args.shapes:
            channels, size = SHAPES[shape]
            model = (
                build_model(name, 10, in_channels=channels, width=args.width)
                .eval()
                .to(memory_format=torch.channels_last)
            )
            x = torch.rand(images, channels, size, size).contiguous(memory_format=torch.channels_last)
            times = [time_inference(model, x, b) for b in INFERENCE_BATCHES]
            print(f"{name:<17} {shape:<8} " + " ".join(f"{t:>10.3f}" for t in times), flush=True)


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
