"""Wall time and memory of every acquisition strategy on a paper-sized synthetic pool.

Pool: 100,000 candidates, 512-d embeddings, 200 classes, 10 MC passes, 50,000 labelled
embeddings; each strategy selects 1,000. Each strategy runs in a fresh subprocess that builds
only the fields it needs, so one strategy's memory cannot hide another's. The peak is the
resident high-water mark *during* ``select`` (reset through /proc/self/clear_refs just
before), and "extra" subtracts the resident size before ``select`` (inputs + torch runtime).

    python bench/bench_strategies.py            # all strategies
    python bench/bench_strategies.py BADGE      # some of them
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

N, D, C, T, M, SELECT = 100_000, 512, 200, 10, 50_000, 1_000


def _rss_mb(key: str) -> float:
    """``VmRSS`` (current) or ``VmHWM`` (peak) of this process, in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(key + ":"):
            return int(line.split()[1]) / 1024
    raise KeyError(key)


def _make_view(needs: frozenset[str]):
    import torch

    from galot_lib.learning.strategies import PoolView

    g = torch.Generator().manual_seed(0)
    fields = {}
    if "probs" in needs or "mc_probs" in needs:
        logits = torch.randn(N, C, generator=g) * 3
        if "probs" in needs:
            fields["probs"] = logits.softmax(-1)
        if "mc_probs" in needs:
            # Pass by pass, so building the input needs no [T, N, C] temporary.
            mc = torch.empty(T, N, C)
            for t in range(T):
                mc[t] = (logits + torch.randn(N, C, generator=g)).softmax(-1)
            fields["mc_probs"] = mc
    if "embeddings" in needs:
        fields["embeddings"] = torch.randn(N, D, generator=g)
    if "labeled_embeddings" in needs:
        fields["labeled_embeddings"] = torch.randn(M, D, generator=g)
    if "predicted_loss" in needs or not needs:  # RandomSampling only needs to know N
        fields["predicted_loss"] = torch.rand(N, generator=g)
    return PoolView(**fields)


def run_one(name: str) -> dict:
    """Time one strategy in this process; the caller runs it in a fresh one."""
    import torch

    from galot_lib.learning.strategies import get_strategy

    strategy = get_strategy(name)
    view = _make_view(strategy.needs)
    before = _rss_mb("VmRSS")
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS to the current RSS
    start = time.perf_counter()
    picks = strategy.select(view, SELECT, torch.Generator().manual_seed(0))
    wall = time.perf_counter() - start
    assert len(set(picks.tolist())) == SELECT
    return {"name": name, "wall_s": wall, "before_mb": before, "peak_mb": _rss_mb("VmHWM")}


def main(names: list[str]) -> None:
    from galot_lib.learning.strategies import STRATEGIES

    print(f"N={N:,} D={D} C={C} T={T} M={M:,} n={SELECT:,}")
    print(f"{'strategy':<16} {'wall s':>8} {'RSS before MB':>14} {'peak MB':>9} {'extra MB':>9}")
    for name in names or list(STRATEGIES):
        out = subprocess.run(
            [sys.executable, __file__, "--one", name], check=True, capture_output=True, text=True
        ).stdout
        r = json.loads(out.splitlines()[-1])
        extra = r["peak_mb"] - r["before_mb"]
        print(f"{name:<16} {r['wall_s']:>8.2f} {r['before_mb']:>14.0f} {r['peak_mb']:>9.0f} {extra:>9.0f}")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--one"]:
        print(json.dumps(run_one(sys.argv[2])))
    else:
        main(sys.argv[1:])
