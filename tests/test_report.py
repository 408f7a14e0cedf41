"""The committed embedded run as a reader meets it: its results page and the README's findings are what the analysis
code writes from its files, its learning curves rise, one code version made it, and it was one uninterrupted
./run_all.sh (its wall time is reported, not tested: a benchmark figure)."""

from datetime import timedelta
from pathlib import Path

import pandas as pd

from galot_lib.experiments.sections import SECTIONS
from galot_lib.reporting import results_page
from galot_lib.reporting.analysis import run_timings
from galot_lib.reporting.results import code_versions
from galot_lib.reporting.seed_plan import plan_path

REPO = Path(__file__).resolve().parent.parent
EMBEDDED = REPO / "results" / "embedded"


def test_results_page_and_readme_findings_are_the_committed_runs():
    page = results_page.page(EMBEDDED, plan_path("embedded"))
    assert (EMBEDDED / results_page.PAGE).read_text() == page
    readme = (REPO / "README.md").read_text()
    findings = results_page.findings(pd.read_csv(EMBEDDED / "family.csv"))
    missing = [line for line in findings if line not in readme]
    assert findings and not missing, "README lines that differ from results/embedded/RESULTS.md:\n" + "\n".join(missing)
    assert f"{results_page.wall_time(EMBEDDED)} on 2 CPU cores" in readme, "the README's wall time is not timings.csv's"


def test_committed_learning_curves_do_not_fall():
    check = pd.read_csv(EMBEDDED / "curve_check.csv")
    assert set(check.method) >= {"RandomSampling", "MarginSampling", "KMeans", "BADGE", "BALD"}
    assert not check.falls.any(), check[check.falls]
    # and, as the house check reads them, no headline baseline's mean falls by more than a point
    records = pd.read_csv(EMBEDDED / "4.1" / "records.csv")
    for method in ("RandomSampling", "MarginSampling", "KMeans", "BADGE", "BALD"):
        curve = records[records.method == method].groupby("cycle").accuracy.mean()
        assert (curve.diff().dropna() > -0.01).all(), (method, curve)


def test_one_code_version_made_the_committed_run():
    versions = code_versions(EMBEDDED)
    assert len(versions) == 1 and next(iter(versions)).startswith("src-"), versions


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
