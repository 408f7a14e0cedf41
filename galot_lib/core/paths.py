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


def cache_root() -> Path:
    """Generated sets: ``$GALOT_CACHE_DIR``, else ``~/.cache/galot/generated``."""
    return Path(os.environ.get("GALOT_CACHE_DIR", _CACHE_HOME / "generated"))


def data_root() -> Path:
    """Data sets: ``$GALOT_DATA_DIR``, else ``~/.cache/galot/data``."""
    return Path(os.environ.get("GALOT_DATA_DIR", _CACHE_HOME / "data"))


def rehearsal_root() -> Path | None:
    """The paper profile's rehearsal stand-ins (``galot_lib.paper.rehearsal``): ``$GALOT_REHEARSAL_DIR``; unset:
    no rehearsal, the paper profile is the real one."""
    folder = os.environ.get("GALOT_REHEARSAL_DIR")
    return Path(folder).expanduser() if folder else None
