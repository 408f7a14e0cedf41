"""The memory plan: how many images PGD differentiates at once, and how many generation samples at once.

A differentiated denoising step keeps its activations for the backward pass; for Stable Diffusion at
512 px (64 x 64 latents, a guided UNet with cross-attention, and a VAE decoder up to full resolution)
that is gigabytes per image, so a fixed batch size either wastes the GPU or runs out of memory. The
plan measures the peak memory of the real code path at 1 and 2 images (``cost(n) = fixed + n x per
image``) on the device the run uses, and divides the memory budget by it:

* the budget: on CUDA, the free memory (``torch.cuda.mem_get_info``) after the models are loaded, times
  ``CUDA_HEADROOM``; elsewhere the profile's ``memory_budget_gb`` (default: half the machine's memory);
* the measurement: on CUDA, ``torch.cuda.max_memory_allocated``; on a CPU, the peak resident memory of
  a forked child that runs the path (Linux), which also counts the weights the child pages in, so the
  CPU plan errs on the safe side.

A budget too small for even one image is rejected before any work, saying what one image needs. Plans
are cached per process, keyed by everything that changes the measured path.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
from collections.abc import Callable
from dataclasses import dataclass

import torch

GIB = 1024**3
CUDA_HEADROOM = 0.85  # the allocator's fragmentation and the classifier's training share the card
MAX_MICRO_BATCH = 256  # beyond this a larger batch buys no speed on any device we measured
# Some CUDA kernels index with 32-bit integers: the backward of nearest upsampling in SD's VAE decoder refuses a
# gradient of 2^31 elements or more (36 images x 256 channels x 512 x 512 on an H200, bench/gpu_check.py), whatever
# the memory; the gradient's micro-batch stays below it.
INT32_ELEMENTS = 2**31 - 1
_PLANS: dict[tuple, "MemoryPlan"] = {}


@dataclass(frozen=True)
class PathCost:
    """Peak memory of one code path: ``fixed + images x per_image`` bytes."""

    fixed: int
    per_image: int

    def peak(self, images: int) -> int:
        return self.fixed + images * self.per_image

    def fitting(self, budget: int, what: str) -> int:
        """The most images whose peak fits ``budget``; an error naming the need when not even one does."""
        if self.peak(1) > budget:
            raise MemoryError(
                f"the memory budget of {budget / GIB:.2f} GiB is too small for {what}: one image needs "
                f"{self.peak(1) / GIB:.2f} GiB ({self.fixed / GIB:.2f} GiB fixed + "
                f"{self.per_image / GIB:.2f} GiB per image); free memory, lower the image size, or "
                "raise the budget (the profile's memory_budget_gb off a GPU)"
            )
        return max(1, min(MAX_MICRO_BATCH, (budget - self.fixed) // max(self.per_image, 1)))


@dataclass(frozen=True)
class MemoryPlan:
    """Micro-batch sizes (in images) for generation and PGD's gradient, and why. The gradient part is
    None until a classifier exists to differentiate through (cycle 0 of a run without real labels)."""

    device: str
    budget: int  # bytes
    budget_source: str
    generation: PathCost
    sample_micro_batch: int
    gradient: PathCost | None = None
    grad_micro_batch: int | None = None
    grad_index_limit: int | None = None  # the most images whose largest activation stays below INT32_ELEMENTS

    def summary(self) -> str:
        def part(name, cost, micro):
            return (
                f"{name} {cost.per_image / 2**20:.1f} MiB/image + {cost.fixed / 2**20:.1f} MiB -> {micro} images "
                f"at once (predicted peak {cost.peak(micro) / GIB:.2f} GiB)"
            )

        parts = [part("generation", self.generation, self.sample_micro_batch)]
        if self.gradient is not None:
            parts.append(part("PGD gradient", self.gradient, self.grad_micro_batch))
            if self.grad_index_limit is not None and self.grad_micro_batch == self.grad_index_limit:
                parts[-1] += f" (at most {self.grad_index_limit}: 32-bit indexing of the largest activation)"
        return f"memory plan on {self.device}, budget {self.budget / GIB:.2f} GiB ({self.budget_source}): " + "; ".join(
            parts
        )


def memory_budget(device: torch.device, budget_gb: float | None) -> tuple[int, str]:
    """(bytes, where the number comes from): the free GPU memory on CUDA, else the profile's budget, else
    half of the machine's memory."""
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
        return int(free * CUDA_HEADROOM), f"{CUDA_HEADROOM:.0%} of the free CUDA memory"
    if budget_gb is None:
        return os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE") // 2, "half of this machine's memory"
    if not budget_gb > 0:
        raise ValueError(f"memory_budget_gb must be > 0 (or None: half of this machine's memory), got {budget_gb!r}")
    return int(budget_gb * GIB), "the profile's memory_budget_gb"


