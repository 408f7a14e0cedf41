"""The perturbed rerun of a run's verdicts: which runs it redoes, how it reports, and that it refuses to start
without a finished run or with the run's own thread count (the checks run before any work)."""

import json

import pandas as pd
import pytest

from galot_lib.paper import analysis as an
from galot_lib.paper import verdict_check as vc
from galot_lib.paper.profiles import PAYOFF_ARMS, get_profile
from galot_lib.paper.sections import GALOT_ROWS

SMOKE = get_profile("smoke").replace(headline_baselines=("RandomSampling", "BADGE"))


def test_it_reruns_exactly_the_runs_the_headline_compares():
    table1, figure3, labels, arms = vc.headline_jobs(SMOKE)
    assert {job.method for job in table1} == {*GALOT_ROWS, "RandomSampling", "BADGE"}
    assert {job.seed for job in table1} == set(SMOKE.seeds) and all(job.kind != "gaal" for job in table1)
    assert {job.method for job in figure3} == {"AL", "GAL", "AL+GAL"}
    assert {setting for setting, _ in labels} == {name for name, _ in SMOKE.label_options}
    assert {job.seed for _, job in labels} == set(SMOKE.ablation_seeds)
    assert {job.seed for _, job in arms} == set(SMOKE.seeds)  # not the choice seeds: no headline reports them
    assert {arm for arm, _ in arms} == {name for name, _ in PAYOFF_ARMS}


def finished_run(root, threads):
    """The tables a finished run leaves that the check reads (no runs behind them)."""
    row = dict(
        comparison="GALOT - BADGE",
        summary="final",
        seeds=len(SMOKE.seeds),
        difference=0.03,
        ci_low=0.01,
        ci_high=0.05,
        verdict="GALOT better",
        dataset="fashion_mnist",
    )
    for section, table in (
        ("4.1", "paired_differences.csv"),
        ("4.2", "paired_differences.csv"),
        ("4.5", "label_objectives_paired.csv"),
    ):
        (root / "smoke" / section).mkdir(parents=True)
        (root / "smoke" / section / "config.json").write_text(json.dumps(SMOKE.as_dict()))
        pd.DataFrame([row]).to_csv(root / "smoke" / section / table, index=False)
    pd.DataFrame([dict(method="GALOT", seed=0, cycle=0, threads=threads)]).to_csv(
        root / "smoke" / "4.1" / "records.csv"
    )


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
    assert len(an.headline_comparisons(tmp_path / "smoke")) == 3  # one per section, on the planned seeds


def test_each_line_says_whether_the_verdict_held():
    original = pd.DataFrame(
        [
            dict(
                comparison="A - B",
                summary="average",
                seeds=5,
                difference=0.02,
                ci_low=0.01,
                ci_high=0.03,
                verdict="A better",
            )
        ]
        * 2
    ).assign(summary=["average", "final"])
    rerun = original.assign(ci_low=[0.011, -0.01], verdict=["A better", "not distinguishable"])
    lines = vc.describe(an.verdict_held(original, rerun))
    assert lines[0].endswith("| held") and lines[1].endswith("| FLIPPED")
    assert "run +2.0 [+1.0, +3.0] A better | rerun +2.0 [-1.0, +3.0] not distinguishable" in lines[1]
