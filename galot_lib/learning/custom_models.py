"""Classifiers of your own in the active-learning loop: any ``nn.Module`` that maps images to logits, registered
under a name and a version.

The loop, its strategies and GALOT's PGD read a classifier through ``features(x) -> (logits, embedding, stages)``
(``models.Classifier``). A module of your own is seen through :class:`ModuleClassifier`: its embedding is the input
of its last ``nn.Linear`` (which must give the logits), MC dropout (BALD, MeanSTD, VarRatio) drops that input before
the linear, and it has no stage maps, so LossPrediction, which predicts losses from them, is not available. The version
is part of every run's identity and of the shared initial classifiers' keys: change it when the architecture or its
initialisation changes, and no run resumes, nor any cache answers, with the other network's weights.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from .models import MODELS

USER_MODELS: dict[str, str] = {}  # name -> version, of the classifiers registered by ``register_model``


class ModuleClassifier(nn.Module):
    """An ``nn.Module`` (images ``[B, C, H, W]`` in [0, 1] -> logits ``[B, K]``, its last ``nn.Linear`` giving the
    logits) with the interface of ``models.Classifier``."""

    def __init__(self, net: nn.Module, num_classes: int, in_channels: int, dropout: float):
        super().__init__()
        linears = [name for name, m in net.named_modules() if isinstance(m, nn.Linear)]
        if not linears:
            raise ValueError(f"{type(net).__name__} has no nn.Linear: its last one must give the logits")
        self.net = net
        self._head_name = linears[-1]  # a name, not a second registration: the state dict keeps one copy
        if self.head.out_features != num_classes:
            raise ValueError(
                f"{type(net).__name__}'s last nn.Linear ({self._head_name}) gives {self.head.out_features} outputs, "
                f"not the {num_classes} classes"
            )
        self.num_classes, self.in_channels = num_classes, in_channels
        self.embedding_dim = self.head.in_features
        self.stage_channels = None  # no stage maps: no loss-prediction head
        self.dropout = nn.Dropout(dropout)  # MC dropout's, at the head's input

    @property
    def head(self) -> nn.Linear:
        return self.net.get_submodule(self._head_name)

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(logits, the last linear's input, no stages)."""
        seen = []
        hook = self.head.register_forward_hook(lambda module, inputs, output: seen.append(inputs[0]))
        try:
            logits = self.net(x)
        finally:
            hook.remove()
        return logits, seen[-1].flatten(1), []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def register_model(name: str, factory: Callable[[int, int], nn.Module], version: str) -> str:
    """Makes ``factory(num_classes, in_channels)`` the classifier called ``name`` everywhere a model name is taken
    (``ALConfig.model``, ``al.run``); returns the name. Registering a name again replaces it (a notebook cell run
    twice); the names of the project's own classifiers are refused."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(f"a model's name must be a non-empty string, got {name!r}")
    if name in MODELS and name not in USER_MODELS:
        raise ValueError(
            f"{name!r} is one of the project's classifiers; choose another name (taken: {', '.join(MODELS)})"
        )
    if not isinstance(version, str) or not version.strip():
        raise ValueError(
            f"a classifier of your own needs a version (a non-empty string, got {version!r}): it keys its runs and "
            "caches, so that a changed network never resumes another's"
        )
    if not callable(factory):
        raise ValueError(f"factory must be callable as factory(num_classes, in_channels), got {factory!r}")

    def build(num_classes: int, in_channels: int = 3, dropout: float = 0.2, width: float = 1.0) -> ModuleClassifier:
        if width != 1.0:
            raise ValueError(f"{name} is a classifier of your own: it has no width setting (got {width})")
        return ModuleClassifier(factory(num_classes, in_channels), num_classes, in_channels, dropout)

    MODELS[name] = build
    USER_MODELS[name] = version
    return name


def model_key(name: str) -> str:
    """What identifies a classifier in run and cache keys: the project's by name, one of your own by name@version."""
    return f"{name}@{USER_MODELS[name]}" if name in USER_MODELS else name


def check_classifier(name: str, num_classes: int, image_shape: tuple[int, int, int]) -> None:
    """Builds ``name`` for the data and runs it on two blank images in eval mode: a network that does not take the
    images, or whose last linear does not give its logits, is refused here, before any work."""
    model = MODELS[name](num_classes, in_channels=image_shape[0]).eval()
    with torch.no_grad():
        try:
            logits, embedding, _ = model.features(torch.zeros(2, *image_shape))
        except Exception as err:
            raise ValueError(f"the classifier {name!r} fails on images of shape {list(image_shape)}: {err}") from err
        if tuple(logits.shape) != (2, num_classes):
            raise ValueError(f"the classifier {name!r} gives outputs {list(logits.shape)}, not [batch, {num_classes}]")
        if not torch.allclose(model.head(model.dropout(embedding)), logits, atol=1e-4, rtol=1e-3):
            raise ValueError(
                f"the classifier {name!r}'s logits are not its last nn.Linear's output: the strategies read the "
                "embedding as that linear's input"
            )


def check_strategy_fits(strategy_name: str, model_name: str) -> None:
    """LearningLoss predicts losses from a classifier's stage maps, which a classifier of your own does not expose."""
    from .strategies import get_strategy

    if model_name in USER_MODELS and "predicted_loss" in get_strategy(strategy_name).needs:
        raise ValueError(
            f"{strategy_name} predicts losses from the classifier's stage maps, which {model_name!r} (a classifier of "
            "your own) does not expose: choose another strategy or one of the project's classifiers"
        )
