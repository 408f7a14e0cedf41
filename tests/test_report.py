"""The committed report: the README's headline is the committed embedded run's numbers, exactly, and that run
was one uninterrupted ./run_all.sh (its wall time is reported, not tested: a benchmark figure)."""

from datetime import datetime, timedelta
from pathlib import Path

import pandas as pd

from galot_lib.paper.analysis import headline
from galot_lib.paper.sections import SECTIONS

REPO = Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "results" / "embedded"


def test_readme_headline_is_the_committed_run():
    readme = (REPO / "README.md").read_text()
    missing = [line for line in headline(EMBEDDED) if line not in readme]
    assert not missing, "README lines that differ from results/embedded/:\n" + "\n".join(missing)


def test_committed_run_is_one_uninterrupted_run_within_the_budget():
    timings = pd.read_csv(EMBEDDED / "timings.csv")
    notebooks = [name for name in timings.notebook if name.endswith(".ipynb")]
    assert notebooks == list(SECTIONS.values())  # every section once, in order
    finished = [datetime.fromisoformat(t) for t in timings.finished_at]
    for previous, (seconds, end) in zip(finished, zip(timings.seconds[1:], finished[1:])):
        start = end - timedelta(seconds=int(seconds))
        assert abs((start - previous).total_seconds()) <= 30, "a gap between two steps of the committed run"
    for section in SECTIONS:
        assert (EMBEDDED / section / "timing.csv").exists()
