"""Many processes: claims on run folders, the run grid under torchrun (two CPU processes, one of them killed
mid-run and the launch resumed), generation sharded over processes, and the plan."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import torch

from galot_lib.core import claims
from galot_lib.experiments import plan as planning
from galot_lib.experiments.profiles import get_profile
from galot_lib.experiments.registry import SECTIONS
from galot_lib.experiments.sections import AFTER_GRID_WORK, notebooks

REPO = Path(__file__).resolve().parent.parent
TWO = "('RandomSampling', 'MarginSampling')"
GRID_SETTINGS = [
    "--set",
    "seeds",
    "(0,)",
    "--set",
    "baseline_seeds",
    "(0,)",
    "--set",
    "strategies",
    TWO,
    "--set",
    "headline_baselines",
    TWO,
]
KEY = ["method", "seed", "cycle"]
SAME = ["config_hash", "n_labeled", "n_generated", "accuracy"]


def test_a_claim_is_exclusive_and_a_dead_holders_claim_is_taken_over(tmp_path):
    with claims.claimed(tmp_path):
        with pytest.raises(claims.ClaimedElsewhere, match="being computed by"):
            with claims.claimed(tmp_path, wait=False):
                pass
    assert not (tmp_path / claims.CLAIM_FILE).exists()  # released
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    (tmp_path / claims.CLAIM_FILE).write_text(json.dumps(dict(holder=f"{os.uname().nodename}:{dead.stdout.strip()}")))
    with claims.claimed(tmp_path, wait=False):  # its holder is gone: taken over
        assert json.loads((tmp_path / claims.CLAIM_FILE).read_text())["holder"] == claims.holder()


def grid_env(tmp_path) -> dict:
    return {
        **os.environ,
        "GALOT_RUNS_DIR": str(tmp_path / "runs"),
        "PYTHONPATH": str(REPO),
        "OMP_NUM_THREADS": "1",
        "GALOT_CACHE_DIR": os.environ["GALOT_CACHE_DIR"],
    }


GRID = [
    "-m",
    "galot_lib.experiments.grid",
    "--profile",
    "smoke",
    "--only",
    "4.2",  # AL, GAL and AL+GAL: a pool run, a generated-only run and a GALOT run, the grid's three kinds of work
    "--threads",
    "1",
    "--no-progress",
    *GRID_SETTINGS,
]


def launch(tmp_path) -> subprocess.Popen:
    torchrun = Path(sys.executable).with_name("torchrun")
    return subprocess.Popen(
        [str(torchrun), "--standalone", "--nproc_per_node", "2", *GRID],
        env=grid_env(tmp_path),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def grid_records(root: Path) -> pd.DataFrame:
    rows = [r for f in root.rglob("records.json") for r in json.loads(f.read_text())]
    return pd.DataFrame(rows)


def test_two_processes_compute_each_run_once_and_survive_a_killed_process(tmp_path):
    """Two CPU processes (torchrun, read by Accelerate) on the smoke Fig. 3: one is killed mid-run, a new
    launch finishes the grid, and the records equal a single process's, each cycle computed once."""
    first = launch(tmp_path)
    victim = None
    deadline = time.time() + 120
    while victim is None and time.time() < deadline and first.poll() is None:
        for claim in (tmp_path / "runs").rglob(claims.CLAIM_FILE) if (tmp_path / "runs").exists() else []:
            if any(claim.parent.glob("records.json")):  # a run with a saved cycle, still being computed
                try:
                    victim = int(json.loads(claim.read_text())["holder"].rpartition(":")[2])
                except (ValueError, json.JSONDecodeError, FileNotFoundError):
                    continue
                break
        time.sleep(0.2)
    assert victim is not None, "no run was in progress to interrupt"
    os.kill(victim, signal.SIGKILL)
    first.communicate(timeout=120)
    partial = grid_records(tmp_path / "runs")
    resumed_from = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime())
    second = launch(tmp_path)
    output, _ = second.communicate(timeout=300)
    assert second.returncode == 0, output[-3000:]
    records = grid_records(tmp_path / "runs")
    assert not records.duplicated(KEY + ["config_hash"]).any()  # nothing doubled
    assert len(records) > len(partial) and set(map(tuple, partial[KEY].values)) <= set(map(tuple, records[KEY].values))
    new = records[records.computed_at.str[:19] >= resumed_from]
    assert (new.groupby(["config_hash", "seed"]).computed_by.nunique() == 1).all()  # one process per run
    assert records.computed_by.nunique() >= 2  # the work was shared

    # The same records as one process computes on its own (its own runs and generated-set cache).
    env = {**grid_env(tmp_path / "alone"), "GALOT_CACHE_DIR": str(tmp_path / "alone" / "cache")}
    alone = subprocess.run([sys.executable, *GRID], env=env, capture_output=True, text=True, timeout=300)
    assert alone.returncode == 0, alone.stderr[-3000:]
    single = grid_records(tmp_path / "alone" / "runs")
    merged = single.merge(records, on=KEY, suffixes=("", "_grid"))
    assert len(merged) == len(single) == len(records)
    for column in SAME:
        assert (merged[column] == merged[f"{column}_grid"]).all(), column


