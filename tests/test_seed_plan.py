"""The seed plans: the ledger's (``seed_plan --ledger``) reads each seed-based part's spread from pilot records and
asks at least 5 seeds, more where a +-1-point interval needs them, with what one more seed of the part's runs costs."""

import numpy as np
import pandas as pd
import pytest

from galot_lib.experiments.profiles import get_profile
from galot_lib.reporting.seed_plan import MIN_SEEDS, ledger_pilot_profile, ledger_plan, seeds_for


def pilot_records(spread: float) -> pd.DataFrame:
    """Sec. 4.1's records on 6 pilot seeds: GALOT (basic) a point above GALOT on average, with per-seed noise of
    ``spread``; every run 2 cycles of 3 + 2 seconds."""
    rng = np.random.default_rng(0)
    rows = []
    for seed in range(20, 26):
        noise = rng.normal(0, spread)
        for method, level in (("GALOT", 0.70), ("GALOT (basic)", 0.71 + noise)):
            for cycle in (0, 1):
                rows.append(dict(method=method, seed=seed, cycle=cycle, accuracy=level + 0.02 * cycle, train_s=3.0,
                                 eval_s=2.0))  # fmt: skip
    return pd.DataFrame(rows)


@pytest.mark.parametrize("spread", [0.001, 0.03])
def test_the_ledger_plan_asks_the_seeds_each_part_needs(spread):
    profile = get_profile("smoke")
    pilot = ledger_pilot_profile(profile, (20, 21, 22, 23, 24, 25))
    assert pilot.study_seeds == pilot.baseline_seeds == (20, 21, 22, 23, 24, 25) and pilot.choice_seeds == ()
    plan = ledger_plan(profile, pilot, {"4.1": pilot_records(spread)})
    row = plan.set_index("part").loc["GALOT - GALOT (basic)"]
    assert row.claim == "4.1-refinement" and row.pilot_seeds == 6
    assert row.pilot_difference == pytest.approx(-0.01, abs=3 * spread)
    differences = [-0.01 - n for n in np.random.default_rng(0).normal(0, spread, 6)]
    assert row.pilot_sd == pytest.approx(np.std(differences, ddof=1), rel=1e-6)
    assert row.seeds_for_1_point == max(MIN_SEEDS, seeds_for(row.pilot_sd)) and row.claim_seeds >= MIN_SEEDS
    assert row.planned_seeds == len(profile.seeds)  # what the profile (not the pilot) runs GALOT and basic on
    assert row.seconds_per_seed == pytest.approx(2 * 2 * 5.0)  # two runs of two cycles, 5 s each
    assert (row.seeds_for_1_point == MIN_SEEDS) == (spread < 0.005)


def test_seeds_for_equivalence_at_holms_strictest_step():
    """The seeds at which two one-sided tests would show equivalence within 1 point at Holm's strictest step: the
    first n where |d| + t(1 - alpha / m, n - 1) sd / sqrt(n) fits inside the margin; never for a difference at the
    margin."""
    import math

    from scipy import stats

    from galot_lib.reporting.analysis import EQUIVALENCE_MARGIN as TARGET
    from galot_lib.reporting.analysis import seeds_for_equivalence

    def fits(n, d, sd, m):
        return abs(d) + stats.t.ppf(1 - 0.05 / m, n - 1) * sd / math.sqrt(n) <= TARGET

    for d, sd, m in [(0.0, 0.004, 17), (-0.0024, 0.0052, 17), (0.005, 0.004, 17), (0.0, 0.004, 1)]:
        n = seeds_for_equivalence(d, sd, m)
        assert fits(n, d, sd, m) and not fits(n - 1, d, sd, m), (d, sd, m, n)
    assert seeds_for_equivalence(0.0, 0.004, 17) > seeds_for_equivalence(0.0, 0.004, 1)  # the family costs seeds
    assert seeds_for_equivalence(0.0, 0.008, 17) > seeds_for_equivalence(0.0, 0.004, 17)
    assert seeds_for_equivalence(0.01, 0.001, 17) == 101 and seeds_for_equivalence(-0.02, 0.001, 17) == 101


def test_the_ledger_plan_plans_the_central_claim_for_equivalence():
    """The paper's central claim (a headline member planned for equivalence) gets the seeds two one-sided tests within
    1 point need at Holm's strictest step over the primary family the profile will have, from its pilot spread."""
    from galot_lib.reporting.analysis import seeds_for_equivalence
    from galot_lib.reporting.family import planned_members

    profile = get_profile("smoke")
    pilot = ledger_pilot_profile(profile, (20, 21, 22, 23, 24, 25))
    records = pilot_records(0.004)
    template = records[records.method == "GALOT"].assign(method="GALOT template, eps 0")
    shift = dict(zip(range(20, 26), np.random.default_rng(1).normal(0, 0.006, 6)))  # per seed, every cycle
    template["accuracy"] += template.seed.map(shift)
    plan = ledger_plan(profile, pilot, {"4.1": pd.concat([records, template])}).set_index("part")
    row = plan.loc["GALOT - GALOT template, eps 0"]
    differences = -np.array(list(shift.values()))
    assert row.claim == "4.5-central" and row.pilot_seeds == 6
    assert row.pilot_difference == pytest.approx(differences.mean()) and row.pilot_sd == pytest.approx(
        np.std(differences, ddof=1), rel=1e-6
    )
    assert row.seeds_for_equivalence > MIN_SEEDS  # a 0.6-point spread at Holm's strictest step: more than 5
    assert row.primary_members == planned_members(profile) > 1
    need = seeds_for_equivalence(row.pilot_difference, row.pilot_sd, row.primary_members)
    assert row.seeds_for_equivalence == max(MIN_SEEDS, need)
    assert row.claim_seeds == row.seeds_for_equivalence
    other = plan.loc["GALOT - GALOT (basic)"]
    assert np.isnan(other.seeds_for_equivalence) and other.claim_seeds == other.seeds_for_1_point
