"""Progress bars: live where a person watches, one final line where nobody does.

In JupyterLab ``tqdm.auto`` draws a widget that updates in place; in a notebook executed headless (papermill, for
the committed report) the same widget is saved into the notebook as dead state, one per bar, and a reader sees
"0%" wherever widgets are not rendered. With ``GALOT_HEADLESS`` set (``run_all.sh`` sets it for the notebooks it
executes, the tests for theirs), :func:`tqdm` writes each bar once, in its final state, as a line of text when it
closes (bars that would disappear on closing, ``leave=False``, write nothing), and the bars libraries draw
themselves are turned off. Everything in the project imports its bar from here.
"""

from __future__ import annotations

import importlib
import os
import sys

from tqdm.std import tqdm as _text_tqdm

HEADLESS_ENV = "GALOT_HEADLESS"
# What a headless notebook run sets (run_all.sh, the tests): this module's switch, and Hugging Face's for the bars
# huggingface_hub and transformers draw themselves (downloads, "Loading weights"), read when they are imported.
HEADLESS_ENVIRONMENT = {HEADLESS_ENV: "1", "HF_HUB_DISABLE_PROGRESS_BARS": "1"}


def headless() -> bool:
    """True in a run nobody watches (``GALOT_HEADLESS`` set to anything but "" or "0"): no widgets, no animation."""
    return os.environ.get(HEADLESS_ENV, "") not in ("", "0")


class FinalLineBar(_text_tqdm):
    """A text bar that draws nothing while it runs and one line, its final state, when it closes."""

    _closing = False

    def display(self, msg=None, pos=None):
        if self._closing and msg is None:
            self.fp.write(self.__str__())
            return True
        return False  # nothing while running; nothing to clear when a bar that does not stay closes

    def close(self):
        self._closing = True
        super().close()


def tqdm(*args, **kwargs):
    """``tqdm.auto.tqdm`` (a widget in a notebook, a live bar in a terminal), or a :class:`FinalLineBar` on stdout
    in a headless run. Same arguments as tqdm's."""
    if headless():
        kwargs.setdefault("file", sys.stdout)
        kwargs.pop("dynamic_ncols", None)
        kwargs.setdefault("bar_format", "{desc}: {n_fmt}/{total_fmt} in {elapsed}{postfix}")
        return FinalLineBar(*args, **kwargs)
    from tqdm.auto import tqdm as auto_tqdm

    return auto_tqdm(*args, **kwargs)


def quiet_library_bars():
    """Turns off the progress bars libraries draw themselves, which a notebook would keep as widgets: diffusers'
    ("Loading pipeline components") and transformers' ("Loading weights"), through their own switches."""
    for module in ("diffusers.utils.logging", "transformers.utils.logging"):
        try:
            logging = importlib.import_module(module)
        except ImportError:
            continue
        logging.disable_progress_bar()


if headless():  # once, when the project is first imported in a headless run
    quiet_library_bars()
