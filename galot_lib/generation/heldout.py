"""Held-out informativeness: does the optimised embedding make more informative images than the plain
prompt, on noise seeds PGD never saw, and do the images still show their class?

PGD's own gain is measured on the N images it differentiated, so part of it is over-fitting to those
noise seeds. Here the same fresh seeds (the first ``heldout_samples`` images of each class in the
cycle's generated set, whose seeds come from a stream PGD does not draw from) are rendered from three
embeddings of each class: c_y (the plain prompt), c* (PGD's result) and a random sign direction of
the same size in the same ball (the control the paper's Fig. 5 implies). The same classifier scores
all three, so each seed gives a paired difference; an independent judge (one that plays no part in
the optimisation) says whether each image still shows the class its prompt names.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ..core.device import device_of
from ..learning.train import predict_probs
from .galot import classifier_scores

DIRECTIONS = ("plain", "optimized", "random")


def heldout_indices(labels: torch.Tensor, per_class: int) -> torch.Tensor:
    """The first ``per_class`` images of every class, in the set's order (fewer where a class has fewer)."""
    labels = torch.as_tensor(labels)
    picks = [torch.nonzero(labels == c).flatten()[:per_class] for c in torch.unique(labels, sorted=True)]
    return torch.sort(torch.cat(picks)).values if picks else torch.zeros(0, dtype=torch.long)


def _mean_se(values: np.ndarray) -> tuple[float, float]:
    if len(values) == 0:
        return float("nan"), float("nan")
    se = float(values.std(ddof=1) / math.sqrt(len(values))) if len(values) > 1 else float("nan")
    return float(values.mean()), se


def paired_summary(
    labels: torch.Tensor, scores: dict[str, torch.Tensor], correct: dict[str, torch.Tensor] | None = None
) -> tuple[dict, list[dict]]:
    """Per-class and overall statistics of held-out images rendered from the three embeddings.

    ``scores[d]`` / ``correct[d]``: the acquisition of image i and whether the judge sees its class, for
    each direction d in DIRECTIONS (same seeds, same order). Gains are paired: optimized (or random)
    minus plain, image by image, with the standard error of that difference."""
    labels = torch.as_tensor(labels).cpu().numpy()
    s = {d: scores[d].detach().float().cpu().numpy() for d in DIRECTIONS}
    ok = {d: correct[d].detach().float().cpu().numpy() for d in DIRECTIONS} if correct is not None else None

    def stats(mask) -> dict:
        gain, gain_se = _mean_se(s["optimized"][mask] - s["plain"][mask])
        rgain, rgain_se = _mean_se(s["random"][mask] - s["plain"][mask])
        row = dict(
            heldout_n=int(mask.sum()),
            heldout_gain=gain,
            heldout_gain_se=gain_se,
            heldout_random_gain=rgain,
            heldout_random_gain_se=rgain_se,
            **{f"heldout_acquisition_{d}": float(s[d][mask].mean()) for d in DIRECTIONS},
        )
        if ok is not None:
            row.update({f"label_correct_{d}": float(ok[d][mask].mean()) for d in DIRECTIONS})
        return row

    per_class = [dict(label=int(c), **stats(labels == c)) for c in np.unique(labels)]
    return stats(np.ones(len(labels), dtype=bool)), per_class


def measure_directions(
    classifier: torch.nn.Module,
    judge: torch.nn.Module | None,
    rendered: dict[str, torch.Tensor],
    labels: torch.Tensor,
    acquisition: str,
    size: int,
    channels: int,
) -> tuple[dict, list[dict]]:
    """The paired measurement of images rendered from each direction of DIRECTIONS at the same seeds (uint8): the
    classifier's acquisition of every image and, given a judge, whether it still shows its prompt's class."""
    device = device_of(classifier)
    with torch.no_grad():
        scores = {
            d: classifier_scores(classifier.eval(), rendered[d].to(device).float() / 255, acquisition, size, channels)
            for d in DIRECTIONS
        }
    correct = None
    if judge is not None:
        correct = {d: predict_probs(judge, rendered[d]).argmax(1) == torch.as_tensor(labels) for d in DIRECTIONS}
    return paired_summary(labels, scores, correct)
