"""Stable hashes: identities of runs and generated sets, content digests of tensors, files and
modules. The same inputs give the same hash in every process and on every machine."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import torch


def json_default(obj):
    """JSON fallback: dataclasses as dicts, anything else as its ``str``."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return dataclasses.asdict(obj)
    return str(obj)


def stable_hash(obj, length: int = 12) -> str:
    """Hex sha256 (first ``length`` digits) of ``obj`` as canonical JSON (sorted keys)."""
    blob = json.dumps(obj, sort_keys=True, default=json_default)
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def tensor_digest(*tensors) -> str:
    """sha256 of the tensors' raw bytes, in order."""
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def state_fingerprint(module, length: int = 16) -> str:
    """Hash of a module's weights (names and values): e.g. the classifier that guided a generated set."""
    h = hashlib.sha256()
    for name, tensor in sorted(module.state_dict().items()):
        h.update(name.encode())
        h.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()[:length]


def modules_digest(modules, extra: dict | None = None) -> str:
    """``sha256:`` over ``extra`` as JSON and the weights of ``modules`` (any dtype, bytes as stored)."""
    digest = hashlib.sha256(json.dumps(extra or {}, sort_keys=True, default=str).encode())
    for module in modules:
        for key, tensor in module.state_dict().items():
            digest.update(key.encode())
            digest.update(tensor.detach().cpu().reshape(-1).view(torch.uint8).numpy().tobytes())
    return "sha256:" + digest.hexdigest()


def files_digest(root: Path, subfolders, extra: dict | None = None) -> str:
    """``sha256:`` over ``extra`` as JSON and every file of ``subfolders`` (relative path + content digest)."""
    digest = hashlib.sha256(json.dumps(extra or {}, sort_keys=True).encode())
    for sub in subfolders:
        files = sorted(p for p in (Path(root) / sub).rglob("*") if p.is_file() and not p.name.startswith("."))
        for file in files:
            with file.open("rb") as f:
                entry = f"{file.relative_to(root).as_posix()}\0{hashlib.file_digest(f, 'sha256').hexdigest()}\0"
            digest.update(entry.encode())
    return "sha256:" + digest.hexdigest()
