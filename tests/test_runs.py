"""Runs are keyed by what decides their results, so differently named sections share them."""

from galot_lib.experiments import judge, runs, sections
from galot_lib.experiments.profiles import get_profile


def test_same_identity_under_another_name_reuses_the_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_RUNS_DIR", str(tmp_path))
    profile = get_profile("smoke")
    pool, test = runs.load_data(profile)
    first = runs.run_baseline(profile, pool, test, "RandomSampling", 0, cycles=1, method="Table 1 row")
    again = runs.run_baseline(profile, pool, test, "RandomSampling", 0, cycles=1, method="Fig. 3 curve")
    assert len(list(tmp_path.rglob("records.json"))) == 1  # one folder, trained once
    assert [r["method"] for r in again] == ["Fig. 3 curve"]
    assert [r["accuracy"] for r in again] == [r["accuracy"] for r in first]
    assert again[0]["train_s"] == first[0]["train_s"]  # the stored record, not a retraining


def test_the_grid_renders_sec_4_4_images_and_the_notebook_only_judges_them(tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_RUNS_DIR", str(tmp_path / "runs"))
    monkeypatch.setenv("GALOT_CACHE_DIR", str(tmp_path / "cache"))
    profile = get_profile("smoke")
    jobs = sections.section_jobs(profile, "4.4")
    assert [dict(j.galot_changes)["template"] for j in jobs] == list(profile.templates)
    assert all(job.run(profile, wait=False) == [] for job in jobs)  # rendered into the cache, no records

    def no_rendering(*args, **kwargs):
        raise AssertionError("Sec. 4.4's images were rendered again")

    monkeypatch.setattr(judge, "generate_images", no_rendering)
    records = sections.figure4(profile, tmp_path / "out", progress=False)
    assert len(records) == len(profile.templates) * len(profile.fig4_eps) * 10
    assert sum(r["total"] for r in records) == len(records) * profile.fig4_per_class
    assert (tmp_path / "out" / "judged_images.pt").exists()


def test_table_2_replays_every_seed_of_galots_runs_on_that_seeds_sets():
    """Sec. 4.3's claims are paired tests: each seed's networks train on that seed's GALOT sets, beside that seed's
    AL rows and GALOT row (the same runs as Table 1's)."""
    profile = get_profile("smoke")
    jobs = sections.table2_jobs(profile)
    assert {j.seed for j in jobs} == set(profile.seeds)
    for seed in profile.seeds:
        of_seed = [j for j in jobs if j.seed == seed]
        replays = [j for j in of_seed if j.kind == "replay"]
        assert [j.method for j in replays] == list(profile.transfer_models)
        assert {(j.source.seed, j.source.method) for j in replays} == {(seed, "GALOT")}
        assert sorted(j.method for j in of_seed if j.kind != "replay") == sorted(
            ["MarginSampling", "LeastConfidence", f"Baseline ({profile.model})"]
        )
