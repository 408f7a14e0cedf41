"""Which code made a result: a digest of the sources that decide it, and the git commit beside it.

A record is evidence only together with the code that made it. Run folders are keyed by their settings, not by
the code, so a run computed by yesterday's code is read back today: every record carries ``code_version`` and the
report and the verdict check refuse records whose version is not the checkout's (naming both). The version is a
digest of the library's Python sources, the source notebooks' code cells and ``run_all.sh`` (not of docs or
results, so committing a run does not change it); the commit is recorded beside it for a reader, where git can
tell it.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
import platform
import subprocess

from .paths import REPO

SOURCES = ("galot_lib/**/*.py", "notebooks/*.ipynb", "run_all.sh")


def _source_text(path) -> bytes:
    """A file's bytes; a notebook's code cells only (outputs, counts and metadata change when it is opened)."""
    if path.suffix != ".ipynb":
        return path.read_bytes()
    cells = json.loads(path.read_text())["cells"]
    return "\n\0".join("".join(c["source"]) for c in cells if c["cell_type"] == "code").encode()


@functools.cache
def code_version(root=REPO) -> str:
    """``src-`` and 12 hex digits of the sha256 over every source file's relative path and content."""
    digest = hashlib.sha256()
    files = sorted({p for pattern in SOURCES for p in root.glob(pattern) if "__pycache__" not in p.parts})
    for path in files:
        digest.update(path.relative_to(root).as_posix().encode() + b"\0")
        digest.update(hashlib.sha256(_source_text(path)).digest())
    return "src-" + digest.hexdigest()[:12]


@functools.cache
def git_commit(root=REPO) -> str | None:
    """The checkout's commit, with ``+changes`` when tracked sources differ from it; None without git."""
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short=12", "HEAD"], capture_output=True, text=True, check=True
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--", "galot_lib", "notebooks", "run_all.sh"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return None
    return commit + ("+changes" if dirty else "")


def provenance() -> dict:
    """The fields every record and configuration file carries."""
    return dict(code_version=code_version(), git_commit=git_commit())


def machine() -> str:
    """The CPU a timing was measured on, its cores and its native bf16 units: benchmark figures compare only within
    one machine (the AMD EPYC and the Intel Xeon this project has run on differ by about 2x in generation)."""
    fields = {"model name": platform.processor() or platform.machine(), "flags": ""}
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                key, _, value = line.partition(":")
                if key.strip() in fields and line.strip():
                    fields[key.strip()] = value.strip()
                if not line.strip():  # the first CPU's block is enough
                    break
    except OSError:
        pass
    bf16 = [unit for unit in ("avx512_bf16", "amx_bf16") if unit in fields["flags"].split()]
    return f"{fields['model name']}, {os.cpu_count()} cores" + (f", {' '.join(bf16)}" if bf16 else "")


def check_same_code(found: set[str], what: str):
    """Refuse results made by other code than the checkout's (``found``: the versions they carry)."""
    here = code_version()
    other = sorted(v for v in found if v != here)
    if other:
        raise ValueError(
            f"{what} was made by code {', '.join(other)}, not by this checkout's {here}: rerun it with this code "
            "(empty its run folders, or point GALOT_RUNS_DIR elsewhere), or check out the code that made it"
        )
