"""Training captions of the bundled model: class words and synonyms in varied templates.

The paper's six templates (and Table 9's spelling of two of them) are held out, so that at
evaluation they are phrasings the model has never seen, as CIFAR prompts are for Stable
Diffusion. ``held_out_overlap`` checks that no training caption equals a held-out prompt.
"""

from __future__ import annotations

from ..generation.prompts import PAPER_TEMPLATE_VARIANTS, PAPER_TEMPLATES

TRAIN_TEMPLATES = (
    "a picture of a {label}",
    "an image of a {label}",
    "a {label}",
    "the {label}",
    "one {label}",
    "a black and white picture of a {label}",
    "a grayscale image of a {label}",
    "a small image of a {label}",
    "a low resolution picture of the {label}",
    "a product shot of a {label}",
    "a catalogue image of a {label}",
    "one {label} on a black background",
    "a {label} centred on a dark background",
    "a thumbnail of a {label}",
    "a fashion item: {label}",
    "{label}, front view",
    "a clear picture of a {label}",
    "a close-up picture of a {label}",
    "a scanned picture of a {label}",
    "this is a {label}",
    "there is a {label} in the picture",
    "a cropped image of one {label}",
    "an online shop picture of a {label}",
    "a monochrome image of a {label}",
    "a tiny picture of a {label}",
    "{label} image",
    "a picture showing a {label}",
)

# Index = Fashion-MNIST label; the first word is the class's prompt word (data.FASHION_MNIST_CLASSES).
SYNONYMS = (
    ("t-shirt", "top", "tee", "t-shirt/top", "short sleeve top", "tee shirt"),
    ("trouser", "trousers", "pants", "jeans", "slacks"),
    ("pullover", "sweater", "jumper", "knitted sweater"),
    ("dress", "gown", "frock", "summer dress"),
    ("coat", "jacket", "overcoat", "winter coat"),
    ("sandal", "sandals", "summer sandal", "strappy sandal"),
    ("shirt", "button-down shirt", "blouse", "long sleeve shirt"),
    ("sneaker", "sneakers", "trainer", "running shoe"),
    ("bag", "handbag", "purse", "tote bag"),
    ("ankle boot", "boot", "short boot", "bootie"),
)


def training_captions() -> tuple[list[str], list[int]]:
    """Every (template, synonym) caption and its class label."""
    captions, labels = [], []
    for label, words in enumerate(SYNONYMS):
        for word in words:
            for template in TRAIN_TEMPLATES:
                captions.append(template.format(label=word))
                labels.append(label)
    return captions, labels


def held_out_overlap() -> set[str]:
    """Training captions that are also a held-out (paper) prompt: must be empty."""
    held_out = {t.format(label=w) for t in PAPER_TEMPLATES + PAPER_TEMPLATE_VARIANTS for ws in SYNONYMS for w in ws}
    return held_out & set(training_captions()[0])
