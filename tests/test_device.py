"""The device choice and the half-precision path, as far as a CPU can run them: $GALOT_DEVICE asking for a GPU that
is not there stops at once, and a Stable Diffusion model held in fp16 goes through PGD (loss-scaled gradient, fp32
embeddings) and generation with finite results."""

import pytest
import torch

from galot_lib.core.device import default_device, resolve_device
from galot_lib.generation.galot import GalotConfig, memory_plan_for, optimize_embeddings
from galot_lib.generation.images import generate_images, planned_images
from galot_lib.generation.t2i import from_sd_components
from galot_lib.learning.models import build_model


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU: CUDA is a valid choice here")
def test_cuda_without_a_gpu_stops_with_a_clear_error(monkeypatch):
    monkeypatch.setenv("GALOT_DEVICE", "cuda")
    with pytest.raises(ValueError, match=r"\$GALOT_DEVICE='cuda' asks for CUDA, but torch sees no GPU; use 'cpu'"):
        default_device()
    monkeypatch.setenv("GALOT_DEVICE", "gpu0")
    with pytest.raises(ValueError, match=r"'gpu0' is not a device name \(e.g. 'cpu', 'cuda', 'cuda:1'\)"):
        resolve_device()
    monkeypatch.setenv("GALOT_DEVICE", "cpu")
    assert default_device() == torch.device("cpu")


def test_half_precision_model_through_pgd_and_generation(sd_components):
    model = from_sd_components(**sd_components, device="cpu", dtype=torch.float16)
    assert (model.dtype, model.unet.dtype, model.vae.dtype) == (torch.float16,) * 3
    torch.manual_seed(0)
    classifier = build_model("TinyCNN", 2, in_channels=3).eval()
    cfg = GalotConfig(template="a photo of a {label}", pgd_steps=1, grad_samples=2, sampling_steps=2, guidance=7.5)
    c_y = model.encode(["a photo of a cat", "a photo of a dog"])
    assert c_y.dtype == torch.float32  # PGD's variable stays fp32: its small steps are not rounded away
    plan = memory_plan_for(model, classifier, cfg, 32, 3, budget_gb=1.0)
    result = optimize_embeddings(model, classifier, c_y, 0.5, cfg, [0, 1], 32, 3, plan)
    assert result.embeddings.dtype == torch.float32 and torch.isfinite(result.embeddings).all()
    assert result.zero_share[0] < 0.5  # the loss-scaled fp16 gradient did not flush to zero
    assert 0 < (result.embeddings - c_y).abs().max() <= 0.5 + 1e-6
    labels, seeds = planned_images([2, 1], seed=0, cycle=0)
    images = generate_images(model, result.embeddings, labels, seeds, cfg, 32, 3)
    assert images.shape == (3, 3, 32, 32) and images.dtype == torch.uint8 and images.float().std() > 0
