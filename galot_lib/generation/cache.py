"""Generated sets on disk, keyed by everything that produced them.

Generation is the expensive part of GALOT, so a generated set is stored once under a key
that hashes its full provenance (model fingerprint, template, classes, eps, cycle, seed,
classifier weights, PGD and sampling settings) and is reused by reruns and by other
notebooks (Sec. 4.3 trains other networks on Sec. 4.1's sets). Files are written atomically
and verified by checksum when read: a damaged entry is reported and treated as missing.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Callable

import torch

from ..core.hashing import stable_hash, tensor_digest
from ..core.io import load_torch, save_torch
from ..core.paths import cache_root
from ..learning.generated import Generated


def make_key(**parts) -> str:
    return stable_hash(parts, 32)


class GeneratedCache:
    """A folder of generated sets: ``<root>/<key[:2]>/<key>.pt`` (root: ``$GALOT_CACHE_DIR``)."""

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root) if root is not None else cache_root()

    def path(self, key: str) -> Path:
        return self.root / key[:2] / f"{key}.pt"

    def get(self, key: str) -> Generated | None:
        path = self.path(key)
        if not path.exists():
            return None
        try:
            blob = load_torch(path)
            ok = blob["checksum"] == tensor_digest(blob["images"], blob["labels"])
        except Exception as err:  # unreadable file: regenerate rather than fail the run
            warnings.warn(f"cache entry {path} is unreadable ({err}); it will be regenerated")
            return None
        if not ok:
            warnings.warn(f"cache entry {path} fails its checksum; it will be regenerated")
            return None
        return Generated(blob["images"], blob["labels"], json.loads(blob["meta"]), blob.get("embeddings"))

    def put(self, key: str, entry: Generated) -> Path:
        """Stores ``entry`` (its ``info`` as the set's metadata; its embeddings, if any, in fp16)."""
        blob = dict(
            images=entry.images.contiguous(),
            labels=entry.labels.contiguous(),
            meta=json.dumps(entry.info, default=str),
            checksum=tensor_digest(entry.images, entry.labels),
        )
        if entry.embeddings is not None:
            blob["embeddings"] = entry.embeddings.detach().to(torch.float16).cpu()
        return save_torch(blob, self.path(key))


def cached(cache: GeneratedCache | None, key: str, make: Callable[[], Generated]) -> tuple[Generated, bool]:
    """The set stored under ``key``, else ``make()``'s, stored (no cache: always made); and whether it was found."""
    entry = cache.get(key) if cache is not None else None
    if entry is not None:
        return entry, True
    entry = make()
    if cache is not None:
        cache.put(key, entry)
    return entry, False
