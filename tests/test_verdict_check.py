"""The perturbed rerun of a run's verdicts: which runs it redoes, how it reports, and that it refuses to start
without a finished run or with the run's own thread count (the checks run before any work)."""

import json

import pandas as pd
import pytest

from galot_lib.core.provenance import code_version
from galot_lib.experiments import sections
from galot_lib.experiments.profiles import PAYOFF_ARMS, get_profile
from galot_lib.experiments.sections import GALOT_ROWS
from galot_lib.reporting import family
from galot_lib.reporting import verdict_check as vc

SMOKE = get_profile("smoke", headline_baselines=("RandomSampling", "BADGE"))


def test_it_reruns_exactly_the_runs_the_headline_compares():
    table1, figure3, labels, arms = sections.headline_jobs(SMOKE)
    assert {job.method for job in table1} == {*GALOT_ROWS, "RandomSampling", "BADGE"}
    assert all(job.kind != "gaal" for job in table1)
    assert {job.seed for job in table1 if job.method == "GALOT"} == set(SMOKE.seeds)
    # and the extra seed the smoke profile's seed plan gives RandomSampling
    assert {job.seed for job in table1 if job.method == "RandomSampling"} == set(SMOKE.seeds_of("RandomSampling"))
    assert SMOKE.seeds_of("RandomSampling") == (*SMOKE.seeds, 3)
    assert {job.method for job in figure3} == {"AL", "GAL", "AL+GAL"}
    assert {setting for setting, _ in labels} == {name for name, _ in SMOKE.label_options}
    assert {job.seed for _, job in labels} == set(SMOKE.ablation_seeds)
    assert {job.seed for _, job in arms} == set(SMOKE.seeds)  # not the choice seeds: no headline reports them
    assert {arm for arm, _ in arms} == {name for name, _ in PAYOFF_ARMS}


def finished_run(root, threads, version=None):
    """The tables a finished run leaves that the check reads (no runs behind them), made by ``version`` (default:
    this checkout's code)."""
    row = dict(
        comparison="GALOT - BADGE",
        ours="GALOT",
        other="BADGE",
        summary="final",
        seeds=len(SMOKE.seeds),
        difference=0.03,
        ci_low=0.01,
        ci_high=0.05,
        p_value=0.01,
        p_equivalent=0.9,
        verdict="GALOT better",
        dataset="fashion_mnist",
        runs_key="a|b",
        cycles=2,
    )
    for section, table, _ in family.SECTION_TABLES:
        (root / "smoke" / section).mkdir(parents=True)
        config = dict(SMOKE.as_dict(), code_version=version or code_version())
        (root / "smoke" / section / "config.json").write_text(json.dumps(config))
        pd.DataFrame([row]).to_csv(root / "smoke" / section / table, index=False)
    pd.DataFrame(
        [dict(method="GALOT", seed=0, cycle=0, threads=threads, code_version=version or code_version())]
    ).to_csv(root / "smoke" / "4.1" / "records.csv")


def test_it_refuses_a_missing_run_and_the_runs_own_thread_count(tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_RESULTS_DIR", str(tmp_path))
    with pytest.raises(SystemExit, match="no finished run"):
        vc.main(["--profile", "smoke"])
    finished_run(tmp_path, threads=1)
    with pytest.raises(SystemExit, match=r"profile has changed since the run .*\['headline_baselines'\]"):
        vc.main(["--profile", "smoke", "--threads", "2"])  # SMOKE names other baselines than the smoke profile
    monkeypatch.setattr(vc, "get_profile", lambda name: SMOKE)
    with pytest.raises(SystemExit, match=r"differ from the run's \[1\]"):
        vc.main(["--profile", "smoke", "--threads", "1"])
    assert len(family.section_comparisons(tmp_path / "smoke")) == 4  # one per section, on the planned seeds
    assert len(family.members(family.section_comparisons(tmp_path / "smoke"))) == 1  # the same runs: counted once


def test_it_refuses_a_run_made_by_other_code(tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_RESULTS_DIR", str(tmp_path))
    finished_run(tmp_path, threads=1, version="src-000000000000")
    monkeypatch.setattr(vc, "get_profile", lambda name: SMOKE)
    with pytest.raises(SystemExit, match=f"made by code src-000000000000, not by this checkout's {code_version()}"):
        vc.main(["--profile", "smoke", "--threads", "2"])


def test_each_line_says_whether_the_verdict_held():
    table = pd.DataFrame(
        dict(
            comparison=["A - B", "A - B"],
            summary=["average", "final"],
            difference=0.02,
            ci_low=0.01,
            ci_high=0.03,
            verdict="A better",
            rerun_difference=0.02,
            rerun_ci_low=[0.011, -0.01],
            rerun_ci_high=0.03,
            rerun_verdict=["A better", "not resolved at 5 seeds"],
            held=[True, False],
        )
    )
    lines = vc.describe(table)
    assert lines[0].endswith("| held") and lines[1].endswith("| NOT HELD")
    assert "run +2.0 [+1.0, +3.0] A better | rerun +2.0 [-1.0, +3.0] not resolved at 5 seeds" in lines[1]