SHARD_SCRIPT = """
import json, sys, torch
from accelerate import PartialState
from galot_lib.generation.galot import GalotConfig
from galot_lib.generation.images import generate_images, planned_images
from galot_lib.generation.shards import Shards
from galot_lib.generation.t2i import load_t2i

torch.set_num_threads(1)
shards = Shards(PartialState(cpu=True))
model = load_t2i(sys.argv[1])
c = model.encode(["a photo of a bag", "a photo of a coat", "a photo of a shirt"])
labels, seeds = planned_images([3, 4, 2], seed=0, cycle=1)
images = generate_images(model, c, labels, seeds, GalotConfig(sampling_steps=2, guidance=2.0), 28, 1, 2, shards)
if shards.state.is_main_process:
    torch.save(images, sys.argv[2])
"""


def test_sharded_generation_equals_unsharded_image_for_image(make_bundled_folder, tmp_path):
    from galot_lib.generation.galot import GalotConfig
    from galot_lib.generation.images import generate_images, planned_images
    from galot_lib.generation.t2i import load_t2i

    folder = make_bundled_folder(image_size=8)
    script = tmp_path / "shard.py"
    script.write_text(SHARD_SCRIPT)
    torchrun = Path(sys.executable).with_name("torchrun")
    out = subprocess.run(
        [
            str(torchrun),
            "--standalone",
            "--nproc_per_node",
            "2",
            str(script),
            str(folder),
            str(tmp_path / "sharded.pt"),
        ],
        env=grid_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    model = load_t2i(str(folder))
    c = model.encode(["a photo of a bag", "a photo of a coat", "a photo of a shirt"])
    labels, seeds = planned_images([3, 4, 2], seed=0, cycle=1)
    alone = generate_images(model, c, labels, seeds, GalotConfig(sampling_steps=2, guidance=2.0), 28, 1, 2)
    assert torch.equal(torch.load(tmp_path / "sharded.pt"), alone)


def test_the_plan_counts_without_running(tmp_path, monkeypatch):
    monkeypatch.setenv("GALOT_CACHE_DIR", str(tmp_path))
    profile = get_profile("smoke")
    table = planning.plan(profile, list(SECTIONS)).set_index("section")
    assert list(table.index) == [*SECTIONS, "total"]
    extra = sum(len(seeds) for _, seeds in profile.extra_seeds)  # the seed plan's more seeds for some runs
    assert table.loc["4.1", "runs"] == len(profile.seeds) * (len(profile.strategies) + 4) + extra + 1  # + fully sup.
    assert table.loc["4.2", "runs"] == len(profile.seeds)  # only GAL is new: AL and AL+GAL are Sec. 4.1's runs
    assert table.loc["4.4", "runs"] == len(profile.templates)  # its images, a job per template
    assert table.loc["4.4", "generated"] == len(profile.templates) * len(profile.fig4_eps) * 10 * profile.fig4_per_class
    assert table.loc["total", "gpu_hours"] == pytest.approx(table.gpu_hours.iloc[:-1].sum())
    assert "measured on an NVIDIA H200" in table.attrs["throughput"]["source"]  # the committed measurement
    (tmp_path / planning.THROUGHPUT_FILE).write_text(
        json.dumps(dict(unet_evals_per_s=1.0, train_images_per_s=1.0, source="measured"))
    )
    assert planning.plan(profile, ["4.4"]).attrs["throughput"]["source"] == "measured"


@pytest.mark.parametrize(
    "args, message",
    [
        (["--only", "9.9"], "unknown section '9.9'"),
        (["--profile", "huge"], "unknown profile 'huge'"),
        (["--processes", "0"], "--processes must be a positive integer or auto"),
        (["--processes", "two"], "positive integer"),
        (["-p", "SEEDS"], "-p needs a name and a value"),
        (["--bogus"], "unknown argument '--bogus'"),
        (["--rehearse"], "--rehearse rehearses the paper profile: add --profile paper"),
        (["--check-verdicts", "--plan"], "--check-verdicts and --plan exclude each other"),  # the last won, silently
        (["--plan", "--test"], "--plan and --test exclude each other"),
    ],
)
def test_run_all_rejects_bad_arguments_before_any_set_up(args, message):
    out = subprocess.run(
        [str(REPO / "run_all.sh"), *args],
        capture_output=True,
        text=True,
        timeout=30,
        env={**os.environ, "VIRTUAL_ENV": "", "PATH": "/usr/bin:/bin"},
    )
    assert out.returncode == 2 and message in out.stderr and "valid:" in out.stderr
    assert "installing" not in out.stdout and "creating" not in out.stdout


def test_run_all_plans_the_run_its_parameters_make():
    """-p reaches the plan through the run's one settings file: a CIFAR-10-only, one-seed, two-cycle paper run is
    planned as exactly that (it used to price the full profile, 1,806.8 GPU-hours)."""
    out = subprocess.run(
        [str(REPO / "run_all.sh"), "--profile", "paper", "--plan", "-p", "SEEDS", "[0]", "-p", "CYCLES", "2", "-p",
         "DATASETS", "['cifar10']"],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=REPO,
    )  # fmt: skip
    assert out.returncode == 0, out.stderr
    assert "cifar10 in Table 1, cifar10 elsewhere, 1 seeds" in out.stdout
    assert "set: seeds = [0], cycles = 2, ablation_cycles = 2, table1_datasets = ['cifar10']" in out.stdout


def test_run_all_reads_the_sections_from_the_registry_before_any_set_up():
    """run_all.sh's --only choices are the registry's ids, read with a bare python3 (no project installed)."""
    out = subprocess.run(
        ["python3", str(REPO / "galot_lib" / "experiments" / "registry.py"), "ids"],
        capture_output=True,
        text=True,
        timeout=30,
        env={"PATH": "/usr/bin:/bin"},
    )
    assert out.stdout.split() == list(SECTIONS)
    assert 'SECTIONS="$(python3 galot_lib/experiments/registry.py ids)"' in (REPO / "run_all.sh").read_text()


def test_a_section_is_one_record_every_step_reads():
    """The plan, the preflight, the grid, the report and run_all.sh take their sections, jobs, main tables and
    figures, and the generator's need from the registry: no other file of the library lists section ids."""
    import re

    from galot_lib.experiments import preflight, registry
    from galot_lib.reporting import report

    assert report.MAIN_TABLES == {s.id: s.main_table for s in registry.REGISTRY if s.main_table}
    assert report.MAIN_FIGURES == {s.id: s.main_figure for s in registry.REGISTRY if s.main_figure}
    smoke = get_profile("smoke")
    for record in registry.REGISTRY:
        assert (REPO / "notebooks" / record.notebook).exists()
        if record.jobs is not None:
            assert record.run_jobs(smoke), record.id  # every section with runs names some
    paper = get_profile("paper").replace(t2i_model="/nonexistent")
    no_generator = [s.id for s in registry.REGISTRY if not s.needs_t2i]
    assert not any("text-to-image" in p for p in preflight.problems(paper, no_generator))
    notebooks_named = [r.notebook for r in registry.REGISTRY]  # the run order's other spelling
    offenders = [
        str(path.relative_to(REPO))
        for path in (REPO / "galot_lib").rglob("*.py")
        if path.name != "registry.py" and any(name in path.read_text() for name in notebooks_named)
    ]
    assert not re.search(r"\b4\.1 4\.2\b", (REPO / "run_all.sh").read_text().split("set -euo")[1])
    assert not offenders, offenders


def test_notebooks_with_work_beyond_the_grid_start_first():
    ordered = [p.name for p in notebooks(after_grid_work_first=True)]
    assert sorted(ordered) == sorted(p.name for p in notebooks())
    assert ordered[: len(AFTER_GRID_WORK)] == [SECTIONS[s] for s in AFTER_GRID_WORK]
    assert [p.name for p in notebooks("4.2", after_grid_work_first=True)] == [SECTIONS["4.2"]]
