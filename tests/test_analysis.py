"""The report's analysis on synthetic records with known answers: paired differences and their verdicts,
held-out tables, the paper-claim helpers, and the timing ledger."""

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from galot_lib.core import timing
from galot_lib.experiments.profiles import get_profile
from galot_lib.reporting import analysis as an


def records(accuracy_of, methods, seeds, cycles=3):
    return pd.DataFrame(
        [
            dict(method=m, seed=s, cycle=c, accuracy=accuracy_of(m, s, c))
            for m in methods
            for s in seeds
            for c in range(cycles)
        ]
    )


def test_paired_differences_pair_by_seed_and_state_a_verdict():
    seed_effect = {0: 0.0, 1: 0.2, 2: -0.1, 3: 0.05}  # large between seeds, cancelled by pairing
    df = records(
        lambda m, s, c: (
            0.5
            + seed_effect[s]
            + {"A": 0.03, "B": 0.0, "C": 0.03}[m]
            + 0.01 * c
            + (0.004 * (-1) ** s if m == "C" else 0.0)
        ),
        ["A", "B", "C"],
        range(4),
    )
    table = an.paired_differences(df, "A", ["B", "C"], "average")
    ab, ac = table.iloc[0], table.iloc[1]
    assert ab.comparison == "A - B" and ab.seeds == 4 and ab.difference == pytest.approx(0.03)
    assert (
        ab.verdict == "A better" and ab.ci_low > 0
    )  # every seed +0.03: no spread, the pairing removes the seed effect
    assert ac.difference == pytest.approx(0.0, abs=1e-12) and ac.verdict == "not distinguishable"
    worse = an.paired_differences(df, "B", ["A"], "final").iloc[0]
    assert worse.verdict == "B worse" and worse.difference == pytest.approx(-0.03)
    assert "not distinguishable" in an.describe_differences(table)


def test_mean_ci_is_the_t_interval():
    values = [1.0, 2.0, 4.0]
    mean, low, high = an.mean_ci(values)
    half = stats.t.ppf(0.975, 2) * np.std(values, ddof=1) / math.sqrt(3)
    assert (mean, low, high) == pytest.approx((7 / 3, 7 / 3 - half, 7 / 3 + half))
    assert math.isnan(an.mean_ci([1.0])[1]) and an.verdict(float("nan"), float("nan")) == "not enough seeds to tell"


def test_per_seed_summaries_and_comparisons_fixed_by_the_profile():
    df = records(lambda m, s, c: {"X": 0.1, "Y": 0.3, "Z": 0.2}[m] + c + 0.01 * s, ["X", "Y", "Z"], [0, 1])
    assert an.per_seed(df, "final").loc[("X", 0)] == pytest.approx(2.1)
    assert an.per_seed(df, "average").loc[("Y", 1)] == pytest.approx(1.31)
    with pytest.raises(ValueError, match="'average' or 'final'"):
        an.per_seed(df, "median")
    table = an.compare(df, [("Y", ["X", "Z"]), ("Z", ["X"])])
    assert (
        list(table.comparison) == ["Y - X", "Y - Z", "Z - X"] * 2
        and list(table.summary) == ["average"] * 3 + ["final"] * 3
    )
    assert table.difference.to_numpy() == pytest.approx([0.2, 0.1, 0.1] * 2)
    profile = get_profile("smoke", headline_baselines=("KMeans", "BADGE"))
    assert an.table1_comparisons(profile) == [
        ("GALOT template, eps 0", ["GALOT (basic)"]),
        ("GALOT", ["GALOT template, eps 0", "KMeans", "BADGE"]),
    ]
    assert an.label_comparisons(profile) == [
        (name, [profile.label_options[0][0]]) for name, _ in profile.label_options[1:]
    ]


def test_heldout_tables_pool_cycles_by_images():
    recs = [
        dict(
            method="GALOT",
            setting="a",
            seed=0,
            cycle=c,
            heldout_n=n,
            heldout_gain=g,
            heldout_gain_se=0.1,
            heldout_random_gain=0.0,
            heldout_random_gain_se=0.1,
            label_correct_plain=1.0,
            label_correct_optimized=ok,
            label_correct_random=1.0,
            pgd_s=2.0,
            pgd_steps=2,
            heldout_per_class=[dict(label=0, heldout_gain=g), dict(label=1, heldout_gain=g)],
        )
        for c, (n, g, ok) in enumerate([(10, 0.1, 0.8), (30, 0.3, 0.6)])
    ]
    df = pd.DataFrame([{k: v for k, v in r.items() if k != "heldout_per_class"} for r in recs])
    table = an.heldout_table(df, "setting").iloc[0]
    assert table.images == 40 and table.heldout_gain == pytest.approx(0.25)
    assert table.label_correct_optimized == pytest.approx(0.65)
    assert table.heldout_gain_se == pytest.approx(math.sqrt(0.25**2 * 0.01 + 0.75**2 * 0.01))
    assert len(an.heldout_frame(recs)) == 4 and set(an.heldout_frame(recs).class_label) == {0, 1}
    cost = an.cost_table(df, "setting").iloc[0]
    assert cost.pgd_s_per_step == 1.0 and cost.gain_per_pgd_s == pytest.approx(0.1)


