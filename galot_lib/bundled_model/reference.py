"""The reference classifier, loaded: the automatic judge of pseudo-labels (Sec. 4.4, Table 9), trained on the
Fashion-MNIST *generator* split (never the AL pool or the test set) by ``python -m galot_lib.bundled.reference``."""

from __future__ import annotations

import json
from pathlib import Path

from safetensors.torch import load_file

from ..learning.models import Classifier, build_model
from . import WEIGHTS_DIR

MODEL = "DeepCNN"
FOLDER = "reference_classifier"


def load_reference(folder: Path | None = None) -> Classifier:
    """The saved judge, in eval mode."""
    folder = Path(folder) if folder is not None else WEIGHTS_DIR / FOLDER
    if not (folder / "model.safetensors").exists():
        raise FileNotFoundError(
            f"no reference classifier in {folder}; train it with `python -m galot_lib.bundled.reference`"
        )
    info = json.loads((folder / "config.json").read_text())
    model = build_model(info["model"], info["num_classes"], in_channels=info["in_channels"])
    model.load_state_dict(load_file(str(folder / "model.safetensors")))
    return model.eval()
