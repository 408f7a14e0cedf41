"""Move a class embedding and watch the images: GALOT live, in JupyterLab.

Pick a class, a template, eps, the direction (PGD against a classifier trained on the run's initial real labels, as
GALOT's first cycle optimises, or a random sign direction of the same size) and a few noise seeds; see the images
rendered from c_y and from the moved embedding c* side by side, each with the classifier's margin (top-1 minus
top-2 probability: small is informative, what GALOT's margin acquisition seeks) and the judge's label (the
independent classifier of Sec. 4.4). The text-to-image model, the data, the classifier and the judge are loaded
(or trained) once; c_y is encoded once per template and class and c* computed once per (class, template, eps,
direction), and every image once per embedding and noise seed, so moving a control re-runs only the PGD and the
rendering it needs.

``Explorer(profile).show()`` builds the widgets; in a headless run (:func:`galot_lib.core.progress.headless`) it
returns one static example instead (a figure), so the report shows what the explorer does.
"""

from __future__ import annotations

import dataclasses
import io
import time
from dataclasses import dataclass

import numpy as np
import torch

from ..core.progress import headless
from ..core.timing import timed
from ..experiments.profiles import Profile
from ..experiments.runs import al_config, initial_classifiers_folder, judge_for, load_data, t2i_model
from ..generation.galot import EpsSchedule, optimize_embeddings
from ..generation.images import class_seeds, generate_images, image_seeds
from ..generation.prompts import fill
from ..learning.loop import initial_classifier
from ..learning.train import predict_probs

DIRECTIONS = ("gradient", "random")  # PGD on the classifier's margin | random sign steps of the same size
EXPLORE_CYCLE = 7  # the cycle number the explorer's PGD draws its noise for (no AL cycle uses it)


@dataclass(frozen=True)
class Controls:
    """What the reader sets: one class, its prompt template, eps, the direction and the noise seeds shown."""

    class_name: str
    template: str
    eps: float
    direction: str = "gradient"
    seeds: tuple[int, ...] = (0, 1, 2, 3)


@dataclass
class View:
    """The answer to one setting of the controls: images from c_y and from c* on the same noise seeds."""

    controls: Controls
    plain: torch.Tensor  # uint8 [n, C, H, W], from c_y
    moved: torch.Tensor  # uint8 [n, C, H, W], from c*, same noise seeds
    margin_plain: np.ndarray  # the classifier's top-1 minus top-2 probability, per image
    margin_moved: np.ndarray
    judged_plain: list[str]  # the judge's label, per image
    judged_moved: list[str]
    shift: float  # max |c* - c_y| (at most eps)
    seconds: float  # to compute this view (PGD when c* was not cached, rendering, scoring)

    def summary(self) -> dict:
        """The numbers beside the images: mean margins and the share the judge sees as the class."""
        name = self.controls.class_name
        return dict(
            class_name=name,
            template=self.controls.template,
            eps=self.controls.eps,
            direction=self.controls.direction,
            images=len(self.plain),
            shift=self.shift,
            margin_plain=float(self.margin_plain.mean()),
            margin_moved=float(self.margin_moved.mean()),
            judged_as_class_plain=float(np.mean([j == name for j in self.judged_plain])),
            judged_as_class_moved=float(np.mean([j == name for j in self.judged_moved])),
            seconds=self.seconds,
        )

    def figure(self):
        """Two rows, c_y above and c* below, one column per seed; each image titled with margin and judged label."""
        import matplotlib.pyplot as plt

        c = self.controls
        n = len(self.plain)
        fig, axes = plt.subplots(2, n, figsize=(1.7 * n + 1.2, 5.0), squeeze=False, layout="constrained")
        rows = (
            ("c_y", self.plain, self.margin_plain, self.judged_plain),
            (f"c* ({c.direction}, eps {c.eps:g})", self.moved, self.margin_moved, self.judged_moved),
        )
        for r, (label, images, margins, judged) in enumerate(rows):
            for k in range(n):
                ax = axes[r, k]
                image = images[k].permute(1, 2, 0).squeeze(-1).numpy()
                ax.imshow(image, cmap="gray" if image.ndim == 2 else None, vmin=0, vmax=255)
                ax.set_xticks([]), ax.set_yticks([])
                colour = "black" if judged[k] == c.class_name else "#d62728"
                ax.set_title(f"margin {margins[k]:.2f}\n{judged[k][:14]}", fontsize=8, color=colour)
                if k == 0:
                    ax.set_ylabel(label, fontsize=8)
                if r == 1:
                    ax.set_xlabel(f"seed {c.seeds[k]}", fontsize=8)
        fig.suptitle(
            f"'{fill(c.template, c.class_name)}'\nclassifier margin (small: informative), judge's label "
            "(red: not the prompt's class)",
            fontsize=9,
        )
        return fig


