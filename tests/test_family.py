"""The headline family: each comparison counted once (aliases by the runs compared), Holm's correction, the paired
and equivalence tests, the verdicts in words, the rerun's say, and the code a run was made by."""

import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from galot_lib.core.provenance import check_same_code, code_version
from galot_lib.experiments.profiles import get_profile
from galot_lib.experiments.sections import run_keys
from galot_lib.reporting import analysis as an
from galot_lib.reporting import family
from galot_lib.reporting.family import FAMILY_TABLE, NO_RERUN, STATED_COLOURS, stated_kind


def test_the_paired_test_is_the_t_test_and_equivalence_is_two_one_sided_tests():
    diff = np.array([0.004, -0.002, 0.001, 0.003, -0.001])
    row = an.paired_test(diff)
    assert row["p_value"] == pytest.approx(stats.ttest_1samp(diff, 0).pvalue)
    assert row["half_width"] == pytest.approx((row["ci_high"] - row["ci_low"]) / 2)
    assert row["p_equivalent"] < 0.05  # tight around zero: within 1 point
    wide = an.paired_test(np.array([0.03, -0.02, 0.01, -0.03, 0.02]))
    assert wide["p_value"] > 0.05 and wide["p_equivalent"] > 0.05  # neither different nor equivalent
    shifted = an.paired_test(diff + 0.02)
    assert shifted["p_value"] < 0.05 and shifted["p_equivalent"] > 0.5  # 2 points away: not within 1 point
    assert math.isnan(an.paired_test([0.01])["p_value"])


def test_holm_adjusts_step_down_and_keeps_order():
    adjusted = an.holm([0.01, 0.04, 0.03, np.nan])
    # sorted 0.01, 0.03, 0.04, NaN (as 1): 4 x 0.01, 3 x 0.03, 2 x 0.04 = 0.08 raised to 0.09 (step-down), 1
    assert adjusted == pytest.approx([0.04, 0.09, 0.09, 1.0])


def comparison(section, name, key, cycles, difference, sd, seeds=5, summary="average"):
    ours, other = name.split(" - ")
    test = an.paired_test(difference + sd * np.array([1, -1, 0.5, -0.5, 0])[:seeds])
    return dict(
        section=section, comparison=name, ours=ours, other=other, summary=summary, runs_key=key, cycles=cycles, **test
    )


def test_a_comparison_reported_by_two_sections_is_one_member_named_by_the_longest():
    rows = pd.DataFrame(
        [
            comparison("4.1", "GALOT - MarginSampling", "k1", 4, 0.04, 0.01),
            comparison("4.2", "AL+GAL - AL", "k1", 4, 0.04, 0.01),
            comparison("4.5", "diffusion filter - acquisition (paper)", "k2", 3, 0.01, 0.01),
            comparison("W", "GALOT + filter - GALOT", "k2", 4, 0.005, 0.01),
        ]
    )
    table = family.members(rows)
    assert list(table.comparison) == ["GALOT - MarginSampling", "GALOT + filter - GALOT"]
    assert list(table.aliases) == ["4.2: AL+GAL - AL", "4.5: diffusion filter - acquisition (paper) (3 cycles)"]
    assert set(table.family) == {"primary"}


def test_the_profiles_own_duplicates_are_recognised_by_their_runs():
    profile = get_profile("embedded")
    k41, k42, k45, kw = (run_keys(profile, s) for s in ("4.1", "4.2", "4.5", "W"))
    assert (k42["AL+GAL"][0], k42["AL"][0]) == (k41["GALOT"][0], k41["MarginSampling"][0])
    assert (kw["GALOT"][0], kw["eps 0"][0]) == (k41["GALOT"][0], k41["GALOT template, eps 0"][0])
    assert (k45["diffusion filter"][0], k45["acquisition (paper)"][0]) == (kw["GALOT + filter"][0], kw["GALOT"][0])
    assert k45["diffusion filter"][1] == profile.ablation_cycles < kw["GALOT + filter"][1] == profile.cycles
    assert k45["prompt_margin"][0] not in {key for key, _ in kw.values()}  # its own runs


