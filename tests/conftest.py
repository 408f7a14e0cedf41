"""The tests' fixtures: tiny random diffusion components from ``galot_lib.stand_ins`` (built offline in code, as
diffusers' tests do with get_dummy_components), temporary storage roots, and the notebook chains."""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch

from galot_lib.core.progress import HEADLESS_ENVIRONMENT
from galot_lib.stand_ins.sd_components import SD21_SCHEDULER, byte_tokenizer
from galot_lib.stand_ins.tiny_models import TEST_SD, save_tiny_bundled, tiny_sd_components

TEXT_WIDTH = TEST_SD["text_width"]  # CLIP width of the tiny SD components
BUNDLED_TOKENS, BUNDLED_WIDTH = 24, 384  # MiniLM token states, as in galot_lib.bundled_model.encoder


def pytest_configure(config):
    """Every test, notebook kernel included, runs the smoke profile with its runs, results and
    generated-set cache in a fresh temporary folder (nothing leaks into the repo or ~/.cache), removed when the
    session ends (the rehearsal's full-size classifiers leave about 3.6 GB of run states there)."""
    root = Path(tempfile.mkdtemp(prefix="galot-tests-"))
    config._galot_root = root
    os.environ.update(
        GALOT_PROFILE="smoke",
        GALOT_RUNS_DIR=str(root / "runs"),
        GALOT_RESULTS_DIR=str(root / "results"),
        GALOT_CACHE_DIR=str(root / "cache"),
        OMP_NUM_THREADS="1",
        HF_HUB_OFFLINE="1",  # the suite is offline: the online weights check meets a stand-in hub (test_preflight.py)
    )  # notebook kernels too: float sums, hence records, depend on the thread count


def pytest_unconfigure(config):
    root = getattr(config, "_galot_root", None)
    if root is not None:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(autouse=True, scope="session")
def one_thread():
    """Tiny tensors run fastest, and deterministically, on one thread (and leave a core to others)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def sd_scheduler_config(**overrides) -> dict:
    """Stable Diffusion's noise schedule (scaled-linear betas, leading spacing, no clipping)."""
    return {**{k: v for k, v in SD21_SCHEDULER.items() if k != "num_train_timesteps"}, **overrides}


@pytest.fixture
def sd_components() -> dict:
    """Fresh tiny SD components (16x16 images, 4x8x8 latents, 77 x 16 embeddings), the same weights each time."""
    return tiny_sd_components(byte_tokenizer(), 16, **TEST_SD)


@pytest.fixture
def make_bundled_folder(tmp_path):
    """Writes a tiny model in the bundled format (as galot_lib.bundled.train.export does) and returns its folder."""

    def make(image_size=8, channels=1, space_to_depth=2, sampling=None, name="bundled"):
        return save_tiny_bundled(
            tmp_path / name, image_size, channels, space_to_depth, sampling, BUNDLED_TOKENS, BUNDLED_WIDTH
        )

    return make


# Every section's notebook executes once on the rehearsed paper profile (galot_lib.experiments.rehearsal: the paper's code
# and settings with tiny stand-ins), and Sec. 4.1 once more on the smoke profile (Fashion-MNIST and the bundled model,
# the embedded profile's path). Two chains run side by side, each in run order (Sec. 4.2, 4.3 and B read Sec. 4.1's
# runs); runs both chains need are computed once, by whichever gets its claim first, as in the run grid.
REHEARSAL, SMOKE = "paper-rehearsal", "smoke"
NOTEBOOK_CHAINS = (
    ((REHEARSAL, "4.1"), (REHEARSAL, "4.2"), (REHEARSAL, "4.3"), (REHEARSAL, "B"), (REHEARSAL, "4.4")),
    ((SMOKE, "4.1"), (REHEARSAL, "4.5"), (REHEARSAL, "W")),
)


