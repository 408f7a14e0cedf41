"""The AL loop: one record per cycle, resumable with identical records, bad input rejected."""

import json

import pytest
import torch

from galot_lib.learning.data import ImageSet
from galot_lib.learning.generated import Generated
from galot_lib.learning.loop import ALConfig, run_active_learning
from galot_lib.learning.train import TrainConfig

TIMINGS = {"query_s", "generate_s", "train_s", "eval_s", "computed_at", "computed_by"}


def tiny_sets(n_pool=120, n_test=60, classes=3):
    g = torch.Generator().manual_seed(0)

    def make(n):
        labels = torch.arange(n) % classes
        images = torch.randint(0, 30, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
        for i, y in enumerate(labels.tolist()):
            images[i, 0, 4 + 7 * y : 10 + 7 * y, 8:20] = 240
        return images, labels

    names = tuple(f"class{i}" for i in range(classes))
    return ImageSet(*make(n_pool), names, "tiny/pool"), ImageSet(*make(n_test), names, "tiny/test")


def config(**kw):
    base = dict(
        strategy="MarginSampling",
        model="SmallCNN",
        initial_labeled=12,
        query_size=9,
        cycles=3,
        train=TrainConfig(epochs=2, batch_size=16, min_steps=6),
    )
    base.update(kw)
    return ALConfig(**base)


def strip(records):
    return [{k: v for k, v in r.items() if k not in TIMINGS} for r in records]


def test_records_one_per_cycle_with_growing_labels(tmp_path):
    pool, test = tiny_sets()
    records = run_active_learning(config(), pool, test, seed=0, run_dir=tmp_path, progress=False)
    assert [r["cycle"] for r in records] == [0, 1, 2]
    assert [r["n_labeled"] for r in records] == [12, 21, 30]
    assert all(r["method"] == "MarginSampling" and r["seed"] == 0 and r["n_generated"] == 0 for r in records)
    assert all(0.0 <= r["accuracy"] <= 1.0 for r in records)
    assert len({r["config_hash"] for r in records}) == 1
    assert json.loads((tmp_path / "records.json").read_text())[-1]["cycle"] == 2


def test_interrupted_run_resumes_to_identical_records(tmp_path, monkeypatch):
    pool, test = tiny_sets()
    full = run_active_learning(config(), pool, test, seed=1, run_dir=tmp_path / "full", progress=False)

    import galot_lib.learning.loop as loop

    real_accuracy, calls = loop.accuracy, []

    def interrupted_in_third_cycle(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt
        return real_accuracy(*args, **kwargs)

    monkeypatch.setattr(loop, "accuracy", interrupted_in_third_cycle)
    with pytest.raises(KeyboardInterrupt):
        run_active_learning(config(), pool, test, seed=1, run_dir=tmp_path / "cut", progress=False)
    assert len(json.loads((tmp_path / "cut" / "records.json").read_text())) == 2
    monkeypatch.setattr(loop, "accuracy", real_accuracy)
    resumed = run_active_learning(config(), pool, test, seed=1, run_dir=tmp_path / "cut", progress=False)
    assert strip(resumed) == strip(full)


def test_finished_run_is_not_recomputed(tmp_path):
    pool, test = tiny_sets()
    first = run_active_learning(config(), pool, test, seed=0, run_dir=tmp_path, progress=False)
    again = run_active_learning(config(), pool, test, seed=0, run_dir=tmp_path, progress=False)
    assert again == first  # timings included: nothing ran


def test_generation_hook_adds_pseudo_labelled_data(tmp_path):
    pool, test = tiny_sets()

    class Hook:
        def __init__(self):
            self.calls = []

        def describe(self):
            return {"hook": "copies"}

        def __call__(self, cycle, trained, n_labeled, seed):
            self.calls.append((cycle, n_labeled))
            idx = torch.arange(n_labeled) % len(pool)
            return Generated(pool.images[idx], pool.labels[idx], {"eps": 0.1 * cycle})

    hook = Hook()
    records = run_active_learning(config(), pool, test, seed=0, run_dir=tmp_path, generation=hook, progress=False)
    assert hook.calls == [(0, 12), (1, 21), (2, 30)]
    assert [r["n_generated"] for r in records] == [12, 33, 63]
    assert [r["eps"] for r in records] == [0.0, 0.1, 0.2]
    gal_only = run_active_learning(config(), pool, test, seed=0, generation=Hook(), use_pool=False, progress=False)
    assert [r["n_labeled"] for r in gal_only] == [0, 0, 0]
    assert [r["n_generated"] for r in gal_only] == [12, 33, 63]


def test_runs_of_a_seed_share_the_initial_classifier(tmp_path, monkeypatch):
    """Every pool strategy's first cycle and a generation hook's cycle-0 classifier are the classifier of the
    initial labelled set: with a shared folder it is trained once, and the records are those of separate training."""
    pool, test = tiny_sets()
    alone = [
        run_active_learning(config(strategy=s, cycles=2), pool, test, seed=0, progress=False)
        for s in ("MarginSampling", "EntropySampling")
    ]
    import galot_lib.learning.loop as loop

    real_fit, fits = loop.fit, []
    monkeypatch.setattr(loop, "fit", lambda *a, **k: fits.append(len(a[1])) or real_fit(*a, **k))
    shared = tmp_path / "shared"
    together = [
        run_active_learning(
            config(strategy=s, cycles=2), pool, test, seed=0, run_dir=tmp_path / s, shared_dir=shared, progress=False
        )
        for s in ("MarginSampling", "EntropySampling")
    ]
    assert [strip(r) for r in together] == [strip(r) for r in alone]
    assert fits == [12, 21, 21]  # the initial set once, then each run's second cycle
    assert len(list(shared.glob("*/classifier.pt"))) == 1

    class NeedsNoClassifier:
        uses_classifier = False

        def describe(self):
            return {"hook": "replay"}

        def __call__(self, cycle, trained, n_labeled, seed):
            assert trained is None or cycle > 0
            return Generated(pool.images[:n_labeled], pool.labels[:n_labeled])

    fits.clear()
    run_active_learning(
        config(cycles=1), pool, test, seed=0, generation=NeedsNoClassifier(), shared_dir=shared, progress=False
    )
    assert fits == [24]  # no classifier trained before generation: only the cycle's own, on 12 labels + 12 generated


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(strategy="Oracle"), "valid names"),
        (dict(model="ResNet1000"), "valid names"),
        (dict(cycles=0), "cycles"),
        (dict(candidates=3), "candidates"),
    ],
)
def test_bad_config_is_rejected(kwargs, message):
    with pytest.raises(ValueError, match=message):
        config(**kwargs)