def test_verdicts_are_corrected_as_a_family():
    rows = pd.DataFrame(
        [
            comparison("4.1", f"GALOT - B{i}", f"k{i}", 4, d, sd)
            for i, (d, sd) in enumerate([(0.05, 0.005), (0.001, 0.002), (0.01, 0.02), (0.003, 0.0025)])
        ]
    )
    table = family.corrected(family.members(rows))
    verdicts = dict(zip(table.comparison, table.verdict))
    assert verdicts["GALOT - B0"] == "GALOT better"
    assert verdicts["GALOT - B1"] == "equivalent within 1 point"
    assert verdicts["GALOT - B2"] == "not resolved at 5 seeds"
    alone = family.corrected(family.members(rows.iloc[[3]]))
    assert alone.verdict.iloc[0] == "GALOT better, by less than 1 point"  # alone it is a (small) win ...
    assert verdicts["GALOT - B3"] != alone.verdict.iloc[0]  # ... not in a family of four
    assert (table.p_holm >= table.p_value).all()  # the family's correction only ever raises p


def test_a_verdict_the_rerun_does_not_reach_is_not_stated(tmp_path):
    import json

    rows = [
        comparison("4.1", "GALOT - KMeans", "k1", 4, 0.05, 0.005),
        comparison("4.1", "GALOT - eps 0", "k2", 4, 0.012, 0.004),
    ]
    run = tmp_path / "smoke"
    (run / "4.1").mkdir(parents=True)
    config = dict(table1_datasets=["fashion_mnist"], seeds=[0, 1, 2, 3, 4])
    (run / "4.1" / "config.json").write_text(json.dumps(config))
    pd.DataFrame(rows).to_csv(run / "4.1" / "paired_differences.csv", index=False)
    assert family.family_table(run).stated.str.startswith("not claimed: ").all()  # no rerun yet
    rerun = [dict(rows[0], difference=0.049), comparison("4.1", "GALOT - eps 0", "k2", 4, 0.002, 0.004)]
    pd.DataFrame(rerun).to_csv(run / family.VERDICT_CHECK, index=False)
    table = family.family_table(run)
    assert list(table.held) == [True, False]
    assert table.stated.iloc[0] == "GALOT better"
    assert table.stated.iloc[1].startswith("not claimed: GALOT better")


def test_results_made_by_other_code_are_refused_naming_both():
    check_same_code({code_version()}, "this run")
    with pytest.raises(ValueError, match=f"made by code src-000000000000, not by this checkout's {code_version()}"):
        check_same_code({code_version(), "src-000000000000"}, "this run")


@pytest.mark.parametrize(
    "stated, kind",
    [
        ("GALOT better", "better"),
        ("GALOT template, eps 0 worse, by less than 1 point", "worse"),
        ("equivalent within 1 point", "equivalent"),
        ("not resolved at 5 seeds", "not resolved"),
        ("not enough seeds to tell", "not resolved"),
        ("not claimed: equivalent within 1 point here, not resolved at 5 seeds in the rerun", "not claimed"),
        ("not claimed: not resolved at 7 seeds here, GALOT better in the rerun", "not claimed"),
        (NO_RERUN, "not claimed"),
    ],
)
def test_the_forest_plot_draws_each_stated_verdict_in_its_own_colour(stated, kind):
    """A member the rerun disagrees on is drawn "not claimed" (the legend's yellow), not by the verdicts it quotes."""
    assert stated_kind(stated) == kind


def test_the_committed_figure_uses_every_colour_its_family_states():
    table = pd.read_csv(Path(__file__).resolve().parents[1] / "results" / "embedded" / FAMILY_TABLE)
    kinds = {stated_kind(s) for s in table.stated}
    assert "not claimed" in kinds and kinds <= set(STATED_COLOURS)
