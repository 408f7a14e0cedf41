"""The classifier zoo: CIFAR-style ResNet18, VGG16, DenseNet121, MobileNetV2 and DLA, plus small
fast CNNs for the embedded profile (28x28 grey images, 2 CPU cores).

Every model is a :class:`Classifier` with one shared contract, so that the active-learning code
never special-cases an architecture:

* input: float images in [0, 1], ``[B, in_channels, H, W]``, H = W anywhere in 28..64; the model
  maps them to [-1, 1] itself, so callers never normalise;
* ``forward(x)`` -> logits; ``features(x)`` -> (logits, embedding, four stage maps);
* the embedding is the global average pool of the last stage map, and a dropout layer sits right
  before the linear head, so MC-dropout samples really differ.

The big nets follow their papers with the usual CIFAR changes (3x3 stride-1 stem, no early
max-pool, stride 1 where ImageNet versions down-sample at 224 px); all spatial down-sampling
rounds up (ceil), so 28 px inputs survive VGG's five pools.

Every net takes a ``width`` multiplier that scales all its channel counts and nothing else (same
depth, blocks and stage layout), so the slim ``*-slim`` entries of :data:`MODELS` are the same
architectures at a width that trains on one CPU core: the embedded profile reruns the paper's
Sec. 4.3 transfer study (VGG16, DenseNet121, MobileNetV2, DLA) in minutes instead of hours.
"""

from __future__ import annotations

import copy
import math
import numbers
from functools import partial
from typing import Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_eval


