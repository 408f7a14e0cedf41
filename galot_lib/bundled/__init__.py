"""The bundled text-to-image model's scripts: training it, its reference classifier and its evaluation (they
sit above ``paper``, whose judge and figures they use). The model itself, a small pixel-space diffusion model
for Fashion-MNIST that ships with the project so that the embedded profile runs offline on a laptop CPU, is the
asset :mod:`galot_lib.bundled_model`."""
