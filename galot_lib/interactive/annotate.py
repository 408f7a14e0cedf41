"""A JupyterLab panel with which a person judges the generated images of Sec. 4.4.

The paper's pseudo-label accuracy comes from human annotators. Notebook 4.4 saves every image
the automatic judge saw (``judged_images.pt``); this panel shows those of one eps level one at a
time with a button per class, and writes the answers to ``human_annotations.csv`` after every
click (atomically), so a half-done session loses nothing and resumes where it stopped.
"""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import torch

from ..core.io import load_torch, save_table
from ..core.progress import headless

ANSWERS = "human_annotations.csv"
DISPLAY_PX = 224  # each image on screen: 8x a 28 px image, readable, with the buttons beside it
IMAGES = "judged_images.pt"


def load_judged(out_dir: Path) -> tuple[torch.Tensor, pd.DataFrame, list[str]]:
    path = Path(out_dir) / IMAGES
    if not path.exists():
        raise FileNotFoundError(
            f"{path} is missing: run notebook 4.4's experiment cell first (it saves the judged images)"
        )
    blob = load_torch(path)
    meta = pd.DataFrame(blob["meta"])
    meta["index"] = range(len(meta))
    return blob["images"], meta, blob["class_names"]


def read_answers(out_dir: Path) -> pd.DataFrame:
    path = Path(out_dir) / ANSWERS
    if not path.exists():
        return pd.DataFrame(columns=["index", "template", "eps", "label", "judge", "human"])
    return pd.read_csv(path)


def human_accuracy(out_dir: Path) -> pd.DataFrame | None:
    """Human and automatic accuracy on the images a person judged, per template and eps (None
    when nobody has annotated yet)."""
    answers = read_answers(out_dir)
    if answers.empty:
        return None
    answers["human_correct"] = answers.human == answers.label
    answers["judge_correct"] = answers.judge == answers.label
    answers["agree"] = answers.human == answers.judge
    return (
        answers.groupby(["template", "eps"])
        .agg(
            images=("index", "size"),
            human_accuracy=("human_correct", "mean"),
            judge_accuracy=("judge_correct", "mean"),
            agreement=("agree", "mean"),
        )
        .reset_index()
    )


def png_bytes(image: torch.Tensor, scale: int = 8) -> bytes:
    from PIL import Image

    array = image.permute(1, 2, 0).squeeze(-1).numpy()
    pil = Image.fromarray(array)
    pil = pil.resize((pil.width * scale, pil.height * scale), Image.NEAREST)
    buf = io.BytesIO()
    pil.save(buf, format="PNG")
    return buf.getvalue()


class AnnotationPanel:
    """Image + one button per class + progress; answers saved after every click."""

    def __init__(self, out_dir: Path, eps: float | None = None):
        self.out_dir = Path(out_dir)
        images, meta, self.class_names = load_judged(self.out_dir)
        self.eps = float(meta.eps.max()) if eps is None else float(eps)
        if self.eps not in set(meta.eps):
            raise ValueError(f"no judged images at eps={self.eps}; available: {sorted(set(meta.eps))}")
        self.items = meta[meta.eps == self.eps].sample(frac=1.0, random_state=0)  # shuffled: no class order hint
        self.images = images
        self.answers = read_answers(self.out_dir)
        self.widget = None

    def remaining(self) -> pd.DataFrame:
        return self.items[~self.items["index"].isin(self.answers["index"])]

    def record(self, index: int, human: int):
        """Store one answer (also usable without widgets, e.g. from a script)."""
        row = self.items[self.items["index"] == index].iloc[0]
        new = dict(
            index=int(index),
            template=row.template,
            eps=row.eps,
            label=int(row.label),
            judge=int(row.judge),
            human=int(human),
        )
        self.answers = pd.concat([self.answers[self.answers["index"] != index], pd.DataFrame([new])], ignore_index=True)
        save_table(self.answers, self.out_dir / ANSWERS, index=False)

    def status(self) -> str:
        """What the panel's first line says: the eps level, how many images are judged and how many remain."""
        left = len(self.remaining())
        return (
            f"<b>eps = {self.eps:g}</b>: {len(self.items) - left} of {len(self.items)} judged, "
            f"<b>{left} remaining</b>" + ("" if left else " (all done, thank you)")
        )

    def build(self):
        """The panel's widget: the image at a fixed size (``DISPLAY_PX``), the class buttons beside it, and a count
        of what remains; every click saves the answer and shows the next image."""
        import ipywidgets as w

        side = f"{DISPLAY_PX}px"
        image = w.Image(format="png", layout=w.Layout(width=side, height=side, object_fit="contain", flex="0 0 auto"))
        status = w.HTML()
        buttons = [w.Button(description=name, layout=w.Layout(width="120px")) for name in self.class_names]

        def refresh():
            left = self.remaining()
            status.value = self.status()
            if len(left):
                image.value = png_bytes(self.images[int(left.iloc[0]["index"])])
            for b in buttons:
                b.disabled = not len(left)

        def on_click(button):
            left = self.remaining()
            if len(left):
                self.record(int(left.iloc[0]["index"]), buttons.index(button))
            refresh()

        for b in buttons:
            b.on_click(on_click)
        refresh()
        grid = w.GridBox(buttons, layout=w.Layout(grid_template_columns="repeat(2, 124px)", grid_gap="4px"))
        self.widget = w.VBox([status, w.HBox([image, grid], layout=w.Layout(align_items="center", grid_gap="16px"))])
        return self.widget

    def show(self):
        """The panel for a cell to end with: it is shown once, as the cell's result (nothing is displayed here). In a
        headless run (:func:`galot_lib.core.progress.headless`) a line of text stands for it, since nobody can click."""
        if headless():
            from IPython.display import Markdown

            return Markdown(
                self.status().replace("<b>", "**").replace("</b>", "**")
                + ". Open this notebook in JupyterLab to judge the images with the panel."
            )
        return self.build()