def _channel_scaler(width: float) -> Callable[[int], int]:
    """Maps a width-1.0 channel count to the one at ``width``: the product rounded to the nearest
    multiple of 8 (at least 8, and never more than 10% below the product), MobileNet's rule.
    Multiples of 8 keep oneDNN's vectorised kernels busy and stay divisible by any grouping we
    use (depthwise groups equal channels). Width 1.0 leaves every count as it is, so it is the
    unscaled net exactly."""
    if isinstance(width, bool) or not isinstance(width, numbers.Real) or not math.isfinite(width) or width <= 0:
        raise ValueError(f"width must be a finite number > 0, got {width!r}")

    def scale(channels: int) -> int:
        if width == 1.0:
            return channels
        target = channels * width
        rounded = max(8, int(target + 4) // 8 * 8)
        return rounded + 8 if rounded < 0.9 * target else rounded

    return scale


def _conv_bn(
    cin: int, cout: int, kernel: int = 3, stride: int = 1, groups: int = 1, relu: bool = True
) -> nn.Sequential:
    """Conv -> BN (-> ReLU); the conv has no bias because BN re-centres anyway."""
    layers: list[nn.Module] = [
        nn.Conv2d(cin, cout, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(cout),
    ]
    if relu:
        layers.append(nn.ReLU(inplace=True))
    return nn.Sequential(*layers)


def _bn_relu_conv(cin: int, cout: int, kernel: int) -> nn.Sequential:
    """Pre-activation unit (BN -> ReLU -> conv), the ordering DenseNet is built from."""
    return nn.Sequential(
        nn.BatchNorm2d(cin), nn.ReLU(inplace=True), nn.Conv2d(cin, cout, kernel, padding=kernel // 2, bias=False)
    )


class Classifier(nn.Module):
    """Base of every model: ``stem`` then four ``blocks`` whose outputs are the stages, then
    global average pool -> dropout -> linear head.

    Subclasses only build ``self.stem`` and ``self.blocks`` (four modules); the last block must
    end with an activation, because its pooled output is the embedding.
    """

    def __init__(self, num_classes: int, in_channels: int, stage_channels: Sequence[int], dropout: float):
        super().__init__()
        if not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2, got {num_classes!r}")
        if in_channels not in (1, 3):
            raise ValueError(f"in_channels must be 1 or 3, got {in_channels!r}")
        if not 0.0 <= dropout < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        if len(stage_channels) != 4:
            raise ValueError(f"need 4 stage channel counts, got {tuple(stage_channels)}")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self.stage_channels: tuple[int, int, int, int] = tuple(int(c) for c in stage_channels)
        self.embedding_dim: int = self.stage_channels[-1]
        self.stem: nn.Module = nn.Identity()
        self.blocks = nn.ModuleList()
        self.dropout = nn.Dropout(dropout)
        self.head = nn.Linear(self.embedding_dim, num_classes)

    def _init_weights(self) -> None:
        """He init for convs (the ReLU-net default that trains from scratch in few epochs)."""
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")

    def features(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """(logits [B, K], embedding [B, embedding_dim], four stage maps from shallow to deep)."""
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"expected images [B, {self.in_channels}, H, W], got {tuple(x.shape)}")
        h = self.stem(x * 2 - 1)
        stages = []
        for block in self.blocks:
            h = block(h)
            stages.append(h)
        embedding = F.adaptive_avg_pool2d(h, 1).flatten(1)
        return self.head(self.dropout(embedding)), embedding, stages

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)[0]


class PairMaxPool(nn.MaxPool2d):
    """A 2x2, stride-2 max-pool as two element-wise maxima over strided views of even-sized maps: the same values as
    :class:`nn.MaxPool2d`, 2-3x faster on channels-last bf16 maps, where PyTorch's kernel also records the argmax of
    every window (``bench/bench_models.py --inference``). Inference only: at a tie, the backward of ``torch.maximum``
    splits the gradient where max-pooling's gives it to one input. Other pools and odd sizes take PyTorch's kernel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        pair = (self.kernel_size, self.stride, self.padding, self.dilation) in ((2, 2, 0, 1), ((2, 2), (2, 2), 0, 1))
        if not pair or x.ndim != 4 or x.shape[-2] % 2 or x.shape[-1] % 2:
            return super().forward(x)
        rows = torch.maximum(x[:, :, 0::2], x[:, :, 1::2])
        return torch.maximum(rows[:, :, :, 0::2], rows[:, :, :, 1::2])


def fused_for_inference(model: Classifier) -> Classifier:
    """An eval-mode copy of ``model`` with every BatchNorm that follows a convolution (``_conv_bn``) folded into that
    convolution's weights and bias: the same function up to float rounding, one pass over the activations fewer per
    layer, and under bf16 autocast no cast into and out of each BatchNorm (SmallCNN scores twice the images per second
    on a CPU, ``bench/bench_models.py --inference``); and its max-pools a :class:`PairMaxPool` (the same values).
    Training keeps the BatchNorms, which normalise by the batch, and PyTorch's max-pool."""
    fused = copy.deepcopy(model).eval()
    for module in list(fused.modules()):
        if (
            isinstance(module, nn.Sequential)
            and len(module) >= 2
            and isinstance(module[0], nn.Conv2d)
            and isinstance(module[1], nn.BatchNorm2d)
        ):
            module[0], module[1] = fuse_conv_bn_eval(module[0], module[1]), nn.Identity()
        elif type(module) is nn.MaxPool2d:
            module.__class__ = PairMaxPool
    return fused.to(memory_format=torch.channels_last)


# --- ResNet18 (He et al. 2016) -------------------------------------------------------------------


class _BasicBlock(nn.Module):
    """Two 3x3 convs with an identity shortcut, or a 1x1 projection where ``project``. The caller
    decides from the width-1.0 net, where a projection means a change of shape; at narrow widths
    two counts can round to the same one, and the block must keep its projection all the same.
    """

    def __init__(self, cin: int, cout: int, stride: int, project: bool):
        super().__init__()
        self.body = nn.Sequential(_conv_bn(cin, cout, 3, stride), _conv_bn(cout, cout, 3, relu=False))
        self.shortcut = _conv_bn(cin, cout, 1, stride, relu=False) if project else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.body(x) + self.shortcut(x))


class ResNet18(Classifier):
    """ResNet18 with a 3x3 stem: stages of 64/128/256/512 channels (times ``width``) at 1, 1/2,
    1/4, 1/8 resolution."""

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.2, width: float = 1.0):
        ch = _channel_scaler(width)
        widths = tuple(ch(c) for c in (64, 128, 256, 512))
        super().__init__(num_classes, in_channels, widths, dropout)
        cin = ch(64)
        self.stem = _conv_bn(in_channels, cin)
        for i, w in enumerate(widths):
            self.blocks.append(
                nn.Sequential(
                    _BasicBlock(cin, w, 1 if i == 0 else 2, project=i > 0), _BasicBlock(w, w, 1, project=False)
                )
            )
            cin = w
        self._init_weights()


# --- VGG16 (Simonyan & Zisserman 2015), BN variant ------------------------------------------------


