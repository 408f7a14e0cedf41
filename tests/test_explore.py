"""The live explorer (galot_lib.interactive.explore) on the smoke profile and the bundled model: its views, its caches,
its widgets and its static stand-in in headless runs."""

import numpy as np
import pytest
import torch

from galot_lib.experiments.profiles import get_profile
from galot_lib.interactive.explore import DIRECTIONS, Controls, Explorer


@pytest.fixture(scope="module")
def explorer():
    return Explorer(get_profile("smoke"))


def test_view_shows_c_y_and_c_star_on_the_same_noise(explorer):
    view = explorer.view(eps=0.3, seeds=(0, 1, 2))
    assert view.plain.shape == view.moved.shape == (3, *explorer.pool.image_shape[:1], explorer.size, explorer.size)
    assert view.plain.dtype == torch.uint8 and not torch.equal(view.plain, view.moved)
    for margins in (view.margin_plain, view.margin_moved):
        assert margins.shape == (3,) and ((margins >= 0) & (margins <= 1)).all()
    assert set(view.judged_plain + view.judged_moved) <= set(explorer.class_names)
    assert 0 < view.shift <= 0.3 + 1e-6
    summary = view.summary()
    assert summary["images"] == 3 and 0 <= summary["judged_as_class_moved"] <= 1
    same_noise = explorer.view(eps=0.3, seeds=(0, 1, 2))  # deterministic: the same controls, the same images
    assert torch.equal(same_noise.moved, view.moved)


def test_eps_zero_moves_nothing_and_random_fills_the_ball(explorer):
    still = explorer.view(eps=0.0, seeds=(5,))
    assert still.shift == 0 and torch.equal(still.plain, still.moved)
    np.testing.assert_allclose(still.margin_plain, still.margin_moved)
    random = explorer.view(eps=0.2, direction="random", seeds=(5,))
    assert random.shift == pytest.approx(0.2)  # sign steps of 2.5 eps / K end on the ball's surface


def test_a_control_change_recomputes_only_what_it_must(explorer):
    explorer.view(eps=0.15)
    moved = dict(explorer._moved)
    explorer.view(eps=0.15, seeds=(7, 8))  # other seeds: rendering only, c* reused
    assert explorer._moved == moved
    explorer.view(eps=0.15, class_name=explorer.class_names[1])  # another class: one new c*
    assert len(explorer._moved) == len(moved) + 1
    explorer.view(eps=0.15, seeds=(0, 1))
    rendered = len(explorer._rendered)
    explorer.view(eps=0.35, seeds=(0, 1))  # another eps: the c_y row is reused, only the c* row is rendered
    assert len(explorer._rendered) == rendered + 2
    explorer.view(eps=0.15, seeds=(0, 1))  # back to a setting seen before: nothing is rendered
    assert len(explorer._rendered) == rendered + 2


def test_controls_are_checked(explorer):
    assert explorer.controls() == Controls(
        explorer.class_names[0], explorer.templates[0], explorer.profile.galot.eps.end
    )
    for bad in (dict(class_name="no such class"), dict(direction="sideways"), dict(eps=-1.0), dict(seeds=())):
        with pytest.raises(ValueError):
            explorer.controls(**bad)
    assert set(DIRECTIONS) == {"gradient", "random"}


def test_widgets_redraw_on_a_control_change(explorer, monkeypatch):
    monkeypatch.delenv("GALOT_HEADLESS", raising=False)
    widget = explorer.show(eps=0.1, seeds=(0,))
    assert widget is explorer.widget
    picture = widget.children[-1]
    before = picture.value
    assert before[:4] == b"\x89PNG" and "mean margin" in widget.children[1].value
    explorer.inputs["eps"].value = 0.4
    after_eps = picture.value
    assert after_eps != before
    explorer.inputs["images"].value = 2
    assert picture.value != after_eps and len(explorer.controls(seeds=(0, 1)).seeds) == 2


def test_headless_show_is_one_static_figure(explorer, monkeypatch):
    import matplotlib.pyplot as plt

    monkeypatch.setenv("GALOT_HEADLESS", "1")
    figure = explorer.show(seeds=(0, 1))
    assert isinstance(figure, plt.Figure) and len(figure.axes) == 4
    assert not plt.get_fignums()  # closed: a notebook shows it once, as the cell's result