def test_budget_larger_than_the_pool_is_rejected_before_work(tmp_path):
    pool, test = tiny_sets(n_pool=25)
    with pytest.raises(ValueError, match="pool holds only 25"):
        run_active_learning(config(), pool, test, seed=0, run_dir=tmp_path, progress=False)
    assert not (tmp_path / "state.pt").exists()


def test_state_of_another_config_is_refused(tmp_path):
    pool, test = tiny_sets()
    run_active_learning(config(cycles=1), pool, test, seed=0, run_dir=tmp_path, progress=False)
    with pytest.raises(ValueError, match="another configuration"):
        run_active_learning(config(cycles=1, query_size=5), pool, test, seed=0, run_dir=tmp_path, progress=False)


def test_query_synthesis_hook_adds_oracle_labelled_queries(tmp_path):
    pool, test = tiny_sets()

    class Synth:
        def describe(self):
            return {"synth": "noise"}

        def __call__(self, cycle, trained, n, seed):
            g = torch.Generator().manual_seed(seed)
            images = torch.randint(0, 255, (n, 1, 28, 28), generator=g, dtype=torch.uint8)
            return Generated(images, torch.zeros(n, dtype=torch.long))

    records = run_active_learning(config(), pool, test, seed=0, run_dir=tmp_path, synthesis=Synth(), progress=False)
    assert [r["n_labeled"] for r in records] == [12, 21, 30]  # synthesised queries count as labels
    assert [r["n_generated"] for r in records] == [0, 0, 0]
    assert records[0]["strategy"] is None
    state = torch.load(tmp_path / "state.pt", weights_only=False)
    assert len(state["labeled"]) == 12 and sum(len(l) for l in state["synth_labels"]) == 18
