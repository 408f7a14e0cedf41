"""Shape and behaviour contract of the classifier zoo (galot_lib.learning.models), on CPU with batch 2."""

import itertools
import math

import pytest
import torch
from torch import nn

from galot_lib.learning.models import (
    MODELS,
    SLIM_WIDTHS,
    Classifier,
    LossPredictionHead,
    PairMaxPool,
    build_model,
    fused_for_inference,
)

BIG = ("ResNet18", "VGG16", "DenseNet121", "MobileNetV2", "DLA")
SLIM = tuple(f"{n}-slim" for n in BIG)
SMALL = tuple(n for n in MODELS if n not in BIG + SLIM)
# Big nets: a covering set in which every size, channel count and class count appears once.
BIG_CASES = ((28, 1, 10), (32, 3, 100), (64, 1, 200))
# Slim nets: the two sizes they are for (Fashion-MNIST and CIFAR), each with both channel counts.
SLIM_CASES = ((28, 1, 10), (28, 3, 200), (32, 3, 100), (32, 1, 10))
ALL_CASES = tuple(itertools.product((28, 32, 64), (1, 3), (10, 100, 200)))
CASES = (
    [(n, *c) for n in BIG for c in BIG_CASES]
    + [(n, *c) for n in SLIM for c in SLIM_CASES]
    + [(n, *c) for n in SMALL for c in ALL_CASES]
)
# Parameter counts (10 classes, 3 input channels) of the nets as first written: width 1.0 must
# keep every one of them.
FULL_PARAMS = {
    "ResNet18": 11_173_962,
    "VGG16": 14_724_042,
    "DenseNet121": 6_956_298,
    "MobileNetV2": 2_236_682,
    "DLA": 15_183_930,
    "TinyCNN": 25_298,
    "SmallCNN": 98_970,
    "DeepCNN": 295_290,
}


