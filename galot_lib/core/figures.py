"""A grid of images as a matplotlib figure: the one picture the notebooks, the text-to-model card and the bundled
model's evaluation all draw (a leaf, so that none of them imports the report layer for it)."""

from __future__ import annotations


def image_grid(images, row_labels, column_titles=None, title: str | None = None, cell: float = 1.3):
    """A figure of uint8 images ``[rows, columns, C, H, W]``, one labelled row per entry of ``row_labels``."""
    import matplotlib.pyplot as plt

    rows, columns = images.shape[:2]
    fig, axes = plt.subplots(rows, columns, figsize=(cell * columns, cell * rows), squeeze=False)
    for r in range(rows):
        for c in range(columns):
            image = images[r, c].permute(1, 2, 0).numpy()
            ax = axes[r, c]
            ax.imshow(image.squeeze(), cmap="gray" if image.shape[-1] == 1 else None, vmin=0, vmax=255)
            ax.set_xticks([]), ax.set_yticks([])
        axes[r, 0].set_ylabel(row_labels[r], rotation=0, ha="right", va="center", fontsize=8)
    for c, name in enumerate(column_titles or []):
        axes[0, c].set_title(name, fontsize=8)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
