"""Atomic writes: a file a run leaves behind is either complete or absent, never half-written.

Everything is written to a temporary name beside its target (the same folder, so the final
``os.replace`` is atomic on POSIX file systems) and renamed into place once complete. The
temporary name keeps the target's suffix, because some writers (matplotlib) choose the format
from it, and carries the process id, so two processes writing the same file never collide.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .hashing import json_default
from .paths import Saved


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces ``path``, on error it is removed."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.part{path.suffix}")
    try:
        yield tmp
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_text(path: str | Path, text: str) -> Path:
    with atomic_path(path) as tmp:
        tmp.write_text(text)
    return Path(path)


def write_json(path: str | Path, obj, indent: int = 1) -> Path:
    """JSON with dataclasses expanded and anything else unknown written as its ``str``."""
    return write_text(path, json.dumps(obj, indent=indent, default=json_default))


def save_torch(obj, path: str | Path) -> Path:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
    return Path(path)


def save_table(df, path: str | Path, index: bool = True) -> Saved:
    """A pandas DataFrame as CSV; returns its path, shown relative (:class:`~.paths.Saved`)."""
    with atomic_path(path) as tmp:
        df.to_csv(tmp, index=index)
    return Saved(path)


def save_figure(fig, path: str | Path, dpi: int = 110) -> Saved:
    """A matplotlib figure as PNG (or what the suffix names); returns its path, shown relative."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, bbox_inches="tight")
    return Saved(path)
