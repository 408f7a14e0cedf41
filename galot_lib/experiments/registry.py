"""The paper's sections, one record each: its id, its notebook, the runs it needs, its main table and figure, whether
it needs the text-to-image model, and its place in the run order.

Everything that walks the sections reads these records: ``run_all.sh`` (its ``--only`` choices, before any set-up:
this module imports nothing beyond the standard library, so ``python3 galot_lib/experiments/registry.py`` answers on
a bare machine), the grid, the plan, the preflight, the report and the tests. Adding a section is its notebook, one
record here and its test.
"""

from __future__ import annotations

import importlib
import sys
from dataclasses import dataclass


@dataclass(frozen=True)
class Section:
    id: str
    notebook: str  # file name in notebooks/
    jobs: str | None  # "function" in experiments/sections.py giving the runs it needs from a profile (None: none)
    main_table: str | None = None  # file name or glob in results/<profile>/<id>/ for the report's index
    main_figure: str | None = None
    needs_t2i: bool = True  # loads the text-to-image model somewhere (the preflight checks its weights)
    loads_t2i_after_grid: bool = (
        False  # still renders or judges after the grid: starts first when notebooks share lanes
    )

    def run_jobs(self, profile) -> list:
        """The runs this section computes (``RunJob``s) on ``profile``."""
        if self.jobs is None:
            return []
        return getattr(importlib.import_module("galot_lib.experiments.sections"), self.jobs)(profile)


# In run order (the order run_all.sh runs the notebooks and the report lists them).
REGISTRY: tuple[Section, ...] = (
    Section("4.1", "4_1_al_comparison.ipynb", "table1_section_jobs", "table1_*.csv", "table1_curves.png"),
    Section("4.2", "4_2_gal_al_joint.ipynb", "figure3_jobs", "figure3.csv", "figure3.png"),
    # Sec. 4.3 replays Table 1's generated sets: it needs the data, not the generator
    Section("4.3", "4_3_transferability.ipynb", "table2_jobs", "table2.csv", "table2_curves.png", needs_t2i=False),
    Section("4.4", "4_4_pseudo_labels.ipynb", "figure4_jobs", "figure4.csv", "figure4.png", loads_t2i_after_grid=True),
    Section("4.5", "4_5_ablations.ipynb", "ablation_section_jobs", "table4_heldout.csv", "heldout_vs_eps.png"),
    Section("B", "B_generation_examples.ipynb", None, None, "figure7_eps_grid.png", loads_t2i_after_grid=True),
    Section("W", "W_when_optimising_pays.ipynb", "payoff_section_jobs", "paired_differences.csv", "arms.png"),
)
SECTIONS: dict[str, str] = {s.id: s.notebook for s in REGISTRY}  # id -> notebook, in run order


def section(section_id: str) -> Section:
    """The record of ``section_id`` (a bad id is named with the valid ones)."""
    for s in REGISTRY:
        if s.id == section_id:
            return s
    raise ValueError(f"unknown section {section_id!r}; valid: {', '.join(SECTIONS)}")


def section_of_notebook(notebook: str) -> str:
    """The id of the section whose notebook is ``notebook`` (a file name)."""
    found = [s.id for s in REGISTRY if s.notebook == notebook]
    if not found:
        raise ValueError(f"no section's notebook is {notebook!r}; the notebooks: {', '.join(SECTIONS.values())}")
    return found[0]


if __name__ == "__main__":  # run_all.sh, before any set-up: "ids" (space-separated), or "id NOTEBOOK"
    if sys.argv[1:] == ["ids"]:
        print(" ".join(SECTIONS))
    elif sys.argv[1:2] == ["id"] and len(sys.argv) == 3:
        print(section_of_notebook(sys.argv[2]))
    else:
        raise SystemExit(__doc__)