def rehearsal_env(root: Path) -> dict:
    """The paper profile rehearsed: its stand-ins, runs, results and cache under ``root``."""
    return {
        **os.environ,
        "GALOT_PROFILE": "paper-rehearsal",
        "GALOT_REHEARSAL_DIR": str(root / "stand-ins"),
        "GALOT_RUNS_DIR": str(root / "runs"),
        "GALOT_RESULTS_DIR": str(root / "results"),
        "GALOT_CACHE_DIR": str(root / "cache"),
    }


def execute_chain(chain, executed: dict[str, Path], envs: dict[str, dict]) -> str | None:
    """Run a chain of (profile, section) notebooks, one kernel each, headless as run_all.sh runs them; the first
    failure, or None. The rehearsal's go through papermill, which saves them executed (the report and the cleanliness
    tests read them); the smoke profile's through nbval (``pytest --nbval-lax``): every cell a test item, so a failure
    names its cell, with the claims tests reading its results afterwards."""
    import subprocess
    import sys

    from galot_lib.experiments.sections import NOTEBOOK_DIR, SECTIONS

    for profile, section in chain:
        name = SECTIONS[section]
        executed[profile].mkdir(parents=True, exist_ok=True)
        if profile == SMOKE:
            command = [
                "-m",
                "pytest",
                "--nbval-lax",
                "--nbval-current-env",
                "-q",
                "-p",
                "no:cacheprovider",
                "--rootdir",
                str(NOTEBOOK_DIR),
                str(NOTEBOOK_DIR / name),
            ]
        else:
            command = [
                "-m",
                "papermill",
                str(NOTEBOOK_DIR / name),
                str(executed[profile] / name),
                "--cwd",
                str(NOTEBOOK_DIR),
                "--kernel",
                "python3",
                "--no-progress-bar",
            ]
        done = subprocess.run(
            [sys.executable, *command],
            capture_output=True,
            text=True,
            cwd=NOTEBOOK_DIR,
            env={**envs[profile], **HEADLESS_ENVIRONMENT},
        )
        if done.returncode:
            return f"{name} ({profile}) failed:\n{done.stdout[-5000:]}\n{done.stderr[-5000:]}"
    return None


@pytest.fixture(scope="session")
def notebook_runs():
    """The notebooks of NOTEBOOK_CHAINS executed with their stored parameters (``PROFILE = "default"`` resolves to
    ``$GALOT_PROFILE``: smoke, or paper with the rehearsal's stand-ins), headless as ``run_all.sh`` runs them:
    ``{profile: its results folder}``, the executed notebooks in its ``notebooks/``."""
    from concurrent.futures import ThreadPoolExecutor

    from galot_lib.experiments.rehearsal import write_stand_ins

    root = Path(os.environ["GALOT_RESULTS_DIR"])
    rehearsal = root.parent / "rehearsal"
    write_stand_ins(rehearsal / "stand-ins")
    envs = {SMOKE: dict(os.environ), REHEARSAL: rehearsal_env(rehearsal)}
    results = {SMOKE: root / SMOKE, REHEARSAL: rehearsal / "results" / REHEARSAL}
    executed = {profile: folder / "notebooks" for profile, folder in results.items()}  # where run_all.sh puts them
    with ThreadPoolExecutor(len(NOTEBOOK_CHAINS)) as workers:
        failures = [f for f in workers.map(lambda chain: execute_chain(chain, executed, envs), NOTEBOOK_CHAINS) if f]
    if failures:
        pytest.fail("\n\n".join(failures), pytrace=False)
    return results


@pytest.fixture(scope="session")
def results(notebook_runs):
    """results/smoke/ of this test session (Sec. 4.1 on the smoke profile)."""
    return notebook_runs[SMOKE]


@pytest.fixture(scope="session")
def rehearsed(notebook_runs):
    """results/paper-rehearsal/ of this test session (every section on the rehearsed paper profile)."""
    return notebook_runs[REHEARSAL]
