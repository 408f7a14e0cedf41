"""Zero-shot label checks that keep wrongly labelled generated images out of the training set.

An optimised prompt can produce an image of another class; its pseudo-label is then wrong. Two
classifiers that need no labelled data can catch that, and neither plays the judge's role:

* ``diffusion``: the text-to-image model itself, as a zero-shot classifier ("Your Diffusion Model is
  Secretly a Zero-Shot Classifier", Li et al. 2023): an image is noised at a few timesteps with fixed
  noise, the model predicts that noise under each class prompt, and the class whose prompt denoises it
  best wins. Over all C classes that costs C x timesteps UNet evaluations per image; GALOT's filter
  asks the cheaper pairwise question that matters: does the prompt's class denoise the image better
  than the class the current classifier would confuse it with (2 x timesteps evaluations)?
* ``clip``: CLIP's image-text similarity between the image and each class prompt, where CLIP weights
  are available (the paper profile: a hub id or a folder).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from .prompts import fill
from .sampler import clean_and_noise
from .t2i import T2IModel

DIFFUSION_TIMESTEPS = (300, 500, 700)  # noise levels at which the class prompts are compared


class DiffusionZeroShot:
    """The text-to-image model as a zero-shot classifier over ``class_embeddings`` ([C, L, D])."""

    def __init__(
        self,
        model: T2IModel,
        class_embeddings: torch.Tensor,
        timesteps=DIFFUSION_TIMESTEPS,
        seed: int = 0,
        batch_size: int = 64,
    ):
        self.model, self.cond = model, class_embeddings.to(model.device, model.dtype)
        self.timesteps, self.seed, self.batch_size = tuple(int(t) for t in timesteps), seed, batch_size
        from diffusers import DDIMScheduler

        ddim = DDIMScheduler.from_config(model.scheduler.config)
        self.prediction_type, self.alphas = ddim.config.prediction_type, ddim.alphas_cumprod
        train_steps = len(self.alphas)
        if not all(0 <= t < train_steps for t in self.timesteps):
            raise ValueError(f"timesteps must lie in 0..{train_steps - 1}, got {self.timesteps}")

    @torch.no_grad()
    def errors(self, images: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        """``[n, k]``: the mean squared noise-prediction error of image i under the prompt of class
        ``candidates[i, j]`` (the same noise for every candidate, so the comparison is paired)."""
        out = []
        for start in range(0, len(images), self.batch_size):
            x0 = self.model.to_model_space(images[start : start + self.batch_size])
            out.append(self._errors(x0, candidates[start : start + self.batch_size].to(x0.device)).cpu())
        return torch.cat(out)

    def _errors(self, x0: torch.Tensor, candidates: torch.Tensor) -> torch.Tensor:
        n, k = candidates.shape
        gen = torch.Generator().manual_seed(self.seed)
        error = torch.zeros(n, k, device=x0.device)
        rows = candidates.flatten()  # each class prompt projected once (text_attention.py)
        for t in self.timesteps:
            noise = torch.randn(x0.shape[1:], generator=gen).to(x0.device, x0.dtype).expand_as(x0)
            a = float(self.alphas[t])
            x_in = (a**0.5 * x0 + (1 - a) ** 0.5 * noise).repeat_interleave(k, 0)
            out = self.model.predict(x_in, torch.tensor(t, device=x0.device), self.cond, rows)
            out = clean_and_noise(x_in, out, a, self.prediction_type)[1]  # the noise each prompt predicts
            target = noise.repeat_interleave(k, 0)
            error += (out.float() - target.float()).square().flatten(1).mean(1).view(n, k)
        return error / len(self.timesteps)

    def predict(self, images: torch.Tensor) -> torch.Tensor:
        """The class whose prompt denoises each image best, among all classes."""
        every = torch.arange(len(self.cond)).expand(len(images), -1)
        return self.errors(images, every).argmin(1)

    def keeps(self, images: torch.Tensor, labels: torch.Tensor, rivals: torch.Tensor) -> torch.Tensor:
        """Whether the model denoises each image better under its own class's prompt than under ``rivals``
        (the class the current classifier would confuse it with): 2 instead of C evaluations per timestep."""
        errors = self.errors(images, torch.stack([torch.as_tensor(labels), torch.as_tensor(rivals)], 1))
        return errors[:, 0] <= errors[:, 1]


class ClipZeroShot:
    """CLIP zero-shot classification of images against "<template filled with each class name>"."""

    def __init__(self, clip_model: str, class_names, template: str, device=None):
        from transformers import AutoTokenizer, CLIPImageProcessor, CLIPModel

        from ..core.device import resolve_device

        self.device = resolve_device(device)
        try:
            self.clip = CLIPModel.from_pretrained(clip_model).eval().requires_grad_(False).to(self.device)
            tokenizer = AutoTokenizer.from_pretrained(clip_model)
            processor = CLIPImageProcessor.from_pretrained(clip_model)
        except OSError as err:
            raise OSError(
                f"cannot load the CLIP model {clip_model!r} for the label filter ({err}); give a hub id "
                "such as 'openai/clip-vit-base-patch32' or a folder saved with save_pretrained"
            ) from err
        size = processor.crop_size if isinstance(processor.crop_size, int) else processor.crop_size["height"]
        self.size = size
        self.mean = torch.tensor(processor.image_mean, device=self.device).view(1, -1, 1, 1)
        self.std = torch.tensor(processor.image_std, device=self.device).view(1, -1, 1, 1)
        prompts = [fill(template, name) for name in class_names]
        tokens = tokenizer(prompts, padding=True, return_tensors="pt").to(self.device)
        with torch.no_grad():
            self.text = F.normalize(_projected(self.clip.get_text_features(**tokens)), dim=-1)

    @torch.no_grad()
    def predict(self, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
        out = []
        for start in range(0, len(images), batch_size):
            x = images[start : start + batch_size].to(self.device).float() / 255
            if x.shape[1] == 1:
                x = x.repeat(1, 3, 1, 1)
            x = F.interpolate(x, size=(self.size, self.size), mode="bicubic", align_corners=False).clamp(0, 1)
            features = F.normalize(
                _projected(self.clip.get_image_features(pixel_values=(x - self.mean) / self.std)), dim=-1
            )
            out.append((features @ self.text.T).argmax(1).cpu())
        return torch.cat(out)


def _projected(features) -> torch.Tensor:
    """CLIP's projected features: transformers 4 returns them as a tensor, transformers 5 as the
    ``pooler_output`` of a model output."""
    return features if isinstance(features, torch.Tensor) else features.pooler_output


def label_filter_for(config, model: T2IModel, class_names) -> DiffusionZeroShot | ClipZeroShot | None:
    """The zero-shot checker ``config.label_filter`` names, built before any generation (None for "none")."""
    if config.label_filter == "diffusion":
        return DiffusionZeroShot(model, model.encode([fill(config.template, n) for n in class_names]))
    if config.label_filter == "clip":
        return ClipZeroShot(config.clip_model, class_names, config.template, model.device)
    return None
