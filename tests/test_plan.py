"""The plan a budget holder reads before a GPU day: the run the settings make, each data set at its own class count,
throughputs from the committed measurement (and what is assumed, said)."""

from pathlib import Path

import pandas as pd
import pytest

from galot_lib.experiments import plan
from galot_lib.experiments.profiles import get_profile
from galot_lib.experiments.runs import RunJob

REPO = Path(__file__).resolve().parents[1]


def test_the_default_throughput_is_the_committed_h200_measurement():
    measured = pd.read_csv(REPO / "bench" / "results" / "gpu_check.csv")
    row = measured[measured.classes == 10].iloc[0]
    assert plan.MEASURED_H200["unet_evals_per_s"] == pytest.approx(row.unet_evals_per_s, abs=0.05)
    assert plan.MEASURED_H200["train_images_per_s"] == pytest.approx(row.train_images_per_s, abs=0.5)
    assert "NVIDIA H200" in plan.MEASURED_H200["source"] and "assumed" in plan.MEASURED_H200["source"]


def test_each_run_is_priced_at_its_own_data_sets_class_count():
    """The paper profile's Table 1 runs on CIFAR-100 and TinyImageNet cost more per cycle than on CIFAR-10: their
    per-class gradient images scale with 100 and 200 classes (the plan used to price all three as 10)."""
    paper = get_profile("paper")
    grads = {
        d: plan.run_cost(RunJob("galot", d, 0, "GALOT"), paper)["gradient_images"]
        for d in ("cifar10", "cifar100", "tiny_imagenet")
    }
    assert grads["cifar100"] == 10 * grads["cifar10"] and grads["tiny_imagenet"] == 20 * grads["cifar10"]


def test_settings_reach_the_plan(capsys):
    """A CIFAR-10-only, one-seed, two-cycle paper run is planned as exactly that (-p reaches --plan as --set)."""
    plan.main(["--profile", "paper"])
    full = capsys.readouterr().out
    plan.main(
        ["--profile", "paper", "--set", "seeds", "[0]", "--set", "cycles", "2", "--set", "ablation_cycles", "2",
         "--set", "table1_datasets", "['cifar10']"]
    )  # fmt: skip
    small = capsys.readouterr().out

    def hours(out: str) -> float:
        line = next(line for line in out.splitlines() if line.strip().startswith("total"))
        return float(line.split()[-1].replace(",", ""))

    total = dict(full=hours(full), small=hours(small))
    assert total["small"] < total["full"] / 5
    assert "cifar10 in Table 1" in small and "set: seeds = [0], cycles = 2" in small
    assert "measured on an NVIDIA H200" in small


def test_run_all_plans_what_its_settings_file_says(tmp_path, monkeypatch, capsys):
    """./run_all.sh resolves the profile and its -p parameters once, into the settings file every step reads: the plan
    through it is the plan through --set."""
    from galot_lib.experiments.profiles import main as resolve

    monkeypatch.delenv("GALOT_SETTINGS", raising=False)
    plan.main(["--profile", "paper", "--set", "seeds", "[0]", "--set", "cycles", "2", "--set", "ablation_cycles", "2",
               "--set", "table1_datasets", "['cifar10']"])  # fmt: skip
    by_set = capsys.readouterr().out
    settings = tmp_path / "settings.json"
    resolve(["--profile", "paper", "-p", "SEEDS", "[0]", "-p", "CYCLES", "2", "-p", "DATASETS", "['cifar10']",
             "--write-settings", str(settings)])  # fmt: skip
    monkeypatch.setenv("GALOT_SETTINGS", str(settings))
    plan.main(["--profile", "paper"])
    through_file = capsys.readouterr().out
    assert through_file.splitlines()[1:] == by_set.splitlines()[1:]  # the same runs, the same GPU hours
    assert "cifar10 in Table 1" in through_file and "set: seeds = [0], cycles = 2" in through_file


def test_a_run_is_counted_once_however_its_sections_spell_it():
    """Table 3's GALOT-template row, Table 7's margin pair and Table 1's GALOT are one run (their folders resolve to
    one identity): the plan counts it once, and a run another section made shorter only for its further cycles."""
    profile = get_profile("embedded")
    table1 = RunJob("galot", "fashion_mnist", 0, "GALOT")
    spelled = [
        RunJob("galot", "fashion_mnist", 0, "a realistic photo", cycles=3, galot_changes=(("template", "a realistic photo of a {label}"),)),
        RunJob("galot", "fashion_mnist", 0, "MarginSampling", strategy="MarginSampling", cycles=3,
               galot_changes=(("acquisition", "MarginSampling"),)),
    ]  # fmt: skip
    assert {plan.run_key(j, profile) for j in [table1, *spelled]} == {plan.run_key(table1, profile)}
    assert plan.distinct([*spelled, table1], profile) == [table1]
    other = RunJob("galot", "fashion_mnist", 0, "{label}", cycles=3, galot_changes=(("template", "{label}"),))
    assert plan.run_key(other, profile) != plan.run_key(table1, profile)
    full, first = plan.run_cost(table1, profile), plan.run_cost(spelled[0], profile)
    beyond = plan.cost_beyond(table1, 3, profile)
    assert beyond["runs"] == 0 and beyond["unet_evals"] == full["unet_evals"] - first["unet_evals"] > 0