class VGG16(Classifier):
    """VGG16-BN with the CIFAR head (pool -> one linear) instead of the 4096-wide MLP.

    Five conv groups each end in a 2x2 max-pool with ceil_mode, so 28 px goes 14-7-4-2-1 instead
    of dying at 0; the first group is the stem and groups 2..5 are the four stages.
    """

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.2, width: float = 1.0):
        ch = _channel_scaler(width)
        groups = tuple(
            tuple(ch(c) for c in g) for g in ((64, 64), (128, 128), (256, 256, 256), (512, 512, 512), (512, 512, 512))
        )
        super().__init__(num_classes, in_channels, [g[-1] for g in groups[1:]], dropout)
        cin = in_channels
        made = []
        for group in groups:
            layers = []
            for w in group:
                layers.append(_conv_bn(cin, w))
                cin = w
            layers.append(nn.MaxPool2d(2, ceil_mode=True))
            made.append(nn.Sequential(*layers))
        self.stem = made[0]
        self.blocks.extend(made[1:])
        self._init_weights()


# --- DenseNet121 (Huang et al. 2017) --------------------------------------------------------------


class _DenseLayer(nn.Module):
    """Bottleneck (BN-ReLU-1x1 to 4k, BN-ReLU-3x3 to k) whose k new maps are appended to its input."""

    def __init__(self, cin: int, growth: int):
        super().__init__()
        self.body = nn.Sequential(_bn_relu_conv(cin, 4 * growth, 1), _bn_relu_conv(4 * growth, growth, 3))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x, self.body(x)], 1)


