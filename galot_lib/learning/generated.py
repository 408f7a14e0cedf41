"""What a cycle adds to the training set besides queried pool images: the one type the AL loop's hooks return,
the generated-set cache stores and the judge reads (a leaf, so that ``generation`` need not import the loop)."""

from __future__ import annotations

from dataclasses import dataclass, field

import torch


@dataclass
class Generated:
    """Labelled images a hook adds in one cycle: pseudo-labelled generated images (GALOT), or
    synthesised queries labelled by an oracle (GAAL). The generated-set cache stores the same type."""

    images: torch.Tensor  # uint8 [n, C, H, W], already at the classifier's input size
    labels: torch.Tensor  # int64 [n]
    info: dict = field(default_factory=dict)  # extra record fields (e.g. acquisition before/after PGD)
    embeddings: torch.Tensor | None = None  # what generated them, when kept (GALOT's optimised class embeddings)
