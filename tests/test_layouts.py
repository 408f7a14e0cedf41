"""The UNet's CPU layouts change where values are stored, not the values."""

import copy

import torch

from galot_lib.generation.layouts import contiguous_group_norms, weights_rounded_for_autocast


def small_unet_like() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(
        torch.nn.Conv2d(4, 16, 3, padding=1),
        torch.nn.GroupNorm(4, 16),
        torch.nn.SiLU(),
        torch.nn.Conv2d(16, 8, 3, padding=1),
        torch.nn.Flatten(),
        torch.nn.Linear(8 * 6 * 6, 5),
    ).to(memory_format=torch.channels_last)


def test_contiguous_group_norm_keeps_values_and_layout():
    net = small_unet_like()
    x = torch.randn(3, 16, 6, 6).contiguous(memory_format=torch.channels_last)
    expected = net[1](x)
    contiguous_group_norms(net)
    got = net[1](x)
    assert got.is_contiguous(memory_format=torch.channels_last)
    torch.testing.assert_close(got, expected)


def test_weights_rounded_for_autocast_give_the_same_results_bit_for_bit():
    net = small_unet_like().requires_grad_(False)
    rounded = weights_rounded_for_autocast(copy.deepcopy(net))
    assert rounded[0].weight.dtype == rounded[5].weight.dtype == torch.bfloat16
    assert rounded[1].weight.dtype == torch.float32  # norms keep their precision
    x = torch.randn(3, 4, 6, 6).contiguous(memory_format=torch.channels_last)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert torch.equal(rounded(x), net(x))
