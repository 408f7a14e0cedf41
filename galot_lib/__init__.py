"""galot_lib: the companion library of the GALOT paper (generative active learning via
optimisable zero-shot text-to-image generation)."""

__version__ = "0.1.0"
