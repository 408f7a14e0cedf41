"""Where things are stored, each root overridable from the environment (the tests point them all
at a temporary folder; a cluster job points them at shared storage)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
_CACHE_HOME = Path.home() / ".cache" / "galot"


def runs_root() -> Path:
    """Run states (resumable AL runs): ``$GALOT_RUNS_DIR``, else ``<repo>/runs``."""
    return Path(os.environ.get("GALOT_RUNS_DIR", REPO / "runs"))


def results_root() -> Path:
    """Tables, figures and executed notebooks: ``$GALOT_RESULTS_DIR``, else ``<repo>/results``."""
    return Path(os.environ.get("GALOT_RESULTS_DIR", REPO / "results"))


def staging_root() -> Path | None:
    """Where a section's outputs are written until it completes: ``$GALOT_STAGING_DIR`` (``run_all.sh`` sets it, and
    moves each finished section to the results root), else None: written in place."""
    staging = os.environ.get("GALOT_STAGING_DIR")
    return Path(staging) if staging else None


def results_dir(profile_name: str, section: str) -> Path:
    """``$GALOT_RESULTS_DIR/<profile>/<section>`` (default ``<repo>/results``), created; under the staging root
    instead while a run stages its sections."""
    path = (staging_root() or results_root()) / profile_name / section
    path.mkdir(parents=True, exist_ok=True)
    return path


def cache_root() -> Path:
    """Generated sets: ``$GALOT_CACHE_DIR``, else ``~/.cache/galot/generated``."""
    return Path(os.environ.get("GALOT_CACHE_DIR", _CACHE_HOME / "generated"))


def data_root() -> Path:
    """Data sets: ``$GALOT_DATA_DIR``, else ``~/.cache/galot/data``."""
    return Path(os.environ.get("GALOT_DATA_DIR", _CACHE_HOME / "data"))


def rehearsal_root() -> Path:
    """The stand-ins of the paper profile's rehearsal (``galot_lib.experiments.rehearsal``): ``$GALOT_REHEARSAL_DIR``,
    else ``~/.cache/galot/rehearsal``."""
    return Path(os.environ.get("GALOT_REHEARSAL_DIR", _CACHE_HOME / "rehearsal")).expanduser()


def shown(path: str | Path) -> str:
    """``path`` as a reader may see it, with no folder of this machine in it: relative to the repository
    (``results/embedded/4.1/table1_curves.png``), else to the results root (``$GALOT_RESULTS_DIR/smoke/...``),
    else its name alone; a staged file as where it will be."""
    path = Path(path).absolute()
    staging = staging_root()
    if staging is not None and path.is_relative_to(staging.absolute()):  # shown where it will be once complete
        path = results_root().absolute() / path.relative_to(staging.absolute())
    for root, name in ((REPO, None), (results_root().absolute(), "$GALOT_RESULTS_DIR")):
        if path.is_relative_to(root):
            rel = path.relative_to(root).as_posix()
            return rel if name is None else f"{name}/{rel}"
    return path.name


class Saved(type(Path())):
    """The path of a file just written (a ``pathlib.Path`` in every respect) whose repr is :func:`shown`'s: a
    notebook cell that ends with a save shows where the file went, relative, never the machine's folders."""

    def __repr__(self) -> str:
        return f"saved {shown(self)}"


def shown_source(name: str) -> str:
    """A model or data location as a reader may see it: a folder of this machine as :func:`shown` shows it, anything
    else (a hub id such as ``stabilityai/stable-diffusion-2-1-base``, ``bundled``) as it is."""
    text = str(name)
    return shown(Path(text).expanduser()) if text.startswith(("/", "~")) or Path(text).is_absolute() else text


def check_output_folder(out: Path) -> Path:
    """``out``, if it can be made and written: checked on the nearest folder that exists, so that a run refused for
    another reason leaves no empty folder behind (the run makes it when its work starts)."""
    import tempfile

    out = Path(out)
    existing = next(p for p in (out, *out.parents) if p.exists())
    try:
        with tempfile.NamedTemporaryFile(dir=existing):  # a probe that leaves nothing (root passes os.access)
            pass
    except OSError as err:
        raise ValueError(f"the output folder {out} cannot be written ({existing}: {err.strerror or err})") from err
    return out
