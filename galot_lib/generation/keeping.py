"""Which generated images join the training set: all, a random ``factor x |L|`` of the oversampled (Table 6), the first
of each class that a label filter passes, or each class's most informative under the current classifier (selection
instead of optimisation), every class filled to its share. The generation hook (``generator``) renders; this policy
only chooses, and asks for more images where a filter left a class short."""

from __future__ import annotations

import time

import numpy as np
import torch

from ..core.seeds import Purpose
from ..learning.strategies import acquisition_scores
from ..learning.train import predict_probs
from .galot import GalotConfig
from .images import image_seeds, split_evenly
from .label_filters import DiffusionZeroShot, label_filter_for
from .rendering import Renders
from .t2i import T2IModel

MAX_RENDER_FACTOR = 50  # a class's images rendered at most this many times its kept share (label filter top-ups)
# keep_short (the rehearsal's random-weight filters, which pass some classes never): a class still short at this many
# times its share is kept short; top-ups at 50x would render and judge about 30 images per such class and cycle
KEEP_SHORT_RENDER_FACTOR = 5


class Keeper:
    """The keeping policy of ``config`` (``keep_rule``, ``label_filter``, ``oversample``) for ``class_names``."""

    def __init__(self, model: T2IModel, class_names: tuple[str, ...], config: GalotConfig):
        self.class_names, self.config = tuple(class_names), config
        self.label_filter = label_filter_for(config, model, self.class_names)

    def filled(
        self, made: Renders, n_keep: int, classifier, eps: float, seed: int, cycle: int, info: dict, render_more
    ) -> tuple[torch.Tensor, Renders]:
        """The indices of ``made`` to keep, ``n_keep`` of them (each class its share), and ``made`` as it ended:
        where a label filter leaves a class short, the next images of its seed stream are rendered and judged until
        its share is full (``render_more(made, labels, seeds)``: ``made`` with those images added), so that arms differ
        in which images they train on, not in how many. A class the filter
        passes too rarely to fill its share within ``MAX_RENDER_FACTOR`` times it stops the run, saying what to
        change."""
        quota = torch.as_tensor(split_evenly(n_keep, len(self.class_names), seed))
        verdicts, given_up = None, torch.zeros(len(quota), dtype=torch.bool)
        while True:
            keep, verdicts = self.kept(made, n_keep, seed, cycle, info, classifier, verdicts)
            short = (quota - torch.bincount(made.labels[keep], minlength=len(quota))).masked_fill(given_up, 0)
            if not short.any() or (self.label_filter is None and self.config.keep_rule == "any"):
                return keep, made  # a random n_keep of the rendered (Table 6) keeps n_keep, not each class's share
            rendered = torch.bincount(made.labels, minlength=len(quota))
            passed = torch.bincount(made.labels[verdicts[0]], minlength=len(quota))
            checked = torch.bincount(made.labels[verdicts[1]], minlength=len(quota))
            rate = (passed.float() + 1) / (checked.float() + 2)  # the pass rate so far (Laplace's estimate)
            extra = torch.where(short > 0, (short / rate).ceil().long() + 1, 0)
            factor = KEEP_SHORT_RENDER_FACTOR if self.config.keep_short else MAX_RENDER_FACTOR
            hopeless = (short > 0) & (rendered + extra > factor * quota)
            if hopeless.any() and not self.config.keep_short:
                c = int(torch.nonzero(hopeless)[0])
                raise ValueError(
                    f"the label filter ({self.config.label_filter}) passed {int(passed[c])} of {int(checked[c])} images "
                    f"of class {self.class_names[c]!r} (cycle {cycle}, eps {eps:g}); {int(short[c])} more of its "
                    f"share of {int(quota[c])} would take over {MAX_RENDER_FACTOR} x that share: raise oversample, "
                    "lower eps or drop the filter"
                )
            if hopeless.any():  # keep_short: stated, the records count what was not filled
                info["kept_short"] = info.get("kept_short", 0) + int(short[hopeless].sum())
                given_up |= hopeless
                extra[hopeless] = 0
                if not extra.any():
                    return keep, made
            labels = torch.cat([torch.full((n,), c, dtype=torch.long) for c, n in enumerate(extra.tolist())])
            seeds = [
                s
                for c, n in enumerate(extra.tolist())
                for s in image_seeds(seed, cycle, c, int(rendered[c]) + n)[int(rendered[c]) :]
            ]
            made = render_more(made, labels, seeds)
            verdicts = tuple(torch.cat([v, torch.zeros(len(labels), dtype=torch.bool)]) for v in verdicts)

    def kept(
        self, made: Renders, n_keep: int, seed: int, cycle: int, info: dict, classifier, verdicts=None
    ) -> tuple[torch.Tensor, tuple[torch.Tensor, torch.Tensor]]:
        """Which generated images join the training set, and the label filter's verdicts so far (passed, checked):
        all; or (Table 6) a random ``n_keep`` of them; or, with a label filter, the first of each class that pass
        it, up to the class's share of ``n_keep``; or, with ``keep_rule="informative"``, each class's share with
        the highest A_GAL under the current classifier (among those that pass the filter, if there is one; the
        first ones before any classifier)."""
        cfg, images, labels = self.config, made.images, made.labels
        none = torch.zeros(len(labels), dtype=torch.bool)
        verdicts = verdicts or (none, none.clone())
        rank = torch.zeros(len(labels))  # lower first; ties keep the set's order
        if cfg.keep_rule == "informative" and classifier is not None:
            t0 = time.perf_counter()
            scores = acquisition_scores(cfg.heldout_acquisition, predict_probs(classifier, images)).float().cpu()
            rank = -scores
            info.update(selection_s=round(time.perf_counter() - t0, 3), candidate_acquisition=float(scores.mean()))
        elif cfg.keep_rule == "any" and self.label_filter is None and n_keep < len(labels):
            rng = np.random.default_rng([seed, cycle, Purpose.OVERSAMPLE_KEEP])
            return torch.from_numpy(np.sort(rng.choice(len(labels), size=n_keep, replace=False))), verdicts
        quota = split_evenly(n_keep, len(self.class_names), seed)
        orders = [torch.nonzero(labels == c).flatten() for c in range(len(quota))]
        orders = [pool[torch.sort(rank[pool], stable=True).indices] for pool in orders]
        passed = torch.ones(len(labels), dtype=torch.bool)
        if self.label_filter is not None:
            verdicts = self.filtered_in_order(images, labels, orders, quota, classifier, info, verdicts)
            passed = verdicts[0]
        keep = torch.sort(torch.cat([order[passed[order]][: int(q)] for order, q in zip(orders, quota)])).values
        return keep, verdicts

    def filtered_in_order(
        self, images, labels, orders: list[torch.Tensor], quota, classifier, info: dict, verdicts
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """The label filter's verdicts (passed, checked), asked in each class's keeping order only until the class's
        quota has passed (the filter judges every image on its own, so the images kept are those a check of all
        would keep, for a fraction of its cost); images never checked count as not passed, and those checked before
        (``verdicts``) are not asked again."""
        t0 = time.perf_counter()
        passed, checked = verdicts[0].clone(), verdicts[1].clone()
        while True:
            ask = []
            for order, q in zip(orders, quota):
                missing = int(q) - int(passed[order].sum())
                unchecked = order[~checked[order]]
                if missing > 0:
                    ask.append(unchecked[: missing + (missing + 3) // 4])  # a few spare: most images pass
            ask = torch.cat(ask) if ask else torch.zeros(0, dtype=torch.long)
            if len(ask) == 0:
                break
            passed[ask] = self.passes_filter(images[ask], labels[ask], classifier)
            checked[ask] = True
        info.update(
            label_filter_pass=float(passed[checked].float().mean()) if checked.any() else float("nan"),
            filter_checked=int(checked.sum()),
            filter_s=round(info.get("filter_s", 0.0) + time.perf_counter() - t0, 3),
        )
        return passed, checked

    def passes_filter(self, images: torch.Tensor, labels: torch.Tensor, classifier) -> torch.Tensor:
        """The label filter's verdict per image: the diffusion model against the current classifier's rival
        class (or over all classes before any classifier exists); CLIP over all classes."""
        if isinstance(self.label_filter, DiffusionZeroShot) and classifier is not None:
            probs = predict_probs(classifier, images)
            rivals = probs.scatter(1, labels[:, None], -1.0).argmax(1)
            return self.label_filter.keeps(images, labels, rivals)
        return self.label_filter.predict(images) == labels
