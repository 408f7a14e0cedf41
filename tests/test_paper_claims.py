"""The claims ledger: the paper's claims listed with a test each, the rules that turn tests into verdicts (fixed in
``reporting/paper_claims.py``), the proportion tests, and the committed ledger written by the code from the run."""

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from galot_lib.experiments.profiles import get_profile
from galot_lib.reporting import paper_claims as pc
from galot_lib.reporting.results_page import run_settings

REPO = Path(__file__).resolve().parents[1]
EMBEDDED = REPO / "results" / "embedded"


def test_the_ledger_lists_the_papers_claims_each_with_a_test_or_a_reason():
    listed = pc.claims(get_profile("embedded"))
    assert len(listed) >= 14 and len({c.id for c in listed}) == len(listed)
    sections = {c.where.split(",")[0] for c in listed}
    assert {"Sec. 4.1", "Sec. 4.2", "Sec. 4.3", "Sec. 4.4", "Sec. 4.5", "Appendix B"} <= sections
    for c in listed:
        if c.kind == pc.NOT_TESTABLE:
            assert c.note, c.id  # the reason
        elif c.kind == pc.MEMBER:
            assert c.member, c.id
        else:
            assert c.parts and c.test, c.id
    central = next(c for c in listed if c.id == "4.5-central")
    assert central.member == ("GALOT - GALOT template, eps 0", "average")


def test_the_papers_numbers_come_from_its_tables():
    numbers = pc.paper_numbers()
    assert "GALOT 0.8521" in numbers["t1-average"]  # Table 1, CIFAR-10's Average column
    assert "above it DenseNet121 only (1 of 4)" in numbers["t2-base"]  # the table against the text's three
    assert "best a recent color photograph of a {label} 0.7721" in numbers["t3-best"]