def test_claims_select_rows_by_name():
    table = pd.DataFrame(
        {"50": [0.5, 0.6, 0.7, 0.8], "Average": [0.5, 0.6, 0.7, 0.65]},
        index=["Margin", "LC", "Baseline (SmallCNN)", "VGG16"],
    )
    claims = an.transfer_claims(table, ["Margin", "LC"], "Baseline (SmallCNN)", ["VGG16"])
    assert claims == dict(models_above_both_AL_baselines="1/1", models_above_galot_classifier="0/1")
    fig3 = pd.DataFrame(
        {"50": [0.5, 0.4, 0.6], "100": [0.6, 0.5, 0.55], "Average": [0.55, 0.45, 0.575]}, index=["AL", "GAL", "AL+GAL"]
    )
    claims = an.figure3_claims(fig3, full=0.9).set_index("claim").value
    assert claims["cycles where AL+GAL beats AL"] == 1 and claims["GAL-only accuracy at the last cycle"] == 0.5


def test_timing_ledger_attributes_every_second():
    with timing.timed("training"):
        sum(range(10000))
    rows = {r["phase"]: r for r in timing.breakdown()}
    assert set(rows) == set(timing.PHASES) and rows["training"]["seconds"] >= 0
    assert sum(r["share"] for r in rows.values()) == pytest.approx(1.0, abs=0.01)
    with pytest.raises(ValueError, match="unknown phase"):
        timing.add("lunch", 1.0)


def test_arms_are_priced_on_their_own_and_the_default_keeps_labels():
    """An arm's cost counts its images at the rendering speed measured where images were rendered (a selection arm
    whose pool came from the store still pays for it); the default is the paper's method unless an arm whose labels
    hold beats it by more than a point."""
    rows = []
    for arm, accuracy, correct, rendered, rendered_now, filter_s in (
        ("eps 0", 0.60, 0.90, 10, 10, 0.0),
        ("GALOT", 0.62, 0.80, 10, 10, 0.0),
        ("selection m=4", 0.61, 0.89, 40, 0, 0.0),
        ("GALOT + filter", 0.615, 0.92, 15, 15, 3.0),
    ):
        for seed in (0, 1):
            rows.append(
                dict(
                    arm=arm,
                    seed=seed,
                    cycle=0,
                    accuracy=accuracy + seed / 100,
                    kept_gain=0.1,
                    kept_label_correct=correct,
                    plain_label_correct=0.9,
                    rendered=rendered,
                    rendered_now=rendered_now,
                    generation_s=rendered_now * 0.5,
                    pgd_s=1.0,
                    filter_s=filter_s,
                    selection_s=0.0,
                )
            )
    table = an.arm_table(pd.DataFrame(rows)).set_index("arm")
    assert table.loc["selection m=4", "seconds_per_run"] == pytest.approx(1.0 + 40 * 0.5)
    assert table.loc["GALOT + filter", "seconds_per_run"] == pytest.approx(1.0 + 3.0 + 15 * 0.5)
    assert table.loc["GALOT", "average"] == pytest.approx(0.625)
    # the paper's method stays the default unless a label-preserving arm beats it by more than the 1-point margin
    arms = table.reset_index()
    assert an.choose_default(arms) == "GALOT"
    ahead = arms.assign(average=arms.average.where(arms.arm != "GALOT + filter", arms.average + 0.02))
    assert an.choose_default(ahead) == "GALOT + filter"
    no_labels = ahead.assign(kept_label_correct=ahead.kept_label_correct.where(ahead.arm != "GALOT + filter", 0.5))
    assert an.choose_default(no_labels) == "GALOT"  # ahead, but its kept images lose their labels


def test_table9_counts_judged_images_per_class_in_the_data_sets_order():
    judged = pd.DataFrame(
        [
            dict(eps=e, template="t", class_name=c, correct=n)
            for e, counts in ((0.0, (3, 1)), (1.0, (2, 0)))
            for c, n in zip(("coat", "bag"), counts)
        ]
    )
    table = an.table9(judged, ["bag", "coat"])
    assert list(table.columns) == ["bag", "coat", "total"]
    assert table.loc[(0.0, "t")].tolist() == [1, 3, 4] and table.loc[(1.0, "t"), "total"] == 2


def test_the_wilson_interval_holds_the_proportion_and_stays_inside_zero_and_one():
    low, high = an.wilson_interval(568, 1000)
    assert low < 0.568 < high and (low, high) == pytest.approx((0.5371, 0.5984), abs=1e-4)
    assert 0 < an.wilson_interval(0, 10)[1] < 0.35 and an.wilson_interval(10, 10)[0] > 0.65
