"""A failed or interrupted run leaves nothing half-written beside the committed results: each section is staged in an
ignored folder and reaches results/<profile>/ when its notebook completes; a section an earlier run finished stays."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# papermill as run_all.sh calls it, stubbed: writes part of a section's outputs where the notebook would, then fails
FAILING_PAPERMILL = """#!/usr/bin/env bash
mkdir -p "$GALOT_STAGING_DIR/smoke/B"
echo half > "$GALOT_STAGING_DIR/smoke/B/half_written.csv"
exit 1
"""


def test_a_failed_notebook_leaves_its_section_staged_and_the_finished_one_in_place(tmp_path):
    stub = tmp_path / "bin"
    stub.mkdir()
    (stub / "papermill").write_text(FAILING_PAPERMILL)
    (stub / "papermill").chmod(0o755)
    finished = REPO / "results" / "smoke" / "B"
    finished.mkdir(parents=True, exist_ok=True)
    (finished / "from_an_earlier_run.csv").write_text("kept\n")
    before = set((REPO / "results" / ".staging").glob("*")) if (REPO / "results" / ".staging").exists() else set()
    env = {
        **os.environ,
        "PATH": f"{stub}:{Path(sys.executable).parent}:/usr/bin:/bin",
        "VIRTUAL_ENV": sys.prefix,  # the active environment: no set-up
    }
    try:
        out = subprocess.run(
            [str(REPO / "run_all.sh"), "--profile", "smoke", "--only", "B", "--processes", "1"],
            capture_output=True, text=True, timeout=300, env=env, cwd=REPO,
        )  # fmt: skip
        assert out.returncode != 0 and "B_generation_examples.ipynb failed" in out.stderr, out.stderr[-2000:]
        assert (finished / "from_an_earlier_run.csv").read_text() == "kept\n"  # never deleted
        assert not (finished / "half_written.csv").exists()  # nothing half-written beside the results
        staged = set((REPO / "results" / ".staging").glob("*")) - before
        assert [p.name for s in staged for p in (s / "smoke" / "B").iterdir()] == ["half_written.csv"]
        ignored = subprocess.run(
            ["git", "-C", str(REPO), "check-ignore", "-q", str(next(iter(staged)))], capture_output=True
        )
        assert ignored.returncode == 0  # the staging folder is git-ignored: `git add -A` cannot commit it
    finally:
        for s in set((REPO / "results" / ".staging").glob("*")) - before:
            shutil.rmtree(s, ignore_errors=True)
        (finished / "from_an_earlier_run.csv").unlink(missing_ok=True)


def test_a_staged_section_is_written_aside_and_shown_where_it_will_be(tmp_path, monkeypatch):
    from galot_lib.core.paths import results_dir, shown

    monkeypatch.setenv("GALOT_RESULTS_DIR", str(tmp_path / "results"))
    monkeypatch.setenv("GALOT_STAGING_DIR", str(tmp_path / "stage"))
    folder = results_dir("smoke", "4.1")
    assert folder == tmp_path / "stage" / "smoke" / "4.1" and not (tmp_path / "results" / "smoke").exists()
    assert shown(folder / "records.csv") == "$GALOT_RESULTS_DIR/smoke/4.1/records.csv"
    monkeypatch.delenv("GALOT_STAGING_DIR")
    assert results_dir("smoke", "4.1") == tmp_path / "results" / "smoke" / "4.1"  # in place outside run_all.sh
