"""GAAL (Zhu & Bento 2017), extended to many classes: a row of Table 1.

A GAN is trained on the (unlabelled) pool; each cycle, latent codes are searched so that the
generated images lie on the current classifier's decision boundary (the smallest margin
between its two most likely classes: the multi-class analogue of GAAL's distance to the SVM
hyperplane), and the resulting query images are labelled by an oracle. The paper asked people;
here a simulated annotator (a classifier trained on real images the pool does not contain,
e.g. the bundled reference classifier) labels them. The synthesised queries spend the same
annotation budget as the pool strategies' queries.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..core.device import default_device, device_of
from ..core.hashing import stable_hash, tensor_digest
from ..core.io import load_torch, save_torch
from ..core.progress import tqdm
from .generated import Generated
from .strategies import acquisition_scores
from .train import predict_probs


@dataclass(frozen=True)
class GaalConfig:
    latent_dim: int = 64
    gan_steps: int = 1500  # the embedded profile's
    batch_size: int = 64
    lr: float = 2e-4
    candidates_per_query: int = 4  # random latent codes drawn per query image before the search
    search_steps: int = 20  # gradient steps on the latent codes
    search_lr: float = 0.05
    seed: int = 0


class Generator(nn.Module):
    """z -> image in [0, 1]: a small DCGAN generator for 28-64 px images."""

    def __init__(self, latent_dim: int, channels: int, size: int):
        super().__init__()
        self.base = (size + 3) // 4
        self.size = size
        self.fc = nn.Sequential(
            nn.Linear(latent_dim, 128 * self.base**2), nn.BatchNorm1d(128 * self.base**2), nn.ReLU()
        )
        self.net = nn.Sequential(
            nn.ConvTranspose2d(128, 64, 4, 2, 1),
            nn.BatchNorm2d(64),
            nn.ReLU(),
            nn.ConvTranspose2d(64, channels, 4, 2, 1),
            nn.Sigmoid(),
        )

    def forward(self, z):
        x = self.net(self.fc(z).view(len(z), 128, self.base, self.base))
        return x[..., : self.size, : self.size]


class Discriminator(nn.Module):
    def __init__(self, channels: int, size: int):
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(channels, 64, 4, 2, 1),
            nn.LeakyReLU(0.2),
            nn.Conv2d(64, 128, 4, 2, 1),
            nn.BatchNorm2d(128),
            nn.LeakyReLU(0.2),
            nn.AdaptiveAvgPool2d(4),
            nn.Flatten(),
            nn.Linear(128 * 16, 1),
        )

    def forward(self, x):
        return self.net(x * 2 - 1).squeeze(1)


def train_gan(images: torch.Tensor, config: GaalConfig, progress: bool = True, device=None) -> Generator:
    """Non-saturating GAN on uint8 images [N, C, H, W], on the one device choice; deterministic
    for a seed (the random draws come from a CPU generator whatever the device)."""
    device = torch.device(device) if device is not None else default_device()
    torch.manual_seed(config.seed)
    gen = torch.Generator().manual_seed(config.seed)
    _, c, h, _ = images.shape
    g, d = Generator(config.latent_dim, c, h).to(device), Discriminator(c, h).to(device)
    opt_g = torch.optim.Adam(g.parameters(), config.lr, betas=(0.5, 0.999))
    opt_d = torch.optim.Adam(d.parameters(), config.lr, betas=(0.5, 0.999))
    for _ in tqdm(range(config.gan_steps), desc="GAAL: GAN", disable=not progress, leave=False):
        real = images[torch.randint(len(images), (config.batch_size,), generator=gen)].to(device).float() / 255
        z = torch.randn(config.batch_size, config.latent_dim, generator=gen).to(device)
        fake = g(z)
        loss_d = F.softplus(-d(real)).mean() + F.softplus(d(fake.detach())).mean()
        opt_d.zero_grad()
        loss_d.backward()
        opt_d.step()
        loss_g = F.softplus(-d(fake)).mean()
        opt_g.zero_grad()
        loss_g.backward()
        opt_g.step()
    return g.eval()


def cached_gan(images: torch.Tensor, config: GaalConfig, folder: Path, progress: bool = True) -> Generator:
    """The GAN for these images and settings, trained once and then read from ``folder``."""
    path = Path(folder) / f"gan_{stable_hash([tensor_digest(images), dataclasses.asdict(config)], 16)}.pt"
    _, c, size, _ = images.shape
    if path.exists():
        g = Generator(config.latent_dim, c, size)
        g.load_state_dict(load_torch(path))
        return g.to(default_device()).eval()
    g = train_gan(images, config, progress)
    save_torch(g.state_dict(), path)
    return g


class GaalSynthesis:
    """The loop's query-synthesis hook: boundary-seeking GAN queries, labelled by an oracle."""

    def __init__(self, generator: Generator, oracle: nn.Module, config: GaalConfig, size: int, channels: int):
        self.g, self.oracle, self.config, self.size, self.channels = generator, oracle, config, size, channels

    def describe(self) -> dict:
        return dict(gaal=dataclasses.asdict(self.config), oracle=type(self.oracle).__name__)

    def __call__(self, cycle: int, trained, n: int, seed: int) -> Generated:
        cfg = self.config
        classifier = trained.model.eval()
        device = device_of(classifier)
        self.g.to(device)
        gen = torch.Generator().manual_seed(seed)
        z = torch.randn(n * cfg.candidates_per_query, cfg.latent_dim, generator=gen).to(device).requires_grad_(True)
        opt = torch.optim.Adam([z], lr=cfg.search_lr)
        for _ in range(cfg.search_steps):
            score = acquisition_scores("MarginSampling", classifier(self.g(z)).softmax(-1))
            opt.zero_grad()
            (-score.sum()).backward()
            opt.step()
        with torch.no_grad():
            images = self.g(z)
            score = acquisition_scores("MarginSampling", classifier(images).softmax(-1))
            best = score.argsort(descending=True)[:n]
            queries = images[best].mul(255).round().to(torch.uint8).cpu()
            labels = predict_probs(self.oracle, queries).argmax(1)
        return Generated(queries, labels, {"gaal_margin_score": float(score[best].mean())})
