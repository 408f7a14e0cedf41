"""The bundled text-to-image model: a small pixel-space diffusion model for Fashion-MNIST that
ships with the project, so the embedded profile runs offline on a laptop CPU."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
