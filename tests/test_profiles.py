"""Every profile field and notebook parameter is checked when the profile is built, naming the field and what it
accepts (before a notebook computes anything)."""

import dataclasses

import pytest

from galot_lib.experiments.profile_fields import RULES, choice
from galot_lib.experiments.profiles import PROFILES, Profile, get_profile

# Fields checked against their name registries or as GALOT options in Profile.__post_init__ instead of RULES.
REGISTRY_FIELDS = {"dataset", "model", "estimator_options", "label_options"}


def test_every_field_has_a_rule():
    assert set(RULES) | REGISTRY_FIELDS == {f.name for f in dataclasses.fields(Profile)}


@pytest.mark.parametrize("name", PROFILES)
def test_the_profiles_pass_their_own_checks(name, tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_REHEARSAL_DIR", str(tmp_path))  # the rehearsal's stand-ins, as if written
    (tmp_path / "READY.json").write_text("{}")
    assert get_profile(name).name == name


@pytest.mark.parametrize("field", sorted(RULES))
def test_a_value_of_the_wrong_kind_names_the_field_and_what_it_accepts(field):
    with pytest.raises(ValueError, match=rf"profile field '{field}' = .* is not accepted: \S"):
        get_profile("smoke").replace(**{field: object()})


@pytest.mark.parametrize(
    "changes, message",
    [
        (dict(cycles=-1), r"'cycles' = -1 is not accepted: an integer >= 1"),
        (dict(cycles="-1"), r"'cycles' = -1 is not accepted: an integer >= 1"),
        (dict(seeds="[0"), r"'seeds': cannot read the parameter value '\[0'.*accepted: a non-empty tuple of distinct"),
        (dict(seeds="[0, 0]"), r"'seeds' = \(0, 0\) is not accepted: a non-empty tuple of distinct integers"),
        (dict(transfer_cycles=0), r"'transfer_cycles' = 0 is not accepted: an integer >= 1"),
        (dict(fig4_eps="[0.5, 'x']"), r"'fig4_eps' = \(0.5, 'x'\) is not accepted: a non-empty tuple of numbers >= 0"),
        (dict(templates="['a photo']"), r"'templates' = \('a photo',\) is not accepted: .*'\{label\}' once"),
    ],
)
def test_notebook_parameters_are_checked_when_the_profile_is_built(changes, message):
    with pytest.raises(ValueError, match=message):
        get_profile("smoke", **changes)


def test_notebook_parameters_that_are_not_fields_are_checked_too():
    assert choice("SEED", "1", (0, 1)) == 1 and choice("ANNOTATION_EPS", None, (None, 0.5)) is None
    with pytest.raises(ValueError, match=r"notebook parameter SEED = '\[0' is not accepted: one of 0, 1"):
        choice("SEED", "[0", (0, 1))
    with pytest.raises(ValueError, match=r"ANNOTATION_EPS = 0.3 is not accepted: one of None, 0.0, 0.5"):
        choice("ANNOTATION_EPS", 0.3, (None, 0.0, 0.5))


def test_the_notebook_parameters_are_known_and_checked_before_any_notebook_runs():
    import json

    from galot_lib.experiments.profile_fields import NOTEBOOK_CHOICES, NOTEBOOK_FIELDS
    from galot_lib.experiments.profiles import check_notebook_parameters, main
    from galot_lib.experiments.sections import NOTEBOOK_DIR, SECTIONS

    names = set()
    for notebook in SECTIONS.values():
        cells = json.loads((NOTEBOOK_DIR / notebook).read_text())["cells"]
        source = next("".join(c["source"]) for c in cells if "parameters" in c.get("metadata", {}).get("tags", []))
        names |= {line.split(" = ")[0] for line in source.splitlines() if line.strip()}
    assert names == {"PROFILE", *NOTEBOOK_FIELDS, *NOTEBOOK_CHOICES}
    check_notebook_parameters("smoke", {"SEEDS": "[0]", "CYCLES": "1", "SEED": "0", "ANNOTATION_EPS": "0.5"})
    with pytest.raises(ValueError, match=r"SEED = .1. is not accepted: one of 0$"):  # not among the seeds asked for
        check_notebook_parameters("smoke", {"SEEDS": "[0]", "SEED": "1"})
    with pytest.raises(ValueError, match=r"notebook parameter SEED = '\[0' is not accepted: one of 0, 1"):
        check_notebook_parameters("smoke", {"SEED": "[0"})
    with pytest.raises(ValueError, match=r"'cycles' = -1 is not accepted: an integer >= 1"):
        check_notebook_parameters("smoke", {"CYCLES": "-1"})
    with pytest.raises(
        ValueError, match=r"unknown notebook parameter\(s\) \['SEDS'\]: no step reads them; valid: PROFILE"
    ):
        check_notebook_parameters("smoke", {"SEDS": "[0]"})
    # a profile field's own name reached the grid but not the notebooks, which computed another run: refused
    with pytest.raises(ValueError, match=r"\['seeds'\]: no step reads them \(seeds is spelled SEEDS\)"):
        check_notebook_parameters("smoke", {"seeds": "[0]"})
    with pytest.raises(ValueError, match="max_batch is a profile field no notebook parameter sets"):
        check_notebook_parameters("paper", {"max_batch": "8"})
    with pytest.raises(ValueError, match=r"\['t2i_model'\]: no step reads them \(t2i_model is spelled T2I"):
        check_notebook_parameters("paper", {"t2i_model": "org/other"})
    with pytest.raises(SystemExit) as stopped:
        main(["--profile", "smoke", "-p", "SEED", "[0"])
    assert stopped.value.code == 2


def test_fewer_seeds_keep_the_other_baselines_among_them():
    one = get_profile("embedded", seeds="[0]")  # README's example: -p SEEDS "[0]", every section on seed 0
    assert one.baseline_seeds == one.study_seeds == one.ablation_seeds == (0,)
    assert get_profile("embedded", seeds="[0]", study_seeds="[0, 1]").study_seeds == (0, 1)  # named: kept
    assert get_profile("embedded", seeds="[1, 3]").baseline_seeds == (1, 3)
    assert get_profile("embedded", seeds="[3, 8]").baseline_seeds == (3,)  # those of theirs that remain
    assert get_profile("embedded", seeds="[8]").baseline_seeds == (8,)  # none remain: the first


def test_the_grid_is_given_the_notebooks_settings():
    """./run_all.sh -p NAME VALUE: the profile fields change for the grid as for the notebooks (CYCLES for every run,
    Sec. 4.5's and notebook W's choice runs included); a choice among the profile's values changes no run."""
    from galot_lib.experiments.profile_fields import grid_settings

    settings = grid_settings({"PROFILE": "smoke", "CYCLES": "3", "ARMS": "('eps 0', 'GALOT')", "SEED": "1"})
    assert settings == [("cycles", "3"), ("ablation_cycles", "3"), ("payoff_arms", "('eps 0', 'GALOT')")]


def test_the_seed_plans_extra_seeds_are_checked_and_go_with_the_profiles_seeds():
    embedded = get_profile("embedded")
    assert embedded.seeds_of("AL+GAL") == embedded.seeds_of("GALOT") and len(embedded.seeds_of("GALOT")) == 12
    assert embedded.seeds_of("GALOT (basic)") == embedded.seeds  # a run the plan gives no more keeps the profile's
    with pytest.raises(ValueError, match="extra_seeds names 'LeastConfidence', not a headline run; valid: "):
        embedded.replace(extra_seeds=(("LeastConfidence", (6,)),))
    with pytest.raises(ValueError, match=r"extra_seeds of 'GALOT' \(5, 6\) overlap seeds .* or choice_seeds \(5,\)"):
        embedded.replace(extra_seeds=(("GALOT", (5, 6)),))
    with pytest.raises(ValueError, match="profile field 'extra_seeds'.*each run once"):
        embedded.replace(extra_seeds=(("GALOT", (6,)), ("GALOT", (7,))))
    assert get_profile("embedded", seeds="[0]").extra_seeds == ()  # -p SEEDS: the given seeds for every run
    kept = get_profile("embedded", headline_baselines="['BADGE']").extra_seeds  # runs no longer headline lose theirs
    assert {run for run, _ in kept} == {"GALOT", "GALOT template, eps 0", "GAL", "BADGE"}
    assert get_profile("smoke", extra_seeds="[['GALOT', [3]]]").seeds_of("GALOT") == (0, 1, 3)  # as papermill gives it


def test_the_embedded_seeds_are_the_seed_plans():
    """Each primary comparison of the plan (bench/results/seed_plan_embedded.csv) pairs on the seeds a +-1-point
    interval needs by its pilot, or on the profile's seeds where those are more, or, for the paper's central claim, on
    the seeds the ledger's pilot asks for its equivalence test (bench/results/seed_plan_ledger_embedded.csv)."""
    import pandas as pd

    from galot_lib.reporting.family import planned_seeds
    from galot_lib.reporting.seed_plan import plan_path

    profile = get_profile("embedded")
    plan = pd.read_csv(plan_path("embedded"))
    ledger = pd.read_csv(plan_path("ledger_embedded")).dropna(subset=["seeds_for_equivalence"])
    equivalence = ledger.set_index("part").seeds_for_equivalence
    for r in plan[plan.family == "primary"].itertuples():
        ours, other = r.comparison.split(" - ")
        wanted = max(len(profile.seeds), r.seeds_for_1_point, int(equivalence.get(r.comparison, 0)))
        assert planned_seeds(profile.as_dict(), r.section, ours, other) == wanted, r.comparison
    assert planned_seeds(profile.as_dict(), "4.1", "GALOT", "GALOT template, eps 0") == 9  # the central claim's


def test_every_claim_of_the_ledger_pairs_on_at_least_5_seeds():
    """Every seed-based part of the claims ledger runs both its runs on at least 5 common seeds (the ledger's floor,
    seed_plan.MIN_SEEDS), and the ledger's pilot gave each a spread: the plan's file lists every tested claim."""
    import pandas as pd

    from galot_lib.reporting.paper_claims import Part, claims
    from galot_lib.reporting.seed_plan import MIN_SEEDS, part_seeds, plan_path

    profile = get_profile("embedded")
    ledger = pd.read_csv(plan_path("ledger_embedded"))
    tested = set()
    for claim in claims(profile):
        for part in claim.parts:
            if isinstance(part, Part):
                assert len(part_seeds(profile, part)) >= MIN_SEEDS, (claim.id, part)
                tested.add(claim.id)
    assert tested <= set(ledger.claim) and "4.5-central" in set(ledger.claim)
    assert (ledger.pilot_seeds >= 5).all()


def test_every_step_reads_the_runs_one_settings_file(tmp_path, monkeypatch):
    """The profile and the -p parameters resolved once (run_all.sh writes $GALOT_SETTINGS): a notebook's own
    get_profile call, the grid's and the plan's all give the same profile; another profile's steps are untouched; a
    file that is not a run's settings is named."""
    from galot_lib.experiments.profiles import main as resolve

    settings = tmp_path / "settings.json"
    resolve(["--profile", "paper", "-p", "SEEDS", "[0]", "-p", "CYCLES", "2", "-p", "DATASETS", "['cifar10']",
             "--write-settings", str(settings)])  # fmt: skip
    monkeypatch.setenv("GALOT_SETTINGS", str(settings))
    monkeypatch.setenv("GALOT_PROFILE", "paper")
    grid = get_profile("paper")
    notebook = get_profile("default", seeds="[0]", cycles="2")  # what 4.1's parameters cell passes under run_all.sh
    assert grid == notebook
    assert (grid.seeds, grid.cycles, grid.ablation_cycles, grid.table1_datasets) == ((0,), 2, 2, ("cifar10",))
    assert get_profile("smoke") == get_profile("smoke", cycles=None)  # another profile: its own settings
    assert get_profile("smoke").cycles == 2
    settings.write_text("not json")
    with pytest.raises(ValueError, match=r"\$GALOT_SETTINGS names .*settings.json, which is not a run's settings"):
        get_profile("paper")
