"""The bundled text-to-image model as an asset: its weights, its frozen text encoder and its reference
classifier (the judge), loaded by ``generation`` and ``paper``. It imports nothing above ``learning``; the
scripts that train and evaluate it live in :mod:`galot_lib.bundled`, above ``paper``."""

from pathlib import Path

WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"