class Explorer:
    """The explorer's state: the profile's model, classifier and judge, and the embeddings computed so far."""

    def __init__(self, profile: Profile, seed: int = 0):
        self.profile = profile
        self.seed = seed
        self.pool, test = load_data(profile)
        self.channels, self.size, _ = self.pool.image_shape
        self.class_names = list(self.pool.class_names)
        self.templates = list(dict.fromkeys([profile.galot.template, profile.basic_template, *profile.templates]))
        self.model = t2i_model(profile)
        with timed("training"):  # the classifier GALOT's first cycle optimises against: the initial real labels
            self.classifier = initial_classifier(
                al_config(profile), self.pool, seed, shared_dir=initial_classifiers_folder(profile, self.pool)
            ).model.eval()
        self.judge = judge_for(profile, self.pool, test)
        self._c_y: dict[tuple[str, str], torch.Tensor] = {}
        self._moved: dict[tuple, tuple[torch.Tensor, float]] = {}
        self._rendered: dict[tuple, tuple[torch.Tensor, np.ndarray, list[str]]] = {}

    # ------------------------------------------------------------------ computation
    def controls(self, **changes) -> Controls:
        """Default controls (the first class, GALOT's template, the profile's last-cycle eps, the gradient, four
        seeds) with ``changes`` applied and checked."""
        controls = dataclasses.replace(
            Controls(self.class_names[0], self.templates[0], self.profile.galot.eps.end), **changes
        )
        if controls.class_name not in self.class_names:
            raise ValueError(f"unknown class {controls.class_name!r}; valid: {self.class_names}")
        if controls.direction not in DIRECTIONS:
            raise ValueError(f"unknown direction {controls.direction!r}; valid: {DIRECTIONS}")
        if controls.eps < 0 or not controls.seeds:
            raise ValueError(f"eps must be >= 0 and at least one seed is needed, got {controls}")
        return dataclasses.replace(controls, seeds=tuple(int(s) for s in controls.seeds))

    def embedding(self, template: str, class_name: str) -> torch.Tensor:
        """c_y of one class, [1, L, D] (encoded once)."""
        key = (template, class_name)
        if key not in self._c_y:
            self._c_y[key] = self.model.encode([fill(template, class_name)]).float()
        return self._c_y[key]

    def moved(self, controls: Controls) -> tuple[torch.Tensor, float]:
        """c* of the class (PGD from c_y in the eps-ball, as GALOT's runs: the profile's K, N and step size), and
        its largest shift; computed once per (class, template, eps, direction)."""
        key = (controls.class_name, controls.template, controls.eps, controls.direction)
        if key not in self._moved:
            label = self.class_names.index(controls.class_name)
            config = dataclasses.replace(
                self.profile.galot,
                template=controls.template,
                eps=EpsSchedule.constant(controls.eps),
                optimize=True,
                acquisition="MarginSampling" if controls.direction == "gradient" else "RandomSampling",
            )
            c_y = self.embedding(controls.template, controls.class_name)
            seeds = [class_seeds(self.seed, EXPLORE_CYCLE, len(self.class_names))[label]]
            c = optimize_embeddings(
                self.model, self.classifier, c_y, controls.eps, config, seeds, self.size, self.channels
            ).embeddings
            self._moved[key] = (c, float((c - c_y).abs().max()))
        return self._moved[key]

    def rendered(self, controls: Controls, moved: bool) -> tuple[torch.Tensor, np.ndarray, list[str]]:
        """Images from c_y (or c*) on the controls' noise seeds, with the classifier's margins and the judge's labels;
        rendered once per (embedding, seed): the c_y row survives a change of eps or direction, both rows a return to
        an earlier setting."""
        key = (
            controls.class_name,
            controls.template,
            controls.eps if moved else 0.0,
            controls.direction if moved else None,
        )
        missing = [s for s in controls.seeds if (key, s) not in self._rendered]
        if missing:
            label = self.class_names.index(controls.class_name)
            c = self.moved(controls)[0] if moved else self.embedding(controls.template, controls.class_name)
            noise = [image_seeds(seed, EXPLORE_CYCLE, label, 1)[0] for seed in missing]
            images = generate_images(
                self.model, c, [0] * len(noise), noise, self.profile.galot, self.size, self.channels
            )
            top2 = predict_probs(self.classifier, images).topk(2, dim=1).values
            margins = (top2[:, 0] - top2[:, 1]).numpy()
            judged = [self.class_names[int(j)] for j in predict_probs(self.judge, images).argmax(1)]
            for k, seed in enumerate(missing):
                self._rendered[key, seed] = (images[k], margins[k], judged[k])
        rows = [self._rendered[key, s] for s in controls.seeds]
        return (torch.stack([r[0] for r in rows]), np.array([r[1] for r in rows]), [r[2] for r in rows])

    def view(self, controls: Controls | None = None, **changes) -> View:
        """The images and numbers for ``controls`` (default: :meth:`controls` with ``changes``)."""
        start = time.perf_counter()
        controls = controls or self.controls(**changes)
        shift = self.moved(controls)[1]
        plain = self.rendered(controls, moved=False)
        moved = plain if shift == 0 else self.rendered(controls, moved=True)  # eps 0: c* is c_y
        return View(
            controls, plain[0], moved[0], plain[1], moved[1], plain[2], moved[2], shift, time.perf_counter() - start
        )

    # ------------------------------------------------------------------ the notebook
    def show(self, **changes):
        """The explorer for a cell to end with: widgets in JupyterLab; in a headless run one static example (the
        default controls with ``changes``, as a figure), since nobody can move a control there."""
        if headless():
            import matplotlib.pyplot as plt

            figure = self.view(**changes).figure()
            plt.close(figure)  # shown once, as the cell's result
            return figure
        return self.build(**changes)

    def build(self, **changes):
        """The widgets: class, template, eps, direction and seeds; every change redraws the images and numbers."""
        import ipywidgets as w

        start = self.controls(**changes)
        top = max(1.0, *self.profile.fig4_eps, *self.profile.table4_eps)
        style, wide = {"description_width": "80px"}, w.Layout(width="420px")
        self.inputs = dict(
            class_name=w.Dropdown(
                options=self.class_names, value=start.class_name, description="class", style=style, layout=wide
            ),
            template=w.Dropdown(
                options=self.templates, value=start.template, description="template", style=style, layout=wide
            ),
            eps=w.FloatSlider(
                value=start.eps,
                min=0.0,
                max=top,
                step=0.05,
                description="eps",
                style=style,
                continuous_update=False,
                readout_format=".2f",
                layout=wide,
            ),
            direction=w.ToggleButtons(
                options=[("gradient (PGD)", "gradient"), ("random", "random")],
                value=start.direction,
                description="direction",
                style=style,
            ),
            first_seed=w.BoundedIntText(
                value=start.seeds[0],
                min=0,
                max=10_000,
                description="first seed",
                style=style,
                layout=w.Layout(width="200px"),
            ),
            images=w.IntSlider(
                value=len(start.seeds),
                min=1,
                max=8,
                description="images",
                style=style,
                continuous_update=False,
                layout=w.Layout(width="300px"),
            ),
        )
        picture = w.Image(format="png", layout=w.Layout(max_width="100%"))
        status = w.HTML()

        def current() -> Controls:
            v = {name: widget.value for name, widget in self.inputs.items()}
            seeds = tuple(range(v["first_seed"], v["first_seed"] + v["images"]))
            return self.controls(
                class_name=v["class_name"],
                template=v["template"],
                eps=float(v["eps"]),
                direction=v["direction"],
                seeds=seeds,
            )

        def redraw(_=None):
            import matplotlib.pyplot as plt

            status.value = "<i>computing...</i>"
            view = self.view(current())
            figure = view.figure()
            buffer = io.BytesIO()
            figure.savefig(buffer, format="png", dpi=90)
            plt.close(figure)
            picture.value = buffer.getvalue()
            s = view.summary()
            status.value = (
                f"mean margin: c_y {s['margin_plain']:.3f}, c* {s['margin_moved']:.3f}; judged as "
                f"<b>{s['class_name']}</b>: c_y {s['judged_as_class_plain']:.0%}, c* "
                f"{s['judged_as_class_moved']:.0%}; max shift {s['shift']:.3f}; {s['seconds']:.2f} s"
            )

        for widget in self.inputs.values():
            widget.observe(redraw, names="value")
        redraw()
        self.widget = w.VBox(
            [
                w.HBox(
                    [
                        w.VBox([self.inputs["class_name"], self.inputs["template"], self.inputs["eps"]]),
                        w.VBox([self.inputs["direction"], w.HBox([self.inputs["first_seed"], self.inputs["images"]])]),
                    ]
                ),
                status,
                picture,
            ]
        )
        self.redraw = redraw
        return self.widget
