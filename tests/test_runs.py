"""Runs are keyed by what decides their results, so differently named sections share them."""

from galot_lib.paper import runs
from galot_lib.paper.profiles import get_profile


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
