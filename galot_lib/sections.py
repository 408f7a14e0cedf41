"""The paper's sections and the notebook that reproduces each, in run order.

``run_all.sh`` and the tests read this list, so a notebook cannot be left out of either
(a meta-test checks that every file in notebooks/ is listed here).
"""

from __future__ import annotations

import argparse
from pathlib import Path

NOTEBOOK_DIR = Path(__file__).resolve().parent.parent / "notebooks"

# section id -> notebook file name
SECTIONS: dict[str, str] = {
    "4.1": "4_1_al_comparison.ipynb",
    "4.2": "4_2_gal_al_joint.ipynb",
    "4.3": "4_3_transferability.ipynb",
    "4.4": "4_4_pseudo_labels.ipynb",
    "4.5": "4_5_ablations.ipynb",
    "B": "B_generation_examples.ipynb",
}


def notebooks(only: str | None = None) -> list[Path]:
    """Notebook paths in run order; ``only`` picks one section (valid ids listed on error)."""
    if only is not None and only not in SECTIONS:
        raise ValueError(f"unknown section {only!r}; valid: {', '.join(SECTIONS) or '(none yet)'}")
    chosen = [only] if only else list(SECTIONS)
    return [NOTEBOOK_DIR / SECTIONS[s] for s in chosen if (NOTEBOOK_DIR / SECTIONS[s]).exists()]


def main(argv=None):
    p = argparse.ArgumentParser(description="list the notebooks run_all.sh runs")
    p.add_argument("what", choices=["notebooks"])
    p.add_argument("--only")
    args = p.parse_args(argv)
    try:
        paths = notebooks(args.only)
    except ValueError as err:
        raise SystemExit(f"run_all.sh: {err}")
    for path in paths:
        print(path.relative_to(NOTEBOOK_DIR.parent))


if __name__ == "__main__":
    main()