def records_with(effects: dict[str, float], seeds=range(6), noise=0.002, cycles=3) -> pd.DataFrame:
    """Sec. 4.1-style records: each method's accuracy is its effect plus a little per-seed noise."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in seeds:
        shared = rng.normal(0, 0.01)  # a seed's luck, shared by its runs (what pairing removes)
        for method, effect in effects.items():
            for cycle in range(cycles):
                acc = 0.6 + 0.05 * cycle + effect + shared + rng.normal(0, noise)
                rows.append(dict(method=method, seed=seed, cycle=cycle, accuracy=acc))
    return pd.DataFrame(rows)


def judge(claim: pc.Claim, records: dict) -> str:
    """The verdict of one claim tested alone (a family of one)."""
    parts = pd.DataFrame([dict(claim=claim.id, **pc.part_row(p, records, None)) for p in claim.parts])
    p_for, p_against = pc.claim_tests(claim, parts)
    if p_against < pc.ALPHA:
        return pc.CONTRADICTED
    return pc.REPRODUCED if p_for < pc.ALPHA else "not resolved"


def effect(*others, kind=pc.EFFECT, ours="A") -> pc.Claim:
    return pc.Claim(
        "x", "Sec. 4.1", "A beats the others", "", kind, "t", tuple(pc.Part("4.1", ours, o) for o in others)
    )


@pytest.mark.parametrize(
    "effects, claim, expected",
    [
        ({"A": 0.03, "B": 0.0, "C": 0.01}, effect("B", "C"), pc.REPRODUCED),  # every part in the claimed direction
        ({"A": 0.03, "B": 0.0, "C": 0.05}, effect("B", "C"), pc.CONTRADICTED),  # one part the other way
        ({"A": 0.0, "B": 0.0}, effect("B"), pc.CONTRADICTED),  # equivalent within a point: no effect
        ({"A": 0.0, "B": 0.0}, effect("B", kind=pc.NO_CHANGE), pc.REPRODUCED),
        ({"A": 0.04, "B": 0.0}, effect("B", kind=pc.NO_CHANGE), pc.CONTRADICTED),
    ],
)
def test_each_kind_of_claim_reads_its_parts_by_its_rule(effects, claim, expected):
    assert judge(claim, {"4.1": records_with(effects)}) == expected


def test_an_effect_near_the_noise_is_not_resolved():
    noisy = records_with({"A": 0.008, "B": 0.0}, seeds=range(3), noise=0.02)
    assert judge(effect("B"), {"4.1": noisy}) == "not resolved"


@pytest.mark.parametrize(
    "effects, expected",
    [({"A": 0.05, "B": 0.0, "C": 0.01}, pc.CONTRADICTED), ({"A": 0.05, "B": 0.0, "C": 0.05}, pc.REPRODUCED)],
)
def test_no_dominance_is_broken_by_an_arm_better_than_every_other(effects, expected):
    arms = list(effects)
    claim = pc.Claim(
        "x", "Sec. 4.1", "no arm dominates", "", pc.NO_DOMINANCE, "t",
        tuple(pc.Part("4.1", a, b) for i, a in enumerate(arms) for b in arms[i + 1 :]),
    )  # fmt: skip
    assert judge(claim, {"4.1": records_with(effects)}) == expected


def test_proportion_tests_match_their_textbook_forms():
    one = pc.one_proportion_test(45, 50, 0.8)
    assert one["p_value"] == pytest.approx(stats.binomtest(45, 50, 0.8).pvalue)
    low, high = (b - 0.8 for b in pc.an.wilson_interval(45, 50))
    assert (one["ci_low"], one["ci_high"]) == pytest.approx((low, high))
    assert pc.one_proportion_test(99, 100, 1.0)["p_value"] == 0.0  # one miss refutes "always"
    assert pc.one_proportion_test(100, 100, 1.0)["p_value"] == 1.0
    two = pc.proportion_difference_test(90, 100, 70, 100)
    z = (0.9 - 0.7) / np.sqrt(0.8 * 0.2 * (2 / 100))
    assert two["p_value"] == pytest.approx(2 * stats.norm.sf(z))
    assert two["ci_low"] < 0.2 < two["ci_high"] and two["ci_low"] > 0  # Newcombe: around the difference, above 0
    assert pc.proportion_difference_test(500, 1000, 500, 1000, margin=0.05)["p_equivalent"] < 0.05


def test_a_claim_a_headline_member_answers_shows_its_stated_verdict():
    claim = next(c for c in pc.claims(get_profile("embedded")) if c.id == "4.2-algal-beats-al")
    family = pd.read_csv(EMBEDDED / "family.csv")
    row = pc._member(claim, family)
    member = family[(family.comparison == "GALOT - MarginSampling") & (family.summary == "average")].iloc[0]
    assert row["difference"] == member.difference and row["n"] == member.seeds
    assert row["stated"] == (pc.REPRODUCED if member.stated == "GALOT better" else member.stated)
    assert pc.member_verdict(claim, "not claimed: x here, y in the rerun").startswith("not claimed")
    assert pc.member_verdict(claim, "equivalent within 1 point") == pc.CONTRADICTED


def test_arms_a_run_does_not_have_make_a_claim_not_testable_here():
    smoke = get_profile("smoke")
    records = {"4.5": pd.DataFrame(dict(study=[], setting=[], seed=[], cycle=[], accuracy=[]))}
    table, _ = pc.ledger(smoke, records, None)
    row = table.set_index("id").loc["4.5-margin-both"]
    assert row.verdict == pc.NOT_TESTABLE_HERE and "the run has no" in row.stated


def test_the_committed_ledger_is_what_the_code_writes_from_the_run():
    table, parts = pc.ledger(run_settings(EMBEDDED), pc.section_records(EMBEDDED), pd.read_csv(EMBEDDED / "family.csv"))
    assert (EMBEDDED / pc.PAGE).read_text() == pc.page(table, parts, "embedded")
    committed = pd.read_csv(EMBEDDED / pc.LEDGER)
    assert list(committed.id) == list(table.id) and list(committed.stated) == list(table.stated)
    readme = (REPO / "README.md").read_text()
    assert pc.summary_line(committed) in readme, "the README's claims line is not the committed ledger's"
    results = (EMBEDDED / "RESULTS.md").read_text()
    assert pc.summary_line(committed, link=pc.PAGE) in results
    for r in committed[~committed.stated.str.startswith(pc.NOT_TESTABLE_HERE)].itertuples():
        assert r.n >= 1 and np.isfinite(r.difference), r.id  # every testable claim carries its measured difference


def test_a_ledger_verdict_is_stated_only_where_the_perturbed_rerun_reaches_it():
    rerun = pd.DataFrame(dict(id=["a", "b"], verdict=[pc.REPRODUCED, "not resolved at 5 seeds"]))
    assert pc.stated_after_rerun("a", pc.REPRODUCED, rerun) == pc.REPRODUCED
    assert pc.stated_after_rerun("b", pc.REPRODUCED, rerun) == (
        "not claimed: reproduced here, not resolved at 5 seeds in the rerun"
    )
    assert pc.stated_after_rerun("a", pc.REPRODUCED, None).startswith("not claimed: no perturbed rerun")
    # the committed run's own ledger, checked against itself as a rerun: every tested verdict is then stated
    table, _ = pc.ledger(run_settings(EMBEDDED), pc.section_records(EMBEDDED), pd.read_csv(EMBEDDED / "family.csv"))
    again, _ = pc.ledger(
        run_settings(EMBEDDED), pc.section_records(EMBEDDED), pd.read_csv(EMBEDDED / "family.csv"),
        rerun=table[["id", "verdict"]],
    )  # fmt: skip
    tested = again.kind.isin([pc.EFFECT, pc.NO_CHANGE, pc.NO_DOMINANCE]) & ~again.verdict.eq(pc.NOT_TESTABLE_HERE)
    stated, verdict = again[tested].stated, again[tested].verdict
    assert all(s == v or (v.startswith("not resolved") and s.startswith(f"{v}; ")) for s, v in zip(stated, verdict))


def test_an_unresolved_claim_states_the_seeds_a_1_point_interval_would_need():
    """Beside "not resolved at n seeds", the seeds at which every part's 95% interval would be +-1 point wide at the
    run's own spread (the seed plan's rule); nothing where the run's seeds already give that."""
    from galot_lib.reporting.analysis import sd_of_interval, seeds_for

    noisy = records_with({"A": 0.004, "B": 0.0, "C": 0.0}, seeds=range(5), noise=0.02)
    parts = pd.DataFrame([dict(claim="x", **pc.part_row(p, {"4.1": noisy}, None)) for p in effect("B", "C").parts])
    need = max(seeds_for(sd_of_interval(p.ci_low, p.ci_high, p.n)) for p in parts.itertuples())
    assert need > 5
    assert (
        pc.interval_need(parts, 5)
        == f"; a +-1-point interval on each part needs about {need} seeds at this run's spread"
    )
    assert pc.interval_need(parts, need) == ""
    means = noisy.pivot_table("accuracy", "seed", "method")  # each seed's average over the cycles
    first = parts.iloc[0]  # A - B: the interval's spread is the per-seed differences' own
    assert sd_of_interval(first.ci_low, first.ci_high, 5) == pytest.approx(np.std(means.A - means.B, ddof=1), rel=1e-6)


