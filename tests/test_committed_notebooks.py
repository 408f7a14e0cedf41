"""The committed run, as a reader meets it: its executed notebooks (results/<profile>/notebooks/) show no path of
the build machine, no progress widget, no error and no figure twice, and its HTML report (results/<profile>/report/)
is self-contained and light. The same checks run on this session's own headless notebooks and report in
tests/test_notebooks.py (test_executed_notebooks_are_clean, test_report_holds_every_section_table_and_figure).

A notebook is held to this once ``python -m galot_lib.reporting.report`` (the last step of ./run_all.sh) has checked it
and stamped ``metadata.galot``; notebooks executed before that step existed are skipped, by name, until the run is
made again."""

import json
import subprocess
from pathlib import Path

import nbformat
import pytest

from galot_lib.reporting.report import REPORT_DIR, STAMP, notebook_problems, report_problems

REPO = Path(__file__).resolve().parent.parent


def committed_notebooks() -> list[Path]:
    """The executed notebooks git tracks under results/ (a local run's, gitignored, are not the committed report)."""
    try:
        listed = subprocess.run(
            ["git", "ls-files", "results/*/notebooks/*.ipynb"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.split()
    except (OSError, subprocess.CalledProcessError):  # not a git checkout (an unpacked archive): what is there
        return sorted((REPO / "results").glob("*/notebooks/*.ipynb"))
    return sorted(REPO / name for name in listed)


COMMITTED = committed_notebooks()
RUNS = sorted({p.parent.parent for p in COMMITTED})
REPORT_MAX_BYTES = 5_000_000


def stamped(path: Path) -> bool:
    return STAMP in json.loads(path.read_text()).get("metadata", {})


def test_the_committed_run_has_notebooks():
    assert (REPO / "results" / "embedded" / "notebooks") in {p.parent for p in COMMITTED}


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: f"{p.parent.parent.name}/{p.name}")
def test_committed_notebook_is_clean(path):
    if not stamped(path):
        pytest.skip(
            f"{path.relative_to(REPO)} was executed before run_all.sh checked notebooks and wrote the report "
            "(no metadata.galot): make the run again"
        )
    problems = notebook_problems(nbformat.read(path, as_version=4))
    assert not problems, problems


@pytest.mark.parametrize("run", RUNS, ids=lambda p: p.name)
def test_committed_report_is_self_contained(run):
    notebooks = sorted((run / "notebooks").glob("*.ipynb"))
    if not any(stamped(p) for p in notebooks):
        pytest.skip(f"{run.relative_to(REPO)} predates the report (no notebook stamped metadata.galot)")
    assert all(stamped(p) for p in notebooks), "a notebook of the run was not checked by its report step"
    report = run / REPORT_DIR
    pages = sorted(report.glob("*.html"))
    assert {p.stem for p in pages} == {p.stem for p in notebooks} | {"index"}
    index = (report / "index.html").read_text()
    assert all(f'href="{p.stem}.html"' in index for p in notebooks)
    for page in pages:
        assert not report_problems(page.read_text()), page.name
    assert sum(p.stat().st_size for p in pages) < REPORT_MAX_BYTES