def largest_output(run: Callable[[], None], modules) -> int:
    """The most elements any submodule of ``modules`` outputs while ``run()`` runs (for the 32-bit index limit)."""
    largest = 0

    def hook(_module, _inputs, output):
        nonlocal largest
        for t in output if isinstance(output, (tuple, list)) else (output,):
            if isinstance(t, torch.Tensor):
                largest = max(largest, t.numel())

    handles = [m.register_forward_hook(hook) for module in modules if module is not None for m in module.modules()]
    try:
        run()
    finally:
        for handle in handles:
            handle.remove()
    return largest


def measure_path(run: Callable[[int], None], device: torch.device) -> PathCost:
    """``PathCost`` of ``run(n)`` (which runs the path for n images) from its peaks at 1 and 2 images."""
    one, two = (peak_bytes(lambda n=n: run(n), device) for n in (1, 2))
    per_image = max(two - one, 1)
    return PathCost(fixed=max(one - per_image, 0), per_image=per_image)


def peak_bytes(run: Callable[[], None], device: torch.device) -> int:
    """The memory ``run()`` adds at its peak, on ``device``."""
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        torch.cuda.reset_peak_memory_stats(device)
        base = torch.cuda.memory_allocated(device)
        run()
        torch.cuda.synchronize(device)
        return torch.cuda.max_memory_allocated(device) - base
    return _child_peak_rss(run)


def _child_peak_rss(run: Callable[[], None], timeout_s: float = 1800) -> int:
    """Peak resident memory a forked child adds while running ``run()`` (Linux; one thread in the child)."""
    if "fork" not in multiprocessing.get_all_start_methods():
        raise RuntimeError(
            "measuring CPU memory needs fork (Linux); give the profile's memory_budget_gb and run on "
            "Linux, or plan on a GPU"
        )
    ctx = multiprocessing.get_context("fork")
    receive, send = ctx.Pipe(duplex=False)
    child = ctx.Process(target=_measure_in_child, args=(run, send), daemon=True)
    child.start()
    if not receive.poll(timeout_s):
        child.kill()
        raise RuntimeError(f"the memory measurement did not finish in {timeout_s:.0f} s")
    result = receive.recv()
    child.join()
    if isinstance(result, str):
        raise RuntimeError(f"the memory measurement failed: {result}")
    return result


def _measure_in_child(run, send):
    try:
        torch.set_num_threads(1)  # the parent's thread pool does not survive fork
        base = _resident_bytes()
        run()
        send.send(max(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - base, 0))
    except BaseException as err:  # report, never hang the parent
        send.send(f"{type(err).__name__}: {err}")
    finally:
        os._exit(0)


def _resident_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def cached_plan(key: tuple, build: Callable[[], MemoryPlan]) -> MemoryPlan:
    """One measurement per process for each key (model, device, path settings, budget), logged when made."""
    if key not in _PLANS:
        _PLANS[key] = build()
        print(_PLANS[key].summary(), flush=True)
    return _PLANS[key]


def chunks(total: int, size: int) -> list[slice]:
    """``range(total)`` cut into consecutive slices of at most ``size``."""
    return [slice(i, min(total, i + size)) for i in range(0, total, max(1, size))]