def test_an_unresolved_central_claim_states_the_seeds_equivalence_would_need():
    """The central claim can be resolved only by equivalence within 1 point: unresolved, its row says how many seeds
    that test needs at the run's difference and spread, over the primary family; a resolved member says nothing more."""
    from galot_lib.reporting.analysis import seeds_for_equivalence

    central = next(c for c in pc.claims(get_profile("embedded")) if c.id == "4.5-central")
    family = pd.DataFrame(
        dict(
            comparison=["GALOT - GALOT template, eps 0", "GALOT - MarginSampling", "GALOT - BALD"],
            aliases=[None, None, None],
            summary=["average"] * 3,
            seeds=[5, 7, 12],
            difference=[-0.0024, 0.033, 0.02],
            ci_low=[-0.0092, 0.022, 0.01],
            ci_high=[0.0045, 0.044, 0.03],
            sd=[0.008, 0.012, 0.01],
            verdict=["not resolved at 5 seeds", "GALOT better", "GALOT better"],
            stated=["not resolved at 5 seeds", "GALOT better", "GALOT better"],
            family=["primary", "primary", "secondary"],
        )
    )
    n = seeds_for_equivalence(-0.0024, 0.008, 2)
    assert 5 < n <= 100
    assert pc._member(central, family)["stated"] == (
        f"not resolved at 5 seeds; equivalence within 1 point needs about {n} seeds at this run's difference and "
        "spread (two one-sided tests at Holm's strictest step over the 2 primary members)"
    )
    at_margin = family.assign(difference=[0.012, 0.033, 0.02])
    assert pc._member(central, at_margin)["stated"].endswith("no number of seeds shows equivalence")
    resolved = family.assign(stated=["equivalent within 1 point", "GALOT better", "GALOT better"])
    assert pc._member(central, resolved)["stated"] == pc.CONTRADICTED  # "no effect" found: the claim's opposite
