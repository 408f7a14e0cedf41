"""Trains the reference classifier: the automatic judge of pseudo-labels (Sec. 4.4, Table 9).

Trained on the same Fashion-MNIST *generator* split as the bundled model (never the AL pool or
the test set) and saved beside the model's weights (``bundled_model.reference`` loads it), to decide
whether a generated image shows the class its prompt named.

    python -m galot_lib.bundled.reference          # train, save, print test accuracy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from safetensors.torch import save_file

from ..bundled_model import WEIGHTS_DIR
from ..bundled_model.reference import FOLDER, MODEL
from ..core.io import atomic_path, write_json
from ..learning.data import load_dataset
from ..learning.train import TrainConfig, accuracy, fit

CONFIG = TrainConfig(epochs=20, batch_size=128, lr=1e-3, optimizer="adam", schedule="cosine", crop_padding=2)


def train_reference(out: Path = WEIGHTS_DIR, seed: int = 0) -> dict:
    data, test = load_dataset("fashion_mnist", "generator"), load_dataset("fashion_mnist", "test")
    t0 = time.perf_counter()
    model = fit(MODEL, data.images, data.labels, data.num_classes, CONFIG, seed=seed).model
    seconds = time.perf_counter() - t0
    info = dict(
        model=MODEL,
        num_classes=data.num_classes,
        in_channels=1,
        class_names=list(data.class_names),
        trained_on="fashion_mnist/generator",
        train_images=len(data),
        seed=seed,
        train_config=CONFIG.__dict__,
        train_seconds=round(seconds, 1),
        test_accuracy=round(accuracy(model, test.images, test.labels), 4),
    )
    folder = out / FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    with atomic_path(folder / "model.safetensors") as tmp:
        save_file(state, str(tmp))
    write_json(folder / "config.json", info, indent=2)
    return info


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(WEIGHTS_DIR))
    p.add_argument("--threads", type=int, default=torch.get_num_threads())
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    print(json.dumps(train_reference(Path(args.out)), indent=2))


if __name__ == "__main__":
    main()
