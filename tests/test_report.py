"""The committed report: the README's headline is the committed embedded run's numbers, exactly, and that run
was one uninterrupted ./run_all.sh (its wall time is reported, not tested: a benchmark figure)."""

from datetime import timedelta
from pathlib import Path

from galot_lib.paper.analysis import headline, run_timings
from galot_lib.paper.sections import SECTIONS

REPO = Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "results" / "embedded"


def test_readme_headline_is_the_committed_run():
    readme = (REPO / "README.md").read_text()
    missing = [line for line in headline(EMBEDDED) if line not in readme]
    assert not missing, "README lines that differ from results/embedded/:\n" + "\n".join(missing)


def test_committed_run_is_one_uninterrupted_run_within_the_budget():
    timings = run_timings(EMBEDDED)
    notebooks = [name for name in timings.step if name.endswith(".ipynb")]
    assert sorted(notebooks) == sorted(SECTIONS.values())  # every section once (side by side after the grid)
    for row in timings.itertuples():
        assert abs((row.finished_at - row.started_at).total_seconds() - row.seconds) <= 2, row.step
    busy_until = None  # steps may overlap; none may start more than 30 s after everything before it ended
    for row in timings.sort_values("started_at").itertuples():
        if busy_until is not None:
            assert row.started_at - busy_until <= timedelta(seconds=30), f"a gap before {row.step} in the committed run"
        busy_until = row.finished_at if busy_until is None else max(busy_until, row.finished_at)
    for section in SECTIONS:
        assert (EMBEDDED / section / "timing.csv").exists()
