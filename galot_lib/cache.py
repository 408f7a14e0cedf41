"""Generated sets on disk, keyed by everything that produced them.

Generation is the expensive part of GALOT, so a generated set is stored once under a key
that hashes its full provenance (model fingerprint, template, classes, eps, cycle, seed,
classifier weights, PGD and sampling settings) and is reused by reruns and by other
notebooks (Sec. 4.3 trains other networks on Sec. 4.1's sets). Files are written atomically
and verified by checksum when read: a damaged entry is reported and treated as missing.
"""

from __future__ import annotations

import hashlib
import json
import os
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import torch


def default_cache_dir() -> Path:
    return Path(os.environ.get("GALOT_CACHE_DIR", Path.home() / ".cache" / "galot" / "generated"))


def make_key(**parts) -> str:
    blob = json.dumps(parts, sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def checksum(*tensors: torch.Tensor) -> str:
    h = hashlib.sha256()
    for t in tensors:
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


@dataclass
class CachedSet:
    images: torch.Tensor  # uint8 [n, C, H, W]
    labels: torch.Tensor  # int64 [n]
    meta: dict = field(default_factory=dict)  # JSON-able provenance and statistics
    embeddings: torch.Tensor | None = None  # the optimised class embeddings [C, L, D] (fp16)


class GeneratedCache:
    """A folder of generated sets: ``<root>/<key[:2]>/<key>.pt``."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else default_cache_dir()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def get(self, key: str) -> CachedSet | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            blob = torch.load(path, weights_only=True)
            ok = blob["checksum"] == checksum(blob["images"], blob["labels"])
        except Exception as err:  # unreadable file: regenerate rather than fail the run
            warnings.warn(f"cache entry {path} is unreadable ({err}); it will be regenerated")
            return None
        if not ok:
            warnings.warn(f"cache entry {path} fails its checksum; it will be regenerated")
            return None
        return CachedSet(blob["images"], blob["labels"], json.loads(blob["meta"]), blob.get("embeddings"))

    def put(self, key: str, entry: CachedSet) -> Path:
        path = self.path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        blob = dict(images=entry.images.contiguous(), labels=entry.labels.contiguous(), meta=json.dumps(entry.meta, default=str),
                    checksum=checksum(entry.images, entry.labels))
        if entry.embeddings is not None:
            blob["embeddings"] = entry.embeddings.detach().to(torch.float16).cpu()
        tmp = path.with_name(path.name + f".{os.getpid()}.part")
        torch.save(blob, tmp)
        os.replace(tmp, path)
        return path