class DenseNet121(Classifier):
    """DenseNet-BC-121 (growth 32, blocks 6-12-24-16, compression 0.5) with a 3x3 stem.

    Stage i is dense block i (preceded by its transition); the last stage ends with the final
    BN-ReLU so that its pooled output is the usual DenseNet feature vector. ``width`` scales the
    growth rate; the stem (2 x growth), bottlenecks (4 x growth) and transitions (half their
    input) are tied to it, so they scale with it.
    """

    def __init__(
        self, num_classes: int, in_channels: int = 3, dropout: float = 0.2, growth: int = 32, width: float = 1.0
    ):
        growth = _channel_scaler(width)(growth)
        depths = (6, 12, 24, 16)
        channels, c = [], 2 * growth
        for i, n in enumerate(depths):
            c = (c if i == 0 else c // 2) + n * growth
            channels.append(c)
        super().__init__(num_classes, in_channels, channels, dropout)
        self.stem = nn.Conv2d(in_channels, 2 * growth, 3, padding=1, bias=False)
        cin = 2 * growth
        for i, n in enumerate(depths):
            layers: list[nn.Module] = []
            if i > 0:  # transition: halve channels and resolution
                layers += [_bn_relu_conv(cin, cin // 2, 1), nn.AvgPool2d(2, ceil_mode=True)]
                cin //= 2
            for _ in range(n):
                layers.append(_DenseLayer(cin, growth))
                cin += growth
            if i == len(depths) - 1:
                layers += [nn.BatchNorm2d(cin), nn.ReLU(inplace=True)]
            self.blocks.append(nn.Sequential(*layers))
        self._init_weights()


# --- MobileNetV2 (Sandler et al. 2018) ------------------------------------------------------------


class _InvertedResidual(nn.Module):
    """1x1 expand -> 3x3 depthwise -> linear 1x1 project, with the input added where ``residual``
    (the paper's rule: every block of a repeated sequence but its first, whose shape changes at
    width 1.0, even where a narrow width rounds its two channel counts to the same one)."""

    def __init__(self, cin: int, cout: int, expansion: int, stride: int, residual: bool):
        super().__init__()
        if residual and (stride != 1 or cin != cout):
            raise ValueError(f"a residual needs stride 1 and cin == cout, got {stride}, {cin} -> {cout}")
        hidden = cin * expansion
        layers = [] if expansion == 1 else [_conv_bn(cin, hidden, 1)]
        layers += [_conv_bn(hidden, hidden, 3, stride, groups=hidden), _conv_bn(hidden, cout, 1, relu=False)]
        self.body = nn.Sequential(*layers)
        self.residual = residual

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.body(x) if self.residual else self.body(x)


class MobileNetV2(Classifier):
    """MobileNetV2 with a stride-1 stem and stride-1 first 24-channel group, so 32 px ends at 4x4
    as in the CIFAR versions. Stages end at the 24, 32, 96 and final 1280-channel maps.

    ``width`` is the paper's width multiplier: it scales every layer but, below 1.0, not the
    final 1280-channel conv (Sandler et al. 2018, Sec. 6.1), which is cheap at 4x4 px and keeps
    the embedding as rich as the full net's.
    """

    # (expansion, channels, repeats, first stride), grouped by stage; the stem holds 32 -> 16.
    STAGES = (
        ((6, 24, 2, 1),),
        ((6, 32, 3, 2),),
        ((6, 64, 4, 2), (6, 96, 3, 1)),
        ((6, 160, 3, 2), (6, 320, 1, 1)),
    )

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.2, width: float = 1.0):
        ch = _channel_scaler(width)
        last = ch(1280) if width > 1.0 else 1280
        super().__init__(num_classes, in_channels, (ch(24), ch(32), ch(96), last), dropout)
        self.stem = nn.Sequential(
            _conv_bn(in_channels, ch(32)), _InvertedResidual(ch(32), ch(16), 1, 1, residual=False)
        )
        cin = ch(16)
        for i, groups in enumerate(self.STAGES):
            layers: list[nn.Module] = []
            for t, c, n, s in groups:
                for j in range(n):
                    layers.append(_InvertedResidual(cin, ch(c), t, s if j == 0 else 1, residual=j > 0))
                    cin = ch(c)
            if i == len(self.STAGES) - 1:
                layers.append(_conv_bn(cin, last, 1))
            self.blocks.append(nn.Sequential(*layers))
        self._init_weights()


# --- DLA (Yu et al. 2018), compact CIFAR variant --------------------------------------------------


class _Root(nn.Module):
    """DLA aggregation node: 1x1 conv over the concatenated inputs, plus a residual from the
    deepest one (the last), which keeps the tree trainable as it grows deeper."""

    def __init__(self, cin: int, cout: int):
        super().__init__()
        self.conv = _conv_bn(cin, cout, 1, relu=False)

    def forward(self, inputs: list[torch.Tensor]) -> torch.Tensor:
        return F.relu(self.conv(torch.cat(inputs, 1)) + inputs[-1])


class _Tree(nn.Module):
    """Hierarchical deep aggregation: a level-n tree is two level-(n-1) trees in sequence (level
    1: two residual blocks) merged by a root. Because each subtree's output is its root, every
    aggregation feeds back into the backbone; trees of level >= 2 also hand their (down-sampled)
    input to the root, DLA's link from the previous stage. Only the tree's first block can change
    shape; ``project`` gives it a projection shortcut (see :class:`_BasicBlock`).
    """

    def __init__(self, cin: int, cout: int, level: int, stride: int, project: bool):
        super().__init__()
        if level == 1:
            self.left, self.right = _BasicBlock(cin, cout, stride, project), _BasicBlock(cout, cout, 1, project=False)
        else:
            self.left = _Tree(cin, cout, level - 1, stride, project)
            self.right = _Tree(cout, cout, level - 1, 1, project=False)
        self.level_root = level > 1
        self.down = nn.MaxPool2d(stride, ceil_mode=True) if stride > 1 else nn.Identity()
        self.root = _Root(2 * cout + (cin if self.level_root else 0), cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        left = self.left(x)
        right = self.right(left)
        return self.root([self.down(x), left, right] if self.level_root else [left, right])


class DLA(Classifier):
    """Compact DLA: 3x3 conv stem (16, 16, 32 channels) then trees of level 1, 2, 2, 1 with
    64/128/256/512 channels at 1, 1/2, 1/4, 1/8 resolution; the trees are the four stages.
    ``width`` scales all of these channel counts."""

    def __init__(self, num_classes: int, in_channels: int = 3, dropout: float = 0.2, width: float = 1.0):
        ch = _channel_scaler(width)
        widths, levels = tuple(ch(c) for c in (64, 128, 256, 512)), (1, 2, 2, 1)
        super().__init__(num_classes, in_channels, widths, dropout)
        self.stem = nn.Sequential(_conv_bn(in_channels, ch(16)), _conv_bn(ch(16), ch(16)), _conv_bn(ch(16), ch(32)))
        cin = ch(32)
        for i, (w, level) in enumerate(zip(widths, levels)):
            # every stage changes shape at width 1.0: 32 -> 64 channels, then stride 2
            self.blocks.append(_Tree(cin, w, level, 1 if i == 0 else 2, project=True))
            cin = w
        self._init_weights()


# --- Small fast nets for the embedded profile -----------------------------------------------------


class SmallCNN(Classifier):
    """Plain CNN for retraining from scratch every AL cycle on 2 CPU cores: four stages of
    ``depth`` conv-BN-ReLU, each after a 2x2 max-pool (but the first), so 28 px runs at
    28/14/7/4 px. ``widths`` and ``depth`` make the speed/accuracy variants in :data:`MODELS`;
    ``width`` scales ``widths`` like every other net's channels.
    """

    def __init__(
        self,
        num_classes: int,
        in_channels: int = 3,
        dropout: float = 0.2,
        widths: Sequence[int] = (16, 32, 64, 128),
        depth: int = 1,
        width: float = 1.0,
    ):
        ch = _channel_scaler(width)
        widths = tuple(ch(c) for c in widths)
        super().__init__(num_classes, in_channels, widths, dropout)
        cin = in_channels
        for i, w in enumerate(widths):
            layers: list[nn.Module] = [nn.MaxPool2d(2, ceil_mode=True)] if i > 0 else []
            for _ in range(depth):
                layers.append(_conv_bn(cin, w))
                cin = w
            self.blocks.append(nn.Sequential(*layers))
        self._init_weights()


# --- Loss prediction (Yoo & Kweon 2019) -----------------------------------------------------------


class LossPredictionHead(nn.Module):
    """Learning-loss module: each stage map is pooled and embedded (Linear + ReLU), the four
    embeddings are concatenated and a linear layer predicts the sample's loss."""

    def __init__(self, stage_channels: Sequence[int], width: int = 128):
        super().__init__()
        self.branches = nn.ModuleList(nn.Sequential(nn.Linear(c, width), nn.ReLU(inplace=True)) for c in stage_channels)
        self.out = nn.Linear(width * len(stage_channels), 1)

    def forward(self, stages: Sequence[torch.Tensor]) -> torch.Tensor:
        if len(stages) != len(self.branches):
            raise ValueError(f"expected {len(self.branches)} stage maps, got {len(stages)}")
        pooled = [b(F.adaptive_avg_pool2d(s, 1).flatten(1)) for b, s in zip(self.branches, stages)]
        return self.out(torch.cat(pooled, 1)).squeeze(1)


def _at_width(cls: Callable[..., Classifier], factor: float) -> Callable[..., Classifier]:
    """Registry entry for ``cls`` at ``factor`` times its widths; a ``width`` given to the entry
    multiplies that factor, so ``width`` always means "relative to the registered net"."""

    def build(num_classes: int, in_channels: int = 3, dropout: float = 0.2, width: float = 1.0) -> Classifier:
        _channel_scaler(width)  # reject a bad width before multiplying it in
        return cls(num_classes, in_channels=in_channels, dropout=dropout, width=factor * width)

    return build


_BIG: dict[str, Callable[..., Classifier]] = {
    "ResNet18": ResNet18,
    "VGG16": VGG16,
    "DenseNet121": DenseNet121,
    "MobileNetV2": MobileNetV2,
    "DLA": DLA,
}
# Width of each "<name>-slim", one for all so that Sec. 4.3 compares the architectures at the same
# relative size. One forward+backward of 128 Fashion-MNIST images (bf16 autocast, channels-last,
# one AVX512-BF16 core; bench/bench_models.py --threads 1 --bf16 --channels-last) then takes
# 0.1-0.4 s, and 0.6 s for DenseNet121, whose growth rate is down to the 8-channel minimum and
# whose cost is the memory traffic of its concatenations and BatchNorms over them.
SLIM_WIDTHS: dict[str, float] = {"ResNet18": 0.25, "VGG16": 0.25, "DenseNet121": 0.25, "MobileNetV2": 0.25, "DLA": 0.25}

MODELS: dict[str, Callable[..., Classifier]] = {
    **_BIG,
    **{f"{name}-slim": _at_width(_BIG[name], w) for name, w in SLIM_WIDTHS.items()},
    "TinyCNN": partial(SmallCNN, widths=(8, 16, 32, 64)),
    "SmallCNN": SmallCNN,
    "DeepCNN": partial(SmallCNN, widths=(16, 32, 64, 128), depth=2),
}


def build_model(
    name: str, num_classes: int, in_channels: int = 3, dropout: float = 0.2, width: float = 1.0
) -> Classifier:
    """The classifier registered as ``name`` (see :data:`MODELS`), its channel counts scaled by
    ``width`` (> 0; relative to the registered net, so a slim net at 2.0 is twice as wide)."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; valid names: {', '.join(MODELS)}")
    return MODELS[name](num_classes, in_channels=in_channels, dropout=dropout, width=width)