def n_params(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


def topology(model: nn.Module) -> list[tuple]:
    """Everything about a net but its channel counts: each module's name and type, where the
    residuals are, and each conv's kernel, stride and whether it is depthwise."""
    out = []
    for name, m in model.named_modules():
        conv = (m.kernel_size, m.stride, m.groups == m.in_channels > 1) if isinstance(m, nn.Conv2d) else None
        out.append((name, type(m).__name__, getattr(m, "residual", None), conv))
    return out


@pytest.fixture(autouse=True)
def seed():
    torch.manual_seed(0)


def test_registry_has_the_required_names():
    assert set(BIG) <= set(MODELS)
    assert set(SLIM) <= set(MODELS)
    assert len(SMALL) >= 2


@pytest.mark.parametrize("name,size,channels,classes", CASES)
def test_shapes(name, size, channels, classes):
    model = build_model(name, classes, in_channels=channels)
    assert isinstance(model, Classifier)
    assert (model.num_classes, model.in_channels) == (classes, channels)
    assert len(model.stage_channels) == 4
    model.eval()
    x = torch.rand(2, channels, size, size)
    with torch.no_grad():
        logits, embedding, stages = model.features(x)
        assert torch.equal(model(x), logits)
    assert logits.shape == (2, classes)
    assert embedding.shape == (2, model.embedding_dim)
    assert len(stages) == 4
    for stage, c in zip(stages, model.stage_channels):
        assert stage.ndim == 4 and stage.shape[:2] == (2, c)
    sides = [s.shape[-1] for s in stages]
    assert sides == sorted(sides, reverse=True), "stages must come from increasing depths"
    # The embedding is the pooled last stage, i.e. what the head sees before dropout.
    torch.testing.assert_close(embedding, stages[-1].mean((2, 3)))


@pytest.mark.parametrize("name", list(MODELS))
def test_dropout_sits_before_the_head_and_only_acts_in_training(name):
    model = build_model(name, 10, in_channels=3, dropout=0.5)
    assert isinstance(model.dropout, nn.Dropout) and model.dropout.p == 0.5
    assert isinstance(model.head, nn.Linear) and model.head.in_features == model.embedding_dim
    x = torch.rand(2, 3, 32, 32)
    with torch.no_grad():
        model.train()
        assert not torch.equal(model(x), model(x))
        model.eval()
        assert torch.equal(model(x), model(x))


@pytest.mark.parametrize("name", list(MODELS))
def test_batch_norm_folded_into_the_convolutions_computes_the_same_features(name):
    torch.manual_seed(0)
    model = build_model(name, 10, in_channels=1)
    with torch.no_grad():
        for _ in range(3):  # running statistics and affine parameters far from their initial values
            model.train()(torch.rand(8, 1, 28, 28) * 3)
        for m in model.modules():
            if isinstance(m, nn.BatchNorm2d):
                m.weight.uniform_(0.5, 1.5), m.bias.uniform_(-0.2, 0.2)
    x = torch.rand(4, 1, 28, 28)

    def norms(net):
        return sum(isinstance(m, nn.BatchNorm2d) for m in net.modules())

    before = norms(model)
    fused = fused_for_inference(model)
    assert norms(model) == before  # folded in the copy only
    if name == "SmallCNN":  # every BatchNorm follows a convolution (DenseNet's precede theirs and stay)
        assert before == 4 and norms(fused) == 0
    with torch.no_grad():
        expected, got = model.eval().features(x), fused.features(x)
    torch.testing.assert_close(got[0], expected[0], rtol=1e-3, atol=1e-3)  # float rounding of a deep net
    torch.testing.assert_close(got[1], expected[1], rtol=1e-3, atol=1e-3)


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("size", [28, 14, 7, 4, 2])
def test_pair_max_pool_is_max_pool(size, dtype):
    """The same values and layout as PyTorch's 2x2 max-pool on even maps and odd ones (ceil mode), ties, NaNs and
    channels-last maps included; its own path runs on even ones."""
    x = torch.randn(3, 8, size, size).to(dtype).contiguous(memory_format=torch.channels_last)
    x[0, 0, :2, :2] = 1.0  # a tie
    x[1, 1, 0, 0] = float("nan")
    for ceil in (True, False):
        reference = nn.MaxPool2d(2, ceil_mode=ceil)(x)
        pair = PairMaxPool(2, ceil_mode=ceil)
        got = pair(x)
        torch.testing.assert_close(got, reference, rtol=0, atol=0, equal_nan=True)
        assert got.is_contiguous(memory_format=torch.channels_last) == reference.is_contiguous(
            memory_format=torch.channels_last
        )
    if size >= 3:  # other pools: PyTorch's kernel
        torch.testing.assert_close(PairMaxPool(3, 1)(x), nn.MaxPool2d(3, 1)(x), rtol=0, atol=0, equal_nan=True)


@pytest.mark.parametrize("name", ["SmallCNN", "VGG16-slim", "DLA-slim"])
def test_inference_copy_pools_in_pairs_with_the_same_features(name):
    """fused_for_inference swaps every max-pool for a PairMaxPool; the features match the copy with PyTorch's."""
    model = build_model(name, 10, in_channels=1).eval()
    fused = fused_for_inference(model)
    pools = [m for m in fused.modules() if isinstance(m, nn.MaxPool2d)]
    assert pools and all(type(m) is PairMaxPool for m in pools)
    assert not any(isinstance(m, PairMaxPool) for m in model.modules())  # the trained model keeps its own
    plain = fused_for_inference(model)
    for m in plain.modules():
        if isinstance(m, PairMaxPool):
            m.__class__ = nn.MaxPool2d
    x = torch.rand(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.no_grad():
        got, expected = fused.features(x), plain.features(x)
    for a, b in zip([*got[:2], *got[2]], [*expected[:2], *expected[2]]):
        torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_small_net_trains_on_a_batch():
    """A few SGD steps on a fixed batch must lower the loss: gradients reach every stage."""
    model = build_model("SmallCNN", 10, in_channels=1, dropout=0.0)
    x, y = torch.rand(16, 1, 28, 28), torch.arange(16) % 10
    opt = torch.optim.SGD(model.parameters(), lr=0.05, momentum=0.9)
    losses = []
    for _ in range(10):
        loss = nn.functional.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < losses[0]


@pytest.mark.parametrize("name", ["ResNet18", "SmallCNN"])
def test_loss_prediction_head_on_model_stages(name):
    model = build_model(name, 10, in_channels=1).eval()
    head = LossPredictionHead(model.stage_channels, width=16)
    with torch.no_grad():
        _, _, stages = model.features(torch.rand(2, 1, 28, 28))
    out = head(stages)
    assert out.shape == (2,)
    out.sum().backward()
    assert all(p.grad is not None for p in head.parameters())


def test_loss_prediction_head_default_width_and_stage_count():
    head = LossPredictionHead((4, 8, 16, 32))
    stages = [torch.rand(3, c, s, s) for c, s in ((4, 16), (8, 8), (16, 4), (32, 2))]
    assert head(stages).shape == (3,)
    with pytest.raises(ValueError, match="4 stage maps"):
        head(stages[:3])


def test_unknown_name_lists_valid_names():
    with pytest.raises(ValueError) as err:
        build_model("ResNet50", 10)
    for name in MODELS:
        assert name in str(err.value)


@pytest.mark.parametrize(
    "kwargs,message",
    [
        ({"num_classes": 1}, ">= 2"),
        ({"num_classes": 0}, ">= 2"),
        ({"in_channels": 2}, "1 or 3"),
        ({"in_channels": 4}, "1 or 3"),
        ({"dropout": 1.0}, r"\[0, 1\)"),
        ({"dropout": -0.1}, r"\[0, 1\)"),
    ],
)
@pytest.mark.parametrize("name", ["SmallCNN", "ResNet18"])
def test_bad_arguments_raise(name, kwargs, message):
    args = {"num_classes": 10, "in_channels": 3, "dropout": 0.2, **kwargs}
    with pytest.raises(ValueError, match=message):
        build_model(name, **args)


def test_wrong_input_channels_raise():
    model = build_model("SmallCNN", 10, in_channels=1)
    with pytest.raises(ValueError, match=r"\[B, 1, H, W\]"):
        model(torch.rand(2, 3, 28, 28))


# --- width multiplier and slim nets ----------------------------------------------------------------


@pytest.mark.parametrize("name", list(FULL_PARAMS))
def test_width_one_is_the_full_net(name):
    assert n_params(build_model(name, 10)) == FULL_PARAMS[name]
    assert n_params(build_model(name, 10, width=1.0)) == FULL_PARAMS[name]


@pytest.mark.parametrize("name", BIG)
def test_slim_net_is_the_full_architecture_at_its_width(name):
    slim = build_model(f"{name}-slim", 10)
    assert topology(slim) == topology(build_model(name, 10))
    assert n_params(slim) < FULL_PARAMS[name] / 4
    # width is relative to the registered net: scaling the slim net back up gives the full one
    assert n_params(build_model(f"{name}-slim", 10, width=1 / SLIM_WIDTHS[name])) == FULL_PARAMS[name]
    assert n_params(slim) == n_params(build_model(name, 10, width=SLIM_WIDTHS[name]))


@pytest.mark.parametrize("name", BIG + ("SmallCNN",))
@pytest.mark.parametrize("width", [0.05, 0.125, 0.5, 1.5])
def test_width_scales_channels_only(name, width):
    """Same modules, residuals and convs at any width (also where narrow widths round two counts
    to one, which must not turn a projection into an identity); every conv is >= 8 channels, a
    multiple of 8, wider or narrower with the width."""
    full, scaled = build_model(name, 10), build_model(name, 10, width=width)
    assert topology(scaled) == topology(full)
    convs = [(a, b) for a, b in zip(full.modules(), scaled.modules()) if isinstance(a, nn.Conv2d)]
    for _, b in convs[1:]:  # convs[0] reads the image
        assert b.in_channels >= 8 and b.in_channels % 8 == 0
    for a, b in convs:
        assert b.out_channels >= 8 and b.out_channels % 8 == 0
        assert (b.out_channels <= a.out_channels) if width < 1 else (b.out_channels >= a.out_channels)
    assert (n_params(scaled) < n_params(full)) == (width < 1)


def test_mobilenet_keeps_its_last_conv_when_slimmer():
    """The paper's rule: the width multiplier leaves the 1280-channel last conv alone below 1.0."""
    assert build_model("MobileNetV2-slim", 10).embedding_dim == 1280
    assert build_model("MobileNetV2", 10, width=1.5).embedding_dim == 1920
    assert build_model("MobileNetV2", 10, width=0.5).stage_channels == (16, 16, 48, 1280)


def test_small_nets_honour_width():
    assert build_model("SmallCNN", 10, width=2.0).stage_channels == (32, 64, 128, 256)
    assert build_model("TinyCNN", 10, width=0.5).stage_channels == (8, 8, 16, 32)


@pytest.mark.parametrize("width", [0, 0.0, -0.25, math.nan, math.inf, "0.5", True, None])
@pytest.mark.parametrize("name", ["ResNet18", "DenseNet121", "MobileNetV2-slim", "SmallCNN"])
def test_bad_width_raises(name, width):
    with pytest.raises(ValueError, match="width"):
        build_model(name, 10, width=width)


@pytest.mark.parametrize("name", SLIM)
def test_slim_net_trains_in_bf16_channels_last(name):
    """The trainer's setting (bfloat16 autocast, channels-last) on a batch of Fashion-MNIST size:
    finite loss and a gradient on every parameter."""
    model = build_model(name, 10, in_channels=1).train().to(memory_format=torch.channels_last)
    x = torch.rand(4, 1, 28, 28).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss = nn.functional.cross_entropy(model(x), torch.arange(4))
    loss.backward()
    assert torch.isfinite(loss)
    assert all(p.grad is not None and torch.isfinite(p.grad).all() for p in model.parameters())
