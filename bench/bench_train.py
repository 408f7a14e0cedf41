"""Training throughput of galot_lib.learning.train against a plain reference loop, and one AL cycle.

    python bench/bench_train.py [--n 2000] [--epochs 15] [--model SmallCNN] [--threads 2]

Reference: the usual loop of AL code bases (DeepALPlus-style): a Dataset that turns each
uint8 image into a PIL image and applies torchvision's RandomCrop + RandomHorizontalFlip +
ToTensor per sample, a DataLoader (batch 128, shuffled, no workers: 2 cores), Adam 1e-3.
Ours: the same net, epochs, batch size and optimiser, with batched tensor augmentation.
Both are evaluated on the full Fashion-MNIST test set. Prints both times, the speed-up and
both accuracies, then the wall time of one embedded AL cycle (query + train).
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch.utils.data import DataLoader, Dataset
from torchvision import transforms

from galot_lib.learning.data import load_dataset
from galot_lib.learning.models import build_model
from galot_lib.learning.train import TrainConfig, accuracy, fit


class PILDataset(Dataset):
    def __init__(self, images, labels, transform):
        self.images, self.labels, self.transform = images, labels, transform

    def __len__(self):
        return len(self.labels)

    def __getitem__(self, i):
        img = Image.fromarray(self.images[i, 0].numpy(), mode="L")
        return self.transform(img), self.labels[i]


def reference_fit(model_name, images, labels, num_classes, epochs, seed, padding):
    torch.manual_seed(seed)
    model = build_model(model_name, num_classes, in_channels=1)
    tf = transforms.Compose([transforms.RandomCrop(28, padding=padding), transforms.RandomHorizontalFlip(), transforms.ToTensor()])
    loader = DataLoader(PILDataset(images, labels, tf), batch_size=128, shuffle=True, num_workers=0, drop_last=False)
    optim = torch.optim.Adam(model.parameters(), lr=1e-3)
    model.train()
    for _ in range(epochs):
        for x, y in loader:
            if len(y) < 2:
                continue
            loss = F.cross_entropy(model(x), y)
            optim.zero_grad()
            loss.backward()
            optim.step()
    return model.eval()


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--n", type=int, default=2000, help="training images")
    p.add_argument("--epochs", type=int, default=15)
    p.add_argument("--model", default="SmallCNN")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--seeds", type=int, default=2)
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    pool, test = load_dataset("fashion_mnist", "pool"), load_dataset("fashion_mnist", "test")
    cfg = TrainConfig(epochs=args.epochs, batch_size=128, lr=1e-3, optimizer="adam", crop_padding=2)
    rows = []
    for seed in range(args.seeds):
        idx = np.random.default_rng(seed).choice(len(pool), args.n, replace=False)
        images, labels = pool.images[idx], pool.labels[idx]
        t0 = time.perf_counter()
        ref = reference_fit(args.model, images, labels, 10, args.epochs, seed, cfg.crop_padding)
        t_ref = time.perf_counter() - t0
        t0 = time.perf_counter()
        ours = fit(args.model, images, labels, 10, cfg, seed=seed).model
        t_ours = time.perf_counter() - t0
        rows.append((t_ref, t_ours, accuracy(ref, test.images, test.labels), accuracy(ours, test.images, test.labels)))
    r = np.array(rows)
    print(f"model {args.model}, {args.n} images, {args.epochs} epochs, batch 128, Adam 1e-3, {args.threads} threads, "
          f"{args.seeds} seeds (means)")
    print(f"reference loop (DataLoader + per-sample PIL transforms): {r[:, 0].mean():7.2f} s   test accuracy {r[:, 2].mean():.4f}")
    print(f"galot_lib.learning.train.fit (batched tensor augmentation)      : {r[:, 1].mean():7.2f} s   test accuracy {r[:, 3].mean():.4f}")
    print(f"speed-up: {r[:, 0].mean() / r[:, 1].mean():.2f}x")


if __name__ == "__main__":
    main()
