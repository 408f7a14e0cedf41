"""Atomic writes: a file a run leaves behind is either complete or absent, never half-written; safe reads of the
torch states written here.

Everything is written to a temporary name beside its target (the same folder, so the final
``os.replace`` is atomic on POSIX file systems) and renamed into place once complete. The
temporary name keeps the target's suffix, because some writers (matplotlib) choose the format
from it, and carries the process id, so two processes writing the same file never collide.

Run folders are made to be shared (across processes, nodes and people), so reading one must never run code: every
torch state is read back with torch's weights-only unpickler (``load_torch``), which admits tensors, containers,
numbers and text, plus numpy's arrays and scalars by name (the states hold index arrays and record fields).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from .hashing import json_default
from .paths import Saved

_UMASK = os.umask(0o022)  # read once (umask can only be read by setting it), then restored
os.umask(_UMASK)


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yields a temporary path to write; on success it replaces ``path``, on error it is removed. The file gets the
    mode any new file gets here (some writers, safetensors', create theirs readable by their owner only)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f"{path.stem}.{os.getpid()}.part{path.suffix}")
    try:
        yield tmp
        os.chmod(tmp, 0o666 & ~_UMASK)
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


class UnreadableStateError(ValueError):
    """A saved state that cannot be read back: truncated, or holding something other than tensors, containers,
    numbers, text and numpy arrays (a pickled object whose loading could run code, refused before it runs)."""


def _numpy_globals() -> list:
    """numpy's pickled forms of an array and a scalar of a number type: rebuilt from their raw bytes and a dtype,
    they construct no other object and call no other function (object arrays are not admitted)."""
    import numpy as np

    multiarray = np._core.multiarray if hasattr(np, "_core") else np.core.multiarray
    number_dtypes = {type(np.dtype(code)) for code in np.typecodes["All"] if code not in "OSUVMm"}
    # bytes: an empty array's raw data, which pickle's protocol 2 writes as a call of bytes() (a GAL-only run's
    # labelled indices); bytes() makes a bytes object and nothing else
    return [multiarray._reconstruct, multiarray.scalar, np.ndarray, np.dtype, bytes, *number_dtypes]


def load_torch(path: str | Path, map_location="cpu"):
    """A state written by ``save_torch``, read without running code; a refused or damaged file raises
    :class:`UnreadableStateError` naming it and what to do."""
    import pickle
    import zipfile

    import torch

    path = Path(path)
    with torch.serialization.safe_globals(_numpy_globals()):
        try:
            return torch.load(path, weights_only=True, map_location=map_location)
        except pickle.UnpicklingError as err:
            try:  # a static read of the pickle's global names: nothing runs
                found = ", ".join(torch.serialization.get_unsafe_globals_in_checkpoint(path))
            except (ValueError, RuntimeError):
                found = ""
            raise UnreadableStateError(
                f"{path} holds {found or 'a pickled object'}: more than the tensors, numbers, text and numpy arrays "
                "this project saves, so it was refused unread (loading it could run code). Delete it if you do not "
                "trust where it came from; the run it belongs to then starts again"
            ) from err
        except (RuntimeError, EOFError, zipfile.BadZipFile) as err:
            raise UnreadableStateError(
                f"{path} is truncated or not a torch state ({type(err).__name__}: {str(err).splitlines()[0]}); "
                "delete it and rerun: the run it belongs to starts again from its first cycle"
            ) from err


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
