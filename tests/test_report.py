"""The committed embedded run as a reader meets it: its results page and the README's findings are what the analysis
code writes from its files, its learning curves rise, one code version made it, and it was one uninterrupted
./run_all.sh (its wall time is reported, not tested: a benchmark figure)."""

import json
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest

from galot_lib.experiments.profiles import get_profile
from galot_lib.experiments.registry import SECTIONS
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
    pool = check[check.method != "GAAL"]  # GAAL's labels are GAN samples: its curve is described, not held to rise
    assert not pool.falls.any(), pool[pool.falls]
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


def test_the_committed_run_used_the_seeds_planned_before_it():
    """The seeds each comparison pairs on are the profile's, derived from the committed seed plan before the run
    (test_profiles.py holds the profile to the plan): every section's configuration carries them unchanged."""
    from galot_lib.core.provenance import code_version

    profile = get_profile("embedded")
    for config_path in sorted(EMBEDDED.glob("*/config.json")):
        if config_path.parent.name.startswith("W-budget"):
            continue  # the second budget's study: the key arms on the headline's seeds, no extra seeds by design
        config = json.loads(config_path.read_text())
        extra = tuple((run, tuple(seeds)) for run, seeds in config["extra_seeds"])
        if (tuple(config["seeds"]), extra) != (profile.seeds, profile.extra_seeds) and (
            config["code_version"] != code_version()
        ):
            pytest.skip(
                f"the committed run (code {config['code_version']}) predates the profile's seed plan; the report refuses "
                "it until it is regenerated, and the regenerated run is held to the plan here"
            )
        assert tuple(config["seeds"]) == profile.seeds, config_path
        assert extra == profile.extra_seeds, config_path


def test_the_curve_sentence_claims_only_what_the_check_can_see():
    """Five or more seeds: "rise or hold"; two seeds: the interval's width, not a claim; GAAL apart, with its cause."""
    rows = [
        dict(method=m, cycle=c, seeds=n, change=d, ci_low=d - w, ci_high=d + w, falls=False)
        for m, n, d, w in (("BADGE", 12, 0.02, 0.01), ("CoreSet", 2, 0.01, 0.30), ("GAAL", 2, -0.02, 0.06))
        for c in (1, 2)
    ]
    sentence = results_page.curve_sentence(pd.DataFrame(rows))
    assert "on 12-12 seeds (BADGE) rise or hold" in sentence
    assert "(CoreSet) run on 2 seeds: their intervals reach +-30.0 points" in sentence
    assert "GAAL is not a pool method" in sentence and "-2.0 at cycle 2 (2 seeds)" in sentence
    assert "CoreSet" not in sentence.split("rise or hold")[0]
